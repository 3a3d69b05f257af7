import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { testBackends } from '../support/backends.ts';
import { freshDatabase, startTestServer, type TestDatabase, type TestServer } from '../support/server.ts';
import { freePort } from '../support/sipp.ts';
import { calleeRequestText, inDialogText, inviteText, newCall, replyText, request, response, UdpPeer } from '../support/sip-peers.ts';

/**
 * Two instances on one PostgreSQL, each naming the other in DIALPLANE_SIP_ALIASES (as instances
 * behind one name would): a call set up through A goes on through B. B keeps no state of the
 * call; it relays in-dialog requests because A's Record-Route carries a signature B verifies
 * with the key both derive from the shared DIALPLANE_SECRET_KEY.
 */
const postgres = (await testBackends()).includes('postgres');
const NUMBER = '+15550150000';

describe('a call across two instances', { skip: !postgres && 'PostgreSQL not available' }, () => {
  let database: TestDatabase;
  let a: TestServer;
  let b: TestServer;
  let carrier: UdpPeer;
  let agent: UdpPeer;
  const edgeA = { host: '127.0.0.1', port: 0 };
  const edgeB = { host: '127.0.0.1', port: 0 };

  before(async () => {
    database = await freshDatabase('postgres');
    edgeA.port = await freePort();
    edgeB.port = await freePort();
    const env = (own: number, other: number) => ({
      DIALPLANE_SIP_HOST: '127.0.0.1',
      DIALPLANE_SIP_PORT: String(own),
      DIALPLANE_SIP_ALIASES: `127.0.0.1:${other}`,
      DIALPLANE_SIP_T1_MS: '100',
    });
    a = await startTestServer('postgres', { database, env: env(edgeA.port, edgeB.port) });
    b = await startTestServer('postgres', { database, env: env(edgeB.port, edgeA.port) });
    carrier = await UdpPeer.start('127.0.0.2', edgeA);
    agent = await UdpPeer.start('127.0.0.3', edgeA);
    const key = a.defaultKey;
    const creds = await a.request('POST', '/api/v1/sip-credentials', {
      key,
      body: { server: `127.0.0.2:${carrier.port}`, allowedAddresses: ['127.0.0.2'] },
    });
    const runtime = await a.request('POST', '/api/v1/agents', { key, body: { name: 'agent', sipUri: `sip:agent@${agent.hostPort}` } });
    const number = await a.request('POST', '/api/v1/sip-phone-numbers', { key, body: { phoneNumber: NUMBER, credentialsId: creds.body.id } });
    assert.equal(
      (await a.request('PUT', `/api/v1/sip-phone-numbers/${number.body.id}/agent-link`, { key, query: { agentId: runtime.body.agentId } })).status,
      200,
    );
  });
  after(async () => {
    await carrier?.close();
    await agent?.close();
    await a?.close();
    await b?.close();
    await database?.drop();
  });

  test('set up through A; ACK, re-INVITEs and BYE from either side through B', async () => {
    const call = newCall(`127.0.0.1:${edgeA.port}`, NUMBER);
    carrier.send(inviteText(call, carrier));
    const invite = await agent.next(request('INVITE'), 'INVITE at the agent, through A');
    const agentTag = 'agent-a';
    agent.send(replyText(invite, 200, 'OK', agentTag, [`Contact: <sip:agent@${agent.hostPort}>`]));
    const ok = await carrier.next(response(200), '200 at the carrier');
    assert.match(ok.headers.get('record-route')!, new RegExp(`^<sip:127\\.0\\.0\\.1:${edgeA.port};lr;`), 'A is on the route');

    carrier.sendTo(inDialogText('ACK', 1, call, carrier, ok), '127.0.0.1', edgeB.port);
    await agent.next(request('ACK'), 'ACK through B');

    carrier.sendTo(inDialogText('INVITE', 2, call, carrier, ok), '127.0.0.1', edgeB.port);
    const reinvite = await agent.next(request('INVITE'), 'the carrier’s re-INVITE through B');
    assert.match(reinvite.headers.get('via')!, new RegExp(`127\\.0\\.0\\.1:${edgeB.port}`), 'B relayed it');
    agent.respond(reinvite, replyText(reinvite, 200, 'OK', null, [`Contact: <sip:agent@${agent.hostPort}>`]));
    await carrier.next(response(200), '200 for the re-INVITE, back through B');

    agent.sendTo(calleeRequestText('INVITE', 1, invite, agent, agentTag), '127.0.0.1', edgeB.port);
    const back = await carrier.next(request('INVITE'), 'the agent’s re-INVITE through B');
    carrier.respond(back, replyText(back, 200, 'OK', null, [`Contact: <sip:alice@${carrier.hostPort}>`]));
    await agent.next(response(200), '200 for the agent’s re-INVITE');

    agent.sendTo(calleeRequestText('BYE', 2, invite, agent, agentTag), '127.0.0.1', edgeB.port);
    const bye = await carrier.next(request('BYE'), 'the agent’s BYE through B');
    carrier.respond(bye, replyText(bye, 200, 'OK', null));
    await agent.next(response(200, 'BYE'), '200 for the BYE');
  });

  test('the carrier may hang up through B as well; a forged Route is refused there too', async () => {
    const call = newCall(`127.0.0.1:${edgeA.port}`, NUMBER);
    carrier.send(inviteText(call, carrier));
    const invite = await agent.next(request('INVITE'), 'INVITE');
    agent.send(replyText(invite, 200, 'OK', 'agent-b', [`Contact: <sip:agent@${agent.hostPort}>`]));
    const ok = await carrier.next(response(200), '200');
    carrier.sendTo(inDialogText('ACK', 1, call, carrier, ok), '127.0.0.1', edgeB.port);
    await agent.next(request('ACK'), 'ACK');
    carrier.sendTo(inDialogText('BYE', 2, call, carrier, ok), '127.0.0.1', edgeB.port);
    const bye = await agent.next(request('BYE'), 'the carrier’s BYE through B');
    agent.respond(bye, replyText(bye, 200, 'OK', null));
    await carrier.next(response(200, 'BYE'), '200 for the BYE');

    const forged = inDialogText('BYE', 3, { ...call, callId: `${call.callId}-forged` }, carrier, ok);
    carrier.sendTo(forged, '127.0.0.1', edgeB.port);
    await carrier.next(response(403, 'BYE'), '403 from B for a Route signed for another call');
    await delay(200);
    assert.equal(agent.received.filter(request('BYE')).length, 0);
  });
});
