import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { dnsmasqAvailable, startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { inviteText, newCall, replyText, request, response, UdpPeer, unique } from '../support/sip-peers.ts';

/**
 * Trunk health (docs/sip-edge.md, "Trunk health"): OPTIONS probes of every address a real DNS
 * server (dnsmasq) gives for a trunk's name, carrier sites played by UDP sockets that answer, stay
 * silent or answer 503; the result in the API and the metrics, and outbound calls skipping what
 * is down.
 */
const hasDnsmasq = dnsmasqAvailable();
const INTERVAL_SECONDS = 0.4;
const TIMEOUT_SECONDS = 0.3;

describe('trunk health', { skip: !hasDnsmasq && 'dnsmasq not installed' }, () => {
  let dnsmasq: Dnsmasq;
  let server: TestServer;
  let runtime: UdpPeer;
  const sites = new Map<string, UdpPeer>();
  /** What each site answers OPTIONS with; absent: silence. */
  const answers = new Map<string, [number, string]>();
  let answering = true;
  const api = (method: string, path: string, body?: unknown, query?: Record<string, string>) =>
    server.request(method, path, { key: server.defaultKey, body, query });
  const site = (name: string) => sites.get(name)!;
  /** OPTIONS each site has received. */
  const probes = new Map<string, number>();

  /** Each site answers the OPTIONS it gets as `answers` says, until the suite ends. */
  async function answerOptions(name: string): Promise<void> {
    while (answering) {
      const options = await site(name)
        .next(request('OPTIONS'), 'OPTIONS', 200)
        .catch(() => null);
      if (options) probes.set(name, (probes.get(name) ?? 0) + 1);
      const answer = answers.get(name);
      if (options && answer) site(name).respond(options, replyText(options, answer[0], answer[1], unique(name)));
    }
  }

  async function createTrunk(serverName: string): Promise<string> {
    const creds = await api('POST', '/api/v1/sip-credentials', { server: serverName, transport: 'udp', healthCheck: true });
    assert.equal(creds.status, 201, JSON.stringify(creds.body));
    return creds.body.id as string;
  }

  /** The credentials' health once a probe round has ended (and `until` holds). */
  async function healthOf(id: string, until: (health: any) => boolean = () => true): Promise<any> {
    for (let i = 0; ; i++) {
      const health = (await api('GET', `/api/v1/sip-credentials/${id}`)).body.health;
      if (health.state !== 'unknown' && until(health)) return health;
      assert.ok(i < 100, `health still ${JSON.stringify(health)}`);
      await delay(50);
    }
  }

  async function metric(name: string, credentialsId: string): Promise<number | null> {
    const text = (await server.request('GET', '/metrics')).body as string;
    const match = new RegExp(`^${name}\\{credentials_id="${credentialsId}"\\} (\\S+)$`, 'm').exec(text);
    return match ? Number(match[1]) : null;
  }

  before(async () => {
    for (const [name, host] of [
      ['silent', '127.0.0.41'],
      ['alive', '127.0.0.42'],
      ['overloaded', '127.0.0.43'],
      ['picky', '127.0.0.44'],
      ['spare', '127.0.0.45'],
    ] as const) {
      sites.set(name, await UdpPeer.start(host, { host: '127.0.0.1', port: 1 }));
    }
    answers.set('alive', [200, 'OK']);
    answers.set('overloaded', [503, 'Service Unavailable']);
    answers.set('picky', [404, 'Not Found']);
    answers.set('spare', [200, 'OK']);
    for (const name of sites.keys()) void answerOptions(name);
    dnsmasq = await startDnsmasq([
      '--local=/test/',
      // Calls prefer the silent site (priority 10): only health checks keep them away from it.
      `--srv-host=_sip._udp.carrier.test,silent.sites.test,${site('silent').port},10,0`,
      `--srv-host=_sip._udp.carrier.test,alive.sites.test,${site('alive').port},20,0`,
      `--srv-host=_sip._udp.failing.test,silent.sites.test,${site('silent').port},10,0`,
      `--srv-host=_sip._udp.failing.test,overloaded.sites.test,${site('overloaded').port},20,0`,
      ...[...sites].map(([name, peer]) => `--host-record=${name}.sites.test,${peer.host}`),
    ]);
    server = await startTestServer('sqlite', {
      env: {
        DIALPLANE_SIP_HOST: '127.0.0.1',
        DIALPLANE_SIP_T1_MS: '25',
        DIALPLANE_RUNTIME_ADDRESSES: '127.0.0.6',
        DIALPLANE_DNS_SERVERS: dnsmasq.server,
        DIALPLANE_TRUNK_HEALTH_INTERVAL_SECONDS: String(INTERVAL_SECONDS),
        DIALPLANE_TRUNK_HEALTH_TIMEOUT_SECONDS: String(TIMEOUT_SECONDS),
      },
    });
    runtime = await UdpPeer.start('127.0.0.6', { host: '127.0.0.1', port: server.server.sipPort });
  });
  after(async () => {
    answering = false;
    await delay(250);
    for (const peer of [runtime, ...sites.values()]) await peer?.close();
    await server?.close();
    await dnsmasq?.stop();
  });

  test('every SRV target is probed; the trunk is up while one answers, and calls skip the silent one', async () => {
    const id = await createTrunk('carrier.test');
    const health = await healthOf(id, (h) => h.targets.length === 2);
    assert.equal(health.state, 'up');
    assert.equal(health.lastResponse, '200 OK');
    assert.ok(Date.parse(health.lastCheckedTime) > Date.now() - 10_000);
    const targets = health.targets.map((t: any) => [t.host, t.address, t.port, t.state, t.lastResponse]);
    assert.deepEqual(targets, [
      ['carrier.test', '127.0.0.41', site('silent').port, 'down', `no response within ${TIMEOUT_SECONDS} s`],
      ['carrier.test', '127.0.0.42', site('alive').port, 'up', '200 OK'],
    ]);
    assert.equal(await metric('dialplane_trunk_up', id), 1);
    assert.equal(await metric('dialplane_trunk_targets_up', id), 1);

    // An outbound call through this trunk goes to the site that answers, though SRV prefers the silent one.
    const number = await api('POST', '/api/v1/sip-phone-numbers', { phoneNumber: '+15550170001', credentialsId: id });
    const agent = await api('POST', '/api/v1/agents', { name: 'calls via carrier.test' });
    await api('PUT', `/api/v1/sip-phone-numbers/${number.body.id}/agent-link`, undefined, { agentId: agent.body.agentId, mode: 'replaceOutbound' });
    const placed = newCall(`127.0.0.1:${server.server.sipPort}`, '+15559990000');
    runtime.send(inviteText(placed, runtime, [`X-Dialplane-Agent-Id: ${agent.body.agentId}`]));
    const invite = await site('alive').next(request('INVITE'), 'INVITE at the answering site at once', 1000);
    site('alive').respond(invite, replyText(invite, 486, 'Busy Here', unique('alive')));
    await runtime.next(response(486), '486 at the runtime');
    assert.equal(site('silent').received.filter((m) => m.kind === 'request' && m.method === 'INVITE').length, 0, 'the silent site got no INVITE');
  });

  test('a trunk whose targets are silent or answer 503 is down; 404 to OPTIONS still means up', async () => {
    const failing = await createTrunk('failing.test');
    const health = await healthOf(failing, (h) => h.targets.length === 2);
    assert.equal(health.state, 'down');
    assert.deepEqual(health.targets.map((t: any) => t.lastResponse).sort(), ['503 Service Unavailable', `no response within ${TIMEOUT_SECONDS} s`]);
    assert.equal(await metric('dialplane_trunk_up', failing), 0);

    const picky = await createTrunk(`127.0.0.44:${site('picky').port}`);
    const pickyHealth = await healthOf(picky);
    assert.equal(pickyHealth.state, 'up');
    assert.equal(pickyHealth.lastResponse, '404 Not Found');
    assert.deepEqual(
      pickyHealth.targets.map((t: any) => [t.host, t.address, t.port]),
      [['127.0.0.44', '127.0.0.44', site('picky').port]],
    );
  });

  test('a name that does not resolve is down with the reason, never unknown for long', async () => {
    const id = await createTrunk('nowhere.test');
    const health = await healthOf(id);
    assert.equal(health.state, 'down');
    assert.deepEqual(health.targets, []);
    assert.match(health.lastResponse, /nowhere\.test was not found in DNS/);
  });

  test('healthCheck turned off: probes stop, health and the metric go', async () => {
    const spare = `127.0.0.45:${site('spare').port}`;
    const id = await createTrunk(spare);
    await healthOf(id);
    assert.equal(await metric('dialplane_trunk_up', id), 1);
    const off = await api('PUT', `/api/v1/sip-credentials/${id}`, { server: spare, transport: 'udp' });
    assert.equal(off.status, 200);
    assert.equal(off.body.health, null);
    await delay(TIMEOUT_SECONDS * 1000);
    const before = probes.get('spare');
    await delay(INTERVAL_SECONDS * 1000 * 2.5);
    assert.equal(probes.get('spare'), before, 'no OPTIONS after healthCheck went off');
    assert.equal(await metric('dialplane_trunk_up', id), null, 'no metric once probes stop');
    const stored = await server.server.ctx.db.selectFrom('trunk_health').selectAll().where('credentials_id', '=', id).execute();
    assert.deepEqual(stored, [], 'the stored health went');
  });
});
