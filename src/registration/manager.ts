/**
 * Keeps numbers registered with their SIP providers (docs/registration.md).
 *
 * - What should be registered comes from the database: every number with `registration: true`,
 *   with its credentials. The manager learns of changes through the change feed (and re-reads
 *   everything on `reload` and every few minutes), on every instance.
 * - Numbers whose target (transport, registrar, AOR) is the same share one registration; its
 *   credentials are those of its lowest-id number.
 * - An instance registers only what it holds a lease on (leases.ts). A periodic sweep renews this
 *   instance's leases and claims the free and lapsed ones, so when an instance dies another
 *   takes its registrations over within one lease period.
 * - Each registration it owns runs REGISTER through the edge's transaction layer
 *   (register-session.ts), is refreshed at about half the granted expiry and retried after a
 *   failure with capped exponential backoff and jitter (schedule.ts). All deadlines share one
 *   timer (timer-queue.ts); at most `maxInFlight` REGISTER exchanges run at once.
 * - Status goes to the numbers' reg_* columns as it changes (status-writer.ts): the API shows
 *   it at once. Registration off, a number or its credentials deleted or changed, and graceful
 *   shutdown all send unREGISTER (Expires: 0) for a binding that may still exist.
 */
import crypto from 'node:crypto';
import type { Context } from '../context.ts';
import type { Change } from '../db/changes.ts';
import { revealPassword } from '../credentials/credentials.ts';
import type { EdgeAccess, RegisterOutcome } from './register-session.ts';
import { RegisterSession } from './register-session.ts';
import { LeaseStore } from './leases.ts';
import { refreshDelayMs, retryDelayMs, type RetryPolicy } from './schedule.ts';
import { StatusWriter, type RegistrationStatus } from './status-writer.ts';
import { readSources, sameSource, type SourceFilter } from './sources.ts';
import { registrationTarget, type RegistrationSource, type RegistrationTarget } from './target.ts';
import { TimerQueue } from './timer-queue.ts';

/** What the manager reports for the metrics (metrics.ts implements it). */
export interface RegistrationObserver {
  registrationFailed(code: string): void;
}

export interface RegistrationManagerOptions {
  ctx: Context;
  edge: EdgeAccess;
  /** Told of each failed REGISTER (metrics.ts); none in some tests. */
  observer?: RegistrationObserver;
  leaseMs: number;
  /** Lease sweep period; default a third of the lease, at most 5 s. */
  sweepMs?: number;
  retry: RetryPolicy;
  expiresSeconds: number;
  /** Most REGISTER exchanges in flight at once (default 200). */
  maxInFlight?: number;
  /** Full re-read of what should be registered, besides the change feed (default 5 minutes). */
  resyncMs?: number;
  /** How often the TCP and TLS connections of registrations get a keep-alive (default 60 s). */
  keepAliveMs?: number;
  /** Longest wait for unREGISTERs on stop (default 4 s). */
  stopTimeoutMs?: number;
  /** This instance's id in the leases (default a random UUID). */
  instanceId?: string;
  onError: (error: unknown) => void;
  /** Numbers whose registrationStatus was just written (a cache of number rows drops them). */
  onStatusWritten?: (numberIds: string[]) => void;
  random?: () => number;
}

type GroupState = 'Idle' | 'Registering' | 'Registered' | 'Failed';

/** One registration: the numbers that share a target, and, when this instance owns it, its SIP state. */
interface Group {
  key: string;
  /** Number id → its source; the lowest id's source is the registration's. */
  numbers: Map<string, RegistrationSource>;
  target: RegistrationTarget;
  owned: boolean;
  removed: boolean;
  busy: boolean;
  session: RegisterSession | null;
  state: GroupState;
  status: RegistrationStatus | null;
  failures: number;
  /** When the binding lapses at the registrar (null: never registered, or removed). */
  expiresAtMs: number | null;
}

export interface RegistrationStats {
  /** Registrations (targets) wanted by all numbers, whoever owns them. */
  registrations: number;
  owned: number;
  byState: Record<'Registering' | 'Registered' | 'Failed', number>;
  inFlight: number;
  /** Successful REGISTERs that refreshed an existing binding. */
  refreshes: number;
  /** Refreshes whose 2xx came after the previous binding had expired. */
  lateRefreshes: number;
  /** Longest delay of a timer past its due time (event-loop stall), ms. */
  maxTimerLagMs: number;
  failures: number;
}

