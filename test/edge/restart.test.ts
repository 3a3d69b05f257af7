import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase, startTestServer } from '../support/server.ts';
import { freePort } from '../support/sipp.ts';
import { calleeRequestText, inDialogText, inviteText, newCall, replyText, request, response, UdpPeer } from '../support/sip-peers.ts';

/**
 * The edge keeps no state per dialog: a call set up before a restart goes on after it, because
 * the new process derives the same signing key from the same secret (here, SQLite's secret.key
 * beside the database file) and so accepts the Record-Route the old one signed.
 */
test('a call set up before a restart is relayed after it', async () => {
  const database = await freshDatabase('sqlite');
  const port = await freePort();
  const env = { DIALPLANE_SIP_HOST: '127.0.0.1', DIALPLANE_SIP_PORT: String(port), DIALPLANE_SIP_T1_MS: '100' };
  const edge = { host: '127.0.0.1', port };
  const carrier = await UdpPeer.start('127.0.0.2', edge);
  const agent = await UdpPeer.start('127.0.0.3', edge);
  let server = await startTestServer('sqlite', { database, env });
  try {
    const key = server.defaultKey;
    const creds = await server.request('POST', '/api/v1/sip-credentials', {
      key,
      body: { server: `127.0.0.2:${carrier.port}`, allowedAddresses: ['127.0.0.2'] },
    });
    const runtime = await server.request('POST', '/api/v1/agents', { key, body: { name: 'agent', sipUri: `sip:agent@${agent.hostPort}` } });
    const number = await server.request('POST', '/api/v1/sip-phone-numbers', {
      key,
      body: { phoneNumber: '+15550160000', credentialsId: creds.body.id },
    });
    await server.request('PUT', `/api/v1/sip-phone-numbers/${number.body.id}/agent-link`, { key, query: { agentId: runtime.body.agentId } });

    const call = newCall(`127.0.0.1:${port}`, '+15550160000');
    carrier.send(inviteText(call, carrier));
    const invite = await agent.next(request('INVITE'), 'INVITE');
    agent.send(replyText(invite, 200, 'OK', 'agent-r', [`Contact: <sip:agent@${agent.hostPort}>`]));
    const ok = await carrier.next(response(200), '200');
    carrier.send(inDialogText('ACK', 1, call, carrier, ok));
    await agent.next(request('ACK'), 'ACK');

    await server.close();
    server = await startTestServer('sqlite', { database, env });

    agent.send(calleeRequestText('BYE', 1, invite, agent, 'agent-r'));
    const bye = await carrier.next(request('BYE'), 'the BYE, relayed by the new process');
    carrier.send(replyText(bye, 200, 'OK', null));
    await agent.next(response(200, 'BYE'), '200 for the BYE');
    assert.equal(ok.headers.getAll('record-route').length, 1);
  } finally {
    await carrier.close();
    await agent.close();
    await server.close();
    await database.drop();
  }
});
