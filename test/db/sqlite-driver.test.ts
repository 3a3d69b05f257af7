import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kysely, sql } from 'kysely';
import { openDatabase, type DatabaseHandle } from '../../src/db/connection.ts';

/** The SQLite driver's group commit (src/db/sqlite-driver.ts), on a real file. */
describe('SQLite group commit', () => {
  let dir: string;
  let handle: DatabaseHandle;
  let db: Kysely<any>;

  const counter = (name: string) => db.selectFrom('counters').select('value').where('name', '=', name).executeTakeFirstOrThrow();
  const bump = (name: string) =>
    db
      .updateTable('counters')
      .set({ value: sql`value + 1` })
      .where('name', '=', name)
      .executeTakeFirst();
  /** Frames in the write-ahead log; one commit of one page adds one (checkpoint truncation aside). */
  const walFrames = async () => (await sql<{ log: number }>`pragma wal_checkpoint(passive)`.execute(db)).rows[0].log;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-driver-'));
    handle = openDatabase({ kind: 'sqlite', file: path.join(dir, 'driver.db') });
    db = handle.db;
    await sql`create table counters (name text primary key, value integer not null check (value < 1000))`.execute(db);
    await db
      .insertInto('counters')
      .values([
        { name: 'a', value: 0 },
        { name: 'b', value: 0 },
        { name: 'full', value: 999 },
      ])
      .execute();
  });
  after(async () => {
    await handle.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('writes made together commit together, each with its own result', async () => {
    await sql`pragma wal_checkpoint(truncate)`.execute(db);
    const results = await Promise.all(Array.from({ length: 20 }, () => bump('a')));
    assert.deepEqual(
      results.map((r) => r.numUpdatedRows),
      results.map(() => 1n),
    );
    assert.equal((await counter('a')).value, 20);
    const together = await walFrames();

    await sql`pragma wal_checkpoint(truncate)`.execute(db);
    for (let i = 0; i < 20; i++) await bump('b');
    const oneByOne = await walFrames();
    assert.equal((await counter('b')).value, 20);
    assert.ok(together * 5 <= oneByOne, `20 writes together wrote ${together} log frames, one by one ${oneByOne}`);
  });

  test('a write that fails fails alone; the others of its commit stand', async () => {
    const before = (await counter('a')).value;
    const outcomes = await Promise.allSettled([bump('a'), bump('full'), bump('a')]);
    assert.deepEqual(
      outcomes.map((o) => o.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /CHECK constraint failed/);
    assert.equal((await counter('a')).value, before + 2);
    assert.equal((await counter('full')).value, 999);
  });

  test('a transaction is alone on the connection: others wait for it and are not part of it', async () => {
    const before = (await counter('a')).value;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let inside!: () => void;
    const begun = new Promise<void>((resolve) => (inside = resolve));
    const transaction = db
      .transaction()
      .execute(async (trx) => {
        await trx.updateTable('counters').set({ value: 500 }).where('name', '=', 'a').execute();
        inside();
        await released;
        throw new Error('roll back');
      })
      .catch((error: Error) => error.message);
    await begun;
    const outsideWrite = bump('a');
    const outsideRead = counter('a');
    await new Promise((resolve) => setTimeout(resolve, 50));
    release();
    assert.equal(await transaction, 'roll back');
    assert.equal((await outsideRead).value, before, 'the read saw neither the uncommitted nor the rolled-back value');
    assert.equal((await outsideWrite)?.numUpdatedRows, 1n);
    assert.equal((await counter('a')).value, before + 1, 'the outside write survived the rollback');
  });

  test('transactions made together commit together; one that fails rolls back alone', async () => {
    const before = (await counter('a')).value;
    await sql`pragma wal_checkpoint(truncate)`.execute(db);
    const twoWrites = (fail: boolean) =>
      db.transaction().execute(async (trx) => {
        await trx
          .updateTable('counters')
          .set({ value: sql`value + 1` })
          .where('name', '=', 'a')
          .execute();
        await trx
          .updateTable('counters')
          .set({ value: sql`value + 1` })
          .where('name', '=', 'b')
          .execute();
        if (fail) throw new Error('undo this one');
      });
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => twoWrites(i === 7)));
    assert.deepEqual(
      outcomes.map((o) => o.status),
      outcomes.map((_, i) => (i === 7 ? 'rejected' : 'fulfilled')),
    );
    assert.equal((await counter('a')).value, before + 19);
    const frames = await walFrames();
    assert.ok(frames <= 4, `19 transactions wrote ${frames} log frames: they did not commit together`);
  });

  test('a commit that fails leaves nothing behind and the connection free', async () => {
    await sql`create table parents (id integer primary key)`.execute(db);
    await sql`create table children (parent integer references parents (id))`.execute(db);
    const failed = db.transaction().execute(async (trx) => {
      // A deferred foreign key is checked at COMMIT, which then fails with the transaction still open.
      await sql`pragma defer_foreign_keys = on`.execute(trx);
      await trx.insertInto('children').values({ parent: 42 }).execute();
    });
    await assert.rejects(failed, /FOREIGN KEY constraint failed/);
    const b = (await counter('b')).value;
    await bump('b');
    assert.equal((await db.selectFrom('children').select('parent').execute()).length, 0);
    const { rows } = await sql<{ value: number }>`select value from counters where name = 'b'`.execute(db);
    assert.equal(rows[0].value, b + 1);
  });

  test('closing commits the writes already queued', async () => {
    const file = path.join(dir, 'close.db');
    const first = openDatabase({ kind: 'sqlite', file });
    await sql`create table t (x integer)`.execute(first.db);
    const write = first.db
      .insertInto('t' as never)
      .values({ x: 1 })
      .execute();
    // Microtasks only: the write reaches the driver's queue, and its commit (next turn) has not run.
    for (let i = 0; i < 50; i++) await Promise.resolve();
    await first.close();
    await write;
    const second = openDatabase({ kind: 'sqlite', file });
    const { rows } = await sql<{ n: number }>`select count(*) as n from t`.execute(second.db);
    await second.close();
    assert.equal(rows[0].n, 1);
  });
});
