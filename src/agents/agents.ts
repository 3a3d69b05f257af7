import crypto from 'node:crypto';
import type { Selectable } from 'kysely';
import { recordEvents, withTransaction, type Context } from '../context.ts';
import { agentEvent, agentFromRow } from './agent-events.ts';
import { linkEvent } from '../numbers/number-events.ts';
import { outboundUnlinkEvents, readNumbers } from '../numbers/numbers.ts';
import type { AgentsTable } from '../db/schema.ts';
import type { TargetRules } from '../common/addresses.ts';
import { invalid, notFound } from '../common/errors.ts';
import { MAX_JSON_DEPTH, withinDepth } from '../common/json-depth.ts';
import { now } from '../common/time.ts';
import { parseSipUri } from '../sip/uri.ts';
import { retryOnNewReference } from '../db/errors.ts';
import type { Agent, AgentCreate, AgentUpdate } from './schemas.ts';

type AgentRow = Selectable<AgentsTable>;

export async function findAgentRow(ctx: Context, orgId: string, agentId: string): Promise<AgentRow> {
  const row = await ctx.db.selectFrom('agents').selectAll().where('id', '=', agentId).where('org_id', '=', orgId).executeTakeFirst();
  if (!row) throw notFound(`Agent ${agentId} was not found`);
  return row;
}

export async function getAgent(ctx: Context, orgId: string, agentId: string): Promise<Agent> {
  return agentFromRow(await findAgentRow(ctx, orgId, agentId));
}

/** All of an organization's agents, newest first. */
export async function listAgents(ctx: Context, orgId: string): Promise<Agent[]> {
  const rows = await ctx.db
    .selectFrom('agents')
    .selectAll()
    .where('org_id', '=', orgId)
    .orderBy('created_time', 'desc')
    .orderBy('id', 'desc')
    .execute();
  return rows.map(agentFromRow);
}

/**
 * What the schema cannot check: the sipUri is a SIP URI the edge may send to (no maddr, no
 * address the operator's target rules refuse), and the free-form objects nest no deeper than
 * MAX_JSON_DEPTH.
 */
function checkInput(input: AgentUpdate, rules: TargetRules): void {
  for (const field of ['config', 'additionalData'] as const) {
    if (input[field] !== undefined && !withinDepth(input[field])) throw invalid(field, `nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  if (input.sipUri === undefined || input.sipUri === null) return;
  const uri = parseSipUri(input.sipUri);
  if (uri === null) throw invalid('sipUri', 'is not a SIP URI');
  if (uri.params.has('maddr')) throw invalid('sipUri', 'must not carry maddr');
  const refusal = rules.policy.refusal(uri.host);
  if (refusal !== null) throw invalid('sipUri', `must not point at ${refusal}`);
}

export async function createAgent(ctx: Context, orgId: string, input: AgentCreate, rules: TargetRules): Promise<Agent> {
  checkInput(input, rules);
  const time = now();
  const row: AgentRow = {
    id: crypto.randomUUID(),
    org_id: orgId,
    name: input.name,
    description: input.description ?? null,
    is_enabled: input.isEnabled === false ? 0 : 1,
    config: JSON.stringify(input.config ?? {}),
    additional_data: JSON.stringify(input.additionalData ?? {}),
    sip_uri: input.sipUri ?? null,
    outbound_phone_number_id: null,
    created_time: time,
    last_update_time: time,
  };
  const agent = agentFromRow(row);
  await withTransaction(ctx, async (tx) => {
    await tx.db.insertInto('agents').values(row).execute();
    await recordEvents(tx, [agentEvent('agent.created', agent)]);
    await tx.changes.publish({ kind: 'agent', orgId, id: row.id });
  });
  return agent;
}

export async function updateAgent(ctx: Context, orgId: string, agentId: string, input: AgentUpdate, rules: TargetRules): Promise<Agent> {
  checkInput(input, rules);
  const existing = await findAgentRow(ctx, orgId, agentId);
  const next: Partial<AgentRow> = {};
  if (input.name !== undefined) next.name = input.name;
  if (input.description !== undefined) next.description = input.description;
  if (input.isEnabled !== undefined) next.is_enabled = input.isEnabled ? 1 : 0;
  if (input.config !== undefined) next.config = JSON.stringify(input.config);
  if (input.additionalData !== undefined) next.additional_data = JSON.stringify(input.additionalData);
  if (input.sipUri !== undefined) next.sip_uri = input.sipUri;
  const changed = (Object.keys(next) as (keyof AgentRow)[]).some((k) => next[k] !== existing[k]);
  if (!changed) return agentFromRow(existing);

  return withTransaction(ctx, async (tx) => {
    const updated = await tx.db
      .updateTable('agents')
      .set({ ...next, last_update_time: now() })
      .where('id', '=', agentId)
      .where('org_id', '=', orgId)
      .returningAll()
      .executeTakeFirst();
    if (!updated) throw notFound(`Agent ${agentId} was not found`);
    const agent = agentFromRow(updated);
    await recordEvents(tx, [agentEvent('agent.updated', agent)]);
    await tx.changes.publish({ kind: 'agent', orgId, id: agentId });
    return agent;
  });
}

/** Deletes an agent after removing its inbound links (each such number's lastUpdateTime moves). */
export async function deleteAgent(ctx: Context, orgId: string, agentId: string): Promise<void> {
  await retryOnNewReference(() =>
    withTransaction(ctx, async (tx) => {
      const agent = agentFromRow(await findAgentRow(tx, orgId, agentId));
      const unlinked = await tx.db
        .updateTable('phone_numbers')
        .set({ incoming_calls_agent_id: null, last_update_time: now() })
        .where('org_id', '=', orgId)
        .where('incoming_calls_agent_id', '=', agentId)
        .returning('id')
        .execute();
      await tx.db.deleteFrom('agents').where('id', '=', agentId).where('org_id', '=', orgId).execute();
      const unlinkedNumbers = await readNumbers(
        tx,
        orgId,
        unlinked.map((number) => number.id),
      );
      await recordEvents(tx, [
        ...unlinkedNumbers.map((phoneNumber) => linkEvent('phone_number.unlinked', phoneNumber, 'inbound', agentId, null)),
        ...(agent.outboundPhoneNumberId === null ? [] : await outboundUnlinkEvents(tx, orgId, agent.outboundPhoneNumberId, agentId)),
        agentEvent('agent.deleted', agent),
      ]);
      for (const number of unlinked) await tx.changes.publish({ kind: 'number', orgId, id: number.id });
      await tx.changes.publish({ kind: 'agent', orgId, id: agentId });
    }),
  );
}
