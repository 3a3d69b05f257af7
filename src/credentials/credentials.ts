import crypto from 'node:crypto';
import type { Selectable } from 'kysely';
import { recordEvents, withTransaction, type Context } from '../context.ts';
import { resourceOf, type NewEvent } from '../events/event-types.ts';
import type { SipCredentialsTable } from '../db/schema.ts';
import { invalid, notFound, conflict } from '../common/errors.ts';
import { parseAddressOrCidr, type TargetRules } from '../common/addresses.ts';
import { now } from '../common/time.ts';
import { retryOnNewReference } from '../db/errors.ts';
import { affectedAgentsOfNumbers, deleteNumbersWithLinks } from '../numbers/numbers.ts';
import type { Credentials, CredentialsInput } from './schemas.ts';
import { parseServerAddress } from './server-address.ts';
import { deleteTrunkHealth, readTrunkHealth } from '../health/health-store.ts';
import type { TrunkHealth } from '../health/schemas.ts';
import { UNKNOWN_HEALTH } from '../health/trunk-health.ts';

type CredentialsRow = Selectable<SipCredentialsTable>;

/** The events of credentials (docs/events.md): the data is the credentials as the API shows them, never the password. */
const credentialsEvent = (
  type: 'sip_credentials.created' | 'sip_credentials.updated' | 'sip_credentials.deleted',
  sipCredentials: Credentials,
): NewEvent => ({
  type,
  orgId: sipCredentials.orgId,
  resource: resourceOf.credentials(sipCredentials.id),
  data: { sipCredentials },
});

/** The API's view of a row; `health` is the stored probe result (absent: not probed yet). */
export function credentialsFromRow(row: CredentialsRow, health: TrunkHealth | undefined): Credentials {
  return {
    id: row.id,
    orgId: row.org_id,
    server: row.server,
    transport: row.transport as Credentials['transport'],
    domain: row.domain,
    authUser: row.auth_user,
    authPasswordSet: row.auth_password_enc !== null,
    description: row.description,
    cpsLimit: row.cps_limit,
    cpsKey: row.cps_key,
    allowedAddresses: JSON.parse(row.allowed_addresses) as string[],
    source: row.source as Credentials['source'],
    providerId: row.provider_id,
    healthCheck: row.health_check === 1,
    health: row.health_check === 1 ? (health ?? UNKNOWN_HEALTH) : null,
    mediaAnchoring: row.media_anchoring as Credentials['mediaAnchoring'],
    mediaEncryption: row.media_encryption as Credentials['mediaEncryption'],
    createdTime: row.created_time,
    lastUpdateTime: row.last_update_time,
  };
}

/**
 * Checks what the schema cannot and returns the columns the input sets (password aside): the
 * server is an address the operator's target rules allow, and allowedAddresses are IPs or CIDR
 * blocks no broader than the operator allows (a /0 would let anyone send calls for the trunk).
 */
function columnsFromInput(input: CredentialsInput, rules: TargetRules) {
  const transport = input.transport ?? 'udp';
  const server = parseServerAddress(input.server, transport);
  if (!server) {
    throw invalid('server', 'must be host or host:port (host: a name, an IPv4 address or a bracketed IPv6 address)');
  }
  const refusal = rules.policy.refusal(server.host);
  if (refusal !== null) throw invalid('server', `must not point at ${refusal}`);
  const allowed = input.allowedAddresses ?? [];
  const bad = allowed.filter((a) => parseAddressOrCidr(a) === null);
  if (bad.length > 0) throw invalid('allowedAddresses', `not an IP address or CIDR: ${bad.join(', ')}`);
  const broad = allowed.filter((a) => {
    const block = parseAddressOrCidr(a)!;
    return block.prefix < rules.minAllowedPrefix[block.family];
  });
  if (broad.length > 0) {
    const { ipv4, ipv6 } = rules.minAllowedPrefix;
    throw invalid('allowedAddresses', `broader than the operator allows (IPv4 /${ipv4}, IPv6 /${ipv6}): ${broad.join(', ')}`);
  }
  return {
    server: input.server,
    transport,
    domain: input.domain ?? null,
    auth_user: input.authUser ?? null,
    description: input.description ?? null,
    cps_limit: input.cpsLimit ?? null,
    cps_key: input.cpsKey ?? null,
    allowed_addresses: JSON.stringify(allowed),
    source: input.source ?? 'manual',
    provider_id: input.providerId ?? null,
    health_check: input.healthCheck === true ? 1 : 0,
    media_anchoring: input.mediaAnchoring ?? 'auto',
    media_encryption: input.mediaEncryption ?? 'none',
  };
}

async function findRow(ctx: Context, orgId: string, id: string): Promise<CredentialsRow> {
  const row = await ctx.db.selectFrom('sip_credentials').selectAll().where('id', '=', id).where('org_id', '=', orgId).executeTakeFirst();
  if (!row) throw notFound(`SIP credentials ${id} were not found`);
  return row;
}

async function withHealth(ctx: Context, row: CredentialsRow): Promise<Credentials> {
  const health = row.health_check === 1 ? (await readTrunkHealth(ctx.db, [row.id])).get(row.id) : undefined;
  return credentialsFromRow(row, health);
}

export async function getCredentials(ctx: Context, orgId: string, id: string): Promise<Credentials> {
  return withHealth(ctx, await findRow(ctx, orgId, id));
}

