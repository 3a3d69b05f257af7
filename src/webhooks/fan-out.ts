import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { preparedQuery } from '../db/prepared.ts';
import { lockedOnPostgres } from '../db/row-lock.ts';
import type { SeqGapWait } from '../events/seq-gaps.ts';

/**
 * The deliveries of the events after `afterSeq` up to `upToSeq`, in one statement: one per
 * enabled endpoint of each event's organization that wants it. A row is `ready` unless an
 * earlier event of the same resource is still pending for that endpoint: in the table, or
 * earlier in this batch (the statement does not see its own rows). The dispatcher makes the
 * next one ready when that one is done.
 */
const insertDeliveries = preparedQuery((db, v: { afterSeq: number; upToSeq: number; time: string }) =>
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
              s.or([
                s.exists(
                  s
                    .selectFrom('webhook_deliveries as p')
                    .select('p.event_seq')
                    .whereRef('p.endpoint_id', '=', 'w.id')
                    .whereRef('p.resource', '=', 'e.resource')
                    .where('p.status', '=', 'pending'),
                ),
                s.exists(
                  s
                    .selectFrom('events as earlier')
                    .select('earlier.seq')
                    .where('earlier.seq', '>', v.afterSeq)
                    .whereRef('earlier.seq', '<', 'e.seq')
                    .whereRef('earlier.org_id', '=', 'e.org_id')
                    .whereRef('earlier.resource', '=', 'e.resource')
                    .whereRef('w.created_time', '<=', 'earlier.time')
                    .where((x) => x.or([x('w.event_types', '=', '*'), x('w.event_types', 'like', sql<string>`'%,' || earlier.type || ',%'`)])),
                ),
              ]),
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
        .where('e.seq', '>', v.afterSeq)
        .where('e.seq', '<=', v.upToSeq)
        .where('w.enabled', '=', 1)
        // The endpoint wants the event: it existed when the event happened, and takes its type.
        .whereRef('w.created_time', '<=', 'e.time')
        .where((x) => x.or([x('w.event_types', '=', '*'), x('w.event_types', 'like', sql<string>`'%,' || e.type || ',%'`)])),
    ),
);

/**
 * Turns the next events of the log into deliveries, in seq order, and moves the fan-out cursor
 * past them; returns how many events it passed. `trx` is a transaction: the cursor's row lock
 * makes instances take turns until it ends (on SQLite the write transaction already does). Off
 * the changes' own transactions, so that a change costs the same whether its organization has
 * endpoints or not.
 */
export async function fanOutEvents(trx: Kysely<Database>, limit: number, gaps: SeqGapWait): Promise<number> {
  const cursorRow = await lockedOnPostgres(trx, trx.selectFrom('webhook_fanout').select('last_seq').where('id', '=', 1), (q) =>
    q.forUpdate(),
  ).executeTakeFirstOrThrow();
  const cursor = Number(cursorRow.last_seq);
  const rows = await trx.selectFrom('events').select('seq').where('seq', '>', cursor).orderBy('seq').limit(limit).execute();
  const seqs = rows.map((row) => Number(row.seq));
  const passable = seqs.slice(0, gaps.passable(cursor, seqs));
  if (passable.length === 0) return 0;
  const upToSeq = passable[passable.length - 1];
  await insertDeliveries.run(trx, { afterSeq: cursor, upToSeq, time: new Date().toISOString() });
  await trx.updateTable('webhook_fanout').set({ last_seq: upToSeq }).where('id', '=', 1).execute();
  return passable.length;
}
