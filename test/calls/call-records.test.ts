import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CallRecorder, MAX_CALL_ID_LENGTH, MAX_PHONE_NUMBER_LENGTH, MAX_REMOTE_PARTY_LENGTH, type CallAttempt } from '../../src/calls/records.ts';
import { CallRecordRetention } from '../../src/calls/retention.ts';
import { testBackends } from '../support/backends.ts';
import { startTestServer, type TestServer } from '../support/server.ts';

/** The call-record list: batching writer, filters, pagination, organization isolation. */
for (const backend of await testBackends()) {
  describe(`call records (${backend})`, () => {
    let server: TestServer;
    let other: { orgId: string; apiKey: string };
    const numberA = '11111111-1111-4111-8111-111111111111';
    const numberB = '22222222-2222-4222-8222-222222222222';
    const agent = '33333333-3333-4333-8333-333333333333';

    const attempt = (over: Partial<CallAttempt>): CallAttempt => ({
      orgId: server.defaultOrgId,
      direction: 'inbound',
      startedTime: new Date().toISOString(),
      endedTime: new Date().toISOString(),
      phoneNumberId: numberA,
      phoneNumber: '+15550100000',
      remoteParty: 'sip:caller@192.0.2.1',
      agentId: agent,
      outcome: 'answered',
      statusCode: 200,
      callId: 'c1',
      sourceAddress: '192.0.2.1:5060',
      ...over,
    });

    before(async () => {
      server = await startTestServer(backend);
      other = await server.newOrg();
      const recorder = new CallRecorder(server.server.ctx.db);
      // Recent, so that the server's retention sweep leaves them alone.
      const base = Date.now() - 60_000;
      const t = (s: number) => new Date(base + s * 1000).toISOString();
      recorder.record(attempt({ startedTime: t(1), callId: 'a1' }));
      recorder.record(attempt({ startedTime: t(2), callId: 'a2', outcome: 'unavailable', statusCode: 480, agentId: null }));
      recorder.record(attempt({ startedTime: t(3), callId: 'b1', phoneNumberId: numberB, outcome: 'cancelled', statusCode: 487 }));
      recorder.record(
        attempt({ startedTime: t(4), callId: 'x', orgId: null, phoneNumberId: null, agentId: null, outcome: 'not_found', statusCode: 404 }),
      );
      recorder.record(attempt({ startedTime: t(5), callId: 'o1', orgId: other.orgId }));
      await recorder.flush();
    });
    after(() => server.close());

    const list = (key: string, query: Record<string, string | number> = {}) => server.request('GET', '/api/v1/call-records', { key, query });

    test('lists the organization’s records, newest first, with the total', async () => {
      const page = await list(server.defaultKey);
      assert.equal(page.status, 200);
      assert.equal(page.body.totalCount, 3);
      assert.deepEqual(
        page.body.items.map((r: any) => r.callId),
        ['b1', 'a2', 'a1'],
      );
      assert.equal(page.body.items[0].statusCode, 487);
      assert.equal(page.body.items[0].direction, 'inbound');
    });

    test('filters by phoneNumberId, agentId and outcome, and pages', async () => {
      assert.equal((await list(server.defaultKey, { phoneNumberId: numberA })).body.totalCount, 2);
      assert.equal((await list(server.defaultKey, { agentId: agent })).body.totalCount, 2);
      assert.deepEqual(
        (await list(server.defaultKey, { outcome: 'unavailable' })).body.items.map((r: any) => r.callId),
        ['a2'],
      );
      const second = await list(server.defaultKey, { skip: 1, take: 1 });
      assert.deepEqual(
        second.body.items.map((r: any) => r.callId),
        ['a2'],
      );
      assert.equal(second.body.totalCount, 3);
    });

    test('another organization sees only its own; nobody sees calls to unknown numbers', async () => {
      const page = await list(other.apiKey);
      assert.deepEqual(
        page.body.items.map((r: any) => r.callId),
        ['o1'],
      );
    });

    test('no record is kept for an attempt that belongs to no organization', async () => {
      const rows = await server.server.ctx.db.selectFrom('call_records').select('call_id').where('call_id', '=', 'x').execute();
      assert.deepEqual(rows, []);
    });

    test('text a caller chooses is stored capped', async () => {
      const recorder = new CallRecorder(server.server.ctx.db);
      recorder.record(
        attempt({ callId: `long-${'c'.repeat(5000)}`, remoteParty: `sip:${'r'.repeat(5000)}@x`, phoneNumber: '9'.repeat(5000), orgId: other.orgId }),
      );
      await recorder.flush();
      const [row] = await server.server.ctx.db.selectFrom('call_records').selectAll().where('call_id', 'like', 'long-%').execute();
      assert.deepEqual(
        [row.call_id.length, row.remote_party.length, row.phone_number.length],
        [MAX_CALL_ID_LENGTH, MAX_REMOTE_PARTY_LENGTH, MAX_PHONE_NUMBER_LENGTH],
      );
    });

    test('records older than the retention period are deleted, newer ones kept', async () => {
      const recorder = new CallRecorder(server.server.ctx.db);
      const day = 24 * 60 * 60_000;
      const now = Date.now();
      recorder.record(attempt({ startedTime: new Date(now - 31 * day).toISOString(), callId: 'expired', orgId: other.orgId }));
      recorder.record(attempt({ startedTime: new Date(now - 29 * day).toISOString(), callId: 'kept', orgId: other.orgId }));
      await recorder.flush();
      const errors: unknown[] = [];
      const retention = new CallRecordRetention(
        server.server.ctx.db,
        30,
        (error) => errors.push(error),
        () => now,
      );
      assert.equal(await retention.sweep(), 1);
      assert.deepEqual(errors, []);
      const left = await server.server.ctx.db.selectFrom('call_records').select('call_id').where('call_id', 'in', ['expired', 'kept']).execute();
      assert.deepEqual(
        left.map((r) => r.call_id),
        ['kept'],
      );
    });

    test('bad filters are 400 problems', async () => {
      const bad: Record<string, string | number>[] = [{ outcome: 'nope' }, { phoneNumberId: 'x' }, { take: 0 }, { direction: 'sideways' }];
      for (const query of bad) {
        const response = await list(server.defaultKey, query);
        assert.equal(response.status, 400, JSON.stringify(query));
        assert.ok(response.body.errors);
      }
    });
  });
}
