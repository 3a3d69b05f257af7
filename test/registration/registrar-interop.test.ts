import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startTestServer, type TestServer } from '../support/server.ts';
import { freePort, runSipp, settle, sippAvailable, type SippRun, type SippTransport } from '../support/sipp.ts';

/**
 * docs/registration.md over real SIP: sipp plays the provider's registrar and the edge registers numbers
 * with it. Timers are shortened (T1 50 ms, so a REGISTER times out after 3.2 s; retries after
 * 0.4-0.5 s) so that every exchange, retry and refresh happens within a few seconds.
 */
const hasSipp = sippAvailable();

const ENV = {
  DIALPLANE_SIP_T1_MS: '50',
  DIALPLANE_REGISTRATION_RETRY_BASE_MS: '500',
  DIALPLANE_REGISTRATION_RETRY_CAP_MS: '2000',
  DIALPLANE_REGISTRATION_LEASE_SECONDS: '2',
  DIALPLANE_REGISTRATION_EXPIRES: '60',
};

let numbers = 0;
const nextNumber = () => `+1555020${String(1000 + ++numbers)}`;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await settle(25);
  }
}

describe('registration with a sipp registrar', { skip: !hasSipp && 'sipp not installed' }, () => {
  let server: TestServer;
  const api = (method: string, path: string, body?: unknown) => server.request(method, path, { key: server.defaultKey, body });

  before(async () => {
    server = await startTestServer('sqlite', { env: ENV });
  });
  after(() => server.close());

  /** A sipp registrar on a free port, given a moment to bind. */
  async function registrar(scenario: string, fill: Record<string, string> = {}, transport: SippTransport = 'udp', port?: number) {
    const localPort = port ?? (await freePort());
    const run = runSipp({ scenario, transport, localPort, calls: 1, fill: { expires: '60', ...fill }, timeoutSeconds: 15 });
    await settle();
    return { port: localPort, run };
  }

  async function credentialsAt(port: number, extra: Record<string, unknown> = {}): Promise<string> {
    const creds = await api('POST', '/api/v1/sip-credentials', { server: `127.0.0.1:${port}`, ...extra });
    assert.equal(creds.status, 201, JSON.stringify(creds.body));
    return creds.body.id;
  }

  async function registeredNumber(credentialsId: string, phoneNumber = nextNumber()) {
    const created = await api('POST', '/api/v1/sip-phone-numbers', { phoneNumber, credentialsId, registration: true });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.registrationStatus.state, 'Registering', 'a new number with registration starts Registering');
    return created.body as { id: string; phoneNumber: string; credentialsId: string };
  }

  async function status(id: string) {
    const got = await api('GET', `/api/v1/sip-phone-numbers/${id}`);
    assert.equal(got.status, 200);
    return got.body.registrationStatus as {
      state: string;
      errorDescription: string | null;
      sipResponseMessage: string | null;
      lastUpdated: string;
      expiresAt: string | null;
    };
  }

  const inState = (id: string, state: string, timeoutMs?: number) =>
    waitFor(
      `number ${id} ${state}`,
      async () => {
        const s = await status(id);
        return s.state === state ? s : undefined;
      },
      timeoutMs,
    );

  /**
   * The REGISTER was sent between `before` and `after`; expiresAt is its sending plus the grant,
   * shown in whole seconds (rounded down).
   */
  function assertGranted(expiresAt: string | null, grantedSeconds: number, before: number, after: number) {
    const expires = Date.parse(expiresAt!);
    const earliest = before + grantedSeconds * 1000 - 1000;
    const latest = after + grantedSeconds * 1000;
    assert.ok(
      expires >= earliest && expires <= latest,
      `expiresAt ${expiresAt} is ${grantedSeconds} s after the REGISTER, between ${new Date(earliest).toISOString()} and ${new Date(latest).toISOString()}`,
    );
  }

  async function finished(run: SippRun) {
    const result = await run.done;
    assert.equal(result.code, 0, `sipp failed:\n${result.output}\n${result.log}`);
    return result;
  }

  for (const transport of ['udp', 'tcp'] as SippTransport[]) {
    test(`200 at once over ${transport}: Registered with expiresAt, AOR of the number's digits`, async () => {
      const { port, run } = await registrar('registrar-ok.xml', { expires: '90' }, transport);
      const before = Date.now();
      const number = await registeredNumber(await credentialsAt(port, { transport }));
      const registered = await inState(number.id, 'Registered');
      assertGranted(registered.expiresAt, 90, before, Date.now());
      const { log } = await finished(run);
      assert.equal(registered.errorDescription, null);
      assert.equal(registered.sipResponseMessage, null);
      const digits = number.phoneNumber.slice(1);
      assert.match(log, new RegExp(`to\\s+\\[?<sip:${digits}@127\\.0\\.0\\.1>`), 'To is the AOR sip:<digits>@<server host>');
      assert.match(
        log,
        new RegExp(`uri\\s+\\[?<sip:${digits}@127\\.0\\.0\\.1:${server.server.sipPort}${transport === 'tcp' ? ';transport=tcp' : ''}>`),
        'Contact at the edge',
      );
    });
  }

  for (const algorithm of ['MD5', 'SHA-256'] as const) {
    test(`401 challenge (${algorithm}, qop auth), answered with authUser/authPassword, then 200`, async () => {
      const verify =
        algorithm === 'MD5'
          ? '<verifyauth assign_to="authvalid" username="alice" password="s3cret pass"/>'
          : '<ereg regexp="algorithm=SHA-256" search_in="hdr" header="Authorization:" assign_to="authvalid"/>';
      const { port, run } = await registrar('registrar-auth.xml', { algorithm, verify });
      const number = await registeredNumber(await credentialsAt(port, { authUser: 'alice', authPassword: 's3cret pass' }));
      await inState(number.id, 'Registered');
      const { log } = await finished(run);
      const header = /AUTHORIZATION\s+\[?(Digest .*)$/m.exec(log)?.[1]?.replace(/\]$/, '');
      assert.ok(header, `the answer was logged:\n${log}`);
      const params = Object.fromEntries([...header.matchAll(/(\w+)=("([^"]*)"|[^,\s]+)/g)].map((m) => [m[1], m[3] ?? m[2]]));
      assert.equal(params.username, 'alice');
      assert.equal(params.realm, 'dialplane.test');
      assert.equal(params.uri, 'sip:127.0.0.1');
      assert.equal(params.qop, 'auth');
      assert.equal(params.nc, '00000001');
      assert.equal(params.opaque, 'op42');
      assert.equal((params.algorithm ?? 'MD5').toUpperCase(), algorithm);
      // Recomputed here, independently of src/sip/digest-*.ts (RFC 7616 §3.4.1).
      const h = (text: string) =>
        crypto
          .createHash(algorithm === 'MD5' ? 'md5' : 'sha256')
          .update(text)
          .digest('hex');
      const ha1 = h(`alice:dialplane.test:s3cret pass`);
      const ha2 = h(`REGISTER:${params.uri}`);
      assert.equal(params.response, h(`${ha1}:${params.nonce}:${params.nc}:${params.cnonce}:auth:${ha2}`));
    });
  }

  test('403 Forbidden → Failed with sipResponseMessage "403 Forbidden"', async () => {
    const { port, run } = await registrar('registrar-reject.xml', { status: '403', reason: 'Forbidden' });
    const number = await registeredNumber(await credentialsAt(port));
    const failed = await inState(number.id, 'Failed');
    await finished(run);
    assert.equal(failed.sipResponseMessage, '403 Forbidden');
    assert.ok(failed.errorDescription && failed.errorDescription.length > 0, 'an errorDescription');
    assert.equal(failed.expiresAt, null);
    const metrics = await server.request('GET', '/metrics');
    assert.match(metrics.body, /dialplane_registration_failures_total\{code="403"\} [1-9]/);
    await api('DELETE', `/api/v1/sip-phone-numbers/${number.id}`);
  });

  test('no answer → Failed by timeout, then a retry that succeeds', async () => {
    const { port, run } = await registrar('registrar-silent-then-ok.xml');
    const number = await registeredNumber(await credentialsAt(port));
    const registering = await status(number.id);
    const failed = await inState(number.id, 'Failed');
    assert.equal(failed.sipResponseMessage, '408 Request Timeout');
    assert.match(failed.errorDescription ?? '', /timed out/);
    assert.ok(failed.lastUpdated > registering.lastUpdated, 'lastUpdated moved with the state');
    const registered = await inState(number.id, 'Registered');
    assert.ok(registered.lastUpdated > failed.lastUpdated);
    assert.equal(registered.sipResponseMessage, null);
    const { log } = await finished(run);
    const first = Number(/FIRST cseq \[?(\d+)/.exec(log)?.[1]);
    const retry = Number(/RETRY cseq \[?(\d+)/.exec(log)?.[1]);
    assert.ok(retry > first, `the retry is a new request (CSeq ${first} then ${retry})`);
  });

  test('423 Interval Too Brief: asks again with Min-Expires and is granted it', async () => {
    const { port, run } = await registrar('registrar-interval.xml', { min: '120', expires: '120' });
    const before = Date.now();
    const number = await registeredNumber(await credentialsAt(port));
    const registered = await inState(number.id, 'Registered');
    assertGranted(registered.expiresAt, 120, before, Date.now());
    await finished(run);
  });

  test('a 302 is followed once, to the registrar it names', async () => {
    const second = await registrar('registrar-ok.xml');
    const first = await registrar('registrar-redirect.xml', { target: `127.0.0.1:${second.port}` });
    const number = await registeredNumber(await credentialsAt(first.port));
    await inState(number.id, 'Registered');
    await finished(first.run);
    await finished(second.run);
  });

  test('a refresh comes before expiry, without any API call', async () => {
    // Granted 3 s: the refresh is due after 1.35-1.5 s, and sipp fails the call unless it arrives
    // within 3 s. The API shows expiresAt in whole seconds, so the refresh must come more than a
    // second after the first REGISTER for expiresAt to be sure to move (with 2 s granted it comes
    // after 0.9-1 s and sometimes lands in the same second).
    const { port, run } = await registrar('registrar-refresh.xml', { expires: '3', within: '3000' });
    const number = await registeredNumber(await credentialsAt(port));
    const first = await inState(number.id, 'Registered');
    const { log } = await finished(run);
    assert.match(log, /REFRESH received/);
    const refreshed = await waitFor('expiresAt to move', async () => {
      const s = await status(number.id);
      return s.expiresAt !== first.expiresAt ? s : undefined;
    });
    assert.equal(refreshed.state, 'Registered');
    assert.ok(Date.parse(refreshed.expiresAt!) > Date.parse(first.expiresAt!));
    await api('DELETE', `/api/v1/sip-phone-numbers/${number.id}`);
  });

  test('registration turned off → unREGISTER (Expires: 0), state Disabled', async () => {
    const { port, run } = await registrar('registrar-unregister.xml', { within: '5000' });
    const number = await registeredNumber(await credentialsAt(port));
    await inState(number.id, 'Registered');
    const off = await api('PUT', `/api/v1/sip-phone-numbers/${number.id}`, {
      phoneNumber: number.phoneNumber,
      credentialsId: number.credentialsId,
      registration: false,
    });
    assert.equal(off.status, 200);
    assert.equal(off.body.registrationStatus.state, 'Disabled');
    const { log } = await finished(run);
    assert.match(log, /UNREGISTER received/);
    assert.equal((await status(number.id)).state, 'Disabled', 'no late write overrides Disabled');
  });

  test('number deleted → unREGISTER', async () => {
    const { port, run } = await registrar('registrar-unregister.xml', { within: '5000' });
    const number = await registeredNumber(await credentialsAt(port));
    await inState(number.id, 'Registered');
    assert.equal((await api('DELETE', `/api/v1/sip-phone-numbers/${number.id}`)).status, 204);
    await finished(run);
  });

  test('credentials changed to another registrar → unREGISTER at the old one, REGISTER at the new one', async () => {
    const old = await registrar('registrar-unregister.xml', { within: '5000' });
    const credentialsId = await credentialsAt(old.port);
    const number = await registeredNumber(credentialsId);
    await inState(number.id, 'Registered');
    const next = await registrar('registrar-ok.xml', { expires: '45' });
    const changed = await api('PUT', `/api/v1/sip-credentials/${credentialsId}`, { server: `127.0.0.1:${next.port}` });
    assert.equal(changed.status, 200);
    await finished(old.run);
    await finished(next.run);
    const registered = await inState(number.id, 'Registered');
    const expiresIn = Date.parse(registered.expiresAt!) - Date.now();
    assert.ok(expiresIn > 30_000 && expiresIn <= 45_000, `registered at the new registrar (${expiresIn} ms left)`);
    await api('DELETE', `/api/v1/sip-phone-numbers/${number.id}`);
  });

  test('numbers sharing credentials with an authUser share one registration', async () => {
    const { port, run } = await registrar('registrar-ok.xml');
    const credentialsId = await credentialsAt(port, { authUser: 'trunk7' });
    const a = await registeredNumber(credentialsId);
    const b = await registeredNumber(credentialsId);
    const [sa, sb] = [await inState(a.id, 'Registered'), await inState(b.id, 'Registered')];
    assert.equal(sa.expiresAt, sb.expiresAt);
    const { log } = await finished(run);
    assert.equal(log.match(/REGISTER uri/g)?.length, 1, 'one REGISTER for both');
    assert.match(log, /to\s+\[?<sip:trunk7@127\.0\.0\.1>/);
  });
});

describe('graceful shutdown', { skip: !hasSipp && 'sipp not installed' }, () => {
  test('stopping the server unREGISTERs what it registered', async () => {
    const server = await startTestServer('sqlite', { env: ENV });
    let closed = false;
    try {
      const port = await freePort();
      const run = runSipp({
        scenario: 'registrar-unregister.xml',
        transport: 'udp',
        localPort: port,
        calls: 1,
        fill: { expires: '60', within: '8000' },
        timeoutSeconds: 15,
      });
      await settle();
      const key = server.defaultKey;
      const creds = await server.request('POST', '/api/v1/sip-credentials', { key, body: { server: `127.0.0.1:${port}` } });
      const number = await server.request('POST', '/api/v1/sip-phone-numbers', {
        key,
        body: { phoneNumber: nextNumber(), credentialsId: creds.body.id, registration: true },
      });
      await waitFor('Registered', async () => {
        const got = await server.request('GET', `/api/v1/sip-phone-numbers/${number.body.id}`, { key });
        return got.body.registrationStatus.state === 'Registered' ? true : undefined;
      });
      await server.close();
      closed = true;
      const result = await run.done;
      assert.equal(result.code, 0, `sipp saw no unREGISTER:\n${result.output}`);
      assert.match(result.log, /UNREGISTER received/);
    } finally {
      if (!closed) await server.close();
    }
  });
});
