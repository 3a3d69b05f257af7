import crypto from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { recordEvents, withTransaction, type Context } from '../context.ts';
import type { NewEvent } from '../events/event-types.ts';
import { agentEvent, agentFromRow } from '../agents/agent-events.ts';
import { linkEvent, numberEvent, registrationEvent } from './number-events.ts';
import type { Database } from '../db/schema.ts';
import { preparedQuery } from '../db/prepared.ts';
import { foreignKeyViolation, retryOnNewReference, uniqueViolation } from '../db/errors.ts';
import { conflict, invalid, notFound } from '../common/errors.ts';
import { now } from '../common/time.ts';
import { normalizePhoneNumber } from './normalize.ts';
import type { NumberRowCache } from './number-cache.ts';
import type { NumberRow } from './number-row.ts';
import type { AffectedAgent, NumberAffectedAgents, PhoneNumber, PhoneNumberInput, PhoneNumberListQuery, RegistrationState } from './schemas.ts';

export const INBOUND_UNIQUE = 'phone_numbers_inbound_unique';
const ORG_NUMBER_CREDENTIALS_UNIQUE = 'phone_numbers_org_number_credentials_unique';
export const ALREADY_LINKED_ELSEWHERE =
  'This phone number is already linked to an agent for inbound calls elsewhere; a number can have only one inbound agent in the whole system.';

export function numberFromRow(row: NumberRow): PhoneNumber {
  return {
    id: row.id,
    orgId: row.org_id,
    phoneNumber: row.phone_number,
    credentialsId: row.credentials_id,
    createdTime: row.created_time,
    lastUpdateTime: row.last_update_time,
    registrationStatus: {
      state: row.reg_state as RegistrationState,
      errorDescription: row.reg_error_description,
      sipResponseMessage: row.reg_sip_response_message,
      lastUpdated: row.reg_last_updated,
      expiresAt: row.reg_expires_at,
    },
    description: row.description,
    displayName: row.display_name,
    registration: row.registration === 1,
    providerId: row.provider_id,
    incomingCallsAgentId: row.incoming_calls_agent_id,
  };
}

export function selectNumbers(db: Kysely<Database>) {
  return db.selectFrom('phone_numbers as n').innerJoin('sip_credentials as c', 'c.id', 'n.credentials_id').selectAll('n').select('c.provider_id');
}

const numberById = preparedQuery((db, v: { id: string; orgId: string }) =>
  selectNumbers(db).where('n.id', '=', v.id).where('n.org_id', '=', v.orgId),
);

export async function findNumberRow(ctx: Context, orgId: string, id: string): Promise<NumberRow> {
  const row = await numberById.first(ctx.db, { id, orgId });
  if (!row) throw notFound(`Phone number ${id} was not found`);
  return row;
}

/** A number as the API shows it; from the number cache where there is one (writes read the database). */
export async function getNumber(ctx: Context, orgId: string, id: string, cache?: NumberRowCache): Promise<PhoneNumber> {
  const row = cache?.get(id) ?? (await readNumber(ctx, orgId, id, cache));
  if (!row || row.org_id !== orgId) throw notFound(`Phone number ${id} was not found`);
  return numberFromRow(row);
}

function readNumber(ctx: Context, orgId: string, id: string, cache: NumberRowCache | undefined): Promise<NumberRow | undefined> {
  const reading = numberById.first(ctx.db, { id, orgId });
  return cache ? cache.keep(id, reading) : reading;
}

export function normalizeOrReject(field: string, value: string): string {
  const normalized = normalizePhoneNumber(value);
  if (normalized === null) {
    throw invalid(field, 'must be a phone number: + and 3 to 15 digits, optionally with spaces, dashes, dots or parentheses');
  }
  return normalized;
}

/** `%` and `_` in the searched text are literal, not LIKE wildcards. */
const likeContaining = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;

/**
 * The `search` filter: the digits typed appear in the number, or the text (any case) in its
 * display name or description. Plain SQL LIKE with lower(), the same on SQLite and PostgreSQL.
 */
