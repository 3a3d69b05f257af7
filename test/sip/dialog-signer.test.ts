import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DialogSigner, mediaSessionOf } from '../../src/sip/dialog-signer.ts';
import { createRequest, SipHeaders } from '../../src/sip/message.ts';
import { parseSipUri } from '../../src/sip/uri.ts';

const KEY = Buffer.alloc(32, 7);
const token = fc.stringMatching(/^[A-Za-z0-9.\-_]{1,24}$/);

function inDialog(callId: string, fromTag: string, toTag: string) {
  return createRequest({
    method: 'BYE',
    uri: 'sip:peer@192.0.2.1',
    headers: new SipHeaders([
      ['From', `<sip:a@example.com>;tag=${fromTag}`],
      ['To', `<sip:b@example.com>;tag=${toTag}`],
      ['Call-ID', callId],
    ]),
  });
}

function route(params: string) {
  return parseSipUri(`sip:192.0.2.10:5060;lr${params}`)!;
}

test('a Record-Route signed for a dialog verifies for requests from either side, and for nothing else', () => {
  fc.assert(
    fc.property(
      token,
      token,
      token,
      token,
      fc.option(token, { nil: undefined }),
      fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined }),
      (callId, callerTag, calleeTag, otherTag, side, cseqOffset) => {
        fc.pre(otherTag !== callerTag);
        const signer = new DialogSigner(KEY);
        const protectedParams = `${side === undefined ? '' : `;dpr=${side}`}${cseqOffset === undefined ? '' : `;dpcs=${cseqOffset}`}`;
        const params = protectedParams + signer.recordRouteParams(callId, callerTag, { side, cseqOffset });
        assert.ok(signer.verifyRoute(route(params), inDialog(callId, callerTag, calleeTag)), 'caller → callee');
        assert.ok(signer.verifyRoute(route(params), inDialog(callId, calleeTag, callerTag)), 'callee → caller');
        assert.ok(!signer.verifyRoute(route(params), inDialog(`${callId}x`, callerTag, calleeTag)), 'another Call-ID');
        assert.ok(!signer.verifyRoute(route(params), inDialog(callId, otherTag, otherTag)), 'another dialog’s tags');
        assert.ok(
          !signer.verifyRoute(route(`${params};dpcs=9`.replace(/;dpcs=\d;/, ';')), inDialog(callId, callerTag, calleeTag)) || cseqOffset === 9,
          'a changed dpcs',
        );
        assert.ok(
          !signer.verifyRoute(
            route(params.replace(/;dpr=[^;]*/, '') + (side === undefined ? ';dpr=zz' : '')),
            inDialog(callId, callerTag, calleeTag),
          ),
          'a changed dpr',
        );
        assert.ok(!new DialogSigner(Buffer.alloc(32, 8)).verifyRoute(route(params), inDialog(callId, callerTag, calleeTag)), 'another key');
      },
    ),
    { numRuns: 200 },
  );
});

test('signatures expire after maxDialogSeconds; a small clock lead is tolerated', () => {
  let now = 1_000_000;
  const signer = new DialogSigner(KEY, { maxDialogSeconds: 3600, now: () => now });
  const params = signer.recordRouteParams('call', 'tag', {});
  const request = inDialog('call', 'tag', 'other');
  now += 3600;
  assert.ok(signer.verifyRoute(route(params), request));
  now += 1;
  assert.ok(!signer.verifyRoute(route(params), request), 'expired');
  const ahead = new DialogSigner(KEY, { maxDialogSeconds: 3600, now: () => 1_000_000 + 200 });
  const behind = new DialogSigner(KEY, { maxDialogSeconds: 3600, now: () => 1_000_000 });
  assert.ok(behind.verifyRoute(route(ahead.recordRouteParams('call', 'tag', {})), request), 'signed by an instance 200 s ahead');
  const farAhead = new DialogSigner(KEY, { maxDialogSeconds: 3600, now: () => 1_000_000 + 3000 });
  assert.ok(!behind.verifyRoute(route(farAhead.recordRouteParams('call', 'tag', {})), request), 'from the future');
});

test('unsigned, malformed or truncated Routes do not verify', () => {
  const signer = new DialogSigner(KEY);
  const request = inDialog('call', 'tag', 'other');
  const good = signer.recordRouteParams('call', 'tag', {});
  for (const params of ['', ';dps=x', ';dpt=zzzzzzzzzzzz;dps=AAAAAAAAAAAAAAAA', good.slice(0, -1), good.replace(/dpt=[0-9a-z]+/, 'dpt=-1')]) {
    assert.ok(!signer.verifyRoute(route(params), request), params);
  }
});

test('branches carry a MAC over the previous hop: ours are recognised, anything else is not', () => {
  const signer = new DialogSigner(KEY);
  const hop = 'udp|198.51.100.7|5060';
  const branch = signer.branch('z9hG4bKabcdef.1', hop);
  assert.ok(signer.isOwnBranch(branch, hop));
  assert.ok(!new DialogSigner(Buffer.alloc(32, 1)).isOwnBranch(branch, hop));
  assert.ok(!signer.isOwnBranch(branch, 'tcp|127.0.0.1|6379'), 'a response aimed elsewhere');
  const mac = branch.slice(branch.lastIndexOf('.') + 1);
  const nonAscii = `z9hG4bKabcdef.1.${'é'.repeat(mac.length)}`;
  for (const forged of ['z9hG4bKabcdef.1', `z9hG4bKabcdef.2.${mac}`, branch.slice(0, -1), 'z9hG4bK', '.', nonAscii]) {
    assert.ok(!signer.isOwnBranch(forged, hop), forged);
  }
});

test('an anchored dialog’s relay and profile are signed: changed, added or removed, the route fails; callerTagHeader tells the sides apart', () => {
  const signer = new DialogSigner(KEY);
  const media = { relay: '10.0.0.5:2223', profile: 'cp' };
  const params = `;dpm=${media.relay};dpmp=${media.profile}${signer.recordRouteParams('c1', 'caller', { media })}`;
  const fromCaller = inDialog('c1', 'caller', 'callee');
  assert.equal(signer.callerTagHeader(route(params), fromCaller), 'from');
  assert.equal(signer.callerTagHeader(route(params), inDialog('c1', 'callee', 'caller')), 'to');
  assert.deepEqual(mediaSessionOf(route(params)), media);
  for (const [name, forged] of [
    ['another relay', params.replace('10.0.0.5:2223', '192.0.2.66:2223')],
    ['another profile', params.replace('dpmp=cp', 'dpmp=cs')],
    ['the relay removed', params.replace(/;dpm=[^;]*;dpmp=[^;]*/, '')],
  ] as const) {
    assert.equal(signer.callerTagHeader(route(forged), fromCaller), null, name);
  }
  const plain = signer.recordRouteParams('c1', 'caller', {});
  assert.equal(signer.callerTagHeader(route(`;dpm=10.0.0.5:2223;dpmp=cp${plain}`), fromCaller), null, 'a relay added to an unanchored route');
  assert.equal(mediaSessionOf(route(plain)), null);
});
