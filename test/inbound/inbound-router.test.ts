import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseMessage } from '../../src/sip/parser.ts';
import type { SipRequest } from '../../src/sip/message.ts';
import type { MessageSource } from '../../src/sip/transport.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

/** Which number an INVITE is for: the Request-URI's user, else (registered Contact) the To URI's. */
describe('inbound router: the number called', () => {
  let server: TestServer;
  let numberId: string;
  let agentId: string;
  const source: MessageSource = { transport: 'udp', address: '127.0.0.1', port: 5080, connection: null };

  const invite = (requestUser: string, toUser: string): SipRequest => {
    const parsed = parseMessage(
      [
        `INVITE sip:${requestUser}@127.0.0.1:5060 SIP/2.0`,
        'Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-test',
        'From: <sip:caller@127.0.0.1>;tag=1',
        `To: <sip:${toUser}@127.0.0.1>`,
        'Call-ID: inbound-router-test',
        'CSeq: 1 INVITE',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );
    assert.ok(parsed.ok);
    return parsed.value as SipRequest;
  };

  before(async () => {
    server = await startTestServer('sqlite');
    const key = server.defaultKey;
    const creds = await server.request('POST', '/api/v1/sip-credentials', { key, body: { server: '127.0.0.1' } });
    const agent = await server.request('POST', '/api/v1/agents', { key, body: { name: 'a', sipUri: 'sip:agent@127.0.0.1:5090' } });
    const number = await server.request('POST', '/api/v1/sip-phone-numbers', {
      key,
      body: { phoneNumber: '+15550102000', credentialsId: creds.body.id },
    });
    agentId = agent.body.agentId;
    numberId = number.body.id;
    await server.request('PUT', `/api/v1/sip-phone-numbers/${numberId}/agent-link`, { key, query: { agentId } });
  });
  after(() => server.close());

  const table = [
    { name: 'the Request-URI names the number', requestUser: '15550102000', toUser: 'someone', routed: true },
    { name: 'the Request-URI is a registered Contact user, To names the number', requestUser: 'trunkuser', toUser: '+15550102000', routed: true },
    { name: 'neither names a number', requestUser: 'trunkuser', toUser: 'nobody', routed: false },
  ];
  for (const row of table) {
    test(row.name, () => {
      const decision = server.server.edge.router.route(invite(row.requestUser, row.toUser), source);
      if (!row.routed) {
        assert.equal(decision.action, 'reject');
        assert.equal(decision.action === 'reject' && decision.status, 404);
        return;
      }
      assert.equal(decision.action, 'forward');
      if (decision.action !== 'forward') return;
      assert.equal(decision.target, 'sip:agent@127.0.0.1:5090');
      assert.deepEqual(
        new Map(decision.addHeaders),
        new Map([
          ['X-Dialplane-Agent-Id', agentId],
          ['X-Dialplane-Org-Id', server.defaultOrgId],
          ['X-Dialplane-Phone-Number-Id', numberId],
        ]),
      );
      server.server.edge.router.done({
        request: invite(row.requestUser, row.toUser),
        source,
        decision,
        finalStatus: 200,
        startedAt: new Date(),
        endedAt: new Date(),
        context: decision.context,
      });
    });
  }
});
