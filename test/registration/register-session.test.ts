import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { buildResponse, type SipRequest, type SipResponse } from '../../src/sip/message.ts';
import type { DigestAlgorithm } from '../../src/sip/digest-header.ts';
import { formatChallenge, parseAuthorization, verifyAuthorization } from '../support/digest-server.ts';
import { TransactionLayer } from '../../src/sip/transaction.ts';
import { RegisterSession } from '../../src/registration/register-session.ts';
import { registrationTarget } from '../../src/registration/target.ts';

/**
 * The REGISTER exchanges of one registration against a registrar written here, over a real
 * transaction layer whose transport is a function: digest (401 and 407, nonce reuse with
 * counting, stale=true, rejected credentials), 423, redirects, timeouts.
 */
type Registrar = (request: SipRequest) => SipResponse | null;

function harness(registrar: Registrar, options: { password?: string | null; authUser?: string | null } = {}) {
  const seen: SipRequest[] = [];
  const layer: TransactionLayer = new TransactionLayer({
    transport: {
      send: async (message) => {
        const request = message as SipRequest;
        seen.push(request);
        setImmediate(() => {
          const response = registrar(request);
          if (response) layer.receive(response, { transport: 'udp', address: '198.51.100.1', port: 5060, connection: null });
        });
      },
      sendResponse: async () => {},
    },
    timers: { t1: 10, t2: 40, t4: 50 },
    onRequest: () => {},
  });
  const target = registrationTarget({
    numberId: 'n1',
    orgId: 'o1',
    phoneNumber: '+15550100000',
    credentialsId: 'c1',
    server: 'registrar.example',
    transport: 'udp',
    domain: null,
    authUser: options.authUser === undefined ? 'alice' : options.authUser,
    authPasswordEnc: 'sealed',
  });
  const session = new RegisterSession(
    target,
    options.password === undefined ? 's3cret' : options.password,
    { transactions: () => layer, address: () => ({ host: '192.0.2.10', port: 5070 }) },
    3600,
  );
  return { session, seen, layer, target };
}

function respond(request: SipRequest, status: number, headers: [string, string][] = []): SipResponse {
  const response = buildResponse(request, status, { toTag: 'reg1' });
  for (const [name, value] of headers) response.headers.append(name, value);
  return response;
}

/** A registrar that challenges with `status`, remembers its nonce, and accepts valid answers to it. */
function digestRegistrar(options: { status?: 401 | 407; algorithm?: DigestAlgorithm; password?: string; staleAfter?: number } = {}) {
  const status = options.status ?? 401;
  const challengeHeader = status === 401 ? 'WWW-Authenticate' : 'Proxy-Authenticate';
  const answerHeader = status === 401 ? 'authorization' : 'proxy-authorization';
  let nonce = 'nonce-1';
  let nonces = 1;
  let accepted = 0;
  const counts: string[] = [];
  const registrar: Registrar = (request) => {
    const answer = request.headers.get(answerHeader);
    const challenge = (stale: boolean) =>
      respond(request, status, [
        [challengeHeader, formatChallenge({ realm: 'example', nonce, qop: ['auth'], algorithm: options.algorithm ?? 'MD5', stale })],
      ]);
    if (answer === undefined) return challenge(false);
    const parsed = parseAuthorization(answer);
    assert.ok(parsed.ok);
    counts.push(`${parsed.value.nonce}/${parsed.value.nc}`);
    const valid = verifyAuthorization(answer, {
      method: 'REGISTER',
      password: options.password ?? 's3cret',
      realm: 'example',
      uri: request.uri,
      requireQop: true,
    });
    if (!valid.ok) {
      nonce = `nonce-${++nonces}`;
      return challenge(false);
    }
    if (parsed.value.nonce !== nonce) return challenge(true);
    if (options.staleAfter !== undefined && accepted >= options.staleAfter) {
      nonce = `nonce-${++nonces}`;
      options.staleAfter = undefined;
      return challenge(true);
    }
    accepted++;
    return respond(request, 200, [['Contact', `${request.headers.get('contact')};expires=120`]]);
  };
  return { registrar, counts };
}

