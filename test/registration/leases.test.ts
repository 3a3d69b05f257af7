import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.ts';
import { openDatabase, type DatabaseHandle } from '../../src/db/connection.ts';
import { migrateToLatest } from '../../src/db/migrations.ts';
import { LeaseStore } from '../../src/registration/leases.ts';
import { testBackends } from '../support/backends.ts';
import { freshDatabase, type TestDatabase } from '../support/server.ts';

/** The lease queries of src/registration/leases.ts, the same on both backends. */
for (const backend of await testBackends()) {
  describe(`registration leases (${backend})`, () => {
    let database: TestDatabase;
    let handle: DatabaseHandle;
    let clock = Date.parse('2030-01-01T00:00:00Z');
    const now = () => clock;
    const store = (owner: string) => new LeaseStore(handle.db, owner, 10_000, now);

    before(async () => {
      database = await freshDatabase(backend);
      handle = openDatabase(loadConfig(database.env).database);
      await migrateToLatest(handle);
    });
    after(async () => {
      await handle.close();
      await database.drop();
    });

    test('a free lease goes to the first claimant only; its owner may claim it again', async () => {
      const a = store('a');
      const b = store('b');
      assert.deepEqual([...(await a.claim(['k1', 'k2']))].sort(), ['k1', 'k2']);
      assert.deepEqual([...(await b.claim(['k1', 'k2', 'k3']))], ['k3']);
      assert.deepEqual([...(await a.claim(['k1']))], ['k1']);
      assert.deepEqual([...(await b.heldByOthers())].sort(), ['k1', 'k2']);
    });

    test('concurrent claims of the same keys: every key has exactly one winner', async () => {
      const keys = Array.from({ length: 300 }, (_, i) => `race-${i}`);
      const claimants = ['p', 'q', 'r', 's'].map(store);
      const results = await Promise.all(claimants.map((c) => c.claim(keys)));
      for (const key of keys) {
        assert.equal(results.filter((won) => won.has(key)).length, 1, `${key} has one owner`);
      }
      const rows = await handle.db.selectFrom('registration_leases').select(['key', 'owner']).where('key', 'like', 'race-%').execute();
      for (const row of rows) assert.ok(results[['p', 'q', 'r', 's'].indexOf(row.owner)].has(row.key));
    });

    test('a lapsed lease is taken over; renewal reports it lost to its old owner', async () => {
      const a = store('a2');
      const b = store('b2');
      await a.claim(['t1', 't2']);
      clock += 5_000;
      assert.equal((await a.renew()).count, 2, 'renewed while alive');
      clock += 9_000;
      assert.equal((await b.claim(['t1'])).size, 0, 'not lapsed yet (renewed 9 s ago, lease 10 s)');
      clock += 2_000;
      assert.deepEqual([...(await b.claim(['t1']))], ['t1'], 'lapsed: taken over');
      const renewed = await a.renew();
      assert.equal(renewed.count, 1, 'one fewer: t1 was lost');
      assert.deepEqual([...(await a.owned())], ['t2']);
      assert.equal(renewed.validUntil, clock + 10_000);
    });

    test('release and releaseAll give leases up; garbage collection removes long-lapsed unwanted rows', async () => {
      const a = store('a3');
      await a.claim(['r1', 'r2', 'r3']);
      await a.release(['r1']);
      assert.deepEqual([...(await store('b3').claim(['r1']))], ['r1']);
      await a.releaseAll();
      assert.equal((await a.renew()).count, 0);
      await store('c3').claim(['g1', 'g2']);
      clock += 25_000;
      const removed = await a.collectGarbage(new Set(['g2']));
      assert.ok(removed >= 1);
      const left = await handle.db.selectFrom('registration_leases').select('key').where('key', 'in', ['g1', 'g2']).execute();
      assert.deepEqual(
        left.map((r) => r.key),
        ['g2'],
      );
    });
  });
}
