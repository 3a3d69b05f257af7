import type { Kysely } from 'kysely';
import type { Dialect } from './db/connection.ts';
import type { Change, ChangeFeed } from './db/changes.ts';
import type { Database } from './db/schema.ts';
import type { SecretBox } from './credentials/secret-box.ts';
import { writeEvents, type EventSignal } from './events/event-log.ts';
import type { EventType, NewEvent } from './events/event-types.ts';

/**
 * The infrastructure the rules work with: the database, the change feed, the secret box. Views
 * of the running server (the number cache, the calls in progress) are given to the routes that
 * use them, not carried here.
 */
export interface Context {
  db: Kysely<Database>;
  dialect: Dialect;
  changes: ChangeFeed;
  secrets: SecretBox;
  /** Told of events after their commit (the local dispatcher and streams, metrics). */
  events?: EventSignal;
}

/**
 * Runs `work` in one database transaction. Changes it publishes are held back and announced
 * only after the commit, so no listener ever sees a change that was rolled back.
 */
export async function withTransaction<T>(ctx: Context, work: (tx: Context) => Promise<T>): Promise<T> {
  const pending: Change[] = [];
  const eventTypes: EventType[] = [];
  const held: ChangeFeed = {
    publish: async (change) => void pending.push(change),
    subscribe: (listener) => ctx.changes.subscribe(listener),
    close: async () => {},
  };
  const heldEvents: EventSignal = { written: (types) => void eventTypes.push(...types) };
  const result = await ctx.db.transaction().execute((trx) => work({ ...ctx, db: trx, changes: held, events: heldEvents }));
  for (const change of pending) await ctx.changes.publish(change);
  if (eventTypes.length > 0) ctx.events?.written(eventTypes);
  return result;
}

/**
 * Records events caused by the change `tx` is making (docs/events.md). Only inside
 * withTransaction: the events and their outbox rows commit with the change, or not at all.
 */
export async function recordEvents(tx: Context, events: readonly NewEvent[]): Promise<void> {
  if (!tx.db.isTransaction) throw new Error('events are recorded in the transaction of their change');
  await writeEvents(tx.db, events);
  tx.events?.written(events.map((event) => event.type));
}
