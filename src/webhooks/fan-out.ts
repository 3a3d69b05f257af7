import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { preparedQuery } from '../db/prepared.ts';
import { lockedOnPostgres } from '../db/row-lock.ts';
import type { SeqGapWait } from '../events/seq-gaps.ts';

/**
 * The deliveries of one event: one per endpoint of its organization, enabled and created by the
 * event's time, that wants its type. A row is `ready` unless an earlier event of the same
 * resource is still pending for that endpoint (the dispatcher makes it ready when that one is done).
 */
const insertDeliveries = preparedQuery((db, v: { seq: number; time: string }) =>
  db
    .insertInto('webhook_deliveries')
    .columns([
      'endpoint_id',
      'event_seq',
      'org_id',
      'event_id',
      'event_type',
      'resource',
      'status',
      'attempts',
      'ready',
      'next_attempt_time',
      'retry_start_time',
      'created_time',
    ])
    .expression((eb) =>
      eb
        .selectFrom('events as e')
        .innerJoin('webhook_endpoints as w', 'w.org_id', 'e.org_id')
        .select((s) => [
          'w.id',
          'e.seq',
          'e.org_id',
          'e.id as event_id',
          'e.type',
          'e.resource',
          sql.lit('pending').as('status'),
          sql.lit(0).as('attempts'),
          s
            .case()
            .when(
              s.exists(
                s
                  .selectFrom('webhook_deliveries as p')
                  .select('p.event_seq')
                  .whereRef('p.endpoint_id', '=', 'w.id')
                  .whereRef('p.resource', '=', 'e.resource')
                  .where('p.status', '=', 'pending'),
              ),
            )
            .then(0)
            .else(1)
            .end()
            .as('ready'),
          sql<string>`${v.time}`.as('next_attempt_time'),
          // The retry period runs from the event, however long the fan-out waited.
          'e.time as retry_start_time',
          sql<string>`${v.time}`.as('created_time'),
        ])
        .where('e.seq', '=', v.seq)
        .where('w.enabled', '=', 1)
        .whereRef('w.created_time', '<=', 'e.time')
        .where((w) => w.or([w('w.event_types', '=', '*'), w('w.event_types', 'like', sql<string>`'%,' || e.type || ',%'`)])),
    ),
);

/**
 * Turns the next events of the log into deliveries, in seq order, and moves the fan-out cursor
 * past them, in one transaction; returns how many events it passed. The cursor's row lock makes
 * instances take turns (on SQLite the write transaction already does). Off the changes' own
 * transactions, so that a change costs the same whether its organization has endpoints or not.
 */
export async function fanOutEvents(db: Kysely<Database>, limit: number, gaps: SeqGapWait): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const cursorRow = await lockedOnPostgres(trx, trx.selectFrom('webhook_fanout').select('last_seq').where('id', '=', 1), (q) =>
      q.forUpdate(),
    ).executeTakeFirstOrThrow();
    const cursor = Number(cursorRow.last_seq);
    const rows = await trx.selectFrom('events').select('seq').where('seq', '>', cursor).orderBy('seq').limit(limit).execute();
    const seqs = rows.map((row) => Number(row.seq));
    const passable = seqs.slice(0, gaps.passable(cursor, seqs));
    if (passable.length === 0) return 0;
    const time = new Date().toISOString();
    // One event at a time: each sees the deliveries of those before it (the order per resource).
    for (const seq of passable) await insertDeliveries.run(trx, { seq, time });
    await trx
      .updateTable('webhook_fanout')
      .set({ last_seq: passable[passable.length - 1] })
      .where('id', '=', 1)
      .execute();
    return passable.length;
  });
}
