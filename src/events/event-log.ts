import crypto from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import type { Event, EventType, NewEvent } from './event-types.ts';

/** Told of events once their transaction has committed: wakes local deliveries and streams, counts them. */
export interface EventSignal {
  written(types: readonly EventType[]): void;
}

/**
 * Writes events into the event log and, in the same statement pair, one outbox row per enabled
 * endpoint of the organization that wants the type. `db` is the transaction of the change that
 * caused the events, so an event exists exactly when its change does (docs/events.md, "Delivery").
 */
export async function writeEvents(db: Kysely<Database>, events: readonly NewEvent[]): Promise<void> {
  if (events.length === 0) return;
  const iso = new Date().toISOString();
  const rows = events.map((event) => {
    const id = `evt_${crypto.randomUUID().replaceAll('-', '')}`;
    const envelope: Event = { id, type: event.type, orgId: event.orgId, time: iso, data: event.data };
    return { id, org_id: event.orgId, type: event.type, resource: event.resource, time: iso, payload: JSON.stringify(envelope) };
  });
  const inserted = await db.insertInto('events').values(rows).returning('seq').execute();
  const seqs = inserted.map((row) => Number(row.seq));
  await db
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
      'next_attempt_time',
      'retry_start_time',
      'created_time',
    ])
    .expression((eb) =>
      eb
        .selectFrom('events as e')
        .innerJoin('webhook_endpoints as w', 'w.org_id', 'e.org_id')
        .select([
          'w.id',
          'e.seq',
          'e.org_id',
          'e.id as event_id',
          'e.type',
          'e.resource',
          sql.lit('pending').as('status'),
          sql.lit(0).as('attempts'),
          sql<string>`${iso}`.as('next_attempt_time'),
          sql<string>`${iso}`.as('retry_start_time'),
          sql<string>`${iso}`.as('created_time'),
        ])
        .where('e.seq', 'in', seqs)
        .where('w.enabled', '=', 1)
        .where((w) => w.or([w('w.event_types', '=', '*'), w('w.event_types', 'like', sql<string>`'%,' || e.type || ',%'`)])),
    )
    .execute();
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
