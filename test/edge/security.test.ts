import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { setTimeout as delay } from 'node:timers/promises';
import { DialogSigner, deriveSigningKey } from '../../src/sip/dialog-signer.ts';
import type { SipMessage, SipRequest, SipResponse } from '../../src/sip/message.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { makeTestPki } from '../support/tls-certs.ts';
import {
  ackText,
  calleeRequestText,
  inDialogText,
  inviteText,
  newCall,
  replyText,
  request,
  response,
  sip,
  TcpServerPeer,
  UdpPeer,
  unique,
  type Call,
} from '../support/sip-peers.ts';

/**
 * The edge played by an attacker over real sockets (SECURITY.md). Roles on their own
 * loopback addresses: the carrier trunk (trusted, 127.0.0.2), the agent runtime (127.0.0.3, not
 * a trusted source: its requests need the edge's signed Route), a victim the attacker wants to
 * reach through the edge (127.0.0.9), and attackers (127.0.0.5x, one per test, so that one
 * test's token bucket does not touch another's).
 */
const SECRET = crypto.randomBytes(32);
const NUMBER = '+15550140000';
const T1 = 100;
/** Long enough for a stateful answer to have been retransmitted (Timer G: T1, 2·T1, 4·T1 …). */
const QUIET_MS = 7 * T1;

const isResponse = (message: SipMessage) => message.kind === 'response';

