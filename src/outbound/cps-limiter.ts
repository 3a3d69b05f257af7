import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';

/**
 * The cps budget of docs/outbound.md (`cpsLimit`, `cpsKey`): at most `limit` new outbound calls per
 * second through one credentials, or through all credentials of an organization that share a
 * `cpsKey`.
 *
 * One row per budget and one-second window in `cps_counters`, counted up with one atomic upsert
 * (`insert … on conflict do update set count = count + 1 returning count`). Every instance
 * sharing the database counts in the same row, so the limit holds across instances; SQLite runs
 * the very same statement.
 *
 * Tolerance (documented in README): windows are fixed one-second windows of the instances'
 * clocks. A burst that straddles a window boundary can pass up to 2× the limit within a
 * moving one-second span (the last `limit` of one window and the first `limit` of the next);
 * instances whose clocks disagree by δ shift each other's boundaries by δ, which widens that
 * span by δ. No window ever admits more than `limit` calls. Rejected attempts count too (they
 * are attempts), which only makes the limiter stricter during an overload.
 */
export interface CpsBudget {
  /** The credentials the call goes through. */
  credentialsId: string;
  orgId: string;
  /** cpsKey: credentials with the same key (within an organization) share one budget. */
  cpsKey: string | null;
  limit: number;
}

export type CpsVerdict = { allowed: true; count: number } | { allowed: false; count: number; retryAfterSeconds: number };

/** Rows older than this many seconds are pruned. */
const KEEP_SECONDS = 10;
const PRUNE_EVERY_MS = 5000;

export function budgetKey(budget: Pick<CpsBudget, 'credentialsId' | 'orgId' | 'cpsKey'>): string {
  return budget.cpsKey === null ? `cred:${budget.credentialsId}` : `key:${budget.orgId}:${budget.cpsKey}`;
}

export class CpsLimiter {
  #lastPrune = 0;

  readonly #db: Kysely<Database>;
  readonly #clock: () => number;
  readonly #onError: (error: unknown) => void;

  constructor(db: Kysely<Database>, clock: () => number = Date.now, onError: (error: unknown) => void = () => {}) {
    this.#db = db;
    this.#clock = clock;
    this.#onError = onError;
  }

  /** Counts one new call against the budget and says whether it may go. */
  async take(budget: CpsBudget): Promise<CpsVerdict> {
    const nowMs = this.#clock();
    const window = Math.floor(nowMs / 1000);
    const row = await this.#db
      .insertInto('cps_counters')
      .values({ key: budgetKey(budget), window_start: window, count: 1 })
      .onConflict((oc) => oc.columns(['key', 'window_start']).doUpdateSet((eb) => ({ count: eb('cps_counters.count', '+', 1) })))
      .returning('count')
      .executeTakeFirstOrThrow();
    this.#maybePrune(nowMs, window);
    const count = Number(row.count);
    if (count <= budget.limit) return { allowed: true, count };
    return { allowed: false, count, retryAfterSeconds: 1 };
  }

  #maybePrune(nowMs: number, window: number): void {
    if (nowMs - this.#lastPrune < PRUNE_EVERY_MS) return;
    this.#lastPrune = nowMs;
    this.#db
      .deleteFrom('cps_counters')
      .where('window_start', '<', window - KEEP_SECONDS)
      .execute()
      .catch((error: unknown) => this.#onError(error));
  }
}
