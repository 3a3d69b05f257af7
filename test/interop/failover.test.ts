import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { dnsmasqAvailable, startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { inDialogText, inviteText, newCall, replyText, request, response, UdpPeer, unique } from '../support/sip-peers.ts';

/**
 * RFC 3263 failover on outbound calls, with a real DNS server (dnsmasq) serving SRV records that
 * name two carrier sites (node UDP peers): the first dead, answering 503, or answering 486.
 */
const hasDnsmasq = dnsmasqAvailable();
/** Timer B is 64·T1: a dead first site costs 1.6 s. */
const T1 = 25;

describe('outbound failover between a trunk’s SRV targets', { skip: !hasDnsmasq && 'dnsmasq not installed' }, () => {
  let dnsmasq: Dnsmasq;
  let server: TestServer;
  let runtime: UdpPeer;
  const sites = new Map<string, UdpPeer>();
  const api = (method: string, path: string, body?: unknown, query?: Record<string, string>) =>
    server.request(method, path, { key: server.defaultKey, body, query });

  /** An agent whose outbound number's trunk is `server` (an SRV name). */
  async function agentCalling(server: string, phoneNumber: string): Promise<string> {
    const creds = await api('POST', '/api/v1/sip-credentials', { server, transport: 'udp' });
    assert.equal(creds.status, 201, JSON.stringify(creds.body));
    const number = await api('POST', '/api/v1/sip-phone-numbers', { phoneNumber, credentialsId: creds.body.id });
    const agent = await api('POST', '/api/v1/agents', { name: `calls via ${server}` });
    await api('PUT', `/api/v1/sip-phone-numbers/${number.body.id}/agent-link`, undefined, { agentId: agent.body.agentId, mode: 'replaceOutbound' });
    return agent.body.agentId as string;
  }

  /** A site answers the edge (its peer was made before the edge listened). */
  function answer(site: string, text: string): void {
    sites.get(site)!.sendTo(text, '127.0.0.1', server.server.sipPort);
  }

  function call(agentId: string) {
    const placed = newCall(`127.0.0.1:${server.server.sipPort}`, '+15559990000');
    runtime.send(inviteText(placed, runtime, [`X-Dialplane-Agent-Id: ${agentId}`]));
    return placed;
  }

  before(async () => {
    for (const [name, host] of [
      ['dead', '127.0.0.31'],
      ['second', '127.0.0.32'],
      ['busy', '127.0.0.33'],
      ['refusing', '127.0.0.34'],
      ['spare', '127.0.0.35'],
      ['silent-registrar', '127.0.0.36'],
      ['registrar', '127.0.0.37'],
    ]) {
      sites.set(name, await UdpPeer.start(host, { host: '127.0.0.1', port: 1 }));
    }
    const site = (name: string) => sites.get(name)!;
    dnsmasq = await startDnsmasq([
      '--local=/test/',
      `--srv-host=_sip._udp.dead.test,dead.sites.test,${site('dead').port},10,0`,
      `--srv-host=_sip._udp.dead.test,second.sites.test,${site('second').port},20,0`,
      `--srv-host=_sip._udp.busy.test,busy.sites.test,${site('busy').port},10,0`,
      `--srv-host=_sip._udp.busy.test,second.sites.test,${site('second').port},20,0`,
      `--srv-host=_sip._udp.refusing.test,refusing.sites.test,${site('refusing').port},10,0`,
      `--srv-host=_sip._udp.refusing.test,spare.sites.test,${site('spare').port},20,0`,
      `--srv-host=_sip._udp.registrar.test,silent-registrar.sites.test,${site('silent-registrar').port},10,0`,
      `--srv-host=_sip._udp.registrar.test,registrar.sites.test,${site('registrar').port},20,0`,
      ...[...sites].map(([name, peer]) => `--host-record=${name}.sites.test,${peer.host}`),
    ]);
    server = await startTestServer('sqlite', {
      env: {
        DIALPLANE_SIP_HOST: '127.0.0.1',
        DIALPLANE_SIP_T1_MS: String(T1),
        DIALPLANE_RUNTIME_ADDRESSES: '127.0.0.6',
        DIALPLANE_DNS_SERVERS: dnsmasq.server,
      },
    });
    runtime = await UdpPeer.start('127.0.0.6', { host: '127.0.0.1', port: server.server.sipPort });
  });
  after(async () => {
    for (const peer of [runtime, ...sites.values()]) await peer?.close();
    await server?.close();
    await dnsmasq?.stop();
  });

  test('the first site is dead: the call goes to the second, and the next call skips the dead one', async () => {
    const agentId = await agentCalling('dead.test', '+15550160001');
    const placed = call(agentId);
    await sites.get('dead')!.next(request('INVITE'), 'INVITE at the dead site (never answered)');
    const invite = await sites.get('second')!.next(request('INVITE'), 'INVITE at the second site', 64 * T1 + 2000);
    assert.equal(invite.headers.get('cseq'), '1 INVITE', 'the same CSeq on the new branch');
    answer('second', replyText(invite, 200, 'OK', unique('second'), [`Contact: <sip:callee@${sites.get('second')!.hostPort}>`]));
    const ok = await runtime.next(response(200), '200 at the runtime');
    runtime.send(inDialogText('ACK', 1, placed, runtime, ok));
    await sites.get('second')!.next(request('ACK'), 'ACK at the second site');

    sites.get('dead')!.received.length = 0;
    call(agentId);
    const next = await sites.get('second')!.next(request('INVITE'), 'the next call, at the second site at once', 1000);
    answer('second', replyText(next, 486, 'Busy Here', unique('second')));
    await runtime.next(response(486), '486 at the runtime');
    assert.equal(sites.get('dead')!.received.filter((m) => m.kind === 'request' && m.method === 'INVITE').length, 0, 'the dead site was skipped');
  });

  test('the first site answers 503: the second gets the call', async () => {
    const agentId = await agentCalling('busy.test', '+15550160002');
    call(agentId);
    const first = await sites.get('busy')!.next(request('INVITE'), 'INVITE at the first site');
    answer('busy', replyText(first, 503, 'Service Unavailable', unique('busy')));
    const invite = await sites.get('second')!.next(request('INVITE'), 'INVITE at the second site');
    answer('second', replyText(invite, 486, 'Busy Here', unique('second')));
    const final = await runtime.next(response(486), 'the second site’s answer at the runtime');
    assert.equal(final.status, 486);
    assert.equal(runtime.received.filter((m) => m.kind === 'response' && m.status === 503).length, 0, 'the 503 was not relayed');
  });

  test('the first site answers 486: relayed, and no second site rings', async () => {
    const agentId = await agentCalling('refusing.test', '+15550160003');
    call(agentId);
    const first = await sites.get('refusing')!.next(request('INVITE'), 'INVITE at the first site');
    answer('refusing', replyText(first, 486, 'Busy Here', unique('refusing')));
    await runtime.next(response(486), '486 at the runtime');
    await delay(300);
    assert.equal(sites.get('spare')!.received.length, 0, 'nothing at the spare site');
  });

  test('registration: the first SRV target is silent, the second registers the number', async () => {
    const creds = await api('POST', '/api/v1/sip-credentials', { server: 'registrar.test', transport: 'udp' });
    const number = await api('POST', '/api/v1/sip-phone-numbers', { phoneNumber: '+15550160005', credentialsId: creds.body.id, registration: true });
    assert.equal(number.status, 201, JSON.stringify(number.body));
    await sites.get('silent-registrar')!.next(request('REGISTER'), 'REGISTER at the silent registrar');
    const register = await sites.get('registrar')!.next(request('REGISTER'), 'REGISTER at the second registrar', 64 * T1 + 2000);
    answer('registrar', replyText(register, 200, 'OK', unique('reg'), [`Contact: ${register.headers.get('contact')};expires=120`]));
    for (let i = 0; ; i++) {
      const status = (await api('GET', `/api/v1/sip-phone-numbers/${number.body.id}`)).body.registrationStatus;
      if (status.state === 'Registered') break;
      assert.ok(i < 100, `still ${status.state}`);
      await delay(50);
    }
  });

  test('a trunk whose name does not resolve: 503 with a reason, at once', async () => {
    const agentId = await agentCalling('nowhere.test', '+15550160004');
    const started = Date.now();
    call(agentId);
    const refusal = await runtime.next(response(503), '503 at the runtime');
    assert.match(refusal.reason, /DNS/);
    assert.ok(Date.now() - started < 3000, 'no hang');
  });
});