describe('REGISTER session', () => {
  test('AOR, Request-URI, Contact, Call-ID and CSeq (RFC 3261 §10.2)', async () => {
    const { session, seen } = harness((request) => respond(request, 200, [['Expires', '300']]));
    const outcome = await session.register();
    assert.deepEqual(outcome, { kind: 'registered', grantedSeconds: 300, requestedSeconds: 3600 });
    await session.register();
    const [first, second] = seen;
    assert.equal(first.uri, 'sip:registrar.example');
    assert.equal(first.headers.get('to'), '<sip:alice@registrar.example>');
    assert.match(first.headers.get('from')!, /^<sip:alice@registrar\.example>;tag=/);
    assert.equal(first.headers.get('contact'), '<sip:alice@192.0.2.10:5070>');
    assert.equal(first.headers.get('expires'), '3600');
    assert.equal(second.headers.get('call-id'), first.headers.get('call-id'), 'one Call-ID for the registration');
    assert.equal(second.headers.get('from'), first.headers.get('from'));
    const seq = (r: SipRequest) => Number(r.headers.get('cseq')!.split(' ')[0]);
    assert.equal(seq(second), seq(first) + 1);
    assert.match(first.headers.get('via')!, /^SIP\/2\.0\/UDP 192\.0\.2\.10:5070;branch=z9hG4bK/);
  });

  for (const algorithm of ['MD5', 'SHA-256', 'SHA-512-256'] as DigestAlgorithm[]) {
    test(`401 ${algorithm}: answered, then the nonce is reused with a growing nonce count`, async () => {
      const { registrar, counts } = digestRegistrar({ algorithm });
      const { session, seen } = harness(registrar);
      assert.equal((await session.register()).kind, 'registered');
      assert.equal((await session.register()).kind, 'registered');
      assert.equal((await session.register()).kind, 'registered');
      assert.deepEqual(counts, ['nonce-1/00000001', 'nonce-1/00000002', 'nonce-1/00000003']);
      // Counted by CSeq: on a loaded machine a request may be retransmitted (T1 is 10 ms here).
      assert.equal(new Set(seen.map((r) => r.headers.get('cseq'))).size, 4, 'refreshes need no new challenge');
      assert.match(seen[1].headers.get('authorization')!, new RegExp(`algorithm=${algorithm}`));
    });
  }

  test('407 is answered with Proxy-Authorization', async () => {
    const { registrar } = digestRegistrar({ status: 407 });
    const { session, seen } = harness(registrar);
    assert.equal((await session.register()).kind, 'registered');
    assert.ok(seen[1].headers.has('proxy-authorization'));
    assert.ok(!seen[1].headers.has('authorization'));
  });

  test('stale=true on a refresh: answered again with the new nonce, still registered', async () => {
    const { registrar, counts } = digestRegistrar({ staleAfter: 1 });
    const { session } = harness(registrar);
    assert.equal((await session.register()).kind, 'registered');
    assert.equal((await session.register()).kind, 'registered');
    assert.deepEqual(counts, ['nonce-1/00000001', 'nonce-1/00000002', 'nonce-2/00000001']);
  });

  test('a wrong password is reported as rejected credentials, without looping', async () => {
    const { registrar } = digestRegistrar({ password: 'other' });
    const { session, seen } = harness(registrar);
    const outcome = await session.register();
    assert.equal(outcome.kind, 'failed');
    assert.ok(outcome.kind === 'failed');
    assert.equal(outcome.sipResponseMessage, '401 Unauthorized');
    assert.match(outcome.errorDescription, /rejected/);
    assert.ok(seen.length <= 3, `${seen.length} requests`);
  });

  test('a challenge without a password to answer it fails at once', async () => {
    const { registrar } = digestRegistrar();
    const { session, seen } = harness(registrar, { password: null });
    const outcome = await session.register();
    assert.ok(outcome.kind === 'failed');
    assert.equal(outcome.code, 'auth');
    assert.match(outcome.errorDescription, /no authPassword/);
    assert.equal(seen.length, 1);
  });

  test('423 with Min-Expires is honoured, and kept for refreshes; 423 without it fails', async () => {
    const { session, seen } = harness((request) =>
      Number(request.headers.get('expires')) < 7200 ? respond(request, 423, [['Min-Expires', '7200']]) : respond(request, 200),
    );
    assert.deepEqual(await session.register(), { kind: 'registered', grantedSeconds: 7200, requestedSeconds: 7200 });
    await session.register();
    assert.deepEqual(
      seen.map((r) => r.headers.get('expires')),
      ['3600', '7200', '7200'],
    );

    const bare = harness((request) => respond(request, 423)).session;
    const outcome = await bare.register();
    assert.ok(outcome.kind === 'failed');
    assert.equal(outcome.sipResponseMessage, '423 Interval Too Brief');
  });

  test('a second redirect is not followed', async () => {
    const { session, seen } = harness((request) => respond(request, 302, [['Contact', `<sip:r${Math.random()}.example>`.replace('0.', '')]]));
    const outcome = await session.register();
    assert.ok(outcome.kind === 'failed');
    assert.equal(outcome.sipResponseMessage, '302 Moved Temporarily');
    assert.equal(seen.length, 2);
  });

  test('5xx with Retry-After is reported with it; unREGISTER sends Expires 0', async () => {
    const { session, seen } = harness((request) =>
      request.headers.get('expires') === '0' ? respond(request, 200) : respond(request, 503, [['Retry-After', '120 (maintenance)']]),
    );
    const outcome = await session.register();
    assert.ok(outcome.kind === 'failed');
    assert.equal(outcome.retryAfterSeconds, 120);
    assert.equal(outcome.code, '503');
    assert.deepEqual(await session.register(true), { kind: 'unregistered' });
    assert.equal(seen[1].headers.get('contact'), '<sip:alice@192.0.2.10:5070>;expires=0');
  });

  test('no answer: 408 Request Timeout after Timer F', async () => {
    const { session } = harness(() => null);
    const started = Date.now();
    // Transaction timers are unref'd (a server's sockets keep it alive); here nothing else would.
    const keepAlive = setInterval(() => {}, 100);
    const outcome = await session.register().finally(() => clearInterval(keepAlive));
    assert.ok(outcome.kind === 'failed');
    assert.equal(outcome.sipResponseMessage, '408 Request Timeout');
    assert.equal(outcome.code, 'timeout');
    assert.ok(Date.now() - started >= 640 - 5);
  });

  test('without authUser the AOR and digest username are the number’s digits', async () => {
    const { registrar } = digestRegistrar();
    const { session, seen, target } = harness(registrar, { authUser: null });
    assert.equal(target.aor, 'sip:15550100000@registrar.example');
    assert.equal((await session.register()).kind, 'registered');
    assert.match(seen[1].headers.get('authorization')!, /username="15550100000"/);
  });
});
