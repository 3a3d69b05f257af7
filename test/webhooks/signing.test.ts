import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Webhook } from 'standardwebhooks';
import { generateSecret, signature, signedHeaders } from '../../src/webhooks/signing.ts';

/** Our Standard Webhooks signatures (src/webhooks/signing.ts) against the convention's published example and its npm implementation. */
describe('webhook signing', () => {
  test('the Standard Webhooks example signs as published', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    assert.equal(
      signature(secret, 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}'),
      'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    );
  });

  test('headers verify with the npm implementation, with either secret of a rotation', () => {
    const [oldSecret, newSecret] = [generateSecret(), generateSecret()];
    assert.match(oldSecret, /^whsec_[A-Za-z0-9+/]{32}$/);
    const body = JSON.stringify({ id: 'evt_1', type: 'agent.created' });
    const headers = signedHeaders([newSecret, oldSecret], 'evt_1', Math.floor(Date.now() / 1000), body);
    assert.equal(headers['webhook-signature'].split(' ').length, 2);
    for (const secret of [newSecret, oldSecret]) assert.deepEqual(new Webhook(secret).verify(body, headers), JSON.parse(body));
    assert.throws(() => new Webhook(generateSecret()).verify(body, headers));
    assert.throws(() => new Webhook(newSecret).verify(body.replace('agent', 'agents'), headers), 'a changed body does not verify');
  });
});
