import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { testBackends } from '../support/backends.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { assertProblem, clientFor, missingId, nextMillisecond } from '../support/api.ts';

/** docs/api.md, Links: linking numbers and agents. */
let sequence = 0;
/** A number no other test of this file uses, written with separators. */
const freshNumber = () => `+1 555 011 ${String(1000 + sequence++).padStart(4, '0')}`;
const normalized = (spelled: string) => spelled.replace(/ /g, '');

for (const backend of await testBackends()) {
  describe(`agent links (${backend})`, () => {
    let server: TestServer;

    before(async () => {
      server = await startTestServer(backend);
    });
    after(() => server.close());

    /** An organization with credentials, one number and two agents. */
    async function setup(phoneNumber = freshNumber()) {
      const org = await clientFor(server);
      const creds = await org.createCredentials();
      const number = await org.createNumber({ phoneNumber, credentialsId: creds.id });
      const agent1 = await org.createAgent({ name: 'first' });
      const agent2 = await org.createAgent({ name: 'second' });
      return { org, creds, number, agent1, agent2 };
    }

    test('mode=inbound (the default) sets incomingCallsAgentId and answers the number', async () => {
      const { org, number, agent1 } = await setup();
      await nextMillisecond();
      const res = await org.linkRaw(number.id, { agentId: agent1.agentId });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, { ...number, incomingCallsAgentId: agent1.agentId, lastUpdateTime: res.body.lastUpdateTime });
      assert.ok(res.body.lastUpdateTime > number.lastUpdateTime);
      assert.deepEqual(await org.getNumber(number.id), res.body);
      assert.equal((await org.getAgent(agent1.agentId)).outboundPhoneNumberId, null, 'inbound does not touch outbound');
    });

    test('relinking inbound silently replaces the previous agent; the same agent again is a no-op', async () => {
      const { org, number, agent1, agent2 } = await setup();
      const first = await org.link(number.id, agent1.agentId, 'inbound');
      await nextMillisecond();
      const second = await org.link(number.id, agent2.agentId, 'inbound');
      assert.equal(second.incomingCallsAgentId, agent2.agentId);
      assert.ok(second.lastUpdateTime > first.lastUpdateTime);
      const uses = await org.req('GET', `/api/v1/sip-phone-numbers/${number.id}/affected-agents`);
      assert.deepEqual(uses.body.affectedAgents, [{ agentId: agent2.agentId, agentName: 'second', uses: ['inbound'] }]);

      await nextMillisecond();
      const again = await org.linkRaw(number.id, { agentId: agent2.agentId, mode: 'inbound' });
      assert.equal(again.status, 200);
      assert.deepEqual(again.body, second, 'no-op: lastUpdateTime unchanged');
      assert.deepEqual(await org.getNumber(number.id), second);
    });

    test('mode=replaceOutbound sets the agent’s outbound number, replacing the previous one', async () => {
      const { org, creds, number, agent1 } = await setup();
      const number2 = await org.createNumber({ phoneNumber: freshNumber(), credentialsId: creds.id });
      await nextMillisecond();
      const res = await org.linkRaw(number.id, { agentId: agent1.agentId, mode: 'replaceOutbound' });
      assert.equal(res.status, 200);
      assert.deepEqual(res.body, number, 'answers the number, whose own fields do not change');
      const agentAfter = await org.getAgent(agent1.agentId);
      assert.equal(agentAfter.outboundPhoneNumberId, number.id);
      assert.ok(agentAfter.lastUpdateTime > agent1.lastUpdateTime, 'the agent changed');

      const again = await org.linkRaw(number.id, { agentId: agent1.agentId, mode: 'replaceOutbound' });
      assert.equal(again.status, 200);
      assert.deepEqual(await org.getAgent(agent1.agentId), agentAfter, 'the same outbound link again is a no-op');

      await org.link(number2.id, agent1.agentId, 'replaceOutbound');
      assert.equal((await org.getAgent(agent1.agentId)).outboundPhoneNumberId, number2.id);
      const list = await org.req('GET', '/api/v1/sip-phone-numbers', { query: { linkedAgentId: agent1.agentId } });
      assert.deepEqual(
        list.body.items.map((n: any) => n.id),
        [number2.id],
        'only one outbound number per agent',
      );
      assert.equal((await org.getNumber(number.id)).incomingCallsAgentId, null);
    });

    test('many agents may share one outbound number, and one agent may hold it both ways', async () => {
      const { org, number, agent1, agent2 } = await setup();
      const agent3 = await org.createAgent({ name: 'third' });
      for (const a of [agent1, agent2, agent3]) await org.link(number.id, a.agentId, 'replaceOutbound');
      await org.link(number.id, agent1.agentId, 'inbound');
      for (const a of [agent1, agent2, agent3]) assert.equal((await org.getAgent(a.agentId)).outboundPhoneNumberId, number.id);
      const uses = await org.req('GET', `/api/v1/sip-phone-numbers/${number.id}/affected-agents`);
      assert.equal(uses.body.affectedAgents.length, 3);
      const first = uses.body.affectedAgents.find((a: any) => a.agentId === agent1.agentId);
      assert.deepEqual(first.uses, ['inbound', 'outbound']);
    });

    test('bad mode or agentId is 400', async () => {
      const { org, number, agent1 } = await setup();
      for (const mode of ['outbound', 'INBOUND', 'Inbound', 'replace', '']) {
        assertProblem(await org.linkRaw(number.id, { agentId: agent1.agentId, mode }), 400, ['mode']);
        assertProblem(await org.unlinkRaw(number.id, { agentId: agent1.agentId, mode }), 400, ['mode']);
      }
      assertProblem(await org.linkRaw(number.id, {}), 400, ['agentId']);
      assertProblem(await org.linkRaw(number.id, { mode: 'replaceOutbound' }), 400, ['agentId']);
      for (const agentId of ['', 'abc', `${agent1.agentId}x`, agent1.agentId.slice(1)]) {
        assertProblem(await org.linkRaw(number.id, { agentId }), 400, ['agentId']);
      }
      assertProblem(await org.req('PUT', '/api/v1/sip-phone-numbers/not-a-uuid/agent-link', { query: { agentId: agent1.agentId } }), 400, ['id']);
      assert.deepEqual(await org.getNumber(number.id), number);
    });

    test('links racing on one number of one organization all succeed; one of them stands', async () => {
      const { org, number, agent1, agent2 } = await setup();
      const agents = [agent1.agentId, agent2.agentId];
      const answers = await Promise.all(Array.from({ length: 40 }, (_, i) => org.linkRaw(number.id, { agentId: agents[i % 2]! })));
      assert.deepEqual(
        answers.map((res) => res.status),
        answers.map(() => 200),
      );
      const final = await org.getNumber(number.id);
      assert.ok(agents.includes(final.incomingCallsAgentId));
      const uses = await org.req('GET', `/api/v1/sip-phone-numbers/${number.id}/affected-agents`);
      assert.deepEqual(
        uses.body.affectedAgents.map((a: { agentId: string }) => a.agentId),
        [final.incomingCallsAgentId],
      );
    });

    test('404 says whether the number or the agent was not found', async () => {
      const { org, number, agent1 } = await setup();
      const other = await setup();
      const numberMissing = [
        await org.linkRaw(missingId(), { agentId: agent1.agentId }),
        await org.linkRaw(other.number.id, { agentId: agent1.agentId, mode: 'replaceOutbound' }),
        await org.unlinkRaw(missingId(), { mode: 'inbound' }),
        await org.unlinkRaw(other.number.id, { mode: 'replaceOutbound', agentId: agent1.agentId }),
      ];
      for (const res of numberMissing) assertProblem(res, 404, [], /phone number/i);
      const agentMissing = [
        await org.linkRaw(number.id, { agentId: missingId() }),
        await org.linkRaw(number.id, { agentId: other.agent1.agentId }),
        await org.linkRaw(number.id, { agentId: other.agent1.agentId, mode: 'replaceOutbound' }),
        await org.unlinkRaw(number.id, { mode: 'replaceOutbound', agentId: missingId() }),
      ];
      for (const res of agentMissing) {
        assertProblem(res, 404, [], /agent/i);
        assert.doesNotMatch(res.body.detail, /phone number/i);
      }
      assert.deepEqual(await org.getNumber(number.id), number);
      assert.deepEqual(await other.org.getAgent(other.agent1.agentId), other.agent1);
    });

    test('another organization linking the same number inbound gets 409 that names no one', async () => {
      const spelled = freshNumber();
      const a = await setup(spelled);
      const b = await setup(`00${normalized(spelled).slice(1)}`);
      assert.equal(b.number.phoneNumber, a.number.phoneNumber);
      const linked = await a.org.link(a.number.id, a.agent1.agentId);

      for (const mode of [undefined, 'inbound']) {
        const res = await b.org.linkRaw(b.number.id, { agentId: b.agent1.agentId, mode });
        assertProblem(res, 409, [], /already linked/);
        for (const secretOfA of [a.org.orgId, a.number.id, a.agent1.agentId, a.creds.id]) {
          assert.ok(!JSON.stringify(res.body).includes(secretOfA), 'the 409 reveals nothing of the other organization');
        }
      }
      assert.equal((await b.org.getNumber(b.number.id)).incomingCallsAgentId, null);
      assert.deepEqual(await a.org.getNumber(a.number.id), linked);

      // Outbound use of the same number is not exclusive.
      await b.org.link(b.number.id, b.agent1.agentId, 'replaceOutbound');
      // The holder may still move its inbound link between its own agents.
      await a.org.link(a.number.id, a.agent2.agentId);

      // Once the holder unlinks, the other organization can link.
      const unlinked = await a.org.unlinkRaw(a.number.id, { mode: 'inbound' });
      assert.equal(unlinked.status, 200);
      assert.equal(unlinked.body.incomingCallsAgentId, null);
      const now = await b.org.link(b.number.id, b.agent2.agentId);
      assert.equal(now.incomingCallsAgentId, b.agent2.agentId);
      assertProblem(await a.org.linkRaw(a.number.id, { agentId: a.agent1.agentId }), 409, [], /already linked/);
    });

    test('two records of one number in one organization: the second inbound link is 409 too', async () => {
      const { org, number, agent1, agent2 } = await setup();
      const otherCreds = await org.createCredentials({ server: 'backup.example.com' });
      const twin = await org.createNumber({ phoneNumber: `00${number.phoneNumber.slice(1)}`, credentialsId: otherCreds.id });
      assert.equal(twin.phoneNumber, number.phoneNumber);
      await org.link(number.id, agent1.agentId);
      assertProblem(await org.linkRaw(twin.id, { agentId: agent2.agentId }), 409, [], /already linked/);
      assertProblem(await org.linkRaw(twin.id, { agentId: agent1.agentId }), 409, [], /already linked/);
      assert.equal((await org.getNumber(twin.id)).incomingCallsAgentId, null);
      await org.unlinkRaw(number.id, {});
      assert.equal((await org.link(twin.id, agent2.agentId)).incomingCallsAgentId, agent2.agentId);
    });

    test('unlink inbound; unlink replaceOutbound needs agentId; unlinking what is not linked is a no-op', async () => {
      const { org, creds, number, agent1, agent2 } = await setup();
      const elsewhere = await org.createNumber({ phoneNumber: freshNumber(), credentialsId: creds.id });
      await org.link(number.id, agent1.agentId);
      await org.link(number.id, agent1.agentId, 'replaceOutbound');
      await org.link(elsewhere.id, agent2.agentId, 'replaceOutbound');
      const linked = await org.getNumber(number.id);
      await nextMillisecond();

      assertProblem(await org.unlinkRaw(number.id, { mode: 'replaceOutbound' }), 400, ['agentId']);
      assertProblem(await org.unlinkRaw(number.id, { mode: 'replaceOutbound', agentId: 'x' }), 400, ['agentId']);

      // agent2's outbound number is another one: nothing to clear.
      const notThis = await org.unlinkRaw(number.id, { mode: 'replaceOutbound', agentId: agent2.agentId });
      assert.equal(notThis.status, 200);
      assert.deepEqual(notThis.body, linked);
      assert.equal((await org.getAgent(agent2.agentId)).outboundPhoneNumberId, elsewhere.id);

      const outbound = await org.unlinkRaw(number.id, { mode: 'replaceOutbound', agentId: agent1.agentId });
      assert.equal(outbound.status, 200);
      assert.deepEqual(outbound.body, linked, 'answers the number; its inbound link stays');
      assert.equal((await org.getAgent(agent1.agentId)).outboundPhoneNumberId, null);
      const outboundAgain = await org.unlinkRaw(number.id, { mode: 'replaceOutbound', agentId: agent1.agentId });
      assert.equal(outboundAgain.status, 200);

      const inbound = await org.unlinkRaw(number.id, { mode: 'inbound' });
      assert.equal(inbound.status, 200);
      assert.equal(inbound.body.incomingCallsAgentId, null);
      assert.ok(inbound.body.lastUpdateTime > linked.lastUpdateTime);
      assert.deepEqual(await org.getNumber(number.id), inbound.body);

      await nextMillisecond();
      const noop = await org.unlinkRaw(number.id, {});
      assert.equal(noop.status, 200);
      assert.deepEqual(noop.body, inbound.body, 'unlinking what is not linked changes nothing');
      const list = await org.req('GET', '/api/v1/sip-phone-numbers', { query: { unlinkedOnly: true } });
      assert.deepEqual(
        list.body.items.map((n: any) => n.id),
        [number.id],
      );
    });
  });
}