describe('SIP edge security', () => {
  let server: TestServer;
  let edge: { host: string; port: number };
  let edgeAddress: string;
  let carrier: UdpPeer;
  let agent: UdpPeer;
  let victim: UdpPeer;
  let victimTcp: TcpServerPeer;
  const logs: object[] = [];
  let attackerCount = 0;
  const peers: Array<{ close(): Promise<void> }> = [];
  const api = (method: string, path: string, body?: unknown, query?: Record<string, string>) =>
    server.request(method, path, { key: server.defaultKey, body, query });

  async function peer(host: string): Promise<UdpPeer> {
    const created = await UdpPeer.start(host, edge);
    peers.push(created);
    return created;
  }

  /** A fresh attacker address (a fresh token bucket). */
  const attacker = () => peer(`127.0.0.${50 + attackerCount++}`);

  async function rejected(reason: string): Promise<number> {
    const metrics = await server.request('GET', '/metrics');
    const match = new RegExp(`dialplane_sip_rejected_total\\{reason="${reason}"\\} (\\d+)`).exec(metrics.body as string);
    return match ? Number(match[1]) : 0;
  }

  /** A request as an attacker writes it: a To tag (in-dialog), the Route set it likes, a target it likes. */
  function forged(method: string, from: UdpPeer, requestUri: string, routes: string[], extra: string[] = []): string {
    return sip([
      `${method} ${requestUri} SIP/2.0`,
      `Via: SIP/2.0/UDP ${from.hostPort};branch=${unique('z9hG4bK-atk')};rport`,
      'Max-Forwards: 70',
      ...routes.map((route) => `Route: ${route}`),
      `From: <sip:mallory@${from.hostPort}>;tag=${unique('m')}`,
      `To: <${requestUri}>;tag=${unique('t')}`,
      `Call-ID: ${unique('forged-')}@attacker`,
      `CSeq: 1 ${method}`,
      'P-Asserted-Identity: <sip:+15550000000@carrier.example>',
      ...extra,
    ]);
  }

  /** Asserts that exactly one 403 comes back, nothing reaches the victim, and nothing more follows. */
  async function assertRefused(from: UdpPeer, method: string): Promise<SipMessage> {
    const refusal = await from.next(response(403, method), `403 for the forged ${method}`);
    await delay(QUIET_MS);
    assert.equal(from.received.filter(isResponse).length, 0, 'one answer, never retransmitted');
    assert.equal(victim.received.length, 0, 'nothing reached the victim');
    return refusal;
  }

  /** Carrier → edge → agent: INVITE, 200, ACK. */
  async function legitCall(extra: string[] = []): Promise<{ call: Call; invite: SipRequest; agentTag: string; ok: SipResponse; ack: SipRequest }> {
    const call = newCall(edgeAddress, NUMBER);
    carrier.send(inviteText(call, carrier, extra));
    const invite = await agent.next(request('INVITE'), 'INVITE at the agent');
    const agentTag = unique('agent');
    agent.send(replyText(invite, 200, 'OK', agentTag, [`Contact: <sip:agent@${agent.hostPort}>`]));
    const ok = await carrier.next(response(200), '200 at the carrier');
    carrier.send(inDialogText('ACK', 1, call, carrier, ok));
    const ack = await agent.next(request('ACK'), 'ACK at the agent');
    return { call, invite, agentTag, ok, ack };
  }

  before(async () => {
    server = await startTestServer('sqlite', {
      env: { DIALPLANE_SIP_HOST: '127.0.0.1', DIALPLANE_SIP_T1_MS: String(T1), DIALPLANE_SECRET_KEY: SECRET.toString('hex') },
      logs,
    });
    edge = { host: '127.0.0.1', port: server.server.sipPort };
    edgeAddress = `127.0.0.1:${edge.port}`;
    carrier = await peer('127.0.0.2');
    agent = await peer('127.0.0.3');
    victim = await peer('127.0.0.9');
    victimTcp = await TcpServerPeer.start('127.0.0.9');
    peers.push(victimTcp);
    const creds = await api('POST', '/api/v1/sip-credentials', { server: `127.0.0.2:${carrier.port}`, allowedAddresses: ['127.0.0.2'] });
    const runtime = await api('POST', '/api/v1/agents', { name: 'agent', sipUri: `sip:agent@${agent.hostPort}` });
    const number = await api('POST', '/api/v1/sip-phone-numbers', { phoneNumber: NUMBER, credentialsId: creds.body.id });
    const linked = await api('PUT', `/api/v1/sip-phone-numbers/${number.body.id}/agent-link`, undefined, { agentId: runtime.body.agentId });
    assert.equal(linked.status, 200);
  });
  after(async () => {
    for (const created of peers) await created.close();
    await server.close();
  });

  test('unknown sources are answered once, statelessly, alike whether the number exists or not, and leave no record', async () => {
    const from = await attacker();
    const before = await rejected('unauthenticated');
    const { body: recordsBefore } = await api('GET', '/api/v1/call-records');
    agent.received.length = 0;
    const answers: string[] = [];
    for (const dialled of [NUMBER, '+15559999999']) {
      const call = newCall(edgeAddress, dialled);
      const text = inviteText(call, from);
      from.send(text);
      const refusal = await from.next(response(403), `403 for ${dialled}`);
      await delay(QUIET_MS);
      assert.equal(from.received.length, 0, 'no 100 Trying, no retransmission');
      assert.ok(
        from.sizes.at(-1)! <= Buffer.byteLength(text),
        `the answer (${from.sizes.at(-1)} bytes) is no larger than the request (${Buffer.byteLength(text)})`,
      );
      answers.push(`${refusal.status} ${refusal.reason}`);
    }
    assert.deepEqual(answers, ['403 Forbidden', '403 Forbidden'], 'no way to tell which numbers exist');
    assert.equal(agent.received.length, 0, 'nothing reached the agent');
    // This test runs first: no other test's transactions are still alive.
    assert.equal(server.server.edge.transactions!.serverTransactionCount, 0, 'no server transaction was kept');
    assert.equal(await rejected('unauthenticated'), before + 2);
    await delay(300);
    const { body: recordsAfter } = await api('GET', '/api/v1/call-records');
    assert.equal(recordsAfter.totalCount, recordsBefore.totalCount, 'no call record');
  });

  test('a legitimate call still works: INVITE, re-INVITE and BYE from either side', async () => {
    const { call, invite, agentTag, ok } = await legitCall();
    // The carrier refreshes the session, the agent refreshes it back, the agent hangs up.
    carrier.send(inDialogText('INVITE', 2, call, carrier, ok));
    const reinvite = await agent.next(request('INVITE'), 're-INVITE at the agent');
    agent.send(replyText(reinvite, 200, 'OK', null, [`Contact: <sip:agent@${agent.hostPort}>`]));
    await carrier.next(response(200), '200 for the re-INVITE');
    agent.send(calleeRequestText('INVITE', 1, invite, agent, agentTag));
    const back = await carrier.next(request('INVITE'), 're-INVITE from the agent at the carrier');
    carrier.send(replyText(back, 200, 'OK', null, [`Contact: <sip:alice@${carrier.hostPort}>`]));
    await agent.next(response(200), '200 for the agent’s re-INVITE');
    agent.send(calleeRequestText('BYE', 2, invite, agent, agentTag));
    const bye = await carrier.next(request('BYE'), 'BYE at the carrier');
    carrier.send(replyText(bye, 200, 'OK', null));
    await agent.next(response(200, 'BYE'), '200 for the BYE');
  });

  for (const method of ['INVITE', 'BYE', 'MESSAGE', 'OPTIONS']) {
    test(`no open relay: an in-dialog ${method} with an unsigned Route naming the edge is refused`, async () => {
      const from = await attacker();
      const before = await rejected('bad_signature');
      from.send(forged(method, from, `sip:victim@${victim.hostPort}`, [`<sip:${edgeAddress};lr>`]));
      await assertRefused(from, method);
      assert.equal(await rejected('bad_signature'), before + 1);
    });
  }

  test('no open relay: forged, foreign and expired signatures are refused; only the edge’s own passes', async () => {
    const from = await attacker();
    const { ok } = await legitCall();
    const signedRoute = ok.headers.get('record-route')!;
    const routes = [
      // Made up.
      `<sip:${edgeAddress};lr;dpt=${Math.floor(Date.now() / 1000).toString(36)};dps=AAAAAAAAAAAAAAAAAAAAAA>`,
      // Replayed: a real dialog's Route with another Call-ID.
      signedRoute,
    ];
    for (const route of routes) {
      from.send(forged('BYE', from, `sip:victim@${victim.hostPort}`, [route]));
      await assertRefused(from, 'BYE');
    }
    // Signed with the edge's own key (the test knows the secret), for one Call-ID and From tag.
    const callId = `${unique('expired-')}@attacker`;
    const signedBye = (signer: DialogSigner) =>
      sip([
        `BYE sip:victim@${victim.hostPort} SIP/2.0`,
        `Via: SIP/2.0/UDP ${from.hostPort};branch=${unique('z9hG4bK-atk')};rport`,
        `Route: <sip:${edgeAddress};lr${signer.recordRouteParams(callId, 'tagA', {})}>`,
        `From: <sip:mallory@${from.hostPort}>;tag=tagA`,
        `To: <sip:victim@${victim.hostPort}>;tag=tagB`,
        `Call-ID: ${callId}`,
        'CSeq: 1 BYE',
      ]);
    // A day and more ago: expired.
    from.send(signedBye(new DialogSigner(deriveSigningKey(SECRET), { maxDialogSeconds: 86_400, now: () => Math.floor(Date.now() / 1000) - 90_000 })));
    await assertRefused(from, 'BYE');
    // The control: signed now, it is relayed.
    from.send(signedBye(new DialogSigner(deriveSigningKey(SECRET))));
    const bye = await victim.next(request('BYE'), 'the correctly signed BYE at its target');
    victim.send(replyText(bye, 200, 'OK', null));
    await from.next(response(200, 'BYE'), 'its answer');
    await delay(QUIET_MS);
    victim.received.length = 0;
  });

  test('no open relay: a strict-routed request (Request-URI naming the edge) needs a signature too', async () => {
    const from = await attacker();
    from.send(forged('MESSAGE', from, `sip:${edgeAddress}`, [`<sip:victim@${victim.hostPort}>`]));
    await assertRefused(from, 'MESSAGE');
  });

  test('an ACK without a valid signature is dropped: nothing sent, no TCP connection opened, no answer', async () => {
    const from = await attacker();
    const before = await rejected('bad_signature');
    from.send(forged('ACK', from, `sip:victim@${victim.hostPort}`, [`<sip:${edgeAddress};lr>`]));
    from.send(forged('ACK', from, `sip:victim@127.0.0.9:${victimTcp.port};transport=tcp`, [`<sip:${edgeAddress};lr>`]));
    from.send(forged('ACK', from, `sip:victim@127.0.0.9:${victimTcp.port};transport=tcp`, []));
    await delay(QUIET_MS);
    assert.equal(from.received.length, 0, 'no answer to an ACK');
    assert.equal(victim.received.length, 0);
    assert.equal(victimTcp.received.length, 0);
    assert.equal(victimTcp.accepted, 0, 'no TCP connection to the target');
    assert.equal(await rejected('bad_signature'), before + 3);
  });

  test('a forged response (top Via naming the edge, a branch it never made) is not relayed', async () => {
    const from = await attacker();
    const before = await rejected('forged_response');
    const forgedResponse = (branch: string) =>
      sip([
        'SIP/2.0 200 OK',
        `Via: SIP/2.0/UDP ${edgeAddress};branch=${branch}`,
        `Via: SIP/2.0/UDP ${victim.hostPort};branch=z9hG4bK-victim`,
        `From: <sip:victim@${victim.hostPort}>;tag=v`,
        `To: <sip:mallory@${from.hostPort}>;tag=m`,
        `Call-ID: ${unique('forged-response-')}`,
        'CSeq: 1 INVITE',
      ]);
    from.send(forgedResponse('z9hG4bKmadeup'));
    from.send(forgedResponse('z9hG4bKAAAAAAAAAAAAAAAA.1.AAAAAAAAAAA'));
    await delay(QUIET_MS);
    assert.equal(victim.received.length, 0);
    assert.equal(await rejected('forged_response'), before + 2);
  });

  test('a response on one of the edge’s real branches goes only where that branch’s request came from', async () => {
    const { invite, agentTag, ack } = await legitCall();
    carrier.received.length = 0;
    const [inviteVia, carrierVia] = invite.headers.getAll('via');
    const from = await attacker();
    const response200 = (ourVia: string, secondVia: string) =>
      sip([
        'SIP/2.0 200 OK',
        `Via: ${ourVia}`,
        `Via: ${secondVia}`,
        `From: ${invite.headers.get('from')}`,
        `To: ${invite.headers.get('to')};tag=${agentTag}`,
        `Call-ID: ${invite.headers.get('call-id')}`,
        `CSeq: ${invite.headers.get('cseq')}`,
        `Contact: <sip:agent@${agent.hostPort}>`,
      ]);
    const aimedElsewhere = [
      `SIP/2.0/UDP ${victim.hostPort};branch=z9hG4bK-victim`,
      `SIP/2.0/TCP 127.0.0.9:${victimTcp.port};branch=z9hG4bK-victim`,
      carrierVia.replace(/received=[^;]+/, 'received=127.0.0.9'),
    ];
    // The INVITE's branch still has its transaction: its 2xx go to the caller, whatever they say.
    for (const second of aimedElsewhere) from.send(response200(inviteVia, second));
    for (let i = 0; i < aimedElsewhere.length; i++) await carrier.next(response(200), 'a 2xx of the INVITE at the carrier');
    // The ACK's branch has none (a stray response): with the caller's Via it is relayed, with any other refused.
    const [ackVia] = ack.headers.getAll('via');
    agent.send(response200(ackVia, carrierVia));
    await carrier.next(response(200), 'the stray 2xx at the carrier');
    const before = await rejected('forged_response');
    for (const second of aimedElsewhere) from.send(response200(ackVia, second));
    await delay(QUIET_MS);
    assert.equal(victim.received.length, 0);
    assert.equal(victimTcp.accepted, 0, 'no TCP connection to the target');
    assert.equal(
      carrier.received.length,
      0,
      carrier.received.map((m) => (m.kind === 'response' ? `${m.status} ${m.headers.get('via')}` : m.method)).join(' | '),
    );
    assert.equal(await rejected('forged_response'), before + aimedElsewhere.length);
  });

  test('a received parameter the sender wrote itself is replaced: answers go to the packet’s source', async () => {
    const call = newCall(edgeAddress, '+15559999999');
    const text = inviteText(call, carrier).replace(';rport\r\n', ';received=127.0.0.9\r\n');
    assert.match(text, /received=127\.0\.0\.9/);
    carrier.send(text);
    const final = await carrier.next(response(404), 'the 404 at the carrier');
    carrier.send(
      sip([
        `ACK ${call.requestUri} SIP/2.0`,
        `Via: ${final.headers.get('via')}`,
        'Max-Forwards: 70',
        `From: ${final.headers.get('from')}`,
        `To: ${final.headers.get('to')}`,
        `Call-ID: ${call.callId}`,
        'CSeq: 1 ACK',
      ]),
    );
    await delay(QUIET_MS);
    assert.equal(victim.received.length, 0);
  });

  test('a stateless answer is no larger than its request, however many Via values the request packs on one line', async () => {
    const from = await attacker();
    const call = newCall(edgeAddress, NUMBER);
    const text = inviteText(call, from).replace(/^Via: (.*)$/m, (_line, via: string) => `v: ${via}${',a'.repeat(2000)}`);
    from.send(text);
    await from.next(response(403), 'the 403');
    assert.ok(from.sizes.at(-1)! <= Buffer.byteLength(text), `${from.sizes.at(-1)} octets answered to ${Buffer.byteLength(text)}`);
  });

  test('a CANCEL is taken only from where its INVITE came from', async () => {
    const call = newCall(edgeAddress, NUMBER);
    carrier.send(inviteText(call, carrier));
    const invite = await agent.next(request('INVITE'), 'INVITE at the agent');
    agent.send(replyText(invite, 180, 'Ringing', unique('agent')));
    await carrier.next(response(180), '180 Ringing');
    const cancel = (via: string) =>
      sip([
        `CANCEL ${call.requestUri} SIP/2.0`,
        `Via: ${via}`,
        'Max-Forwards: 70',
        `From: "Alice" <sip:alice@${carrier.hostPort}>;tag=${call.fromTag}`,
        `To: <${call.requestUri}>`,
        `Call-ID: ${call.callId}`,
        'CSeq: 1 CANCEL',
      ]);
    const carrierVia = `SIP/2.0/UDP ${carrier.hostPort};branch=${call.inviteBranch};rport`;
    const from = await attacker();
    from.send(cancel(carrierVia));
    await from.next(response(403, 'CANCEL'), '403 for the CANCEL from elsewhere');
    await delay(QUIET_MS);
    assert.equal(agent.received.filter((message) => message.kind === 'request' && message.method === 'CANCEL').length, 0, 'no CANCEL at the agent');
    carrier.send(cancel(carrierVia));
    await carrier.next(response(200, 'CANCEL'), '200 for the carrier’s CANCEL');
    const forwarded = await agent.next(request('CANCEL'), 'CANCEL at the agent');
    agent.send(replyText(forwarded, 200, 'OK', null));
    agent.send(replyText(invite, 487, 'Request Terminated', unique('agent')));
    const terminated = await carrier.next(response(487), '487 at the carrier');
    carrier.send(
      sip([
        `ACK ${call.requestUri} SIP/2.0`,
        `Via: ${carrierVia}`,
        'Max-Forwards: 70',
        `From: "Alice" <sip:alice@${carrier.hostPort}>;tag=${call.fromTag}`,
        `To: ${terminated.headers.get('to')}`,
        `Call-ID: ${call.callId}`,
        'CSeq: 1 ACK',
      ]),
    );
    await delay(QUIET_MS);
    agent.received.length = 0;
    carrier.received.length = 0;
  });

  test('X-Dialplane-* never crosses the edge except as the edge writes it; P-Asserted-Identity only from trusted sources', async () => {
    const forgedHeaders = [
      'X-Dialplane-Agent-Id: forged',
      'X-Dialplane-Org-Id: forged',
      'X-Dialplane-Anything: forged',
      'P-Asserted-Identity: <sip:+15550001111@carrier.example>',
    ];
    const { call, invite, agentTag, ok } = await legitCall(forgedHeaders);
    const agentId = invite.headers.get('x-dialplane-agent-id');
    assert.match(agentId ?? '', /^[0-9a-f-]{36}$/, 'the edge’s own agent id');
    assert.equal(invite.headers.get('x-dialplane-org-id'), server.defaultOrgId);
    assert.ok(invite.headers.has('x-dialplane-phone-number-id'));
    assert.equal(invite.headers.has('x-dialplane-anything'), false);
    assert.equal(invite.headers.get('p-asserted-identity'), '<sip:+15550001111@carrier.example>', 'a trunk’s assertion passes');
    assert.equal(ok.headers.has('x-dialplane-agent-id'), false, 'the 200 towards the carrier carries none');

    // In-dialog, either way: the carrier's re-INVITE and the agent's BYE carry forged headers.
    carrier.send(inDialogText('INVITE', 2, call, carrier, ok, undefined, forgedHeaders));
    const reinvite = await agent.next(request('INVITE'), 're-INVITE at the agent');
    for (const name of ['x-dialplane-agent-id', 'x-dialplane-org-id', 'x-dialplane-anything']) assert.equal(reinvite.headers.has(name), false, name);
    agent.send(replyText(reinvite, 200, 'OK', null, ['X-Dialplane-Agent-Id: from-the-agent', 'P-Asserted-Identity: <sip:boss@agent.example>']));
    const reinviteOk = await carrier.next(response(200), '200 for the re-INVITE');
    assert.equal(reinviteOk.headers.has('x-dialplane-agent-id'), false);
    assert.equal(reinviteOk.headers.has('p-asserted-identity'), false, 'the agent is no trusted source');
    agent.send(calleeRequestText('BYE', 2, invite, agent, agentTag, forgedHeaders));
    const bye = await carrier.next(request('BYE'), 'BYE at the carrier');
    assert.equal(bye.headers.has('x-dialplane-agent-id'), false);
    assert.equal(bye.headers.has('p-asserted-identity'), false);
    carrier.send(replyText(bye, 200, 'OK', null, ['X-Dialplane-Org-Id: from-the-carrier']));
    const byeOk = await agent.next(response(200, 'BYE'), '200 for the BYE');
    assert.equal(byeOk.headers.has('x-dialplane-org-id'), false);
  });

  test('a flood from one source is cut by its token bucket and counted', async () => {
    const from = await attacker();
    const before = await rejected('flood');
    const sent = 100;
    for (let i = 0; i < sent; i++) from.send(forged('OPTIONS', from, `sip:${edgeAddress}`, []));
    await delay(QUIET_MS);
    const answered = from.received.filter(isResponse).length;
    // The default bucket: 20 at once, then 5 a second.
    assert.ok(answered >= 20 && answered <= 26, `answered ${answered} of ${sent}`);
    assert.equal((await rejected('flood')) - before, sent - answered);
    // Another source is not affected.
    const other = await attacker();
    other.send(forged('OPTIONS', other, `sip:${edgeAddress}`, []));
    await other.next(response(403, 'OPTIONS'), 'an answer for another source');
  });

  test('an OPTIONS ping to the edge from an unknown source gets a bare 200, statelessly', async () => {
    const from = await attacker();
    const text = sip([
      `OPTIONS sip:${edgeAddress} SIP/2.0`,
      `Via: SIP/2.0/UDP ${from.hostPort};branch=${unique('z9hG4bK-ping')};rport`,
      'Max-Forwards: 70',
      `From: <sip:monitor@${from.hostPort}>;tag=${unique('p')}`,
      `To: <sip:${edgeAddress}>`,
      `Call-ID: ${unique('ping-')}`,
      'CSeq: 1 OPTIONS',
    ]);
    from.send(text);
    const pong = await from.next(response(200, 'OPTIONS'), '200');
    assert.equal(pong.headers.has('allow'), false, 'nothing beyond what the ping carried');
    assert.ok(from.sizes[0] <= Buffer.byteLength(text) + 32);
  });

  test('a number held by two organizations: the one whose trunk matches the caller more closely wins; the other cannot capture it', async () => {
    const captured = '+15550149999';
    const other = await server.newOrg();
    const theirs = (method: string, path: string, body?: unknown, query?: Record<string, string>) =>
      server.request(method, path, { key: other.apiKey, body, query });
    // The other organization claims the carrier's whole /16 and links the number first.
    const broadCreds = await theirs('POST', '/api/v1/sip-credentials', { server: '127.0.0.2', allowedAddresses: ['127.0.0.0/16'] });
    const theirAgent = await theirs('POST', '/api/v1/agents', { name: 'capturer', sipUri: `sip:capture@${victim.hostPort}` });
    const theirNumber = await theirs('POST', '/api/v1/sip-phone-numbers', { phoneNumber: captured, credentialsId: broadCreds.body.id });
    assert.equal(
      (await theirs('PUT', `/api/v1/sip-phone-numbers/${theirNumber.body.id}/agent-link`, undefined, { agentId: theirAgent.body.agentId })).status,
      200,
    );
    // The owner has the number on its exact trunk address.
    const ownerCreds = (await api('GET', '/api/v1/sip-credentials')).body.items[0];
    assert.equal((await api('POST', '/api/v1/sip-phone-numbers', { phoneNumber: captured, credentialsId: ownerCreds.id })).status, 201);
    await delay(50);

    const before = await rejected('number_capture');
    const call = newCall(edgeAddress, captured);
    carrier.send(inviteText(call, carrier));
    carrier.send(ackText(call, carrier, await carrier.next(response(403), '403 for the captured number')));
    assert.equal(victim.received.length, 0, 'the capturing agent got nothing');
    assert.equal(await rejected('number_capture'), before + 1);
    const warning = logs.find((line) => (line as { msg?: string }).msg?.includes('another organization')) as Record<string, unknown> | undefined;
    assert.ok(warning, 'a warning names both organizations');
    assert.deepEqual([warning.linkedOrgId, warning.closerOrgId], [other.orgId, server.defaultOrgId]);
  });

  test('stored fields are capped: an overlong Call-ID from a trunk is cut in the call record', async () => {
    const other = await server.newOrg();
    const creds = await server.request('POST', '/api/v1/sip-credentials', {
      key: other.apiKey,
      body: { server: '127.0.0.2', allowedAddresses: ['127.0.0.2'] },
    });
    await server.request('POST', '/api/v1/sip-phone-numbers', {
      key: other.apiKey,
      body: { phoneNumber: '+15559990001', credentialsId: creds.body.id },
    });
    await delay(50);
    const call: Call = { ...newCall(edgeAddress, '+15559990001'), callId: `${'y'.repeat(2000)}@carrier` };
    carrier.send(inviteText(call, carrier));
    carrier.send(ackText(call, carrier, await carrier.next(response(480), '480: no agent')));
    const records = await waitForRecords(other.apiKey);
    assert.equal(records[0].callId.length, 256);
  });

  async function waitForRecords(key: string): Promise<Array<{ callId: string }>> {
    for (let i = 0; i < 50; i++) {
      const page = await server.request('GET', '/api/v1/call-records', { key });
      if (page.body.totalCount > 0) return page.body.items;
      await delay(50);
    }
    throw new Error('no call record');
  }
});

