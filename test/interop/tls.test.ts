import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import fs from 'node:fs';
import { kamailioAvailable, startKamailio, type Kamailio } from '../support/kamailio.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { freePort, waitFor } from '../support/sipp.ts';
import {
  calleeRequestText,
  inDialogText,
  inviteText,
  newCall,
  replyText,
  request,
  response,
  TcpServerPeer,
  UdpPeer,
  unique,
  type Peer,
} from '../support/sip-peers.ts';
import { makeTestPki, type TestPki } from '../support/tls-certs.ts';

/**
 * SIP over TLS against a real carrier: Kamailio with its tls module, certificates from a test CA
 * made with openssl. Kamailio plays the carrier's registrar, the origin of inbound calls (a caller
 * on UDP behind it) and the far end of outbound calls (a callee on UDP behind it). The agent and
 * the agent runtime speak UDP to the edge, so every call bridges UDP and TLS (RFC 5658).
 */
const hasKamailio = kamailioAvailable();

const INBOUND_NUMBER = '+15550150001';
const OUTBOUND_NUMBER = '+15550150002';
const REGISTERED_NUMBER = '+15550150003';

describe('SIP over TLS with Kamailio as the carrier', { skip: !hasKamailio && 'kamailio not installed' }, () => {
  let pki: TestPki;
  let server: TestServer;
  let kamailio: Kamailio;
  let kamailioUdp: number;
  let kamailioTls: number;
  let caller: UdpPeer;
  let agent: UdpPeer;
  let runtime: UdpPeer;
  let callee: UdpPeer;
  const api = (method: string, path: string, body?: unknown, query?: Record<string, string>) =>
    server.request(method, path, { key: server.defaultKey, body, query });

  before(async () => {
    pki = makeTestPki();
    server = await startTestServer('sqlite', {
      env: {
        DIALPLANE_SIP_HOST: '127.0.0.1',
        DIALPLANE_SIP_T1_MS: '100',
        DIALPLANE_RUNTIME_ADDRESSES: '127.0.0.6',
        DIALPLANE_SIP_TLS_PORT: '0',
        DIALPLANE_SIP_TLS_CERT: pki.cert,
        DIALPLANE_SIP_TLS_KEY: pki.key,
        DIALPLANE_SIP_TLS_CA: pki.caCert,
      },
    });
    assert.ok(server.server.sipTlsPort, 'the edge listens on TLS');
    [kamailioUdp, kamailioTls] = [await freePort(), await freePort()];
    callee = await UdpPeer.start('127.0.0.7', { host: '127.0.0.1', port: kamailioUdp });
    kamailio = await startKamailio(
      'carrier-tls.cfg',
      kamailioUdp,
      {
        TLS_CERT: `"${pki.cert}"`,
        TLS_KEY: `"${pki.key}"`,
        TLS_CA: `"${pki.caCert}"`,
        CALLEE: `"sip:${callee.hostPort}"`,
        EDGE_TLS: `"sip:127.0.0.1:${server.server.sipTlsPort};transport=tls"`,
      },
      kamailioTls,
    );
    const edge = { host: '127.0.0.1', port: server.server.sipPort };
    caller = await UdpPeer.start('127.0.0.4', { host: '127.0.0.1', port: kamailioUdp });
    agent = await UdpPeer.start('127.0.0.5', edge);
    runtime = await UdpPeer.start('127.0.0.6', edge);
  });
  after(async () => {
    for (const peer of [caller, agent, runtime, callee]) await peer?.close();
    await kamailio?.stop();
    await server?.close();
    pki?.remove();
  });

  test('an inbound call over TLS reaches an agent over UDP, with a Record-Route per leg, and hangs up from the agent', async () => {
    const creds = await api('POST', '/api/v1/sip-credentials', {
      server: `127.0.0.1:${kamailioTls}`,
      transport: 'tls',
      allowedAddresses: ['127.0.0.1'],
    });
    assert.equal(creds.status, 201, JSON.stringify(creds.body));
    const agentRow = await api('POST', '/api/v1/agents', { name: 'tls agent', sipUri: `sip:agent@${agent.hostPort}` });
    const number = await api('POST', '/api/v1/sip-phone-numbers', { phoneNumber: INBOUND_NUMBER, credentialsId: creds.body.id });
    await api('PUT', `/api/v1/sip-phone-numbers/${number.body.id}/agent-link`, undefined, { agentId: agentRow.body.agentId });

    const call = newCall(`127.0.0.1:${kamailioUdp}`, INBOUND_NUMBER);
    caller.send(inviteText(call, caller));
    const invite = await agent.next(request('INVITE'), 'INVITE at the agent');
    const ours = invite.headers
      .getAll('record-route')
      .filter((route) => route.includes(`127.0.0.1:${server.server.sipPort}`) || route.includes(`:${server.server.sipTlsPort};transport=tls`));
    assert.equal(ours.length, 2, `two Record-Route entries of the edge: ${invite.headers.getAll('record-route').join(' | ')}`);
    assert.match(ours[0], new RegExp(`^<sip:127\\.0\\.0\\.1:${server.server.sipPort};lr;`), 'the top one faces the agent (UDP)');
    assert.match(ours[1], new RegExp(`^<sip:127\\.0\\.0\\.1:${server.server.sipTlsPort};transport=tls;lr;`), 'the next one faces the carrier (TLS)');
    const agentTag = unique('agent');
    agent.send(replyText(invite, 200, 'OK', agentTag, [`Contact: <sip:agent@${agent.hostPort}>`]));
    const ok = await caller.next(response(200), '200 at the caller');
    caller.send(inDialogText('ACK', 1, call, caller, ok));
    await agent.next(request('ACK'), 'ACK at the agent, through Kamailio and TLS');
    agent.send(calleeRequestText('BYE', 2, invite, agent, agentTag));
    const bye = await caller.next(request('BYE'), 'BYE at the caller, out over TLS');
    caller.send(replyText(bye, 200, 'OK', null));
    await agent.next(response(200, 'BYE'), '200 for the BYE at the agent');
  });

  /** An inbound call from Kamailio over TLS to `uas` (an agent at `sipUri`), answered and hung up from the caller. */
  async function callThrough(uas: Peer, sipUri: string, phoneNumber: string, requestScheme: 'sip' | 'sips'): Promise<string[]> {
    const creds = await api('POST', '/api/v1/sip-credentials', {
      server: `127.0.0.1:${kamailioTls}`,
      transport: 'tls',
      allowedAddresses: ['127.0.0.1'],
    });
    const agentRow = await api('POST', '/api/v1/agents', { name: `agent at ${sipUri}`, sipUri });
    const number = await api('POST', '/api/v1/sip-phone-numbers', { phoneNumber, credentialsId: creds.body.id });
    await api('PUT', `/api/v1/sip-phone-numbers/${number.body.id}/agent-link`, undefined, { agentId: agentRow.body.agentId });
    const call = newCall(`127.0.0.1:${kamailioUdp}`, phoneNumber);
    call.requestUri = call.requestUri.replace(/^sip:/, `${requestScheme}:`);
    caller.send(inviteText(call, caller));
    const invite = await uas.next(request('INVITE'), `INVITE at the agent over ${uas.transport}`);
    assert.match(invite.uri, new RegExp(`^${sipUri.split(':')[0]}:`));
    const recordRoutes = invite.headers.getAll('record-route');
    const agentTag = unique('agent');
    const contact = sipUri.startsWith('sips:') ? `<sips:agent@${uas.hostPort}>` : `<sip:agent@${uas.hostPort};transport=tcp>`;
    uas.send(replyText(invite, 200, 'OK', agentTag, [`Contact: ${contact}`]));
    const ok = await caller.next(response(200), '200 at the caller');
    caller.send(inDialogText('ACK', 1, call, caller, ok));
    await uas.next(request('ACK'), 'ACK at the agent');
    caller.send(inDialogText('BYE', 2, call, caller, ok));
    const bye = await uas.next(request('BYE'), 'BYE at the agent');
    uas.send(replyText(bye, 200, 'OK', null));
    await caller.next(response(200, 'BYE'), '200 for the BYE at the caller');
    return recordRoutes.filter((route) => route.includes(`127.0.0.1:${server.server.sipPort}`) || route.includes(`:${server.server.sipTlsPort};`));
  }

  test('TLS in, TCP out: two Record-Route entries, and the dialog flows both ways', async () => {
    const tcpAgent = await TcpServerPeer.start('127.0.0.5');
    try {
      const ours = await callThrough(tcpAgent, `sip:agent@${tcpAgent.hostPort};transport=tcp`, '+15550150006', 'sip');
      assert.equal(ours.length, 2, ours.join(' | '));
      assert.match(ours[0], /;transport=tcp;lr;/, 'the top one faces the agent (TCP)');
      assert.match(ours[1], new RegExp(`:${server.server.sipTlsPort};transport=tls;lr;`), 'the next one faces the carrier (TLS)');
    } finally {
      await tcpAgent.close();
    }
  });

  test('sips: in over TLS, to a sips: agent over TLS: one Record-Route entry, the agent’s certificate verified', async () => {
    const tlsAgent = await TcpServerPeer.start('127.0.0.1', { cert: fs.readFileSync(pki.cert), key: fs.readFileSync(pki.key) });
    try {
      const ours = await callThrough(tlsAgent, `sips:agent@${tlsAgent.hostPort}`, '+15550150007', 'sips');
      assert.equal(ours.length, 1, `TLS on both legs: one entry (${ours.join(' | ')})`);
      assert.match(ours[0], new RegExp(`:${server.server.sipTlsPort};transport=tls;lr;`));
    } finally {
      await tlsAgent.close();
    }
  });

  test('a sips: call (TLS on every hop) to an agent on sip: over UDP is refused with 480, never relayed in the clear', async () => {
    const call = newCall(`127.0.0.1:${kamailioUdp}`, INBOUND_NUMBER);
    call.requestUri = call.requestUri.replace(/^sip:/, 'sips:');
    caller.send(inviteText(call, caller));
    await caller.next(response(480), '480 at the caller');
    await agent.none((m) => m.kind === 'request' && m.method === 'INVITE', 'INVITE at the agent', 200);
  });

  test('an outbound call goes to the carrier over TLS, its certificate verified, and hangs up from the runtime', async () => {
    const creds = await api('POST', '/api/v1/sip-credentials', { server: `127.0.0.1:${kamailioTls}`, transport: 'tls', domain: 'carrier.example' });
    assert.equal(creds.status, 201, JSON.stringify(creds.body));
    const number = await api('POST', '/api/v1/sip-phone-numbers', { phoneNumber: OUTBOUND_NUMBER, credentialsId: creds.body.id });
    const agentRow = await api('POST', '/api/v1/agents', { name: 'tls outbound' });
    await api('PUT', `/api/v1/sip-phone-numbers/${number.body.id}/agent-link`, undefined, {
      agentId: agentRow.body.agentId,
      mode: 'replaceOutbound',
    });

    const call = newCall(`127.0.0.1:${server.server.sipPort}`, '+15559870000');
    runtime.send(inviteText(call, runtime, [`X-Dialplane-Agent-Id: ${agentRow.body.agentId}`]));
    const invite = await callee.next(request('INVITE'), 'INVITE at the callee behind the carrier');
    assert.match(invite.headers.get('from') ?? '', new RegExp(`sip:\\${OUTBOUND_NUMBER}@carrier\\.example`));
    const vias = invite.headers.getAll('via');
    assert.ok(
      vias.some((via) => via.startsWith(`SIP/2.0/TLS 127.0.0.1:${server.server.sipTlsPort}`)),
      `the edge's Via names TLS: ${vias.join(' | ')}`,
    );
    const calleeTag = unique('callee');
    callee.send(replyText(invite, 200, 'OK', calleeTag, [`Contact: <sip:callee@${callee.hostPort}>`]));
    const ok = await runtime.next(response(200), '200 at the runtime');
    runtime.send(inDialogText('ACK', 1, call, runtime, ok));
    await callee.next(request('ACK'), 'ACK at the callee');
    runtime.send(inDialogText('BYE', 2, call, runtime, ok));
    const bye = await callee.next(request('BYE'), 'BYE at the callee');
    callee.send(replyText(bye, 200, 'OK', null));
    await runtime.next(response(200, 'BYE'), '200 for the BYE');
  });

  test('trunk health over TLS: the carrier answers OPTIONS; a certificate nobody trusts is a down target that says so', async () => {
    const healthOf = (id: string) =>
      waitFor(async () => {
        const health = (await api('GET', `/api/v1/sip-credentials/${id}`)).body.health;
        return health.state === 'unknown' ? undefined : health;
      }, 'a probe round');
    const carrier = await api('POST', '/api/v1/sip-credentials', { server: `127.0.0.1:${kamailioTls}`, transport: 'tls', healthCheck: true });
    const health = await healthOf(carrier.body.id);
    assert.equal(health.state, 'up', JSON.stringify(health));
    assert.deepEqual(
      health.targets.map((t: any) => [t.transport, t.port, t.lastResponse]),
      [['tls', kamailioTls, '200 OK']],
    );

    const impostor = tls.createServer({ cert: fs.readFileSync(pki.untrustedCert), key: fs.readFileSync(pki.untrustedKey) }, (socket) =>
      socket.destroy(),
    );
    impostor.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    try {
      const port = (impostor.address() as { port: number }).port;
      const untrusted = await api('POST', '/api/v1/sip-credentials', { server: `127.0.0.1:${port}`, transport: 'tls', healthCheck: true });
      const down = await healthOf(untrusted.body.id);
      assert.equal(down.state, 'down');
      assert.match(down.lastResponse, /transport error: .*(certificate|self.signed)/i, down.lastResponse);
    } finally {
      await new Promise((resolve) => impostor.close(resolve));
    }
  });

  test('a number registers over TLS; a registrar whose certificate is not trusted is a clear failure', async () => {
    const creds = await api('POST', '/api/v1/sip-credentials', { server: `127.0.0.1:${kamailioTls}`, transport: 'tls' });
    const number = await api('POST', '/api/v1/sip-phone-numbers', {
      phoneNumber: REGISTERED_NUMBER,
      credentialsId: creds.body.id,
      registration: true,
    });
    assert.equal(number.status, 201, JSON.stringify(number.body));
    const registered = await waitFor(async () => {
      const status = (await api('GET', `/api/v1/sip-phone-numbers/${number.body.id}`)).body.registrationStatus;
      return status.state === 'Registered' ? status : undefined;
    }, 'Registered over TLS');
    assert.equal(registered.errorDescription, null);
    assert.match(kamailio.output(), new RegExp(`REGISTER from 127\\.0\\.0\\.1:\\d+ over tls for sip:${REGISTERED_NUMBER.slice(1)}@`));

    // A TLS registrar with a self-signed certificate nobody trusts.
    const impostor = tls.createServer({ cert: fs.readFileSync(pki.untrustedCert), key: fs.readFileSync(pki.untrustedKey) }, (socket) =>
      socket.destroy(),
    );
    impostor.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    try {
      const port = (impostor.address() as { port: number }).port;
      const untrusted = await api('POST', '/api/v1/sip-credentials', { server: `127.0.0.1:${port}`, transport: 'tls' });
      const other = await api('POST', '/api/v1/sip-phone-numbers', {
        phoneNumber: '+15550150004',
        credentialsId: untrusted.body.id,
        registration: true,
      });
      const failed = await waitFor(async () => {
        const status = (await api('GET', `/api/v1/sip-phone-numbers/${other.body.id}`)).body.registrationStatus;
        return status.state === 'Failed' ? status : undefined;
      }, 'Failed registration');
      assert.match(failed.errorDescription, /TLS handshake .* failed \(certificate or handshake\)/, failed.errorDescription);
    } finally {
      await new Promise((resolve) => impostor.close(resolve));
    }
  });

  test('the carrier’s call for the registered number comes back over the registration’s own TLS connection (RFC 5923)', async () => {
    const number = (await api('GET', '/api/v1/sip-phone-numbers', undefined, { skip: '0', take: '100' })).body.items.find(
      (n: any) => n.phoneNumber === REGISTERED_NUMBER,
    );
    const agentRow = await api('POST', '/api/v1/agents', { name: 'registered over tls', sipUri: `sip:agent@${agent.hostPort}` });
    await api('PUT', `/api/v1/sip-phone-numbers/${number.id}/agent-link`, undefined, { agentId: agentRow.body.agentId });

    // Kamailio sends it to where the REGISTER came from: the edge's end of the connection it opened,
    // an ephemeral port nothing listens on; only that connection can carry it.
    const call = newCall(`127.0.0.1:${kamailioUdp}`, REGISTERED_NUMBER.slice(1));
    caller.send(inviteText(call, caller));
    const invite = await agent.next(request('INVITE'), 'INVITE at the agent');
    assert.match(kamailio.output(), /to the registered 15550150003 via sip:127\.0\.0\.1:\d+;transport=tls/);
    const port = Number(/to the registered \d+ via sip:127\.0\.0\.1:(\d+)/.exec(kamailio.output())![1]);
    assert.notEqual(port, server.server.sipTlsPort, 'not the listener: the registration’s connection');
    agent.send(replyText(invite, 486, 'Busy Here', unique('agent')));
    await caller.next(response(486), '486 at the caller');
  });
});

