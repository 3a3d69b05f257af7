import crypto from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { preparedQuery } from '../db/prepared.ts';
import type { Event, EventType, NewEvent } from './event-types.ts';

/** Told of events once their transaction has committed: wakes local deliveries and streams, counts them. */
export interface EventSignal {
  written(types: readonly EventType[]): void;
}

// Every change writes its events: these run as often as the API changes things, so they are prepared.

const insertEvent = preparedQuery((db, v: { id: string; orgId: string; type: string; resource: string; time: string; payload: string }) =>
  db
    .insertInto('events')
    .values({ id: v.id, org_id: v.orgId, type: v.type, resource: v.resource, time: v.time, payload: v.payload })
    .returning('seq'),
);

/**
 * The outbox rows of one event: one per enabled endpoint of its organization that wants its
 * type. A row is `ready` unless an earlier event of the same resource is still pending for that
 * endpoint (src/webhooks/dispatcher.ts then makes it ready when that one is done).
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
          sql<string>`${v.time}`.as('retry_start_time'),
          sql<string>`${v.time}`.as('created_time'),
        ])
        .where('e.seq', '=', v.seq)
        .where('w.enabled', '=', 1)
        .where((w) => w.or([w('w.event_types', '=', '*'), w('w.event_types', 'like', sql<string>`'%,' || e.type || ',%'`)])),
    ),
);

/**
 * Writes events into the event log and their outbox rows. `db` is the transaction of the change
 * that caused them, so an event exists exactly when its change does (docs/events.md, "Delivery").
 * One event at a time: each sees the outbox rows of those before it (the order per resource).
 */
export async function writeEvents(db: Kysely<Database>, events: readonly NewEvent[]): Promise<void> {
  const time = new Date().toISOString();
  for (const event of events) {
    const id = `evt_${crypto.randomUUID().replaceAll('-', '')}`;
    const envelope: Event = { id, type: event.type, orgId: event.orgId, time, data: event.data };
    const [row] = await insertEvent.rows(db, {
      id,
      orgId: event.orgId,
      type: event.type,
      resource: event.resource,
      time,
      payload: JSON.stringify(envelope),
    });
    await insertDeliveries.run(db, { seq: Number(row.seq), time });
  }
}

/** The process's EventSignal: whoever wants to hear of committed events subscribes. */
export class EventNotifier implements EventSignal {
  readonly #listeners = new Set<(types: readonly EventType[]) => void>();

  written(types: readonly EventType[]): void {
    for (const listener of this.#listeners) listener(types);
  }

  subscribe(listener: (types: readonly EventType[]) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