describe('SIP edge security: where tenants may aim the edge', () => {
  test('a name that resolves to a refused address is never sent to: the call fails with 503', async () => {
    const server = await startTestServer('sqlite', {
      env: { DIALPLANE_SIP_HOST: '127.0.0.1', DIALPLANE_SIP_T1_MS: String(T1), DIALPLANE_PRIVATE_TARGETS: '127.0.0.2/32' },
    });
    const edge = { host: '127.0.0.1', port: server.server.sipPort };
    const carrier = await UdpPeer.start('127.0.0.2', edge);
    const listener = net.createServer();
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
    try {
      const key = server.defaultKey;
      const creds = await server.request('POST', '/api/v1/sip-credentials', { key, body: { server: '127.0.0.2', allowedAddresses: ['127.0.0.2'] } });
      // `localhost` passes the API (a name), but resolves to 127.0.0.1, which the operator did not allow.
      const port = (listener.address() as net.AddressInfo).port;
      const agent = await server.request('POST', '/api/v1/agents', { key, body: { name: 'a', sipUri: `sip:agent@localhost:${port};transport=tcp` } });
      assert.equal(agent.status, 201);
      const number = await server.request('POST', '/api/v1/sip-phone-numbers', { key, body: { phoneNumber: NUMBER, credentialsId: creds.body.id } });
      await server.request('PUT', `/api/v1/sip-phone-numbers/${number.body.id}/agent-link`, { key, query: { agentId: agent.body.agentId } });
      let connections = 0;
      listener.on('connection', (socket) => {
        connections++;
        socket.destroy();
      });
      carrier.send(inviteText(newCall(`127.0.0.1:${edge.port}`, NUMBER), carrier));
      await carrier.next(response(503), '503');
      assert.equal(connections, 0);
    } finally {
      await carrier.close();
      await new Promise((resolve) => listener.close(resolve));
      await server.close();
    }
  });
});

