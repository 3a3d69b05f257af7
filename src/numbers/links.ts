import type { Context } from '../context.ts';
import { foreignKeyViolation, uniqueViolation } from '../db/errors.ts';
import { conflict, invalid, notFound } from '../common/errors.ts';
import { now } from '../common/time.ts';
import { findAgentRow } from '../agents/agents.ts';
import { ALREADY_LINKED_ELSEWHERE, INBOUND_UNIQUE, findNumberRow, numberFromRow, selectNumbers } from './numbers.ts';
import type { LinkMode, PhoneNumber } from './schemas.ts';

/**
 * The link rules of CONTRACT 3.4, in one place.
 *
 * `inbound` sets the number's inbound agent, replacing any previous one. That a normalized
 * number has at most one inbound agent in the whole system is not checked here: the partial
 * unique index decides, atomically, however many requests race, and its refusal becomes 409.
 * `replaceOutbound` makes the number the agent's one outbound number.
 */
export async function linkAgent(
  ctx: Context,
  orgId: string,
  numberId: string,
  agentId: string,
  mode: LinkMode,
): Promise<PhoneNumber> {
  // One read for both: this runs on every link request.
  const found = await selectNumbers(ctx)
    .leftJoin('agents as a', (join) => join.on('a.id', '=', agentId).onRef('a.org_id', '=', 'n.org_id'))
    .select(['a.id as agent_id', 'a.outbound_phone_number_id as agent_outbound_phone_number_id'])
    .where('n.id', '=', numberId)
    .where('n.org_id', '=', orgId)
    .executeTakeFirst();
  if (!found) throw notFound(`Phone number ${numberId} was not found`);
  const { agent_id, agent_outbound_phone_number_id, ...number } = found;
  if (agent_id === null) throw notFound(`Agent ${agentId} was not found`);

  if (mode === 'replaceOutbound') {
    if (agent_outbound_phone_number_id !== numberId) {
      try {
        await ctx.db
          .updateTable('agents')
          .set({ outbound_phone_number_id: numberId, last_update_time: now() })
          .where('id', '=', agentId)
          .where('org_id', '=', orgId)
          .execute();
      } catch (error) {
        // The number was deleted between the read and the write.
        if (foreignKeyViolation(error)) throw notFound(`Phone number ${numberId} was not found`);
        throw error;
      }
      await ctx.changes.publish({ kind: 'agent', orgId, id: agentId });
    }
    return numberFromRow(number);
  }

  if (number.incoming_calls_agent_id === agentId) return numberFromRow(number);
  const time = now();
  try {
    const updated = await ctx.db
      .updateTable('phone_numbers')
      .set({ incoming_calls_agent_id: agentId, last_update_time: time })
      .where('id', '=', numberId)
      .where('org_id', '=', orgId)
      .executeTakeFirst();
    if (updated.numUpdatedRows === 0n) throw notFound(`Phone number ${numberId} was not found`);
  } catch (error) {
    if (uniqueViolation(error) === INBOUND_UNIQUE) throw conflict(ALREADY_LINKED_ELSEWHERE);
    // The agent was deleted between the read and the write.
    if (foreignKeyViolation(error)) throw notFound(`Agent ${agentId} was not found`);
    throw error;
  }
  await ctx.changes.publish({ kind: 'number', orgId, id: numberId });
  return numberFromRow({ ...number, incoming_calls_agent_id: agentId, last_update_time: time });
}

/**
 * `inbound` clears the number's inbound agent; `replaceOutbound` clears the named agent's
 * outbound number if it is this one. Unlinking what is not linked is a no-op.
 */
export async function unlinkAgent(
  ctx: Context,
  orgId: string,
  numberId: string,
  mode: LinkMode,
  agentId: string | undefined,
): Promise<PhoneNumber> {
  const number = await findNumberRow(ctx, orgId, numberId);

  if (mode === 'replaceOutbound') {
    if (agentId === undefined) throw invalid('agentId', 'is required with mode=replaceOutbound');
    const agent = await findAgentRow(ctx, orgId, agentId);
    if (agent.outbound_phone_number_id === numberId) {
      await ctx.db
        .updateTable('agents')
        .set({ outbound_phone_number_id: null, last_update_time: now() })
        .where('id', '=', agentId)
        .where('outbound_phone_number_id', '=', numberId)
        .execute();
      await ctx.changes.publish({ kind: 'agent', orgId, id: agentId });
    }
    return numberFromRow(number);
  }

  if (number.incoming_calls_agent_id === null) return numberFromRow(number);
  const time = now();
  await ctx.db
    .updateTable('phone_numbers')
    .set({ incoming_calls_agent_id: null, last_update_time: time })
    .where('id', '=', numberId)
    .where('org_id', '=', orgId)
    .execute();
  await ctx.changes.publish({ kind: 'number', orgId, id: numberId });
  return numberFromRow({ ...number, incoming_calls_agent_id: null, last_update_time: time });
}
