import type { Kysely } from 'kysely';
import type { TargetPolicy } from '../common/addresses.ts';
import type { SecretBox } from '../credentials/secret-box.ts';
import type { WebhookDeliveryConfig } from '../config.ts';
import type { Database } from '../db/schema.ts';
import { postWebhook, type SendResult } from './http-sender.ts';
import { signedHeaders } from './signing.ts';
import { endpointSecrets } from './endpoints.ts';
import { fanOutEvents } from './fan-out.ts';
import { lockedOnPostgres } from '../db/row-lock.ts';
import { SeqGapWait } from '../events/seq-gaps.ts';

export interface WebhookObserver {
  webhookAttempt(result: 'delivered' | 'retry' | 'failed', latencySeconds: number | null): void;
  webhookQueueDepth(pending: number): void;
}

interface Claimed {
  endpoint_id: string;
  event_seq: number | string;
  resource: string;
  attempts: number;
  retry_start_time: string;
}

const SWEEP_INTERVAL_MS = 10 * 60 * 1000;

/** Makes the earliest pending delivery of a resource to an endpoint ready to be sent. */
async function makeNextReady(db: Kysely<Database>, endpointId: string, resource: string): Promise<void> {
  await db
    .updateTable('webhook_deliveries')
    .set({ ready: 1 })
    .where('endpoint_id', '=', endpointId)
    .where('status', '=', 'pending')
    .where('event_seq', '=', (eb) =>
      eb
        .selectFrom('webhook_deliveries as n')
        .select((n) => n.fn.min('n.event_seq').as('seq'))
        .where('n.endpoint_id', '=', endpointId)
        .where('n.resource', '=', resource)
        .where('n.status', '=', 'pending'),
    )
    .execute();
}
const HOUSEKEEPING_INTERVAL_MS = 5000;
/** Events turned into deliveries per transaction. */
const FANOUT_BATCH = 500;
/**
 * While the API is busy (src/http/request-rate.ts) the dispatcher keeps to a small share of the
 * process's time: one small step at a time (a fan-out of a few events, or one delivery), then a
 * pause long enough for the steps to take BUSY_SHARE of the time, and at least BUSY_PAUSE_MS.
 * The API comes first; the queue catches up afterwards.
 */
const BUSY_SHARE = 0.05;
const BUSY_PAUSE_MS = 10;
const BUSY_FANOUT_BATCH = 20;

/**
 * Delivers the outbox (docs/events.md, "Delivery"). Every instance runs one: it turns new events
 * into deliveries (src/webhooks/fan-out.ts), claims due deliveries by setting `claimed_until`
 * with a conditional UPDATE (an instance that dies while sending loses its claim when that
 * passes, and another sends the event again, with the same `webhook-id`), sends them, and
 * writes each attempt with the delivery's new state in one transaction. A delivery waits while
 * an earlier event of the same resource is still pending for its endpoint, so each endpoint sees
 * a resource's events in order.
 */
export class WebhookDispatcher {
  readonly #db: Kysely<Database>;
  readonly #secrets: SecretBox;
  readonly #policy: TargetPolicy;
  readonly #config: WebhookDeliveryConfig;
  readonly #observer: WebhookObserver | undefined;
  readonly #onError: (error: unknown) => void;
  readonly #inFlight = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | null = null;
  #timerAt = 0;
  #sweepTimer: NodeJS.Timeout | null = null;
  #polling: Promise<void> | null = null;
  #again = false;
  #stopped = true;
  #housekeptAt = 0;
  /**
   * While the API is busy: when the work done so far has been paid for by pausing. Every wake
   * waits until then (each committed link wakes the dispatcher, and must not cut the pause short).
   */
  #resumeAt = 0;
  readonly #gaps = new SeqGapWait();
  readonly #apiBusy: () => boolean;
  readonly #concurrentWriters: boolean;
  readonly #random: () => number;

  constructor(options: {
    db: Kysely<Database>;
    secrets: SecretBox;
    policy: TargetPolicy;
    config: WebhookDeliveryConfig;
    /** True on PostgreSQL: several transactions write at once. */
    concurrentWriters: boolean;
    /** Whether the API is under load now (src/http/request-rate.ts). */
    apiBusy?: () => boolean;
    observer?: WebhookObserver;
    onError: (error: unknown) => void;
    random?: () => number;
  }) {
    this.#db = options.db;
    this.#secrets = options.secrets;
    this.#policy = options.policy;
    this.#config = options.config;
    this.#concurrentWriters = options.concurrentWriters;
    this.#apiBusy = options.apiBusy ?? (() => false);
    this.#observer = options.observer;
    this.#onError = options.onError;
    this.#random = options.random ?? Math.random;
  }

