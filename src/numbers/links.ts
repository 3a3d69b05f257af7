import type { Context } from '../context.ts';
import { foreignKeyViolation, uniqueViolation } from '../db/errors.ts';
import { preparedQuery } from '../db/prepared.ts';
import { conflict, invalid, notFound } from '../common/errors.ts';
import { now } from '../common/time.ts';
import { findAgentRow } from '../agents/agents.ts';
import { ALREADY_LINKED_ELSEWHERE, INBOUND_UNIQUE, findNumberRow, numberFromRow, selectNumbers } from './numbers.ts';
import type { LinkMode, PhoneNumber } from './schemas.ts';

// A link runs on every link request, so its queries are prepared.

/**
 * The common inbound link in one statement: the number is the organization's, so is the
 * agent, and the number is not yet linked to it. Returns the updated number, or nothing when
 * one of those does not hold (the caller then reads to tell which).
 */
const linkInboundIfNew = preparedQuery((db, v: { numberId: string; orgId: string; agentId: string; time: string }) =>
  db
    .updateTable('phone_numbers')
    .set({ incoming_calls_agent_id: v.agentId, last_update_time: v.time })
    .where('id', '=', v.numberId)
    .where('org_id', '=', v.orgId)
    .where('incoming_calls_agent_id', 'is distinct from', v.agentId)
    .where((eb) => eb.exists(eb.selectFrom('agents').select('id').where('id', '=', v.agentId).where('org_id', '=', v.orgId)))
    .returningAll()
    .returning((eb) =>
      eb.selectFrom('sip_credentials as c').select('c.provider_id').whereRef('c.id', '=', 'phone_numbers.credentials_id').as('provider_id'),
    ),
);

/** The number and, if it is the organization's, the agent: one read serves both modes. */
const numberWithAgent = preparedQuery((db, v: { numberId: string; orgId: string; agentId: string }) =>
  selectNumbers(db)
    .leftJoin('agents as a', (join) => join.on('a.id', '=', v.agentId).onRef('a.org_id', '=', 'n.org_id'))
    .select(['a.id as agent_id', 'a.outbound_phone_number_id as agent_outbound_phone_number_id'])
    .where('n.id', '=', v.numberId)
    .where('n.org_id', '=', v.orgId),
);

const setInboundAgent = preparedQuery((db, v: { numberId: string; orgId: string; agentId: string; time: string }) =>
  db
    .updateTable('phone_numbers')
    .set({ incoming_calls_agent_id: v.agentId, last_update_time: v.time })
    .where('id', '=', v.numberId)
    .where('org_id', '=', v.orgId),
);

const setOutboundNumber = preparedQuery((db, v: { agentId: string; orgId: string; numberId: string; time: string }) =>
  db
    .updateTable('agents')
    .set({ outbound_phone_number_id: v.numberId, last_update_time: v.time })
    .where('id', '=', v.agentId)
    .where('org_id', '=', v.orgId),
);

/**
 * The link rules of docs/api.md, Links, in one place.
 *
 * `inbound` sets the number's inbound agent, replacing any previous one. That a normalized
 * number has at most one inbound agent in the whole system is not checked here: the partial
 * unique index decides, atomically, however many requests race, and its refusal becomes 409.
 * Linking the agent a number already has changes nothing, lastUpdateTime included.
 * `replaceOutbound` makes the number the agent's one outbound number.
 */
export async function linkAgent(ctx: Context, orgId: string, numberId: string, agentId: string, mode: LinkMode): Promise<PhoneNumber> {
  if (mode === 'inbound') {
    const linked = await inboundWrite(agentId, () => linkInboundIfNew.first(ctx.db, { numberId, orgId, agentId, time: now() }));
    if (linked) {
      await ctx.changes.publish({ kind: 'number', orgId, id: numberId, linkOnly: true });
      return numberFromRow(linked);
    }
  }

  const found = await numberWithAgent.first(ctx.db, { numberId, orgId, agentId });
  if (!found) throw notFound(`Phone number ${numberId} was not found`);
  const { agent_id, agent_outbound_phone_number_id, ...number } = found;
  if (agent_id === null) throw notFound(`Agent ${agentId} was not found`);

  if (mode === 'inbound') {
    if (number.incoming_calls_agent_id === agentId) return numberFromRow(number);
    // Both exist and the link is new after all: a concurrent link came between. This one is the latest.
    const time = now();
    const updated = await inboundWrite(agentId, () => setInboundAgent.run(ctx.db, { numberId, orgId, agentId, time }));
    if (updated.numAffectedRows === 0n) throw notFound(`Phone number ${numberId} was not found`);
    await ctx.changes.publish({ kind: 'number', orgId, id: numberId, linkOnly: true });
    return numberFromRow({ ...number, incoming_calls_agent_id: agentId, last_update_time: time });
  }

  if (agent_outbound_phone_number_id !== numberId) {
    try {
      await setOutboundNumber.run(ctx.db, { agentId, orgId, numberId, time: now() });
    } catch (error) {
      // The number was deleted between the read and the write.
      if (foreignKeyViolation(error)) throw notFound(`Phone number ${numberId} was not found`);
      throw error;
    }
    await ctx.changes.publish({ kind: 'agent', orgId, id: agentId });
  }
  return numberFromRow(number);
}

/** Runs a write of a number's inbound agent, turning the database's refusals into API errors. */
async function inboundWrite<T>(agentId: string, write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (uniqueViolation(error) === INBOUND_UNIQUE) throw conflict(ALREADY_LINKED_ELSEWHERE);
    // The agent was deleted while being linked.
    if (foreignKeyViolation(error)) throw notFound(`Agent ${agentId} was not found`);
    throw error;
  }
}

/**
 * `inbound` clears the number's inbound agent; `replaceOutbound` clears the named agent's
 * outbound number if it is this one. Unlinking what is not linked is a no-op.
 */
export async function unlinkAgent(ctx: Context, orgId: string, numberId: string, mode: LinkMode, agentId: string | undefined): Promise<PhoneNumber> {
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
  await ctx.changes.publish({ kind: 'number', orgId, id: numberId, linkOnly: true });
  return numberFromRow({ ...number, incoming_calls_agent_id: null, last_update_time: time });
}
