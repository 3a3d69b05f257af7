import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';

const SWEEP_INTERVAL_MS = 60 * 60_000;
/** Rows deleted per statement, so a large backlog never holds the database for long. */
const BATCH = 5000;
const DAY_MS = 24 * 60 * 60_000;

/**
 * Deletes call records older than the retention period (DIALPLANE_CALL_RECORD_RETENTION_DAYS):
 * once at start, then every hour. Several instances may sweep at once; deleting twice is harmless.
 */
export class CallRecordRetention {
  #timer: NodeJS.Timeout | null = null;
  #sweeping: Promise<number> | null = null;

  readonly #db: Kysely<Database>;
  readonly #days: number;
  readonly #onError: (error: unknown) => void;
  readonly #now: () => number;

  constructor(db: Kysely<Database>, days: number, onError: (error: unknown) => void, now: () => number = Date.now) {
    this.#db = db;
    this.#days = days;
    this.#onError = onError;
    this.#now = now;
  }

  start(): void {
    void this.sweep();
    this.#timer = setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Deletes what has expired; resolves with how many records went. */
  sweep(): Promise<number> {
    this.#sweeping ??= this.#deleteExpired().then(
      (deleted) => {
        this.#sweeping = null;
        return deleted;
      },
      (error: unknown) => {
        this.#sweeping = null;
        this.#onError(error);
        return 0;
      },
    );
    return this.#sweeping;
  }

  async #deleteExpired(): Promise<number> {
    const cutoff = new Date(this.#now() - this.#days * DAY_MS).toISOString();
    let deleted = 0;
    for (;;) {
      const expired = this.#db.selectFrom('call_records').select('id').where('started_time', '<', cutoff).limit(BATCH);
      const result = await this.#db.deleteFrom('call_records').where('id', 'in', expired).executeTakeFirst();
      const count = Number(result.numDeletedRows);
      deleted += count;
      if (count < BATCH) return deleted;
    }
  }
}
