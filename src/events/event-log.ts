import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { preparedQuery } from '../db/prepared.ts';
import type { Event, EventType, NewEvent } from './event-types.ts';

/** Told of events once their transaction has committed: wakes local deliveries and streams, counts them. */
export interface EventSignal {
  written(types: readonly EventType[]): void;
}

// Every change writes its events: these run as often as the API changes things, so they are prepared.

const insertEvent = preparedQuery((db, v: { id: string; orgId: string; type: string; resource: string; time: string; payload: string }) =>
  db.insertInto('events').values({ id: v.id, org_id: v.orgId, type: v.type, resource: v.resource, time: v.time, payload: v.payload }),
);

/**
 * Writes events into the event log, the outbox that webhook deliveries are made from
 * (src/webhooks/fan-out.ts). `db` is the transaction of the change that caused them, so an event
 * exists exactly when its change does (docs/events.md, "Delivery").
 */
export async function writeEvents(db: Kysely<Database>, events: readonly NewEvent[]): Promise<void> {
  const time = new Date().toISOString();
  for (const event of events) {
    const id = `evt_${crypto.randomUUID().replaceAll('-', '')}`;
    const envelope: Event = { id, type: event.type, orgId: event.orgId, time, data: event.data };
    await insertEvent.run(db, {
      id,
      orgId: event.orgId,
      type: event.type,
      resource: event.resource,
      time,
      payload: JSON.stringify(envelope),
    });
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
