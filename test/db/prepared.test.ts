import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { sql } from 'kysely';
import { loadConfig } from '../../src/config.ts';
import { openDatabase, type DatabaseHandle } from '../../src/db/connection.ts';
import { migrateToLatest } from '../../src/db/migrations.ts';
import { preparedQuery } from '../../src/db/prepared.ts';
import { testBackends } from '../support/backends.ts';
import { freshDatabase, type TestDatabase } from '../support/server.ts';

const agentByName = preparedQuery((db, v: { orgId: string; name: string }) =>
  db.selectFrom('agents').select(['id', 'name', 'is_enabled']).where('org_id', '=', v.orgId).where('name', '=', v.name).where('is_enabled', '=', 1),
);

const renameAgent = preparedQuery((db, v: { id: string; name: string; time: string }) =>
  db.updateTable('agents').set({ name: v.name, last_update_time: v.time }).where('id', '=', v.id),
);

for (const backend of await testBackends()) {
  describe(`prepared queries on ${backend}`, () => {
    let database: TestDatabase;
    let handle: DatabaseHandle;
    const orgId = crypto.randomUUID();
    const time = '2026-11-27T00:00:00.000Z';

    async function insertAgent(name: string, enabled = 1): Promise<string> {
      const id = crypto.randomUUID();
      await handle.db
        .insertInto('agents')
        .values({
          id,
          org_id: orgId,
          name,
          description: null,
          is_enabled: enabled,
          config: '{}',
          additional_data: '{}',
          sip_uri: null,
          outbound_phone_number_id: null,
          created_time: time,
          last_update_time: time,
        })
        .execute();
      return id;
    }

    before(async () => {
      database = await freshDatabase(backend);
      handle = openDatabase(loadConfig(database.env).database);
      await migrateToLatest(handle);
      await handle.db.insertInto('orgs').values({ id: orgId, name: 'prepared', created_time: time }).execute();
    });
    after(async () => {
      await handle?.close();
      await database?.drop();
    });

    test('runs again and again with new values; constants of the query stay', async () => {
      const one = await insertAgent('one');
      const two = await insertAgent('two');
      await insertAgent('off', 0);
      assert.deepEqual(await agentByName.rows(handle.db, { orgId, name: 'one' }), [{ id: one, name: 'one', is_enabled: 1 }]);
      assert.equal((await agentByName.first(handle.db, { orgId, name: 'two' }))?.id, two);
      assert.equal(await agentByName.first(handle.db, { orgId, name: 'off' }), undefined, 'is_enabled = 1 is kept');
      assert.equal(await agentByName.first(handle.db, { orgId: crypto.randomUUID(), name: 'one' }), undefined);
    });

    test('an update reports the rows it changed, values in set() and where() alike', async () => {
      const id = await insertAgent('before');
      const changed = await renameAgent.run(handle.db, { id, name: 'after', time });
      assert.equal(changed.numAffectedRows, 1n);
      assert.equal((await agentByName.first(handle.db, { orgId, name: 'after' }))?.id, id);
      assert.equal((await renameAgent.run(handle.db, { id: crypto.randomUUID(), name: 'x', time })).numAffectedRows, 0n);
    });

    test('inside a transaction it runs on the transaction', async () => {
      const id = await insertAgent('in-tx');
      await assert.rejects(
        handle.db.transaction().execute(async (trx) => {
          await renameAgent.run(trx, { id, name: 'rolled-back', time });
          assert.equal((await agentByName.first(trx, { orgId, name: 'rolled-back' }))?.id, id);
          throw new Error('roll back');
        }),
        /roll back/,
      );
      assert.equal(await agentByName.first(handle.db, { orgId, name: 'rolled-back' }), undefined);
    });

    if (backend === 'postgres')
      test('it goes out as a named statement, parsed once per connection', async () => {
        const single = openDatabase(loadConfig(database.env).database, { max: 1 });
        try {
          await agentByName.rows(single.db, { orgId, name: 'one' });
          await agentByName.rows(single.db, { orgId, name: 'two' });
          const { rows } = await sql<{ name: string }>`select name from pg_prepared_statements where statement like '%"is_enabled" = $3%'`.execute(
            single.db,
          );
          assert.equal(rows.length, 1, 'one statement for both runs');
          assert.match(rows[0].name, /^dialplane_\d+$/);
        } finally {
          await single.close();
        }
      });

    test('a value that does not become a parameter is refused', async () => {
      const wrong = preparedQuery((db, v: { orgId: string; unused: string }) => {
        void v.unused;
        return db.selectFrom('agents').select('id').where('org_id', '=', v.orgId);
      });
      await assert.rejects(wrong.rows(handle.db, { orgId, unused: 'x' }), /value unused is not a parameter/);
    });
  });
}