function matchesSearch(search: string) {
  const digits = search.replace(/\D/g, '');
  const text = likeContaining(search.toLowerCase());
  const inNumber = digits === '' ? sql`` : sql`${sql.ref('n.phone_number')} like ${`%${digits}%`} or `;
  return sql<boolean>`(${inNumber}lower(${sql.ref('n.display_name')}) like ${text} escape '\\' or lower(${sql.ref('n.description')}) like ${text} escape '\\')`;
}

export async function listNumbers(ctx: Context, orgId: string, query: PhoneNumberListQuery) {
  const phoneNumber = query.phoneNumber === undefined ? undefined : normalizeOrReject('phoneNumber', query.phoneNumber);
  const filtered = () => {
    let q = selectNumbers(ctx.db).where('n.org_id', '=', orgId);
    if (phoneNumber !== undefined) q = q.where('n.phone_number', '=', phoneNumber);
    if (query.providerId !== undefined) q = q.where('c.provider_id', '=', query.providerId);
    if (query.search !== undefined) q = q.where(matchesSearch(query.search));
    if (query.linkedAgentId !== undefined) {
      const agentId = query.linkedAgentId;
      q = q.where((eb) =>
        eb.or([
          eb('n.incoming_calls_agent_id', '=', agentId),
          eb('n.id', 'in', eb.selectFrom('agents').select('outbound_phone_number_id').where('id', '=', agentId).where('org_id', '=', orgId)),
        ]),
      );
    }
    if (query.unlinkedOnly) {
      q = q
        .where('n.incoming_calls_agent_id', 'is', null)
        .where((eb) => eb.not(eb.exists(eb.selectFrom('agents as a').select('a.id').whereRef('a.outbound_phone_number_id', '=', 'n.id'))));
    }
    return q;
  };
  const [rows, count] = await Promise.all([
    filtered().orderBy('n.created_time').orderBy('n.id').offset(query.skip).limit(query.take).execute(),
    filtered()
      .clearSelect()
      .select((eb) => eb.fn.countAll<string | number>().as('n'))
      .executeTakeFirstOrThrow(),
  ]);
  return { items: rows.map(numberFromRow), totalCount: Number(count.n), skip: query.skip, take: query.take };
}

async function credentialsProvider(ctx: Context, orgId: string, credentialsId: string): Promise<string | null> {
  const row = await ctx.db
    .selectFrom('sip_credentials')
    .select('provider_id')
    .where('id', '=', credentialsId)
    .where('org_id', '=', orgId)
    .executeTakeFirst();
  if (!row) throw notFound(`SIP credentials ${credentialsId} were not found`);
  return row.provider_id;
}

function translateUniqueViolation(error: unknown): unknown {
  const constraint = uniqueViolation(error);
  if (constraint === INBOUND_UNIQUE) return conflict(ALREADY_LINKED_ELSEWHERE);
  if (constraint === ORG_NUMBER_CREDENTIALS_UNIQUE) {
    return conflict('This phone number already exists with these credentials in this organization');
  }
  return error;
}

export async function createNumber(ctx: Context, orgId: string, input: PhoneNumberInput): Promise<PhoneNumber> {
  const phoneNumber = normalizeOrReject('phoneNumber', input.phoneNumber);
  const providerId = await credentialsProvider(ctx, orgId, input.credentialsId);
  const time = now();
  const registration = input.registration ?? false;
  const row: NumberRow = {
    id: crypto.randomUUID(),
    org_id: orgId,
    phone_number: phoneNumber,
    credentials_id: input.credentialsId,
    display_name: input.displayName ?? null,
    description: input.description ?? null,
    registration: registration ? 1 : 0,
    incoming_calls_agent_id: null,
    reg_state: registration ? 'Registering' : 'Disabled',
    reg_error_description: null,
    reg_sip_response_message: null,
    reg_last_updated: time,
    reg_expires_at: null,
    created_time: time,
    last_update_time: time,
    provider_id: providerId,
  };
  const { provider_id: _inherited, ...columns } = row;
  const created = numberFromRow(row);
  try {
    await withTransaction(ctx, async (tx) => {
      await tx.db.insertInto('phone_numbers').values(columns).execute();
      await recordEvents(tx, [numberEvent('phone_number.created', created)]);
      await tx.changes.publish({ kind: 'number', orgId, id: row.id });
    });
  } catch (error) {
    // The credentials were deleted between the check and the insert.
    if (foreignKeyViolation(error)) throw notFound(`SIP credentials ${input.credentialsId} were not found`);
    throw translateUniqueViolation(error);
  }
  return created;
}