test('an unreadable or mismatched TLS certificate or key stops the start, naming the variable', async () => {
  const pki = makeTestPki();
  try {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ DIALPLANE_SIP_TLS_CERT: '/nonexistent/cert.pem', DIALPLANE_SIP_TLS_KEY: pki.key }, /DIALPLANE_SIP_TLS_CERT: cannot read/],
      [{ DIALPLANE_SIP_TLS_CERT: pki.cert, DIALPLANE_SIP_TLS_KEY: pki.untrustedKey }, /DIALPLANE_SIP_TLS_KEY: .* is not the key of the certificate/],
      [{ DIALPLANE_SIP_TLS_CERT: pki.cert }, /DIALPLANE_SIP_TLS_CERT and DIALPLANE_SIP_TLS_KEY are set together/],
      [{ DIALPLANE_SIP_TLS_CERT: pki.key, DIALPLANE_SIP_TLS_KEY: pki.key }, /DIALPLANE_SIP_TLS_CERT: .* is not a PEM certificate/],
      [{ DIALPLANE_SIP_TLS_CA: pki.key }, /DIALPLANE_SIP_TLS_CA: .* holds no usable PEM certificate/],
    ];
    for (const [env, message] of cases) {
      await assert.rejects(startTestServer('sqlite', { env: { DIALPLANE_SIP_HOST: '127.0.0.1', DIALPLANE_SIP_TLS_PORT: '0', ...env } }), message);
    }
  } finally {
    pki.remove();
  }
});
