/**
 * Leases on registrations (docs/registration.md): with several instances on one database, each
 * registration is kept by exactly one of them. A lease is a row (key, owner, lease_until);
 * taking one is a single conditional write, so two instances can never both win it:
 *
 *   insert ... on conflict (key) do nothing                      -- nobody had it
 *   update ... set owner = me, lease_until = now + L
 *     where key = ? and (owner = me or lease_until < now)          -- its owner stopped renewing
 *
 * Both return the keys they changed. The owner renews all its leases in one statement; when an
 * instance dies its leases lapse after at most L and the next sweep of another instance takes
 * them. Timestamps are ISO 8601 text (the instances' clocks are assumed roughly in sync, like
 * everything else in the schema). The same queries run on SQLite and PostgreSQL.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';

/** Keys per statement: well under SQLite's and PostgreSQL's bound-parameter limits. */
const CHUNK = 500;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

export class LeaseStore {
  readonly #db: Kysely<Database>;
  readonly #clock: () => number;

  constructor(
    db: Kysely<Database> /** This instance's id. */,
    readonly owner: string,
    readonly leaseMs: number,
    clock: () => number = Date.now,
  ) {
    this.#db = db;
    this.#clock = clock;
  }

  /** Takes the leases that are free, lapsed, or already ours; returns the keys now ours. */
  async claim(keys: readonly string[]): Promise<Set<string>> {
    const won = new Set<string>();
    for (const batch of chunks([...new Set(keys)])) {
      const now = this.#clock();
      const until = iso(now + this.leaseMs);
      const inserted = await this.#db
        .insertInto('registration_leases')
        .values(batch.map((key) => ({ key, owner: this.owner, lease_until: until })))
        .onConflict((oc) => oc.column('key').doNothing())
        .returning('key')
        .execute();
      for (const row of inserted) won.add(row.key);
      const rest = batch.filter((key) => !won.has(key));
      if (rest.length === 0) continue;
      const updated = await this.#db
        .updateTable('registration_leases')
        .set({ owner: this.owner, lease_until: until })
        .where('key', 'in', rest)
        .where((eb) => eb.or([eb('owner', '=', this.owner), eb('lease_until', '<', iso(now))]))
        .returning('key')
        .execute();
      for (const row of updated) won.add(row.key);
    }
    return won;
  }

  /**
   * Extends every lease this instance still holds; returns how many, and the time until which
   * they are now valid. Fewer than the caller thinks it holds means another instance took some
   * over (see `owned`). One UPDATE, nothing read back: it runs every sweep.
   */
  async renew(): Promise<{ count: number; validUntil: number }> {
    const now = this.#clock();
    const result = await this.#db
      .updateTable('registration_leases')
      .set({ lease_until: iso(now + this.leaseMs) })
      .where('owner', '=', this.owner)
      .executeTakeFirst();
    return { count: Number(result.numUpdatedRows), validUntil: now + this.leaseMs };
  }

  /** The keys this instance holds. */
  async owned(): Promise<Set<string>> {
    const rows = await this.#db.selectFrom('registration_leases').select('key').where('owner', '=', this.owner).execute();
    return new Set(rows.map((r) => r.key));
  }

  /** Keys other live instances hold right now: not worth trying to claim. */
  async heldByOthers(): Promise<Set<string>> {
    const rows = await this.#db
      .selectFrom('registration_leases')
      .select('key')
      .where('owner', '<>', this.owner)
      .where('lease_until', '>=', iso(this.#clock()))
      .execute();
    return new Set(rows.map((r) => r.key));
  }

  /** Gives up leases (after unREGISTER, or when nothing registers under them any more). */
  async release(keys: readonly string[]): Promise<void> {
    for (const batch of chunks(keys)) {
      await this.#db.deleteFrom('registration_leases').where('owner', '=', this.owner).where('key', 'in', batch).execute();
    }
  }

  /** Gives up every lease of this instance (graceful shutdown). */
  async releaseAll(): Promise<void> {
    await this.#db.deleteFrom('registration_leases').where('owner', '=', this.owner).execute();
  }

  /** Removes rows lapsed for more than a lease period whose keys no one wants any more. */
  async collectGarbage(wanted: ReadonlySet<string>): Promise<number> {
    const rows = await this.#db
      .selectFrom('registration_leases')
      .select('key')
      .where('lease_until', '<', iso(this.#clock() - this.leaseMs))
      .execute();
    const stale = rows.map((r) => r.key).filter((key) => !wanted.has(key));
    let removed = 0;
    for (const batch of chunks(stale)) {
      const result = await this.#db
        .deleteFrom('registration_leases')
        .where('key', 'in', batch)
        .where('lease_until', '<', iso(this.#clock() - this.leaseMs))
        .executeTakeFirst();
      removed += Number(result.numDeletedRows);
    }
    return removed;
  }
}