test('TLS handshakes: a stranger gets a burst and then its rate; a trunk’s address is not limited', async () => {
  const pki = makeTestPki();
  const server = await startTestServer('sqlite', {
    env: {
      DIALPLANE_SIP_HOST: '127.0.0.1',
      DIALPLANE_SIP_TLS_PORT: '0',
      DIALPLANE_SIP_TLS_CERT: pki.cert,
      DIALPLANE_SIP_TLS_KEY: pki.key,
      DIALPLANE_SIP_TLS_HANDSHAKE_BURST: '2',
      DIALPLANE_SIP_TLS_HANDSHAKE_RATE: '0.01',
    },
  });
  try {
    const creds = await server.request('POST', '/api/v1/sip-credentials', {
      key: server.defaultKey,
      body: { server: '127.0.0.2', transport: 'tls', allowedAddresses: ['127.0.0.2'] },
    });
    assert.equal(creds.status, 201);
    const ca = fs.readFileSync(pki.caCert);
    const handshake = (localAddress: string): Promise<'secure' | 'refused'> =>
      new Promise((resolve) => {
        const tcp = net.connect({ host: '127.0.0.1', port: server.server.sipTlsPort!, localAddress });
        tcp.on('error', () => undefined);
        const socket = tls.connect({ socket: tcp, host: '127.0.0.1', ca });
        socket.once('secureConnect', () => {
          socket.destroy();
          resolve('secure');
        });
        socket.once('error', () => resolve('refused'));
        socket.once('close', () => resolve('refused'));
      });
    const stranger = [];
    for (let i = 0; i < 4; i++) stranger.push(await handshake('127.0.0.61'));
    assert.deepEqual(stranger, ['secure', 'secure', 'refused', 'refused']);
    const trunk = [];
    for (let i = 0; i < 4; i++) trunk.push(await handshake('127.0.0.2'));
    assert.deepEqual(trunk, ['secure', 'secure', 'secure', 'secure']);
    const metrics = (await server.request('GET', '/metrics')).body as string;
    assert.match(metrics, /dialplane_sip_tcp_refusals\{reason="tls_handshake_rate"\} 2\b/);
  } finally {
    await server.close();
    pki.remove();
  }
});
