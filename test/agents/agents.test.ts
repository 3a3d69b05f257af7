import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { testBackends } from '../support/backends.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { UUID, assertProblem, clientFor, missingId, nextMillisecond, type Client } from '../support/api.ts';

/** docs/api.md, Agents: agents. */
const BASE = '/api/v1/agents';

const FIELDS = [
  'additionalData',
  'agentId',
  'config',
  'createdTime',
  'description',
  'isEnabled',
  'lastUpdateTime',
  'name',
  'orgId',
  'outboundPhoneNumberId',
  'sipUri',
];

const richConfig = {
  voice: { id: 'v-1', speed: 1.25, stops: [0, 0.5, 1] },
  prompt: 'Hello, ünïcødé ✓ "quoted" \\ backslash\nnew line',
  tools: [{ name: 'lookup', params: { nested: { deep: [null, true, false, { x: -1e-9 }] } } }],
  empty: {},
  emptyList: [],
  nothing: null,
};

for (const backend of await testBackends()) {
  describe(`agents (${backend})`, () => {
    let server: TestServer;
    let api: Client;

    before(async () => {
      server = await startTestServer(backend);
      api = await clientFor(server, 'default');
    });
    after(() => server.close());

    test('POST creates with the documented defaults', async () => {
      const res = await api.req('POST', BASE, { body: { name: 'Support' } });
      assert.equal(res.status, 201);
      const a = res.body;
      assert.deepEqual(Object.keys(a).sort(), FIELDS);
      assert.match(a.agentId, UUID);
      assert.equal(a.orgId, api.orgId);
      assert.equal(a.name, 'Support');
      assert.equal(a.description, null);
      assert.equal(a.isEnabled, true);
      assert.deepEqual(a.config, {});
      assert.deepEqual(a.additionalData, {});
      assert.equal(a.sipUri, null);
      assert.equal(a.outboundPhoneNumberId, null);
      assert.equal(a.createdTime, a.lastUpdateTime);
    });

    test('config and additionalData are kept exactly as given', async () => {
      const body = {
        name: 'Rich',
        description: 'with everything',
        isEnabled: false,
        config: richConfig,
        additionalData: { crm: { id: 42, tags: ['a', 'b'] }, 'key with spaces': 'v' },
        sipUri: 'sip:agent-7@10.0.0.5:5070;transport=tcp',
      };
      const created = await api.req('POST', BASE, { body });
      assert.equal(created.status, 201);
      for (const [k, v] of Object.entries(body)) assert.deepEqual(created.body[k], v, k);
      const got = await api.req('GET', `${BASE}/${created.body.agentId}`);
      assert.equal(got.status, 200);
      assert.deepEqual(got.body, created.body);
      const listed = (await api.req('GET', BASE)).body.find((a: any) => a.agentId === created.body.agentId);
      assert.deepEqual(listed, created.body);
    });

    test('GET list: a JSON array of the organization’s agents, newest first', async () => {
      const org = await clientFor(server);
      const empty = await org.req('GET', BASE);
      assert.equal(empty.status, 200);
      assert.deepEqual(empty.body, []);
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) {
        ids.push((await org.createAgent({ name: `a${i}` })).agentId);
        await nextMillisecond();
      }
      const list = await org.req('GET', BASE);
      assert.ok(Array.isArray(list.body));
      assert.deepEqual(
        list.body.map((a: any) => a.agentId),
        [...ids].reverse(),
      );
      assert.ok(list.body.every((a: any) => a.orgId === org.orgId));
    });

    test('GET of a missing agent is 404', async () => {
      assertProblem(await api.req('GET', `${BASE}/${missingId()}`), 404, [], /Agent .* not found/);
    });

    test('PUT is partial: {"isEnabled": false} alone disables and changes nothing else', async () => {
      const created = await api.createAgent({
        name: 'Partial',
        description: 'd',
        config: richConfig,
        additionalData: { a: 1 },
        sipUri: 'sip:partial@example.com',
      });
      await nextMillisecond();
      const disabled = await api.req('PUT', `${BASE}/${created.agentId}`, { body: { isEnabled: false } });
      assert.equal(disabled.status, 200);
      assert.ok(disabled.body.lastUpdateTime > created.lastUpdateTime, 'lastUpdateTime moves');
      assert.deepEqual(disabled.body, { ...created, isEnabled: false, lastUpdateTime: disabled.body.lastUpdateTime });
      assert.deepEqual(await api.getAgent(created.agentId), disabled.body);

      // Other partial updates leave isEnabled alone.
      await nextMillisecond();
      const renamed = await api.req('PUT', `${BASE}/${created.agentId}`, { body: { name: 'Renamed' } });
      assert.equal(renamed.status, 200);
      assert.deepEqual(renamed.body, { ...disabled.body, name: 'Renamed', lastUpdateTime: renamed.body.lastUpdateTime });
      assert.equal(renamed.body.isEnabled, false, 'a partial update does not re-enable the agent');
      assert.ok(renamed.body.lastUpdateTime > disabled.body.lastUpdateTime);

      // A field sent replaces that field: objects are replaced, not merged.
      const reconfigured = await api.req('PUT', `${BASE}/${created.agentId}`, {
        body: { config: { only: 'this' }, description: null, sipUri: null },
      });
      assert.deepEqual(reconfigured.body, {
        ...renamed.body,
        config: { only: 'this' },
        description: null,
        sipUri: null,
        lastUpdateTime: reconfigured.body.lastUpdateTime,
      });

      const enabled = await api.req('PUT', `${BASE}/${created.agentId}`, { body: { isEnabled: true } });
      assert.equal(enabled.body.isEnabled, true);
      assert.deepEqual(enabled.body.additionalData, { a: 1 });
    });

    test('lastUpdateTime moves only on a real change', async () => {
      const created = await api.createAgent({ name: 'Still', config: { a: { b: [1, 2] } }, isEnabled: false });
      await nextMillisecond();
      const noops = [
        {},
        { isEnabled: false },
        { name: 'Still' },
        { config: { a: { b: [1, 2] } } },
        { name: 'Still', isEnabled: false, description: null, sipUri: null, additionalData: {} },
      ];
      for (const body of noops) {
        const res = await api.req('PUT', `${BASE}/${created.agentId}`, { body });
        assert.equal(res.status, 200);
        assert.deepEqual(res.body, created, `no change for ${JSON.stringify(body)}`);
      }
      assert.deepEqual(await api.getAgent(created.agentId), created);
      const changed = await api.req('PUT', `${BASE}/${created.agentId}`, { body: { config: { a: { b: [1, 2, 3] } } } });
      assert.ok(changed.body.lastUpdateTime > created.lastUpdateTime);
    });

    test('PUT of a missing agent is 404', async () => {
      assertProblem(await api.req('PUT', `${BASE}/${missingId()}`, { body: { isEnabled: false } }), 404);
    });

    test('validation of POST and PUT bodies', async () => {
      const agent = await api.createAgent({ name: 'Valid' });
      const cases: [Record<string, unknown>, string][] = [
        [{ name: '' }, 'name'],
        [{ name: 'x'.repeat(256) }, 'name'],
        [{ name: null }, 'name'],
        [{ name: 42 }, 'name'],
        [{ isEnabled: 'false' }, 'isEnabled'],
        [{ isEnabled: 0 }, 'isEnabled'],
        [{ config: [] }, 'config'],
        [{ config: null }, 'config'],
        [{ config: 'text' }, 'config'],
        [{ additionalData: 7 }, 'additionalData'],
        [{ description: 'x'.repeat(4097) }, 'description'],
        [{ sipUri: 'http://runtime.example.com' }, 'sipUri'],
        [{ sipUri: 'sip:' }, 'sipUri'],
        [{ sipUri: 'sip:agent @example.com' }, 'sipUri'],
        [{ sipUri: '<sip:agent@example.com>' }, 'sipUri'],
        [{ sipUri: 'agent@example.com' }, 'sipUri'],
        [{ outboundPhoneNumberId: crypto.randomUUID() }, 'outboundPhoneNumberId'],
        [{ outboundPhoneNumberId: null }, 'outboundPhoneNumberId'],
        [{ agentId: crypto.randomUUID() }, 'agentId'],
        [{ orgId: crypto.randomUUID() }, 'orgId'],
        [{ createdTime: new Date().toISOString() }, 'createdTime'],
      ];
      for (const [body, field] of cases) {
        assertProblem(await api.req('POST', BASE, { body: { name: 'n', ...body } }), 400, [field]);
        assertProblem(await api.req('PUT', `${BASE}/${agent.agentId}`, { body }), 400, [field]);
      }
      assertProblem(await api.req('POST', BASE, { body: {} }), 400, ['name']);
      assert.deepEqual(await api.getAgent(agent.agentId), agent, 'no rejected PUT changed the agent');

      for (const sipUri of ['sip:agent@example.com', 'sips:agent@example.com:5061', 'sip:10.0.0.1', 'sip:a@[2001:db8::1]:5070;transport=tcp']) {
        const res = await api.req('POST', BASE, { body: { name: 'uri', sipUri } });
        assert.equal(res.status, 201, sipUri);
        assert.equal(res.body.sipUri, sipUri);
      }
    });

    test('DELETE removes the inbound links first; the numbers stay', async () => {
      const org = await clientFor(server);
      const creds = await org.createCredentials();
      const agent = await org.createAgent({ name: 'Leaving' });
      const n1 = await org.createNumber({ phoneNumber: '+15550103001', credentialsId: creds.id });
      const n2 = await org.createNumber({ phoneNumber: '+15550103002', credentialsId: creds.id });
      const linked1 = await org.link(n1.id, agent.agentId);
      const linked2 = await org.link(n2.id, agent.agentId, 'replaceOutbound');
      await nextMillisecond();

      const res = await org.req('DELETE', `${BASE}/${agent.agentId}`);
      assert.equal(res.status, 204);
      assert.equal(res.body, '');
      assertProblem(await org.req('GET', `${BASE}/${agent.agentId}`), 404);
      assertProblem(await org.req('DELETE', `${BASE}/${agent.agentId}`), 404);
      assert.deepEqual(await org.req('GET', BASE).then((r) => r.body), []);

      const after1 = await org.getNumber(n1.id);
      assert.equal(after1.incomingCallsAgentId, null);
      assert.ok(after1.lastUpdateTime > linked1.lastUpdateTime, 'the unlinked number’s lastUpdateTime moves');
      assert.deepEqual(after1, { ...linked1, incomingCallsAgentId: null, lastUpdateTime: after1.lastUpdateTime });
      assert.deepEqual(await org.getNumber(n2.id), linked2, 'an outbound-only number is unchanged');
      assert.deepEqual((await org.req('GET', `/api/v1/sip-phone-numbers/${n2.id}/affected-agents`)).body.affectedAgents, []);

      // The freed number can be linked inbound again, from any organization.
      const other = await clientFor(server);
      const otherCreds = await other.createCredentials();
      const sameNumber = await other.createNumber({ phoneNumber: '1 555 010 3001', credentialsId: otherCreds.id });
      await other.link(sameNumber.id, (await other.createAgent()).agentId);
    });

    test('DELETE racing an inbound link never answers 500 and leaves no link to a deleted agent', async () => {
      const org = await clientFor(server);
      const creds = await org.createCredentials();
      for (let i = 0; i < 12; i++) {
        const agent = await org.createAgent();
        const number = await org.createNumber({ phoneNumber: `+1555010320${String(i).padStart(2, '0')}`, credentialsId: creds.id });
        const [deleted, linked] = await Promise.all([
          org.req('DELETE', `${BASE}/${agent.agentId}`),
          org.linkRaw(number.id, { agentId: agent.agentId }),
        ]);
        const what = `delete ${deleted.status}, link ${linked.status}`;
        assert.equal(deleted.status, 204, what);
        assert.ok([200, 404].includes(linked.status), what);
        if (linked.status === 404) assert.match(linked.body.detail, /Agent/, what);
        assertProblem(await org.req('GET', `${BASE}/${agent.agentId}`), 404);
        assert.equal((await org.getNumber(number.id)).incomingCallsAgentId, null, what);
      }
    });

    test('DELETE of a missing agent is 404', async () => {
      assertProblem(await api.req('DELETE', `${BASE}/${missingId()}`), 404);
    });
  });
}
