import crypto from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { uniqueViolation } from '../db/errors.ts';
import { conflict, invalid, notFound } from '../common/errors.ts';
import { now } from '../common/time.ts';

export const DEFAULT_ORG_NAME = 'default';
const KEY_PREFIX_LENGTH = 12;

export interface NewOrg {
  orgId: string;
  name: string;
  apiKey: string;
}

/**
 * API keys are 32 random bytes, shown once. Only their SHA-256 is stored: with that much
 * entropy a fast hash is safe, and it keeps authentication cheap on every request.
 */
export function hashApiKey(apiKey: string): string {
  return crypto.hash('sha256', apiKey, 'hex');
}

function newApiKey(): string {
  return `dpk_${crypto.randomBytes(32).toString('base64url')}`;
}

async function insertApiKey(db: Kysely<Database>, orgId: string): Promise<string> {
  const apiKey = newApiKey();
  await db
    .insertInto('api_keys')
    .values({
      id: crypto.randomUUID(),
      org_id: orgId,
      prefix: apiKey.slice(0, KEY_PREFIX_LENGTH),
      key_hash: hashApiKey(apiKey),
      created_time: now(),
      revoked_time: null,
    })
    .execute();
  return apiKey;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Organization names are unique and not blank; surrounding spaces are not kept. */
export async function createOrg(db: Kysely<Database>, givenName: string): Promise<NewOrg> {
  const name = givenName.trim();
  if (name === '') throw invalid('name', 'must not be empty');
  const orgId = crypto.randomUUID();
  try {
    const apiKey = await db.transaction().execute(async (trx) => {
      await trx.insertInto('orgs').values({ id: orgId, name, created_time: now() }).execute();
      return insertApiKey(trx, orgId);
    });
    return { orgId, name, apiKey };
  } catch (error) {
    if (uniqueViolation(error)) throw conflict(`an organization named "${name}" already exists`);
    throw error;
  }
}

/**
 * On the first start against an empty database, the `default` organization and its key.
 * Several instances may start at once: the unique name decides which one creates it.
 */
export async function ensureDefaultOrg(db: Kysely<Database>): Promise<NewOrg | null> {
  const existing = await db.selectFrom('orgs').select('id').limit(1).executeTakeFirst();
  if (existing) return null;
  try {
    return await createOrg(db, DEFAULT_ORG_NAME);
  } catch (error) {
    if (error instanceof Error && 'status' in error && error.status === 409) return null;
    throw error;
  }
}

/** Another key for an organization named by its id or its name (a lost first key is recovered this way). */
export async function createApiKey(db: Kysely<Database>, idOrName: string): Promise<{ orgId: string; apiKey: string }> {
  const org = await db
    .selectFrom('orgs')
    .select('id')
    .where((eb) => (UUID.test(idOrName) ? eb.or([eb('id', '=', idOrName), eb('name', '=', idOrName)]) : eb('name', '=', idOrName)))
    .executeTakeFirst();
  if (!org) throw notFound(`no organization has the id or name "${idOrName}"`);
  return { orgId: org.id, apiKey: await insertApiKey(db, org.id) };
}

export interface OrgSummary {
  id: string;
  name: string;
  createdTime: string;
  /** Keys not revoked. */
  activeKeys: number;
}

/** Every organization, oldest first, with how many of its keys are active. */
export async function listOrgs(db: Kysely<Database>): Promise<OrgSummary[]> {
  const rows = await db
    .selectFrom('orgs as o')
    .leftJoin('api_keys as k', (join) => join.onRef('k.org_id', '=', 'o.id').on('k.revoked_time', 'is', null))
    .select(['o.id', 'o.name', 'o.created_time', (eb) => eb.fn.count<string | number>('k.id').as('active_keys')])
    .groupBy(['o.id', 'o.name', 'o.created_time'])
    .orderBy('o.created_time')
    .orderBy('o.id')
    .execute();
  return rows.map((row) => ({ id: row.id, name: row.name, createdTime: row.created_time, activeKeys: Number(row.active_keys) }));
}

/** Revokes by key id, by the whole key, or by its first 12 characters (`dpk_` and 8 more). */
export async function revokeApiKey(db: Kysely<Database>, prefixOrId: string): Promise<{ id: string; orgId: string; prefix: string }> {
  const candidates = await db
    .selectFrom('api_keys')
    .select(['id', 'org_id', 'prefix'])
    .where('revoked_time', 'is', null)
    .where((eb) =>
      eb.or([eb('id', '=', prefixOrId), eb('key_hash', '=', hashApiKey(prefixOrId)), eb('prefix', '=', prefixOrId.slice(0, KEY_PREFIX_LENGTH))]),
    )
    .execute();
  const matching = candidates.filter((k) => k.id === prefixOrId || prefixOrId.startsWith(k.prefix));
  if (matching.length === 0) throw notFound(`no active API key matches "${prefixOrId}"`);
  if (matching.length > 1) throw conflict(`"${prefixOrId}" matches ${matching.length} keys; give more of the key or its id`);
  const key = matching[0];
  await db.updateTable('api_keys').set({ revoked_time: now() }).where('id', '=', key.id).execute();
  return { id: key.id, orgId: key.org_id, prefix: key.prefix };
}

/** The organization of the API key with this hash, or null for an unknown or revoked key. */
export async function orgForApiKeyHash(db: Kysely<Database>, keyHash: string): Promise<string | null> {
  const row = await db.selectFrom('api_keys').select('org_id').where('key_hash', '=', keyHash).where('revoked_time', 'is', null).executeTakeFirst();
  return row?.org_id ?? null;
}