export async function replaceNumber(ctx: Context, orgId: string, id: string, input: PhoneNumberInput): Promise<PhoneNumber> {
  const phoneNumber = normalizeOrReject('phoneNumber', input.phoneNumber);
  const existing = await findNumberRow(ctx, orgId, id);
  const providerId =
    input.credentialsId === existing.credentials_id ? existing.provider_id : await credentialsProvider(ctx, orgId, input.credentialsId);
  const registration = (input.registration ?? false) ? 1 : 0;
  const next = {
    phone_number: phoneNumber,
    credentials_id: input.credentialsId,
    display_name: input.displayName ?? null,
    description: input.description ?? null,
    registration,
  };
  const changed = (Object.keys(next) as (keyof typeof next)[]).some((k) => next[k] !== existing[k]);
  if (!changed) return numberFromRow(existing);

  const time = now();
  // A number that must register starts over whenever what it registers with changes.
  const reRegister =
    registration === 1 && (existing.registration === 0 || existing.phone_number !== phoneNumber || existing.credentials_id !== input.credentialsId);
  const registrationColumns =
    registration === 0
      ? existing.reg_state === 'Disabled'
        ? {}
        : { reg_state: 'Disabled', reg_error_description: null, reg_sip_response_message: null, reg_expires_at: null, reg_last_updated: time }
      : reRegister
        ? { reg_state: 'Registering', reg_error_description: null, reg_sip_response_message: null, reg_expires_at: null, reg_last_updated: time }
        : {};
  try {
    return await withTransaction(ctx, async (tx) => {
      const updated = await tx.db
        .updateTable('phone_numbers')
        .set({ ...next, ...registrationColumns, last_update_time: time })
        .where('id', '=', id)
        .where('org_id', '=', orgId)
        .returningAll()
        .executeTakeFirst();
      if (!updated) throw notFound(`Phone number ${id} was not found`);
      const number = numberFromRow({ ...updated, provider_id: providerId });
      const events = [numberEvent('phone_number.updated', number)];
      if (updated.reg_state !== existing.reg_state) events.push(registrationEvent(number, existing.reg_state));
      await recordEvents(tx, events);
      await tx.changes.publish({ kind: 'number', orgId, id });
      return number;
    });
  } catch (error) {
    // The new credentials were deleted between the check and the update.
    if (foreignKeyViolation(error)) throw notFound(`SIP credentials ${input.credentialsId} were not found`);
    throw translateUniqueViolation(error);
  }
}

/** Agents using each number, and how: the answer of both affected-agents routes. */
export async function affectedAgentsOfNumbers(ctx: Context, orgId: string, numberIds: string[]): Promise<NumberAffectedAgents[]> {
  if (numberIds.length === 0) return [];
  const [numbers, outbound] = await Promise.all([
    ctx.db
      .selectFrom('phone_numbers as n')
      .leftJoin('agents as a', 'a.id', 'n.incoming_calls_agent_id')
      .select(['n.id', 'n.phone_number', 'n.created_time', 'a.id as agent_id', 'a.name as agent_name'])
      .where('n.org_id', '=', orgId)
      .where('n.id', 'in', numberIds)
      .orderBy('n.created_time')
      .orderBy('n.id')
      .execute(),
    ctx.db
      .selectFrom('agents')
      .select(['id', 'name', 'outbound_phone_number_id'])
      .where('org_id', '=', orgId)
      .where('outbound_phone_number_id', 'in', numberIds)
      .orderBy('created_time')
      .orderBy('id')
      .execute(),
  ]);
  return numbers.map((n) => {
    const agents = new Map<string, AffectedAgent>();
    if (n.agent_id !== null) agents.set(n.agent_id, { agentId: n.agent_id, agentName: n.agent_name ?? '', uses: ['inbound'] });
    for (const a of outbound) {
      if (a.outbound_phone_number_id !== n.id) continue;
      const known = agents.get(a.id);
      if (known) known.uses.push('outbound');
      else agents.set(a.id, { agentId: a.id, agentName: a.name, uses: ['outbound'] });
    }
    return { id: n.id, phoneNumber: n.phone_number, affectedAgents: [...agents.values()] };
  });
}

