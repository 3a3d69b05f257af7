import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { hashApiKey, orgForApiKeyHash } from './orgs.ts';

/**
 * Remembers which organization an API key belongs to for a short time, so that a busy client
 * does not cost a key lookup on every request. A revoked key stops working within `ttlMs`
 * (revocation happens through the CLI, possibly in another process, so this cannot be told).
 * Unknown keys are never remembered. Entries are keyed by the key as presented, so that a hit
 * costs no hashing; like the request that carried it, it stays in this process's memory only.
 */
export class ApiKeyCache {
  readonly #entries = new Map<string, { orgId: string; expires: number }>();

  readonly #db: Kysely<Database>;
  readonly #ttlMs;
  readonly #maxEntries;

  constructor(db: Kysely<Database>, ttlMs = 1000, maxEntries = 10000) {
    this.#db = db;
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
  }

  async orgFor(apiKey: string): Promise<string | null> {
    const now = Date.now();
    const cached = this.#entries.get(apiKey);
    if (cached && cached.expires > now) return cached.orgId;
    const orgId = await orgForApiKeyHash(this.#db, hashApiKey(apiKey));
    if (orgId === null) {
      this.#entries.delete(apiKey);
      return null;
    }
    if (this.#entries.size >= this.#maxEntries) this.#entries.clear();
    this.#entries.set(apiKey, { orgId, expires: now + this.#ttlMs });
    return orgId;
  }
}
