import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { loadConfig } from '../../src/config.ts';
import { openDatabase, type DatabaseHandle } from '../../src/db/connection.ts';
import { migrateToLatest } from '../../src/db/migrations.ts';
import { writeEvents } from '../../src/events/event-log.ts';
import { SeqGapWait } from '../../src/events/seq-gaps.ts';
import { fanOutEvents } from '../../src/webhooks/fan-out.ts';
import { testBackends } from '../support/backends.ts';
import { freshDatabase, type TestDatabase } from '../support/server.ts';

/** src/webhooks/fan-out.ts: which deliveries a batch of events makes, and which of them may go first. */
for (const backend of await testBackends()) {
  describe(`webhook fan-out on ${backend}`, () => {
    let database: TestDatabase;
    let handle: DatabaseHandle;
    const orgId = crypto.randomUUID();
    const otherOrgId = crypto.randomUUID();

    async function endpoint(org: string, eventTypes: string, createdTime: string, enabled = 1): Promise<string> {
      const id = crypto.randomUUID();
      await handle.db
        .insertInto('webhook_endpoints')
        .values({
          id,
          org_id: org,
          url: 'https://hooks.example.com/',
          event_types: eventTypes,
          enabled,
          description: null,
          secret_enc: 'sealed',
          previous_secret_enc: null,
          previous_secret_until: null,
          failing_since: null,
          disabled_reason: null,
          created_time: createdTime,
          last_update_time: createdTime,
        })
        .execute();
      return id;
    }

    before(async () => {
      database = await freshDatabase(backend);
      handle = openDatabase(loadConfig(database.env).database);
      await migrateToLatest(handle);
      for (const id of [orgId, otherOrgId])
        await handle.db.insertInto('orgs').values({ id, name: id, created_time: '2026-01-01T00:00:00.000Z' }).execute();
    });
    after(async () => {
      await handle?.close();
      await database?.drop();
    });

    test('one delivery per endpoint that wants an event; only the first pending of each resource is ready', async () => {
      const all = await endpoint(orgId, '*', '2026-01-01T00:00:00.000Z');
      const linksOnly = await endpoint(orgId, ',phone_number.linked,', '2026-01-01T00:00:00.000Z');
      await endpoint(orgId, '*', '2026-01-01T00:00:00.000Z', 0);
      await endpoint(otherOrgId, '*', '2026-01-01T00:00:00.000Z');
      const event = (type: string, resource: string) => ({ type, orgId, resource, data: {} }) as never;
      await handle.db
        .transaction()
        .execute((trx) =>
          writeEvents(trx, [
            event('phone_number.updated', 'number:a'),
            event('phone_number.linked', 'number:a'),
            event('phone_number.linked', 'number:b'),
            event('phone_number.linked', 'number:a'),
          ]),
        );
      // Created after the events: it gets none of them.
      await endpoint(orgId, '*', '2999-01-01T00:00:00.000Z');

      assert.equal(await handle.db.transaction().execute((trx) => fanOutEvents(trx, 500, new SeqGapWait())), 4);
      const rows = await handle.db
        .selectFrom('webhook_deliveries')
        .select(['endpoint_id', 'event_type', 'resource', 'ready'])
        .orderBy('event_seq')
        .execute();
      const of = (id: string) => rows.filter((row) => row.endpoint_id === id).map((row) => `${row.resource} ${row.event_type} ${row.ready}`);
      assert.deepEqual(of(all), [
        'number:a phone_number.updated 1',
        'number:a phone_number.linked 0',
        'number:b phone_number.linked 1',
        'number:a phone_number.linked 0',
      ]);
      // The update it does not want neither makes a delivery nor holds back the link after it.
      assert.deepEqual(of(linksOnly), ['number:a phone_number.linked 1', 'number:b phone_number.linked 1', 'number:a phone_number.linked 0']);
      assert.equal(rows.length, 7, 'nothing for the disabled endpoint, the other organization, or the later endpoint');

      assert.equal(await handle.db.transaction().execute((trx) => fanOutEvents(trx, 500, new SeqGapWait())), 0, 'the cursor moved past them');
      await handle.db.transaction().execute((trx) => writeEvents(trx, [event('phone_number.linked', 'number:b')]));
      assert.equal(await handle.db.transaction().execute((trx) => fanOutEvents(trx, 500, new SeqGapWait())), 1);
      const later = await handle.db
        .selectFrom('webhook_deliveries')
        .select('ready')
        .where('endpoint_id', '=', all)
        .orderBy('event_seq', 'desc')
        .executeTakeFirstOrThrow();
      assert.equal(later.ready, 0, 'number:b has a pending delivery from the batch before');
    });
  });
}