  start(): void {
    this.#stopped = false;
    this.#schedule(0);
    this.#sweepTimer = setInterval(() => void this.sweep().catch(this.#onError), SWEEP_INTERVAL_MS);
    this.#sweepTimer.unref();
  }

  /** Looks for due deliveries now (a local event was just committed). */
  wake(): void {
    if (this.#stopped) return;
    if (this.#polling) this.#again = true;
    else this.#schedule(this.#pauseBeforeNext());
  }

  /** Stops claiming; waits for the requests in flight (each ends within the timeout). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    await this.#polling;
    await Promise.all(this.#inFlight);
  }

  /** Deletes events and finished deliveries past the retention window (several instances may run it). */
  async sweep(): Promise<void> {
    const before = new Date(Date.now() - this.#config.retentionMs).toISOString();
    await this.#db.transaction().execute(async (trx) => {
      // The newest event stays, whatever its age: on SQLite the next seq is one more than the largest kept.
      const newest = trx.selectFrom('events').select((eb) => eb.fn.max('seq').as('seq'));
      const old = trx.selectFrom('events').select('seq').where('time', '<', before).where('seq', '<', newest);
      await trx.deleteFrom('webhook_attempts').where('event_seq', 'in', old).execute();
      await trx.deleteFrom('webhook_deliveries').where('event_seq', 'in', old).where('status', '!=', 'pending').execute();
      await trx
        .deleteFrom('events')
        .where('time', '<', before)
        .where('seq', '<', newest)
        .where((eb) => eb.not(eb.exists(eb.selectFrom('webhook_deliveries as d').select('d.event_seq').whereRef('d.event_seq', '=', 'events.seq'))))
        .execute();
    });
  }

  /** Looks for due deliveries in `ms`, unless a look is already due sooner. */
  #schedule(ms: number): void {
    if (this.#stopped) return;
    const at = Date.now() + ms;
    if (this.#timer) {
      if (this.#timerAt <= at) return;
      clearTimeout(this.#timer);
    }
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#polling = this.#poll()
        .catch(this.#onError)
        .finally(() => {
          this.#polling = null;
          const again = this.#again;
          this.#again = false;
          this.#schedule(again ? this.#pauseBeforeNext() : this.#config.pollMs);
        });
    }, ms);
  }

  /** Now, unless the API is busy: then until the work done is BUSY_SHARE of the time, and at least BUSY_PAUSE_MS. */
  #pauseBeforeNext(): number {
    if (!this.#apiBusy()) return 0;
    return Math.max(BUSY_PAUSE_MS, this.#resumeAt - Date.now());
  }

  /** Work done while the API is busy moves the next start later by 1 / BUSY_SHARE - 1 times as long (at most a poll interval ahead). */
  #spentSince(started: number): void {
    if (!this.#apiBusy()) return;
    const now = Date.now();
    const owed = ((performance.now() - started) * (1 - BUSY_SHARE)) / BUSY_SHARE;
    this.#resumeAt = Math.min(now + this.#config.pollMs, Math.max(this.#resumeAt, now) + owed);
  }

  async #poll(): Promise<void> {
    for (;;) {
      const busy = this.#apiBusy();
      const started = performance.now();
      const room = (busy ? 1 : this.#config.concurrency) - this.#inFlight.size;
      // New events become deliveries and the due ones are claimed in one transaction: one commit.
      const { fannedOut, claimed } = await this.#db.transaction().execute(async (trx) => {
        const fannedOut = await fanOutEvents(trx, busy ? BUSY_FANOUT_BATCH : FANOUT_BATCH, this.#gaps);
        return { fannedOut, claimed: room > 0 && !this.#stopped ? await this.#claim(trx, room) : [] };
      });
      this.#spentSince(started);
      for (const delivery of claimed) {
        const sendingStarted = performance.now();
        const sending: Promise<void> = this.#deliver(delivery)
          .catch(this.#onError)
          .finally(() => {
            this.#spentSince(sendingStarted);
            this.#inFlight.delete(sending);
            // A finished delivery may free the next event of its resource.
            this.wake();
          });
        this.#inFlight.add(sending);
      }
      await this.#housekeeping();
      if (this.#stopped || busy) return;
      // More events waiting to be turned into deliveries: go on at once.
      if (fannedOut === FANOUT_BATCH) continue;
      if (claimed.length < room || room <= 0) return;
      // Full: wait for a request to finish before claiming more.
      await Promise.race(this.#inFlight);
    }
  }

  async #claim(trx: Kysely<Database>, limit: number): Promise<Claimed[]> {
    const now = new Date();
    const iso = now.toISOString();
    // Long enough for the request and the write of its outcome; a dead instance's claim passes soon after.
    const until = new Date(now.getTime() + 2 * this.#config.timeoutMs + 1000).toISOString();
    const due = await trx
      .selectFrom('webhook_deliveries as d')
      .innerJoin('webhook_endpoints as w', 'w.id', 'd.endpoint_id')
      .select(['d.endpoint_id', 'd.event_seq'])
      .where('d.ready', '=', 1)
      .where('d.status', '=', 'pending')
      .where('d.next_attempt_time', '<=', iso)
      .where((eb) => eb.or([eb('d.claimed_until', 'is', null), eb('d.claimed_until', '<', iso)]))
      .where('w.enabled', '=', 1)
      .orderBy('d.next_attempt_time')
      .limit(limit)
      .execute();
    if (due.length === 0) return [];
    // The claim re-checks its condition row by row: of instances racing for a row, one wins.
    return trx
      .updateTable('webhook_deliveries')
      .set({ claimed_until: until })
      .where((eb) =>
        eb(
          eb.refTuple('endpoint_id', 'event_seq'),
          'in',
          due.map((row) => eb.tuple(row.endpoint_id, Number(row.event_seq))),
        ),
      )
      .where('status', '=', 'pending')
      .where((eb) => eb.or([eb('claimed_until', 'is', null), eb('claimed_until', '<', iso)]))
      .returning(['endpoint_id', 'event_seq', 'resource', 'attempts', 'retry_start_time'])
      .execute();
  }

  async #deliver(claimed: Claimed): Promise<void> {
    const seq = Number(claimed.event_seq);
    const found = await this.#db
      .selectFrom('events as e')
      .innerJoin('webhook_endpoints as w', (join) => join.on('w.id', '=', claimed.endpoint_id))
      .select(['e.id', 'e.time', 'e.payload', 'w.url', 'w.secret_enc', 'w.previous_secret_enc', 'w.previous_secret_until', 'w.failing_since'])
      .where('e.seq', '=', seq)
      .executeTakeFirst();
    if (!found) return;
    const attempt = claimed.attempts + 1;
    const now = Date.now();
    let result: SendResult;
    if (now - Date.parse(claimed.retry_start_time) > this.#config.retryForMs) {
      result = { status: null, durationMs: 0, error: 'not delivered within the retry period' };
      await this.#finish(claimed, seq, attempt, result, 'failed', found.failing_since);
      return;
    }
    const secrets = endpointSecrets(this.#secrets, claimed.endpoint_id, found, new Date(now));
    const headers = signedHeaders(secrets, found.id, Math.floor(now / 1000), found.payload);
    result = await postWebhook(new URL(found.url), headers, found.payload, this.#config.timeoutMs, this.#policy);
    const delivered = result.error === null;
    const giveUp = !delivered && Date.now() + this.#nextDelay(attempt) - Date.parse(claimed.retry_start_time) > this.#config.retryForMs;
    await this.#finish(claimed, seq, attempt, result, delivered ? 'delivered' : giveUp ? 'failed' : 'retry', found.failing_since);
    this.#observer?.webhookAttempt(
      delivered ? 'delivered' : giveUp ? 'failed' : 'retry',
      delivered ? (Date.now() - Date.parse(found.time)) / 1000 : null,
    );
  }

  /** Writes the attempt, the delivery's new state and the endpoint's failure streak in one transaction. */
  async #finish(
    claimed: Claimed,
    seq: number,
    attempt: number,
    result: SendResult,
    outcome: 'delivered' | 'retry' | 'failed',
    failingSince: string | null,
  ) {
    const time = new Date();
    const iso = time.toISOString();
    await this.#db.transaction().execute(async (trx) => {
      await trx
        .insertInto('webhook_attempts')
        .values({
          endpoint_id: claimed.endpoint_id,
          event_seq: seq,
          attempt,
          time: iso,
          response_status: result.status,
          duration_ms: result.durationMs,
          error: result.error?.slice(0, 500) ?? null,
        })
        .execute();
      await trx
        .updateTable('webhook_deliveries')
        .set({
          status: outcome === 'retry' ? 'pending' : outcome,
          attempts: attempt,
          claimed_until: null,
          next_attempt_time: outcome === 'retry' ? new Date(time.getTime() + this.#nextDelay(attempt)).toISOString() : iso,
          finished_time: outcome === 'retry' ? null : iso,
        })
        .where('endpoint_id', '=', claimed.endpoint_id)
        .where('event_seq', '=', seq)
        .execute();
      // Done with this event: the next one of its resource may go. On PostgreSQL the fan-out's
      // cursor is share-locked first, so that a fan-out writing that next delivery meanwhile
      // either sees this one done or has committed its row before makeNextReady looks.
      if (outcome !== 'retry') {
        await lockedOnPostgres(trx, trx.selectFrom('webhook_fanout').select('id').where('id', '=', 1), (q) => q.forShare()).execute();
        await makeNextReady(trx, claimed.endpoint_id, claimed.resource);
      }
      if (outcome === 'delivered') {
        if (failingSince !== null)
          await trx.updateTable('webhook_endpoints').set({ failing_since: null }).where('id', '=', claimed.endpoint_id).execute();
        return;
      }
      if (failingSince === null) {
        await trx
          .updateTable('webhook_endpoints')
          .set({ failing_since: iso })
          .where('id', '=', claimed.endpoint_id)
          .where('failing_since', 'is', null)
          .execute();
      } else if (time.getTime() - Date.parse(failingSince) > this.#config.disableAfterMs) {
        await trx
          .updateTable('webhook_endpoints')
          .set({
            enabled: 0,
            disabled_reason:
              `Disabled by dialplane at ${iso}: every delivery attempt since ${failingSince} failed (last: ${result.error ?? 'unknown'})`.slice(
                0,
                500,
              ),
            last_update_time: iso,
          })
          .where('id', '=', claimed.endpoint_id)
          .where('enabled', '=', 1)
          .execute();
      }
    });
  }

  /**
   * A safety net: a pending delivery left not ready although nothing before it of its resource
   * is pending (finishing and fan-out take turns on the cursor's lock, so this should not happen
   * on PostgreSQL either) is made ready here.
   */
  async #readyStrandedHeads(): Promise<void> {
    await this.#db
      .updateTable('webhook_deliveries')
      .set({ ready: 1 })
      .where('status', '=', 'pending')
      .where('ready', '=', 0)
      .where((eb) =>
        eb.not(
          eb.exists(
            eb
              .selectFrom('webhook_deliveries as e')
              .select('e.event_seq')
              .whereRef('e.endpoint_id', '=', 'webhook_deliveries.endpoint_id')
              .whereRef('e.resource', '=', 'webhook_deliveries.resource')
              .where('e.status', '=', 'pending')
              .whereRef('e.event_seq', '<', 'webhook_deliveries.event_seq'),
          ),
        ),
      )
      .execute();
  }

  /** Exponential from retryBaseMs, capped, with ±20 % jitter so endpoints that failed together do not retry together. */
  #nextDelay(attempt: number): number {
    const exponential = Math.min(this.#config.retryCapMs, this.#config.retryBaseMs * 2 ** Math.min(attempt - 1, 30));
    return Math.round(exponential * (0.8 + 0.4 * this.#random()));
  }

  /** Every few seconds: frees stranded heads (PostgreSQL), reports the queue's depth. */
  async #housekeeping(): Promise<void> {
    if (Date.now() - this.#housekeptAt < HOUSEKEEPING_INTERVAL_MS) return;
    this.#housekeptAt = Date.now();
    if (this.#concurrentWriters) await this.#readyStrandedHeads();
    if (!this.#observer) return;
    const row = await this.#db
      .selectFrom('webhook_deliveries')
      .select((eb) => eb.fn.countAll<string | number>().as('n'))
      .where('status', '=', 'pending')
      .executeTakeFirstOrThrow();
    this.#observer.webhookQueueDepth(Number(row.n));
  }
}
