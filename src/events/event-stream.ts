import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { SeqGapWait } from './seq-gaps.ts';

export interface StreamedEvent {
  seq: number;
  orgId: string;
  type: string;
  payload: string;
}

export interface StreamSubscriber {
  orgId: string;
  /** Null for every type. */
  types: ReadonlySet<string> | null;
  send(event: StreamedEvent): void;
}

const POLL_MS = 500;
const BATCH = 500;
/**
 * The live event stream of one instance (docs/events.md, "Event stream"): it follows the event
 * log, which every instance writes, and hands each event to the subscribers of its organization.
 * One reader serves every connection; a connection that resumes first reads what it missed.
 */
export class EventStreamHub {
  readonly #db: Kysely<Database>;
  readonly #subscribers = new Set<StreamSubscriber>();
  #cursor = 0;
  readonly #gaps = new SeqGapWait();
  #timer: NodeJS.Timeout | null = null;
  #reading: Promise<void> | null = null;
  #again = false;
  #stopped = false;
  readonly #onError: (error: unknown) => void;

  constructor(db: Kysely<Database>, onError: (error: unknown) => void) {
    this.#db = db;
    this.#onError = onError;
  }

  async start(): Promise<void> {
    this.#cursor = await this.#latestSeq();
    this.#schedule(POLL_MS);
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#subscribers.clear();
  }

  /** Reads soon: a local event was committed. */
  wake(): void {
    if (this.#subscribers.size === 0) return;
    if (this.#reading) this.#again = true;
    else this.#schedule(0);
  }

  /**
   * Adds a subscriber: with `afterSeq`, it first gets the retained events after that one; without,
   * the events committed from now on. Returns its removal.
   */
  async subscribe(subscriber: StreamSubscriber, afterSeq: number | null): Promise<() => void> {
    // Live events are held while the missed ones are read, then sent after them, none twice.
    const held: StreamedEvent[] = [];
    let sentUpTo = afterSeq ?? (await this.#latestSeq());
    const entry: StreamSubscriber = { ...subscriber, send: (event) => void held.push(event) };
    this.#subscribers.add(entry);
    const remove = () => void this.#subscribers.delete(entry);
    try {
      for (;;) {
        const missed = await this.#read(sentUpTo, null, subscriber.orgId);
        for (const event of missed) if (wanted(subscriber, event)) subscriber.send(event);
        if (missed.length > 0) sentUpTo = missed[missed.length - 1].seq;
        if (missed.length < BATCH) break;
      }
    } catch (error) {
      remove();
      throw error;
    }
    for (const event of held) if (event.seq > sentUpTo) subscriber.send(event);
    entry.send = (event) => {
      if (event.seq > sentUpTo) subscriber.send(event);
    };
    return remove;
  }

  async #latestSeq(): Promise<number> {
    const row = await this.#db
      .selectFrom('events')
      .select((eb) => eb.fn.max('seq').as('seq'))
      .executeTakeFirst();
    return Number(row?.seq ?? 0);
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#reading = this.#follow()
        .catch(this.#onError)
        .finally(() => {
          this.#reading = null;
          const again = this.#again;
          this.#again = false;
          this.#schedule(again ? 0 : POLL_MS);
        });
    }, ms);
  }

  async #follow(): Promise<void> {
    if (this.#subscribers.size === 0) {
      // Nobody listens: keep the cursor current without reading the events.
      this.#cursor = Math.max(this.#cursor, await this.#latestSeq());
      return;
    }
    const events = await this.#read(this.#cursor, null, null);
    const passable = this.#gaps.passable(
      this.#cursor,
      events.map((event) => event.seq),
    );
    for (const event of events.slice(0, passable)) {
      this.#cursor = event.seq;
      for (const subscriber of this.#subscribers) if (wanted(subscriber, event)) subscriber.send(event);
    }
    if (events.length === BATCH) this.#again = true;
  }

  async #read(afterSeq: number, upToSeq: number | null, orgId: string | null): Promise<StreamedEvent[]> {
    let query = this.#db.selectFrom('events').select(['seq', 'org_id', 'type', 'payload']).where('seq', '>', afterSeq);
    if (upToSeq !== null) query = query.where('seq', '<=', upToSeq);
    if (orgId !== null) query = query.where('org_id', '=', orgId);
    const rows = await query.orderBy('seq').limit(BATCH).execute();
    return rows.map((row) => ({ seq: Number(row.seq), orgId: row.org_id, type: row.type, payload: row.payload }));
  }
}

const wanted = (subscriber: StreamSubscriber, event: StreamedEvent) =>
  subscriber.orgId === event.orgId && (subscriber.types === null || subscriber.types.has(event.type));