export class RegistrationManager {
  readonly instanceId: string;
  readonly leases: LeaseStore;
  readonly #options: RegistrationManagerOptions;
  readonly #ctx: Context;
  readonly #writer: StatusWriter;
  readonly #timers: TimerQueue<Group>;
  readonly #random: () => number;
  /** Number id → key of the group it is in. */
  readonly #numbers = new Map<string, string>();
  readonly #groups = new Map<string, Group>();
  readonly #queue: Group[] = [];
  readonly #queued = new Set<Group>();
  readonly #maxInFlight: number;
  #inFlight = 0;
  #leaseValidUntil = 0;
  #sweepTimer: NodeJS.Timeout | null = null;
  #resyncTimer: NodeJS.Timeout | null = null;
  #keepAliveTimer: NodeJS.Timeout | null = null;
  #sweeping: Promise<void> | null = null;
  #sweeps = 0;
  #changes: Promise<void> = Promise.resolve();
  #unsubscribe: (() => void) | null = null;
  #claimSoon = new Set<string>();
  #claimScheduled = false;
  #background = new Set<Promise<unknown>>();
  /** REGISTER exchanges in flight: stop() lets them end before it unREGISTERs what they bound. */
  readonly #attempts = new Set<Promise<unknown>>();
  #closing = false;
  #started = false;
  #refreshes = 0;
  #lateRefreshes = 0;
  #failures = 0;
  #maxTimerLagMs = 0;

