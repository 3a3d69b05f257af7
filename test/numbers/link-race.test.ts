import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { testBackends } from '../support/backends.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

/**
 * docs/api.md, Links: one inbound agent per normalized number in the whole system, under any
 * concurrency. Ten organizations each own a record of the same number (written differently)
 * and fire 50 link requests at once; the database must let exactly one through.
 */
for (const backend of await testBackends()) {
  describe(`inbound link race (${backend})`, () => {
    let server: TestServer;
    before(async () => {
      server = await startTestServer(backend);
    });
    after(() => server.close());

    test('50 concurrent links from 10 organizations: exactly one succeeds', async () => {
      const spellings = ['+1 (555) 010-0000', '0015550100000', '15550100000', '+1.555.010.0000', '+15550100000'];
      const contenders = await Promise.all(
        Array.from({ length: 10 }, async (_, i) => {
          const org = await server.newOrg();
          const key = org.apiKey;
          const creds = await server.request('POST', '/api/v1/sip-credentials', { key, body: { server: 'sip.example.com' } });
          const number = await server.request('POST', '/api/v1/sip-phone-numbers', {
            key,
            body: { phoneNumber: spellings[i % spellings.length], credentialsId: creds.body.id },
          });
          assert.equal(number.status, 201);
          const agents = await Promise.all(
            Array.from({ length: 5 }, (_, j) => server.request('POST', '/api/v1/agents', { key, body: { name: `agent ${j}` } })),
          );
          return { key, numberId: number.body.id as string, agentIds: agents.map((a) => a.body.agentId as string) };
        }),
      );

      const attempts = contenders.flatMap((c) =>
        c.agentIds.map((agentId) => server.request('PUT', `/api/v1/sip-phone-numbers/${c.numberId}/agent-link`, { key: c.key, query: { agentId } })),
      );
      const responses = await Promise.all(attempts);
      assert.equal(responses.length, 50);
      const winners = responses.filter((r) => r.status === 200);
      const losers = responses.filter((r) => r.status === 409);
      const winningOrgs = new Set(winners.map((r) => r.body.orgId));
      // Within the winning organization, relinks to other agents are silent replacements (200).
      assert.equal(winningOrgs.size, 1, 'exactly one organization holds the inbound link');
      assert.equal(winners.length + losers.length, 50);
      for (const r of losers) {
        assert.match(r.body.detail, /already linked/);
        assert.doesNotMatch(r.body.detail, /[0-9a-f]{8}-[0-9a-f]{4}-/, 'the 409 does not name the other organization');
      }

      const rows = await server.server.ctx.db
        .selectFrom('phone_numbers')
        .select(['id', 'incoming_calls_agent_id'])
        .where('phone_number', '=', '+15550100000')
        .where('incoming_calls_agent_id', 'is not', null)
        .execute();
      assert.equal(rows.length, 1, 'the database holds exactly one inbound link');
    });
  });
}