export async function numberAffectedAgents(ctx: Context, orgId: string, id: string): Promise<NumberAffectedAgents> {
  await findNumberRow(ctx, orgId, id);
  const [result] = await affectedAgentsOfNumbers(ctx, orgId, [id]);
  return result;
}

/** Numbers as the API shows them, by id, in one read. */
export async function readNumbers(ctx: Context, orgId: string, numberIds: string[]): Promise<PhoneNumber[]> {
  if (numberIds.length === 0) return [];
  const rows = await selectNumbers(ctx.db).where('n.org_id', '=', orgId).where('n.id', 'in', numberIds).orderBy('n.created_time').execute();
  return rows.map(numberFromRow);
}

/** The event of an agent no longer calling out with a number (when the number still exists). */
export async function outboundUnlinkEvents(ctx: Context, orgId: string, numberId: string, agentId: string): Promise<NewEvent[]> {
  const [number] = await readNumbers(ctx, orgId, [numberId]);
  return number ? [linkEvent('phone_number.unlinked', number, 'outbound', agentId, null)] : [];
}

/** Deletes numbers after clearing the agents' outbound links to them (inbound links go with the rows). */
export async function deleteNumbersWithLinks(tx: Context, orgId: string, numberIds: string[]): Promise<void> {
  if (numberIds.length === 0) return;
  const numbers = await readNumbers(tx, orgId, numberIds);
  const agents = await tx.db
    .updateTable('agents')
    .set({ outbound_phone_number_id: null, last_update_time: now() })
    .where('org_id', '=', orgId)
    .where('outbound_phone_number_id', 'in', numberIds)
    .returningAll()
    .execute();
  await tx.db.deleteFrom('phone_numbers').where('org_id', '=', orgId).where('id', 'in', numberIds).execute();
  await recordEvents(tx, [
    ...agents.map((agent) => agentEvent('agent.updated', agentFromRow(agent))),
    ...numbers.map((n) => numberEvent('phone_number.deleted', n)),
  ]);
  for (const agent of agents) await tx.changes.publish({ kind: 'agent', orgId, id: agent.id });
  for (const id of numberIds) await tx.changes.publish({ kind: 'number', orgId, id });
}

export async function deleteNumber(ctx: Context, orgId: string, id: string, force: boolean): Promise<void> {
  await retryOnNewReference(() =>
    withTransaction(ctx, async (tx) => {
      if (force) {
        await findNumberRow(tx, orgId, id);
        await deleteNumbersWithLinks(tx, orgId, [id]);
        return;
      }
      const number = numberFromRow(await findNumberRow(tx, orgId, id));
      // The condition is part of the DELETE itself, so a link committed after a separate check
      // could not be deleted along with the number.
      const deleted = await tx.db
        .deleteFrom('phone_numbers')
        .where('id', '=', id)
        .where('org_id', '=', orgId)
        .where('incoming_calls_agent_id', 'is', null)
        .where((eb) => eb.not(eb.exists(eb.selectFrom('agents').select('id').where('outbound_phone_number_id', '=', id))))
        .executeTakeFirst();
      if (deleted.numDeletedRows === 0n) throw conflict('Agents use this phone number; unlink them first or pass force=true');
      await recordEvents(tx, [numberEvent('phone_number.deleted', number)]);
      await tx.changes.publish({ kind: 'number', orgId, id });
    }),
  );
}
