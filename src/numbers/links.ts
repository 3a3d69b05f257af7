import { recordEvents, withTransaction, type Context } from '../context.ts';
import { foreignKeyViolation, uniqueViolation } from '../db/errors.ts';
import { preparedQuery } from '../db/prepared.ts';
import { lockedOnPostgres } from '../db/row-lock.ts';
import { conflict, invalid, notFound } from '../common/errors.ts';
import { now } from '../common/time.ts';
import { findAgentRow } from '../agents/agents.ts';
import { linkEvent } from './number-events.ts';
import { ALREADY_LINKED_ELSEWHERE, INBOUND_UNIQUE, findNumberRow, numberFromRow, outboundUnlinkEvents, selectNumbers } from './numbers.ts';
import type { LinkMode, PhoneNumber } from './schemas.ts';

// A link runs on every link request, so its queries are prepared.

/**
 * The number and, if it is the organization's, the agent: one read serves both modes. The
 * number's row stays locked until the link commits, so the agent it had is the one replaced,
 * however many links race (and the event says so).
 */
const numberWithAgent = preparedQuery((db, v: { numberId: string; orgId: string; agentId: string }) =>
  lockedOnPostgres(
    db,
    selectNumbers(db)
      .leftJoin('agents as a', (join) => join.on('a.id', '=', v.agentId).onRef('a.org_id', '=', 'n.org_id'))
      .select(['a.id as agent_id', 'a.outbound_phone_number_id as agent_outbound_phone_number_id'])
      .where('n.id', '=', v.numberId)
      .where('n.org_id', '=', v.orgId),
    (query) => query.forUpdate('n'),
  ),
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
 * Each change and its events (docs/events.md) are one transaction.
 */
export async function linkAgent(ctx: Context, orgId: string, numberId: string, agentId: string, mode: LinkMode): Promise<PhoneNumber> {
  try {
    return await withTransaction(ctx, async (tx) => {
      const found = await numberWithAgent.first(tx.db, { numberId, orgId, agentId });
      if (!found) throw notFound(`Phone number ${numberId} was not found`);
      const { agent_id, agent_outbound_phone_number_id, ...row } = found;
      if (agent_id === null) throw notFound(`Agent ${agentId} was not found`);
      const time = now();

      if (mode === 'inbound') {
        const before = row.incoming_calls_agent_id;
        if (before === agentId) return numberFromRow(row);
        await setInboundAgent.run(tx.db, { numberId, orgId, agentId, time });
        const number = numberFromRow({ ...row, incoming_calls_agent_id: agentId, last_update_time: time });
        await recordEvents(tx, [linkEvent('phone_number.linked', number, 'inbound', before, agentId)]);
        await tx.changes.publish({ kind: 'number', orgId, id: numberId, linkOnly: true });
        return number;
      }

      const number = numberFromRow(row);
      if (agent_outbound_phone_number_id === numberId) return number;
      await setOutboundNumber.run(tx.db, { agentId, orgId, numberId, time });
      const replaced = agent_outbound_phone_number_id === null ? [] : await outboundUnlinkEvents(tx, orgId, agent_outbound_phone_number_id, agentId);
      await recordEvents(tx, [...replaced, linkEvent('phone_number.linked', number, 'outbound', null, agentId)]);
      await tx.changes.publish({ kind: 'agent', orgId, id: agentId });
      return number;
    });
  } catch (error) {
    if (uniqueViolation(error) === INBOUND_UNIQUE) throw conflict(ALREADY_LINKED_ELSEWHERE);
    // The agent (inbound) or the number (outbound) was deleted while being linked.
    if (foreignKeyViolation(error)) throw notFound(mode === 'inbound' ? `Agent ${agentId} was not found` : `Phone number ${numberId} was not found`);
    throw error;
  }
}

/**
 * `inbound` clears the number's inbound agent; `replaceOutbound` clears the named agent's
 * outbound number if it is this one. Unlinking what is not linked is a no-op.
 */
export async function unlinkAgent(ctx: Context, orgId: string, numberId: string, mode: LinkMode, agentId: string | undefined): Promise<PhoneNumber> {
  if (mode === 'replaceOutbound' && agentId === undefined) throw invalid('agentId', 'is required with mode=replaceOutbound');
  return withTransaction(ctx, async (tx) => {
    const row = await findNumberRow(tx, orgId, numberId);

    if (mode === 'replaceOutbound') {
      const agent = await findAgentRow(tx, orgId, agentId!);
      const number = numberFromRow(row);
      if (agent.outbound_phone_number_id !== numberId) return number;
      const cleared = await tx.db
        .updateTable('agents')
        .set({ outbound_phone_number_id: null, last_update_time: now() })
        .where('id', '=', agent.id)
        .where('outbound_phone_number_id', '=', numberId)
        .executeTakeFirst();
      if (cleared.numUpdatedRows === 0n) return number;
      await recordEvents(tx, [linkEvent('phone_number.unlinked', number, 'outbound', agent.id, null)]);
      await tx.changes.publish({ kind: 'agent', orgId, id: agent.id });
      return number;
    }

    const before = row.incoming_calls_agent_id;
    if (before === null) return numberFromRow(row);
    const time = now();
    await tx.db
      .updateTable('phone_numbers')
      .set({ incoming_calls_agent_id: null, last_update_time: time })
      .where('id', '=', numberId)
      .where('org_id', '=', orgId)
      .execute();
    const number = numberFromRow({ ...row, incoming_calls_agent_id: null, last_update_time: time });
    await recordEvents(tx, [linkEvent('phone_number.unlinked', number, 'inbound', before, null)]);
    await tx.changes.publish({ kind: 'number', orgId, id: numberId, linkOnly: true });
    return number;
  });
}
