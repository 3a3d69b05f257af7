import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { testBackends } from '../support/backends.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

const withoutStatus = ({ registrationStatus: _status, ...rest }: Record<string, unknown>) => rest;
import { UUID, assertProblem, clientFor, missingId, nextMillisecond, type Client } from '../support/api.ts';

/** docs/api.md, Phone numbers: SIP phone numbers. */
const BASE = '/api/v1/sip-phone-numbers';

const FIELDS = [
  'createdTime',
  'credentialsId',
  'description',
  'displayName',
  'id',
  'incomingCallsAgentId',
  'lastUpdateTime',
  'orgId',
  'phoneNumber',
  'providerId',
  'registration',
  'registrationStatus',
];

const ids = (res: { body: any }) => res.body.items.map((n: any) => n.id);
const sorted = (values: string[]) => [...values].sort();

for (const backend of await testBackends()) {
  describe(`SIP phone numbers (${backend})`, () => {
    let server: TestServer;
    let api: Client;
    let creds: any;

    before(async () => {
      server = await startTestServer(backend);
      api = await clientFor(server, 'default');
      creds = await api.createCredentials();
    });
    after(() => server.close());

    test('POST normalizes the number and starts with registration Disabled', async () => {
      const res = await api.req('POST', BASE, { body: { phoneNumber: '+1 (555) 010-4000', credentialsId: creds.id } });
      assert.equal(res.status, 201);
      const n = res.body;
      assert.deepEqual(Object.keys(n).sort(), FIELDS);
      assert.match(n.id, UUID);
      assert.equal(n.orgId, api.orgId);
      assert.equal(n.phoneNumber, '+15550104000');
      assert.equal(n.credentialsId, creds.id);
      assert.equal(n.description, null);
      assert.equal(n.displayName, null);
      assert.equal(n.registration, false);
      assert.equal(n.providerId, null);
      assert.equal(n.incomingCallsAgentId, null);
      assert.equal(n.createdTime, n.lastUpdateTime);
      assert.deepEqual(n.registrationStatus, {
        state: 'Disabled',
        errorDescription: null,
        sipResponseMessage: null,
        lastUpdated: n.registrationStatus.lastUpdated,
        expiresAt: null,
      });
      assert.equal(typeof n.registrationStatus.lastUpdated, 'string');
      assert.deepEqual(await api.getNumber(n.id), n);
    });

    test('POST with registration true starts Registering; optional fields are kept', async () => {
      const res = await api.req('POST', BASE, {
        body: { phoneNumber: '0044 20 7183 8750', credentialsId: creds.id, registration: true, displayName: 'Sales', description: 'UK line' },
      });
      assert.equal(res.status, 201);
      assert.equal(res.body.phoneNumber, '+442071838750');
      assert.equal(res.body.registration, true);
      assert.equal(res.body.registrationStatus.state, 'Registering');
      assert.equal(res.body.displayName, 'Sales');
      assert.equal(res.body.description, 'UK line');
    });

    test('a number that does not normalize is 400', async () => {
      for (const phoneNumber of ['', 'abc', '+', '+12', '0012', '+1234567890123456', '+1-555-CALL-NOW', '++15550100000', '+1 555 010 0000 x1']) {
        assertProblem(await api.req('POST', BASE, { body: { phoneNumber, credentialsId: creds.id } }), 400, ['phoneNumber']);
      }
      assertProblem(await api.req('POST', BASE, { body: { phoneNumber: 15550100000, credentialsId: creds.id } }), 400, ['phoneNumber']);
    });

    test('(phoneNumber, credentialsId) is unique within an organization, whatever the spelling', async () => {
      const org = await clientFor(server);
      const c1 = await org.createCredentials();
      const c2 = await org.createCredentials();
      await org.createNumber({ phoneNumber: '+1 (555) 010-4100', credentialsId: c1.id });
      for (const spelling of ['0015550104100', '15550104100', '+1.555.010.4100', '+15550104100']) {
        assertProblem(await org.req('POST', BASE, { body: { phoneNumber: spelling, credentialsId: c1.id } }), 409);
      }
      const withOther = await org.createNumber({ phoneNumber: '15550104100', credentialsId: c2.id });
      assert.equal(withOther.phoneNumber, '+15550104100');

      const another = await clientFor(server);
      const c3 = await another.createCredentials();
      const elsewhere = await another.createNumber({ phoneNumber: '0015550104100', credentialsId: c3.id });
      assert.equal(elsewhere.phoneNumber, '+15550104100');
      assert.equal(elsewhere.orgId, another.orgId);

      const list = await org.req('GET', BASE, { query: { phoneNumber: '+15550104100' } });
      assert.equal(list.body.totalCount, 2, 'two records in the first organization, none leaked from the other');
    });

    test('credentialsId must name credentials of the caller’s organization', async () => {
      const other = await clientFor(server);
      const foreign = await other.createCredentials();
      assertProblem(await api.req('POST', BASE, { body: { phoneNumber: '+15550104200', credentialsId: foreign.id } }), 404, [], /credentials/i);
      assertProblem(await api.req('POST', BASE, { body: { phoneNumber: '+15550104200', credentialsId: missingId() } }), 404);
      assertProblem(await api.req('POST', BASE, { body: { phoneNumber: '+15550104200', credentialsId: 'nope' } }), 400, ['credentialsId']);
      assertProblem(await api.req('POST', BASE, { body: { phoneNumber: '+15550104200' } }), 400, ['credentialsId']);
      assert.equal((await api.req('GET', BASE, { query: { phoneNumber: '+15550104200' } })).body.totalCount, 0);
    });

    test('GET of a missing number is 404', async () => {
      assertProblem(await api.req('GET', `${BASE}/${missingId()}`), 404, [], /Phone number .* not found/);
    });

    test('list: pagination, totalCount, order by createdTime then id', async () => {
      const org = await clientFor(server);
      const c = await org.createCredentials();
      assert.deepEqual((await org.req('GET', BASE)).body, { items: [], totalCount: 0, skip: 0, take: 20 });
      const created: string[] = [];
      for (let i = 0; i < 5; i++) {
        created.push((await org.createNumber({ phoneNumber: `+1555010500${i}`, credentialsId: c.id })).id);
        await nextMillisecond();
      }
      const all = await org.req('GET', BASE);
      assert.deepEqual(ids(all), created);
      assert.equal(all.body.totalCount, 5);
      const page = await org.req('GET', BASE, { query: { skip: 3, take: 5 } });
      assert.deepEqual(ids(page), created.slice(3));
      assert.deepEqual([page.body.totalCount, page.body.skip, page.body.take], [5, 3, 5]);
      const beyond = await org.req('GET', BASE, { query: { skip: 2147483647, take: 1000 } });
      assert.deepEqual([beyond.body.items, beyond.body.totalCount], [[], 5]);

      await server.server.ctx.db
        .updateTable('phone_numbers')
        .set({ created_time: '2024-01-01T00:00:00.000Z' })
        .where('org_id', '=', org.orgId)
        .execute();
      assert.deepEqual(ids(await org.req('GET', BASE)), sorted(created), 'ties on createdTime are ordered by id');
    });

    test('list filters: phoneNumber (any spelling), linkedAgentId, unlinkedOnly, providerId', async () => {
      const org = await clientFor(server);
      const providerId = crypto.randomUUID();
      const provided = await org.createCredentials({ source: 'provider', providerId });
      const manual = await org.createCredentials();
      const agent1 = await org.createAgent({ name: 'one' });
      const agent2 = await org.createAgent({ name: 'two' });
      const idle = await org.createAgent({ name: 'idle' });
      const a = await org.createNumber({ phoneNumber: '+15550106001', credentialsId: provided.id });
      const b = await org.createNumber({ phoneNumber: '+15550106002', credentialsId: manual.id });
      const c = await org.createNumber({ phoneNumber: '+15550106003', credentialsId: manual.id });
      const d = await org.createNumber({ phoneNumber: '+15550106004', credentialsId: manual.id });
      const e = await org.createNumber({ phoneNumber: '+15550106001', credentialsId: manual.id });
      await org.link(a.id, agent1.agentId);
      await org.link(b.id, agent1.agentId, 'replaceOutbound');
      await org.link(c.id, agent2.agentId);
      await org.link(c.id, agent2.agentId, 'replaceOutbound');

      // Numbers inherit their credentials' providerId.
      assert.equal(a.providerId, providerId);
      assert.equal(e.providerId, null);

      const list = (query: Record<string, string | number | boolean>) => org.req('GET', BASE, { query });
      for (const spelling of ['+1 (555) 010-6001', '0015550106001', '15550106001', '+1.555.010.6001']) {
        const res = await list({ phoneNumber: spelling });
        assert.deepEqual(sorted(ids(res)), sorted([a.id, e.id]), spelling);
        assert.equal(res.body.totalCount, 2);
      }
      assert.deepEqual(ids(await list({ phoneNumber: '+15550106009' })), []);
      assertProblem(await list({ phoneNumber: 'abc' }), 400, ['phoneNumber']);

      assert.deepEqual(sorted(ids(await list({ linkedAgentId: agent1.agentId }))), sorted([a.id, b.id]), 'inbound or outbound');
      assert.deepEqual(ids(await list({ linkedAgentId: agent2.agentId })), [c.id]);
      assert.deepEqual(ids(await list({ linkedAgentId: idle.agentId })), []);
      assert.deepEqual(ids(await list({ linkedAgentId: missingId() })), []);
      assertProblem(await list({ linkedAgentId: 'agent-1' }), 400, ['linkedAgentId']);

      const unlinked = await list({ unlinkedOnly: true });
      assert.deepEqual(sorted(ids(unlinked)), sorted([d.id, e.id]));
      assert.equal(unlinked.body.totalCount, 2);
      assert.equal((await list({ unlinkedOnly: false })).body.totalCount, 5);
      assertProblem(await list({ unlinkedOnly: 'maybe' }), 400, ['unlinkedOnly']);

      assert.deepEqual(ids(await list({ providerId })), [a.id]);
      assert.deepEqual(ids(await list({ providerId: missingId() })), []);
      assertProblem(await list({ providerId: 'x' }), 400, ['providerId']);

      // Filters combine, and paginate.
      assert.deepEqual(ids(await list({ phoneNumber: '15550106001', unlinkedOnly: true })), [e.id]);
      const firstOfTwo = await list({ linkedAgentId: agent1.agentId, take: 1 });
      assert.equal(firstOfTwo.body.items.length, 1);
      assert.equal(firstOfTwo.body.totalCount, 2);
      const secondOfTwo = await list({ linkedAgentId: agent1.agentId, take: 1, skip: 1 });
      assert.deepEqual(sorted([...ids(firstOfTwo), ...ids(secondOfTwo)]), sorted([a.id, b.id]));

      // A change of the credentials' providerId shows on its numbers, also on one just read.
      assert.equal((await org.getNumber(a.id)).providerId, providerId);
      const newProvider = crypto.randomUUID();
      await org.req('PUT', `/api/v1/sip-credentials/${provided.id}`, {
        body: { server: 'sip.example.com', source: 'provider', providerId: newProvider },
      });
      assert.equal((await org.getNumber(a.id)).providerId, newProvider);
      assert.deepEqual(ids(await list({ providerId: newProvider })), [a.id]);
    });

    test('search: digits in the number, text in the display name or description, any case, wildcards literal', async () => {
      const org = await clientFor(server);
      const creds = await org.createCredentials();
      const sales = await org.createNumber({ phoneNumber: '+15550107001', credentialsId: creds.id, displayName: 'Sales Desk' });
      const support = await org.createNumber({ phoneNumber: '+15550107002', credentialsId: creds.id, description: '100% support_line' });
      const plain = await org.createNumber({ phoneNumber: '+15550108003', credentialsId: creds.id });
      const cases: [string, string[]][] = [
        ['555-0107', [sales.id, support.id]],
        ['(555) 010', [sales.id, support.id, plain.id]],
        ['8003', [plain.id]],
        ['sales', [sales.id]],
        ['DESK', [sales.id]],
        ['100%', [support.id]],
        ['%', [support.id]],
        ['_', [support.id]],
        ['supp_rt', []],
        ['nothing like it', []],
      ];
      for (const [search, expected] of cases) {
        assert.deepEqual(sorted(ids(await org.req('GET', BASE, { query: { search } }))), sorted(expected), search);
      }
      assert.deepEqual(ids(await org.req('GET', BASE, { query: { search: '0107', unlinkedOnly: true, take: 1 } })), [sales.id]);
      assertProblem(await org.req('GET', BASE, { query: { search: '' } }), 400, ['search']);
    });

    test('PUT replaces every writable field', async () => {
      const org = await clientFor(server);
      const c1 = await org.createCredentials();
      const c2 = await org.createCredentials({ source: 'provider', providerId: crypto.randomUUID() });
      const agent = await org.createAgent();
      const created = await org.createNumber({
        phoneNumber: '+15550107001',
        credentialsId: c1.id,
        displayName: 'Old',
        description: 'old',
        registration: true,
      });
      const linked = await org.link(created.id, agent.agentId);
      await nextMillisecond();

      const res = await org.req('PUT', `${BASE}/${created.id}`, { body: { phoneNumber: '0015550107002', credentialsId: c2.id } });
      assert.equal(res.status, 200);
      const n = res.body;
      assert.deepEqual(n, {
        ...linked,
        phoneNumber: '+15550107002',
        credentialsId: c2.id,
        displayName: null,
        description: null,
        registration: false,
        providerId: c2.providerId,
        registrationStatus: {
          state: 'Disabled',
          errorDescription: null,
          sipResponseMessage: null,
          expiresAt: null,
          lastUpdated: n.registrationStatus.lastUpdated,
        },
        lastUpdateTime: n.lastUpdateTime,
      });
      assert.equal(n.incomingCallsAgentId, agent.agentId, 'links are not part of the replacement');
      assert.ok(n.lastUpdateTime > linked.lastUpdateTime);
      assert.ok(n.registrationStatus.lastUpdated > linked.registrationStatus.lastUpdated, 'registration state change moves lastUpdated');
      assert.deepEqual(await org.getNumber(created.id), n);

      const registering = await org.req('PUT', `${BASE}/${created.id}`, {
        body: { phoneNumber: '+15550107002', credentialsId: c2.id, registration: true, displayName: 'New' },
      });
      assert.equal(registering.body.registration, true);
      assert.equal(registering.body.registrationStatus.state, 'Registering');
      assert.equal(registering.body.displayName, 'New');

      assertProblem(await org.req('PUT', `${BASE}/${missingId()}`, { body: { phoneNumber: '+15550107002', credentialsId: c2.id } }), 404);
      assertProblem(await org.req('PUT', `${BASE}/${created.id}`, { body: { phoneNumber: 'x', credentialsId: c2.id } }), 400, ['phoneNumber']);
      assertProblem(await org.req('PUT', `${BASE}/${created.id}`, { body: { phoneNumber: '+15550107002' } }), 400, ['credentialsId']);
      assertProblem(
        await org.req('PUT', `${BASE}/${created.id}`, {
          body: { phoneNumber: '+15550107002', credentialsId: c2.id, incomingCallsAgentId: null },
        }),
        400,
        ['incomingCallsAgentId'],
      );
      const foreign = await (await clientFor(server)).createCredentials();
      assertProblem(await org.req('PUT', `${BASE}/${created.id}`, { body: { phoneNumber: '+15550107002', credentialsId: foreign.id } }), 404);
      // The registration manager works on the number meanwhile: its status is its own to move.
      assert.deepEqual(withoutStatus(await org.getNumber(created.id)), withoutStatus(registering.body), 'rejected PUTs change nothing');
    });

    test('PUT onto an existing (phoneNumber, credentialsId) is 409; onto a number linked elsewhere too', async () => {
      const org = await clientFor(server);
      const c = await org.createCredentials();
      const taken = await org.createNumber({ phoneNumber: '+15550108001', credentialsId: c.id });
      const moving = await org.createNumber({ phoneNumber: '+15550108002', credentialsId: c.id });
      assertProblem(await org.req('PUT', `${BASE}/${moving.id}`, { body: { phoneNumber: '1 555 010 8001', credentialsId: c.id } }), 409);

      // The other organization holds the inbound link of +15550108003.
      const other = await clientFor(server);
      const oc = await other.createCredentials();
      const theirs = await other.createNumber({ phoneNumber: '+15550108003', credentialsId: oc.id });
      await other.link(theirs.id, (await other.createAgent()).agentId);
      await org.link(moving.id, (await org.createAgent()).agentId);
      const res = await org.req('PUT', `${BASE}/${moving.id}`, { body: { phoneNumber: '+15550108003', credentialsId: c.id } });
      assertProblem(res, 409, [], /already linked/);
      assert.ok(!res.body.detail.includes(other.orgId), 'the 409 does not name the other organization');
      assert.equal((await org.getNumber(moving.id)).phoneNumber, '+15550108002');
      assert.equal((await org.getNumber(taken.id)).phoneNumber, '+15550108001');
    });

    test('DELETE: 204 when unused; 409 while linked inbound or outbound; force=true removes the links', async () => {
      const org = await clientFor(server);
      const c = await org.createCredentials();
      const unused = await org.createNumber({ phoneNumber: '+15550109001', credentialsId: c.id });
      const inbound = await org.createNumber({ phoneNumber: '+15550109002', credentialsId: c.id });
      const outbound = await org.createNumber({ phoneNumber: '+15550109003', credentialsId: c.id });
      const agentIn = await org.createAgent({ name: 'in' });
      const agentOut = await org.createAgent({ name: 'out' });
      await org.link(inbound.id, agentIn.agentId);
      await org.link(outbound.id, agentOut.agentId, 'replaceOutbound');

      const gone = await org.req('DELETE', `${BASE}/${unused.id}`);
      assert.equal(gone.status, 204);
      assert.equal(gone.body, '');
      assertProblem(await org.req('GET', `${BASE}/${unused.id}`), 404);
      assertProblem(await org.req('DELETE', `${BASE}/${unused.id}`), 404);

      assertProblem(await org.req('DELETE', `${BASE}/${inbound.id}`), 409);
      assertProblem(await org.req('DELETE', `${BASE}/${outbound.id}`, { query: { force: false } }), 409);
      assert.equal((await org.getNumber(inbound.id)).incomingCallsAgentId, agentIn.agentId);
      assert.equal((await org.getAgent(agentOut.agentId)).outboundPhoneNumberId, outbound.id);

      assert.equal((await org.req('DELETE', `${BASE}/${inbound.id}`, { query: { force: true } })).status, 204);
      assert.equal((await org.req('DELETE', `${BASE}/${outbound.id}`, { query: { force: true } })).status, 204);
      assertProblem(await org.req('GET', `${BASE}/${inbound.id}`), 404);
      assert.equal((await org.getAgent(agentOut.agentId)).outboundPhoneNumberId, null);
      assert.equal((await org.getAgent(agentIn.agentId)).name, 'in', 'the agents stay');
      assertProblem(await org.req('DELETE', `${BASE}/${missingId()}`, { query: { force: true } }), 404);
      assertProblem(await org.req('DELETE', `${BASE}/${inbound.id}`, { query: { force: 'yes' } }), 400, ['force']);

      // With its inbound link gone, the number can be linked again elsewhere.
      const other = await clientFor(server);
      const number = await other.createNumber({ phoneNumber: '+15550109002', credentialsId: (await other.createCredentials()).id });
      await other.link(number.id, (await other.createAgent()).agentId);
    });

    test('DELETE racing a link never answers 500 and leaves no link to a deleted number', async () => {
      const org = await clientFor(server);
      const c = await org.createCredentials();
      for (let i = 0; i < 12; i++) {
        const number = await org.createNumber({ phoneNumber: `+1555010930${String(i).padStart(2, '0')}`, credentialsId: c.id });
        const agent = await org.createAgent();
        const mode = i % 4 < 2 ? 'replaceOutbound' : 'inbound';
        const force = i % 2 === 0;
        const [deleted, linked] = await Promise.all([
          org.req('DELETE', `${BASE}/${number.id}`, { query: { force } }),
          org.linkRaw(number.id, { agentId: agent.agentId, mode }),
        ]);
        const what = `force=${force} mode=${mode}: delete ${deleted.status}, link ${linked.status}`;
        assert.ok([204, 409].includes(deleted.status), what);
        assert.ok([200, 404].includes(linked.status), what);
        if (force) assert.equal(deleted.status, 204, what);
        if (linked.status === 404) assert.match(linked.body.detail, /Phone number/, what);
        const after = await org.req('GET', `${BASE}/${number.id}`);
        assert.equal(after.status, deleted.status === 204 ? 404 : 200, what);
        const outbound = (await org.getAgent(agent.agentId)).outboundPhoneNumberId;
        assert.equal(outbound, mode === 'replaceOutbound' && deleted.status === 409 ? number.id : null, what);
      }
    });

    test('affected-agents: uses inbound, outbound or both', async () => {
      const org = await clientFor(server);
      const c = await org.createCredentials();
      const n = await org.createNumber({ phoneNumber: '(555) 010-9100', credentialsId: c.id });
      const none = await org.req('GET', `${BASE}/${n.id}/affected-agents`);
      assert.equal(none.status, 200);
      assert.deepEqual(none.body, { id: n.id, phoneNumber: '+5550109100', affectedAgents: [] });

      const both = await org.createAgent({ name: 'both' });
      const inOnly = await org.createAgent({ name: 'in only' });
      const outOnly = await org.createAgent({ name: 'out only' });
      await org.link(n.id, both.agentId);
      await org.link(n.id, both.agentId, 'replaceOutbound');
      await org.link(n.id, outOnly.agentId, 'replaceOutbound');
      const res = await org.req('GET', `${BASE}/${n.id}/affected-agents`);
      assert.deepEqual(Object.keys(res.body).sort(), ['affectedAgents', 'id', 'phoneNumber']);
      const byName = (list: any[]) => [...list].sort((x, y) => x.agentName.localeCompare(y.agentName));
      assert.deepEqual(byName(res.body.affectedAgents), [
        { agentId: both.agentId, agentName: 'both', uses: ['inbound', 'outbound'] },
        { agentId: outOnly.agentId, agentName: 'out only', uses: ['outbound'] },
      ]);

      await org.link(n.id, inOnly.agentId);
      const after = await org.req('GET', `${BASE}/${n.id}/affected-agents`);
      assert.deepEqual(byName(after.body.affectedAgents), [
        { agentId: both.agentId, agentName: 'both', uses: ['outbound'] },
        { agentId: inOnly.agentId, agentName: 'in only', uses: ['inbound'] },
        { agentId: outOnly.agentId, agentName: 'out only', uses: ['outbound'] },
      ]);
      assertProblem(await org.req('GET', `${BASE}/${missingId()}/affected-agents`), 404);
    });

    test('lastUpdateTime moves whenever a field changes, incomingCallsAgentId included, and only then', async () => {
      const org = await clientFor(server);
      const c = await org.createCredentials();
      const agent1 = await org.createAgent();
      const agent2 = await org.createAgent();
      let current = await org.createNumber({ phoneNumber: '+15550109200', credentialsId: c.id, displayName: 'D' });
      const step = async (what: string, res: Promise<{ status: number; body: any }>, moves: boolean) => {
        const before = current;
        await nextMillisecond();
        const r = await res;
        assert.equal(r.status, 200, what);
        const now = await org.getNumber(before.id);
        // With registration on, the registration manager moves registrationStatus on its own.
        assert.deepEqual(withoutStatus(r.body), withoutStatus(now), `${what}: the answer is the stored number`);
        if (moves) assert.ok(now.lastUpdateTime > before.lastUpdateTime, `${what} moves lastUpdateTime`);
        else assert.deepEqual(withoutStatus(now), withoutStatus(before), `${what} changes nothing`);
        assert.equal(now.createdTime, before.createdTime);
        current = now;
      };
      const put = (body: Record<string, unknown>) => org.req('PUT', `${BASE}/${current.id}`, { body: { credentialsId: c.id, ...body } });

      await step('no-op PUT', put({ phoneNumber: '+1 555 010 9200', displayName: 'D' }), false);
      await step('displayName', put({ phoneNumber: '+15550109200', displayName: 'E' }), true);
      await step('description', put({ phoneNumber: '+15550109200', displayName: 'E', description: 'x' }), true);
      await step('registration', put({ phoneNumber: '+15550109200', displayName: 'E', description: 'x', registration: true }), true);
      await step('no-op PUT again', put({ phoneNumber: '15550109200', displayName: 'E', description: 'x', registration: true }), false);
      await step('inbound link', org.linkRaw(current.id, { agentId: agent1.agentId }), true);
      await step('the same inbound link', org.linkRaw(current.id, { agentId: agent1.agentId, mode: 'inbound' }), false);
      await step('inbound relink', org.linkRaw(current.id, { agentId: agent2.agentId }), true);
      // The outbound link is a field of the agent, not of the number.
      await step('outbound link', org.linkRaw(current.id, { agentId: agent1.agentId, mode: 'replaceOutbound' }), false);
      await step('inbound unlink', org.unlinkRaw(current.id, { mode: 'inbound' }), true);
      await step('inbound unlink of nothing', org.unlinkRaw(current.id, { mode: 'inbound' }), false);
      await step('phoneNumber', put({ phoneNumber: '+15550109201', displayName: 'E', description: 'x', registration: true }), true);
    });
  });
}
