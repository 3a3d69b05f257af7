import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { startTestServer, type TestServer } from '../support/server.ts';
import { freePort, runSipp, settle, sippAvailable, type SippTransport, waitFor } from '../support/sipp.ts';

/**
 * docs/outbound.md over real SIP: sipp plays the agent runtime (UAC, sending X-Dialplane-Agent-Id) and
 * sipp plays the carrier (UAS, challenging), with the edge between them.
 */
const hasSipp = sippAvailable();

const NUMBER = '+15550102001';
const DISPLAY_NAME = 'Acme Support';
const DOMAIN = 'carrier.example';
const AUTH_USER = 'trunkuser';
const PASSWORD = 's3cret-pass';
/**
 * What the carrier must see in From and P-Asserted-Identity: `"Acme Support" <sip:+1555…@carrier.example>`
 * as a sipp ereg, with `.` standing for the quotes and angle brackets an XML attribute cannot hold.
 */
const CALLER = `^ *.${DISPLAY_NAME}. .sip:\\${NUMBER}@${DOMAIN.replace('.', '\\.')}.`;

const md5 = (text: string) => crypto.createHash('md5').update(text).digest('hex');

/** Recomputes an MD5/qop=auth digest answer the carrier logged (independently of src/sip/digest-*.ts). */
function assertDigest(log: string, method: string): void {
  const line = /CREDENTIALS\s+Digest (.*)/.exec(log)?.[1];
  assert.ok(line, `the carrier logged the credentials:\n${log}`);
  const params = Object.fromEntries([...line.matchAll(/([a-z]+)=(?:"([^"]*)"|([^,\s]*))/gi)].map((m) => [m[1].toLowerCase(), m[2] ?? m[3]]));
  assert.equal(params.username, AUTH_USER);
  assert.equal(params.realm, 'carrier');
  assert.equal(params.qop, 'auth');
  const ha1 = md5(`${params.username}:${params.realm}:${PASSWORD}`);
  const ha2 = md5(`${method}:${params.uri}`);
  assert.equal(params.response, md5(`${ha1}:${params.nonce}:${params.nc}:${params.cnonce}:auth:${ha2}`), 'the digest answer is right');
}

function challenge(status: 401 | 407): Record<string, string> {
  return status === 407
    ? {
        status: '407',
        reasonPhrase: 'Proxy Authentication Required',
        challenge: 'Proxy-Authenticate',
        credentials: 'Proxy-Authorization',
        // sipp 3.6's verifyauth reads only Authorization: for a 407 the test recomputes the digest.
        verify: '<ereg regexp="response=" search_in="hdr" header="Proxy-Authorization:" check_it="true" assign_to="authvalid"/>',
        caller: CALLER,
      }
    : {
        status: '401',
        reasonPhrase: 'Unauthorized',
        challenge: 'WWW-Authenticate',
        credentials: 'Authorization',
        verify: `<verifyauth assign_to="authvalid" username="${AUTH_USER}" password="${PASSWORD}"/>`,
        caller: CALLER,
      };
}

describe('outbound calls with the agent caller ID', { skip: !hasSipp && 'sipp not installed' }, () => {
  let server: TestServer;
  let edge: string;
  const api = (method: string, path: string, body?: unknown, query?: Record<string, string>) =>
    server.request(method, path, { key: server.defaultKey, body, query });

  /** Credentials at a carrier port, a number with them, an agent with that number as its outbound number. */
  async function agentWithNumber(
    carrierPort: number,
    options: { transport?: SippTransport; password?: string | null; cpsLimit?: number; phoneNumber?: string } = {},
  ): Promise<{ agentId: string; numberId: string; credentialsId: string }> {
    const creds = await api('POST', '/api/v1/sip-credentials', {
      server: `127.0.0.1:${carrierPort}`,
      transport: options.transport ?? 'udp',
      domain: DOMAIN,
      authUser: AUTH_USER,
      authPassword: options.password === undefined ? PASSWORD : options.password,
      ...(options.cpsLimit ? { cpsLimit: options.cpsLimit } : {}),
    });
    assert.equal(creds.status, 201, JSON.stringify(creds.body));
    const number = await api('POST', '/api/v1/sip-phone-numbers', {
      phoneNumber: options.phoneNumber ?? NUMBER,
      credentialsId: creds.body.id,
      displayName: DISPLAY_NAME,
    });
    assert.equal(number.status, 201, JSON.stringify(number.body));
    const agent = await api('POST', '/api/v1/agents', { name: `outbound ${carrierPort}` });
    assert.equal(agent.status, 201);
    const linked = await api('PUT', `/api/v1/sip-phone-numbers/${number.body.id}/agent-link`, undefined, {
      agentId: agent.body.agentId,
      mode: 'replaceOutbound',
    });
    assert.equal(linked.status, 200);
    return { agentId: agent.body.agentId, numberId: number.body.id, credentialsId: creds.body.id };
  }

  async function records(query: Record<string, string>, count: number) {
    return waitFor(async () => {
      const page = await api('GET', '/api/v1/call-records', undefined, { ...query, direction: 'outbound', take: '1000' });
      return page.body.totalCount >= count ? (page.body.items as any[]) : undefined;
    }, `${count} outbound call records`);
  }

  before(async () => {
    server = await startTestServer('sqlite', {
      env: { DIALPLANE_SIP_HOST: '127.0.0.1', DIALPLANE_SIP_T1_MS: '100', DIALPLANE_RUNTIME_ADDRESSES: '127.0.0.1' },
    });
    edge = `127.0.0.1:${server.server.sipPort}`;
  });
  after(() => server.close());

  const cases: Array<{ name: string; transport: SippTransport; status: 401 | 407; hangup: 'runtime' | 'carrier' }> = [
    { name: '407 challenge over UDP, the runtime hangs up', transport: 'udp', status: 407, hangup: 'runtime' },
    { name: '401 challenge (sipp verifyauth) over UDP, the carrier hangs up', transport: 'udp', status: 401, hangup: 'carrier' },
    { name: '407 challenge over TCP, the carrier hangs up', transport: 'tcp', status: 407, hangup: 'carrier' },
    { name: '401 challenge over TCP, the runtime hangs up', transport: 'tcp', status: 401, hangup: 'runtime' },
  ];
  for (const c of cases) {
    test(`a full call: ${c.name}`, async () => {
      const carrierPort = await freePort();
      const { agentId, numberId } = await agentWithNumber(carrierPort, { transport: c.transport });
      const carrier = runSipp({
        scenario: c.hangup === 'runtime' ? 'carrier-challenge.xml' : 'carrier-challenge-bye.xml',
        transport: c.transport,
        localPort: carrierPort,
        calls: 1,
        fill: challenge(c.status),
      });
      await settle();
      const runtime = runSipp({
        scenario: c.hangup === 'runtime' ? 'runtime-call.xml' : 'runtime-call-remote-bye.xml',
        transport: c.transport,
        localPort: await freePort(),
        remote: edge,
        service: '15557770001',
        calls: 1,
        fill: { agent: agentId },
      });
      const [r, k] = await Promise.all([runtime.done, carrier.done]);
      assert.equal(k.code, 0, `carrier: ${k.output}\n${k.log}`);
      assert.equal(r.code, 0, `runtime: ${r.output}\n${r.log}`);
      if (c.status === 407) assertDigest(k.log, 'INVITE');
      const [record] = await records({ phoneNumberId: numberId }, 1);
      assert.equal(record.outcome, 'answered');
      assert.equal(record.statusCode, 200);
      assert.equal(record.agentId, agentId);
      assert.equal(record.phoneNumber, NUMBER);
      assert.match(record.remoteParty, /^sip:15557770001@127\.0\.0\.1:\d+/);
    });
  }

  test('a wrong password fails sipp verifyauth: the carrier refuses, the runtime gets its 403', async () => {
    const carrierPort = await freePort();
    const { agentId } = await agentWithNumber(carrierPort, { password: 'not-the-password', phoneNumber: '+15550102009' });
    const carrier = runSipp({
      scenario: 'carrier-challenge.xml',
      transport: 'udp',
      localPort: carrierPort,
      calls: 1,
      fill: challenge(401),
      timeoutSeconds: 5,
    });
    await settle();
    const runtime = runSipp({
      scenario: 'runtime-rejected.xml',
      transport: 'udp',
      localPort: await freePort(),
      remote: edge,
      service: '15557770009',
      calls: 1,
      fill: { agent: agentId, expected: '403', reason: 'Forbidden' },
    });
    const [r, k] = await Promise.all([runtime.done, carrier.done]);
    assert.equal(r.code, 0, r.output);
    assert.notEqual(k.code, 0, 'the carrier scenario fails the call when verifyauth says no');
  });

  test('credentials without a password still work with a carrier that does not challenge', async () => {
    const carrierPort = await freePort();
    const { agentId } = await agentWithNumber(carrierPort, { password: null, phoneNumber: '+15550102002' });
    const carrier = runSipp({ scenario: 'carrier-answer.xml', transport: 'udp', localPort: carrierPort, calls: 1 });
    await settle();
    const runtime = runSipp({
      scenario: 'runtime-cps.xml',
      transport: 'udp',
      localPort: await freePort(),
      remote: edge,
      service: '15557770002',
      calls: 1,
      fill: { agent: agentId },
    });
    const [r, k] = await Promise.all([runtime.done, carrier.done]);
    assert.equal(k.code, 0, k.output);
    assert.equal(r.code, 0, r.output);
    assert.match(r.log, /OUTCOME answered/);
  });

  test('403 with a reason phrase: no outbound number, unknown agent, disabled agent', async () => {
    const bare = await api('POST', '/api/v1/agents', { name: 'no number' });
    const disabled = await agentWithNumber(await freePort(), { phoneNumber: '+15550102003' });
    assert.equal((await api('PUT', `/api/v1/agents/${disabled.agentId}`, { isEnabled: false })).status, 200);
    const cases = [
      { agent: bare.body.agentId as string, reason: 'No Outbound Number' },
      { agent: crypto.randomUUID(), reason: 'Unknown Agent' },
      { agent: disabled.agentId, reason: 'Agent Disabled' },
    ];
    for (const c of cases) {
      const runtime = runSipp({
        scenario: 'runtime-rejected.xml',
        transport: 'udp',
        localPort: await freePort(),
        remote: edge,
        service: '15557770003',
        calls: 1,
        fill: { agent: c.agent, expected: '403', reason: c.reason },
      });
      const result = await runtime.done;
      assert.equal(result.code, 0, `${c.reason}: ${result.output}`);
    }
    const [record] = await records({ agentId: bare.body.agentId }, 1);
    assert.equal(record.outcome, 'forbidden');
    assert.equal(record.statusCode, 403);
  });

  test('past cpsLimit new calls get 503 with Retry-After', async () => {
    const carrierPort = await freePort();
    const { agentId, numberId } = await agentWithNumber(carrierPort, { password: null, cpsLimit: 2, phoneNumber: '+15550102004' });
    const calls = 10;
    const carrier = runSipp({ scenario: 'carrier-answer.xml', transport: 'udp', localPort: carrierPort, calls, timeoutSeconds: 15 });
    await settle();
    const runtime = runSipp({
      scenario: 'runtime-cps.xml',
      transport: 'udp',
      localPort: await freePort(),
      remote: edge,
      service: '15557770004',
      calls,
      rate: 200,
      fill: { agent: agentId },
      timeoutSeconds: 15,
    });
    const r = await runtime.done;
    carrier.stop();
    await carrier.done;
    assert.equal(r.code, 0, r.output);
    const answered = r.log.match(/OUTCOME answered/g)?.length ?? 0;
    const limited = r.log.match(/OUTCOME limited/g)?.length ?? 0;
    assert.equal(answered + limited, calls);
    // 10 calls within ~50 ms touch at most two one-second windows: 2 per window.
    assert.ok(answered >= 1 && answered <= 4, `answered ${answered}`);
    assert.ok(limited >= 6, `limited ${limited}`);
    const all = await records({ phoneNumberId: numberId }, calls);
    assert.equal(all.filter((x) => x.outcome === 'rate_limited' && x.statusCode === 503).length, limited);
  });

  test('the edge counts outbound INVITEs by outcome', async () => {
    const metrics = await server.request('GET', '/metrics');
    assert.match(metrics.body, /dialplane_sip_invites_total\{direction="outbound",outcome="answered"\} [1-9]/);
    assert.match(metrics.body, /dialplane_sip_invites_total\{direction="outbound",outcome="forbidden"\} [1-9]/);
    assert.match(metrics.body, /dialplane_sip_invites_total\{direction="outbound",outcome="rate_limited"\} [1-9]/);
  });
});

describe('outbound calls from a foreign address', { skip: !hasSipp && 'sipp not installed' }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer('sqlite', {
      env: { DIALPLANE_SIP_HOST: '127.0.0.1', DIALPLANE_SIP_T1_MS: '100', DIALPLANE_RUNTIME_ADDRESSES: '127.0.0.2' },
    });
  });
  after(() => server.close());

  test('a runtime outside DIALPLANE_RUNTIME_ADDRESSES gets the stateless 403 of any unknown source', async () => {
    const runtime = runSipp({
      scenario: 'runtime-rejected.xml',
      transport: 'udp',
      localPort: await freePort(),
      remote: `127.0.0.1:${server.server.sipPort}`,
      service: '15557770005',
      calls: 1,
      fill: { agent: crypto.randomUUID(), expected: '403', reason: 'Forbidden[^:]' },
    });
    const result = await runtime.done;
    assert.equal(result.code, 0, result.output);
  });
});