export async function listCredentials(ctx: Context, orgId: string, page: { skip: number; take: number }) {
  const [rows, count] = await Promise.all([
    ctx.db
      .selectFrom('sip_credentials')
      .selectAll()
      .where('org_id', '=', orgId)
      .orderBy('created_time')
      .orderBy('id')
      .offset(page.skip)
      .limit(page.take)
      .execute(),
    ctx.db
      .selectFrom('sip_credentials')
      .select((eb) => eb.fn.countAll<string | number>().as('n'))
      .where('org_id', '=', orgId)
      .executeTakeFirstOrThrow(),
  ]);
  const health = await readTrunkHealth(
    ctx.db,
    rows.filter((row) => row.health_check === 1).map((row) => row.id),
  );
  return { items: rows.map((row) => credentialsFromRow(row, health.get(row.id))), totalCount: Number(count.n), skip: page.skip, take: page.take };
}

export async function createCredentials(ctx: Context, orgId: string, input: CredentialsInput, rules: TargetRules): Promise<Credentials> {
  const id = crypto.randomUUID();
  const time = now();
  const row: CredentialsRow = {
    id,
    org_id: orgId,
    ...columnsFromInput(input, rules),
    auth_password_enc: input.authPassword == null ? null : ctx.secrets.seal(input.authPassword, id),
    created_time: time,
    last_update_time: time,
  };
  const created = credentialsFromRow(row, undefined);
  await withTransaction(ctx, async (tx) => {
    await tx.db.insertInto('sip_credentials').values(row).execute();
    await recordEvents(tx, [credentialsEvent('sip_credentials.created', created)]);
    await tx.changes.publish({ kind: 'credentials', orgId, id });
  });
  return created;
}

export async function replaceCredentials(ctx: Context, orgId: string, id: string, input: CredentialsInput, rules: TargetRules): Promise<Credentials> {
  const columns = columnsFromInput(input, rules);
  const existing = await findRow(ctx, orgId, id);
  const passwordUnchanged =
    input.authPassword === undefined ||
    (input.authPassword === null ? existing.auth_password_enc === null : revealPassword(ctx, existing) === input.authPassword);
  const changed = !passwordUnchanged || (Object.keys(columns) as (keyof typeof columns)[]).some((k) => columns[k] !== existing[k]);
  // Like numbers and agents: a PUT that changes nothing leaves lastUpdateTime alone.
  if (!changed) return withHealth(ctx, existing);
  const password = passwordUnchanged ? existing.auth_password_enc : input.authPassword == null ? null : ctx.secrets.seal(input.authPassword, id);
  return withTransaction(ctx, async (tx) => {
    const updated = await tx.db
      .updateTable('sip_credentials')
      .set({ ...columns, auth_password_enc: password, last_update_time: now() })
      .where('id', '=', id)
      .where('org_id', '=', orgId)
      .returningAll()
      .executeTakeFirst();
    if (!updated) throw notFound(`SIP credentials ${id} were not found`);
    const credentials = await withHealth(tx, updated);
    await recordEvents(tx, [credentialsEvent('sip_credentials.updated', credentials)]);
    await tx.changes.publish({ kind: 'credentials', orgId, id });
    return credentials;
  });
}

async function numberIdsUsing(ctx: Context, orgId: string, credentialsId: string): Promise<string[]> {
  const rows = await ctx.db
    .selectFrom('phone_numbers')
    .select('id')
    .where('org_id', '=', orgId)
    .where('credentials_id', '=', credentialsId)
    .execute();
  return rows.map((r) => r.id);
}

export async function deleteCredentials(ctx: Context, orgId: string, id: string, force: boolean): Promise<void> {
  await retryOnNewReference(() =>
    withTransaction(ctx, async (tx) => {
      const credentials = await withHealth(tx, await findRow(tx, orgId, id));
      const numberIds = await numberIdsUsing(tx, orgId, id);
      if (numberIds.length > 0 && !force) {
        throw conflict(`${numberIds.length} phone number(s) use these credentials; delete them first or pass force=true`);
      }
      await deleteNumbersWithLinks(tx, orgId, numberIds);
      await tx.db.deleteFrom('sip_credentials').where('id', '=', id).where('org_id', '=', orgId).execute();
      await deleteTrunkHealth(tx.db, id);
      await recordEvents(tx, [credentialsEvent('sip_credentials.deleted', credentials)]);
      await tx.changes.publish({ kind: 'credentials', orgId, id });
    }),
  );
}

/** Live call counts, known once the SIP edge runs. */
export interface ActiveCalls {
  byCredentials(credentialsId: string): number;
}

export async function credentialsAffectedAgents(ctx: Context, orgId: string, id: string, activeCalls: ActiveCalls) {
  await findRow(ctx, orgId, id);
  const phoneNumbers = await affectedAgentsOfNumbers(ctx, orgId, await numberIdsUsing(ctx, orgId, id));
  return { phoneNumbers, affectedCallsCount: activeCalls.byCredentials(id) };
}

/** The stored SIP password in clear, for the SIP side only; never for an API response. */
export function revealPassword(ctx: Context, row: Pick<CredentialsRow, 'id' | 'auth_password_enc'>): string | null {
  return row.auth_password_enc === null ? null : ctx.secrets.open(row.auth_password_enc, row.id);
}