  constructor(options: RegistrationManagerOptions) {
    this.#options = options;
    this.#ctx = options.ctx;
    this.instanceId = options.instanceId ?? crypto.randomUUID();
    this.leases = new LeaseStore(options.ctx.db, this.instanceId, options.leaseMs);
    this.#writer = new StatusWriter(options.ctx.db, options.onError, (ids) => options.onStatusWritten?.(ids), options.ctx.events);
    this.#random = options.random ?? Math.random;
    this.#maxInFlight = options.maxInFlight ?? 200;
    this.#timers = new TimerQueue<Group>((group, lag) => {
      if (lag > this.#maxTimerLagMs) this.#maxTimerLagMs = lag;
      this.#enqueue(group);
    }, options.onError);
  }

  get #sweepMs(): number {
    return this.#options.sweepMs ?? Math.min(5000, Math.max(200, Math.floor(this.#options.leaseMs / 3)));
  }

  /** Reads what must be registered, takes the leases it can and starts registering. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    this.#unsubscribe = this.#ctx.changes.subscribe((change) => {
      this.#onChange(change);
    });
    await this.#serialized(() => this.#resync());
    await this.sweep();
    this.#sweepTimer = setInterval(() => void this.sweep(), this.#sweepMs);
    this.#sweepTimer.unref();
    this.#resyncTimer = setInterval(() => this.#onChange({ kind: 'reload' }), this.#options.resyncMs ?? 5 * 60_000);
    this.#resyncTimer.unref();
    this.#keepAliveTimer = setInterval(() => void this.#keepAlive(), this.#options.keepAliveMs ?? 60_000);
    this.#keepAliveTimer.unref();
  }

  /**
   * Graceful stop: unREGISTERs every binding this instance holds (bounded in time), marks its
   * numbers Registering (no one keeps them until another instance takes over) and gives up its
   * leases, so another instance can take them at its next sweep.
   */
  async stop(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.#unsubscribe?.();
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    if (this.#resyncTimer) clearInterval(this.#resyncTimer);
    if (this.#keepAliveTimer) clearInterval(this.#keepAliveTimer);
    this.#timers.close();
    this.#queue.length = 0;
    this.#queued.clear();
    await this.#sweeping?.catch(() => {});
    await this.#changes.catch(() => {});
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, this.#options.stopTimeoutMs ?? 4000).unref());
    // A REGISTER still in flight (a first registration, its digest round trip over a new TCP
    // connection) may yet bind: let it end, so that its binding is known and removed below.
    await Promise.race([Promise.all(this.#attempts), deadline]);
    const owned = [...this.#groups.values()].filter((g) => g.owned);
    const now = Date.now();
    const bound = owned.filter((g) => g.session !== null && (g.busy || (g.expiresAtMs !== null && g.expiresAtMs > now)));
    // As many at once as REGISTERs ever are: ten thousand in one burst would overrun registrars.
    const worker = async () => {
      for (let group = bound.shift(); group !== undefined; group = bound.shift()) {
        await group.session!.register(true).catch(() => undefined);
      }
    };
    const workers = Array.from({ length: Math.min(this.#maxInFlight, bound.length) }, worker);
    await Promise.race([Promise.all([...workers, ...this.#background]), deadline]);
    try {
      for (const group of owned) {
        this.#write(group, { state: 'Registering', errorDescription: null, sipResponseMessage: null, expiresAt: null });
      }
      await this.#writer.flush();
      await this.leases.releaseAll();
    } catch (error) {
      this.#options.onError(error);
    }
  }

  stats(): RegistrationStats {
    const byState = { Registering: 0, Registered: 0, Failed: 0 };
    let owned = 0;
    for (const group of this.#groups.values()) {
      if (!group.owned) continue;
      owned++;
      if (group.state !== 'Idle') byState[group.state]++;
    }
    return {
      registrations: this.#groups.size,
      owned,
      byState,
      inFlight: this.#inFlight,
      refreshes: this.#refreshes,
      lateRefreshes: this.#lateRefreshes,
      maxTimerLagMs: this.#maxTimerLagMs,
      failures: this.#failures,
    };
  }

  /** Waits until change handling and status writes done so far have reached the database (tests). */
  async settled(): Promise<void> {
    await this.#changes;
    await this.#writer.flush();
  }

  // -------------------------------------------------------------------------
  // What should be registered

  #onChange(change: Change): void {
    // Links decide who answers a number's calls, not whether or where it registers.
    if (this.#closing || change.kind === 'agent' || (change.kind === 'number' && change.linkOnly)) return;
    void this.#serialized(async () => {
      if (change.kind === 'reload') return this.#resync();
      const rows = await this.#sources(change.kind === 'number' ? { numberId: change.id } : { credentialsId: change.id });
      if (change.kind === 'number') {
        const row = rows[0];
        if (row) this.#upsert(row);
        else this.#remove(change.id);
        return;
      }
      const seen = new Set(rows.map((r) => r.numberId));
      for (const row of rows) this.#upsert(row);
      for (const [numberId, key] of [...this.#numbers]) {
        const source = this.#groups.get(key)?.numbers.get(numberId);
        if (source?.credentialsId === change.id && !seen.has(numberId)) this.#remove(numberId);
      }
    });
  }

  /** Change handling runs one at a time, in order; an error is reported and the next goes on. */
  #serialized(work: () => Promise<void>): Promise<void> {
    const next = this.#changes.then(work).catch((error) => this.#options.onError(error));
    this.#changes = next;
    return next;
  }

  #sources(filter: SourceFilter): Promise<RegistrationSource[]> {
    return readSources(this.#ctx.db, filter);
  }

  async #resync(): Promise<void> {
    const rows = await this.#sources('all');
    const seen = new Set<string>();
    for (const row of rows) {
      seen.add(row.numberId);
      this.#upsert(row);
    }
    for (const numberId of [...this.#numbers.keys()]) if (!seen.has(numberId)) this.#remove(numberId);
  }

  #upsert(source: RegistrationSource): void {
    if (this.#closing) return;
    const target = registrationTarget(source);
    const previousKey = this.#numbers.get(source.numberId);
    const previous = previousKey === undefined ? undefined : this.#groups.get(previousKey)?.numbers.get(source.numberId);
    if (previous !== undefined && previousKey === target.key && sameSource(previous, source)) return;
    if (previousKey !== undefined && previousKey !== target.key) this.#remove(source.numberId);

    let group = this.#groups.get(target.key);
    if (group === undefined) {
      group = {
        key: target.key,
        numbers: new Map(),
        target,
        owned: false,
        removed: false,
        busy: false,
        session: null,
        state: 'Idle',
        status: null,
        failures: 0,
        expiresAtMs: null,
      };
      this.#groups.set(target.key, group);
      this.#requestClaim(target.key);
    }
    group.numbers.set(source.numberId, source);
    this.#numbers.set(source.numberId, target.key);
    const leader = this.#leader(group);
    if (leader.fingerprint !== group.target.fingerprint) {
      group.target = leader;
      if (group.owned) this.#restart(group);
      return;
    }
    // A number joining (or edited within) a registration this instance keeps shows its status.
    if (group.owned && group.status !== null) this.#writer.write([[source.numberId, source.credentialsId]], group.status);
  }

  #remove(numberId: string): void {
    const key = this.#numbers.get(numberId);
    if (key === undefined) return;
    this.#numbers.delete(numberId);
    const group = this.#groups.get(key);
    if (group === undefined) return;
    group.numbers.delete(numberId);
    if (group.numbers.size > 0) {
      const leader = this.#leader(group);
      if (leader.fingerprint !== group.target.fingerprint) {
        group.target = leader;
        if (group.owned) this.#restart(group);
      }
      return;
    }
    this.#groups.delete(key);
    group.removed = true;
    this.#timers.cancel(group);
    this.#queued.delete(group);
    if (!group.owned) return;
    if (group.busy) return; // the exchange in flight unREGISTERs when it ends
    this.#retire(group);
  }

  /** The target of the group's lowest-id number: the registration's credentials. */
  #leader(group: Group): RegistrationTarget {
    let lowest: RegistrationSource | null = null;
    for (const source of group.numbers.values()) if (lowest === null || source.numberId < lowest.numberId) lowest = source;
    return registrationTarget(lowest!);
  }

  /** Credentials changed under a registration this instance keeps: register again with them. */
  #restart(group: Group): void {
    group.session = null;
    group.failures = 0;
    this.#setStatus(group, 'Registering', { state: 'Registering', errorDescription: null, sipResponseMessage: null, expiresAt: null });
    this.#timers.cancel(group);
    if (!group.busy) this.#enqueue(group);
  }

  /** A registration nobody wants any more: unREGISTER a binding that may exist, then free its lease. */
  #retire(group: Group): void {
    const session = group.session;
    const mayBeBound = session !== null && group.expiresAtMs !== null && group.expiresAtMs > Date.now();
    group.owned = false;
    const work = (async () => {
      if (mayBeBound) await session.register(true).catch((error: unknown) => this.#options.onError(error));
      if (!this.#groups.get(group.key)?.owned) await this.leases.release([group.key]);
    })().catch((error: unknown) => this.#options.onError(error));
    this.#background.add(work);
    void work.finally(() => this.#background.delete(work));
  }

  // -------------------------------------------------------------------------
  // Leases

  #requestClaim(key: string): void {
    if (!this.#started || this.#closing) return;
    this.#claimSoon.add(key);
    if (this.#claimScheduled) return;
    this.#claimScheduled = true;
    setImmediate(() => {
      this.#claimScheduled = false;
      const keys = [...this.#claimSoon];
      this.#claimSoon.clear();
      // Only what is still wanted and not ours; the conditional write decides the rest.
      const wanted = keys.filter((k) => this.#groups.has(k) && !this.#groups.get(k)!.owned);
      if (wanted.length === 0) return;
      void this.leases.claim(wanted).then(
        (won) => this.#took(won),
        (error) => this.#options.onError(error),
      );
    });
  }

  /**
   * Renews this instance's leases, claims free and lapsed ones, and starts registrations it now
   * owns. Runs every sweep period; one at a time.
   */
  sweep(): Promise<void> {
    if (this.#closing) return Promise.resolve();
    this.#sweeping ??= this.#sweep()
      .catch((error) => this.#options.onError(error))
      .finally(() => {
        this.#sweeping = null;
      });
    return this.#sweeping;
  }

  async #sweep(): Promise<void> {
    const { count, validUntil } = await this.leases.renew();
    if (this.#closing) return;
    this.#leaseValidUntil = validUntil;
    let ownedHere = 0;
    for (const group of this.#groups.values()) if (group.owned) ownedHere++;
    // The keys are read back only when the count says something moved (and now and then anyway).
    if (count !== ownedHere || this.#sweeps % 6 === 0) {
      const keys = await this.leases.owned();
      for (const group of this.#groups.values()) {
        if (group.owned && !keys.has(group.key)) this.#lost(group);
      }
      const strays = [...keys].filter((key) => !this.#groups.has(key));
      if (strays.length > 0) await this.leases.release(strays);
    }

    const held = await this.leases.heldByOthers();
    const candidates = [...this.#groups.values()].filter((g) => !g.owned && !held.has(g.key)).map((g) => g.key);
    if (candidates.length > 0) this.#took(await this.leases.claim(candidates));

    // Anything owned but idle (e.g. a refresh skipped while the lease could not be renewed) goes again.
    for (const group of this.#groups.values()) {
      if (group.owned && !group.busy && !this.#timers.has(group) && !this.#queued.has(group)) this.#enqueue(group);
    }
    if (++this.#sweeps % 20 === 0) await this.leases.collectGarbage(new Set(this.#groups.keys()));
  }

  #took(keys: Set<string>): void {
    if (this.#closing) return;
    this.#leaseValidUntil = Math.max(this.#leaseValidUntil, Date.now() + this.leases.leaseMs - 50);
    const unwanted: string[] = [];
    for (const key of keys) {
      const group = this.#groups.get(key);
      if (group === undefined) {
        unwanted.push(key); // its numbers went away while the claim ran
        continue;
      }
      if (group.owned) continue;
      group.owned = true;
      group.session = null;
      group.failures = 0;
      group.expiresAtMs = null;
      this.#setStatus(group, 'Registering', { state: 'Registering', errorDescription: null, sipResponseMessage: null, expiresAt: null });
      this.#enqueue(group);
    }
    if (unwanted.length > 0) void this.leases.release(unwanted).catch((error) => this.#options.onError(error));
  }

  /** Another instance took the lease: stop here without touching its status (the new owner writes it). */
  #lost(group: Group): void {
    group.owned = false;
    group.state = 'Idle';
    group.status = null;
    this.#timers.cancel(group);
    this.#queued.delete(group);
  }

  /**
   * A registration over TCP or TLS keeps its connection open: the registrar sends the calls for
   * the number back over it (RFC 5923), which is how it reaches an edge it cannot connect to. A
   * connection found closed is replaced at once by registering again over a new one.
   */
  async #keepAlive(): Promise<void> {
    const { edge } = this.#options;
    if (edge.keepAlive === undefined) return;
    const kept = [...this.#groups.values()].filter(
      (g) => g.owned && !g.busy && g.state === 'Registered' && g.session?.boundDestination != null && g.session.boundDestination.transport !== 'udp',
    );
    await Promise.all(
      kept.map(async (group) => {
        if (!(await edge.keepAlive!(group.session!.boundDestination!))) this.#enqueue(group);
      }),
    );
  }

  // -------------------------------------------------------------------------
  // REGISTER exchanges

  #enqueue(group: Group): void {
    if (this.#closing || group.removed || !group.owned || this.#queued.has(group)) return;
    this.#timers.cancel(group);
    this.#queued.add(group);
    this.#queue.push(group);
    this.#pump();
  }

  #pump(): void {
    while (this.#inFlight < this.#maxInFlight && this.#queue.length > 0) {
      const group = this.#queue.shift()!;
      if (!this.#queued.delete(group)) continue;
      this.#inFlight++;
      const attempt = this.#attempt(group)
        .catch((error) => this.#options.onError(error))
        .finally(() => {
          this.#inFlight--;
          this.#attempts.delete(attempt);
          this.#pump();
        });
      this.#attempts.add(attempt);
    }
  }

  async #attempt(group: Group): Promise<void> {
    if (this.#closing || group.removed || !group.owned || group.busy) return;
    // A lease this instance could not renew in time may already be someone else's.
    if (Date.now() > this.#leaseValidUntil) return;
    let session: RegisterSession;
    try {
      session = group.session ??= this.#newSession(group);
    } catch (error) {
      // E.g. an authUser that cannot be written into a header: nothing to send until it changes.
      group.failures++;
      this.#setStatus(group, 'Failed', {
        state: 'Failed',
        errorDescription: `Cannot build a REGISTER: ${String(error)}`,
        sipResponseMessage: null,
        expiresAt: null,
      });
      this.#timers.schedule(group, Date.now() + retryDelayMs(group.failures, this.#options.retry, this.#random()));
      return;
    }
    group.busy = true;
    const wasRegistered = group.state === 'Registered';
    const previousExpiry = group.expiresAtMs;
    const sentAt = Date.now();
    let outcome: RegisterOutcome;
    try {
      outcome = await session.register();
    } catch (error) {
      outcome = {
        kind: 'failed',
        sipResponseMessage: '503 Service Unavailable',
        errorDescription: `REGISTER failed: ${String(error)}`,
        code: 'transport',
        retryAfterSeconds: null,
      };
    } finally {
      group.busy = false;
    }
    if (this.#closing) {
      // stop() unREGISTERs what this exchange bound.
      if (outcome.kind === 'registered') group.expiresAtMs = sentAt + outcome.grantedSeconds * 1000;
      return;
    }
    if (group.removed) {
      if (outcome.kind === 'registered') group.expiresAtMs = sentAt + outcome.grantedSeconds * 1000;
      group.owned = true;
      this.#retire(group);
      return;
    }
    if (!group.owned) return;
    if (group.session !== session) {
      // The credentials changed meanwhile: this answer is about the old ones.
      this.#enqueue(group);
      return;
    }
    if (outcome.kind === 'registered') {
      const expiresAtMs = sentAt + outcome.grantedSeconds * 1000;
      if (wasRegistered && previousExpiry !== null) {
        this.#refreshes++;
        if (Date.now() > previousExpiry) this.#lateRefreshes++;
      }
      group.failures = 0;
      group.expiresAtMs = expiresAtMs;
      this.#setStatus(group, 'Registered', {
        state: 'Registered',
        errorDescription: null,
        sipResponseMessage: null,
        // Whole seconds, rounded down: a conservative expiry, and equal values batch into one write.
        expiresAt: new Date(Math.floor(expiresAtMs / 1000) * 1000).toISOString(),
      });
      this.#timers.schedule(group, sentAt + refreshDelayMs(outcome.grantedSeconds, this.#random()));
      return;
    }
    if (outcome.kind === 'failed') {
      group.failures++;
      this.#failures++;
      this.#options.observer?.registrationFailed(outcome.code);
      session.resetRoute();
      this.#setStatus(group, 'Failed', {
        state: 'Failed',
        errorDescription: outcome.errorDescription,
        sipResponseMessage: outcome.sipResponseMessage,
        expiresAt: null,
      });
      const delay = retryDelayMs(group.failures, this.#options.retry, this.#random(), outcome.retryAfterSeconds);
      this.#timers.schedule(group, Date.now() + delay);
    }
  }

  #newSession(group: Group): RegisterSession {
    const source = [...group.numbers.values()].find((s) => registrationTarget(s).fingerprint === group.target.fingerprint);
    let password: string | null = null;
    if (source?.authPasswordEnc) {
      try {
        password = revealPassword(this.#ctx, { id: source.credentialsId, auth_password_enc: source.authPasswordEnc });
      } catch (error) {
        this.#options.onError(new Error(`cannot decrypt the SIP password of credentials ${source.credentialsId}: ${String(error)}`));
      }
    }
    return new RegisterSession(group.target, password, this.#options.edge, this.#options.expiresSeconds);
  }

  #setStatus(group: Group, state: GroupState, status: RegistrationStatus): void {
    group.state = state;
    const last = group.status;
    group.status = status;
    if (
      last !== null &&
      last.state === status.state &&
      last.errorDescription === status.errorDescription &&
      last.sipResponseMessage === status.sipResponseMessage &&
      last.expiresAt === status.expiresAt
    ) {
      return;
    }
    this.#write(group, status);
  }

  #write(group: Group, status: RegistrationStatus): void {
    this.#writer.write(
      [...group.numbers.values()].map((s) => [s.numberId, s.credentialsId] as [string, string]),
      status,
    );
  }
}
