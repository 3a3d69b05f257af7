import type { Selectable } from 'kysely';
import type { AgentsTable } from '../db/schema.ts';
import { resourceOf, type NewEvent } from '../events/event-types.ts';
import type { Agent } from './schemas.ts';

export function agentFromRow(row: Selectable<AgentsTable>): Agent {
  return {
    agentId: row.id,
    orgId: row.org_id,
    name: row.name,
    description: row.description,
    isEnabled: row.is_enabled === 1,
    config: JSON.parse(row.config) as Agent['config'],
    additionalData: JSON.parse(row.additional_data) as Agent['additionalData'],
    sipUri: row.sip_uri,
    outboundPhoneNumberId: row.outbound_phone_number_id,
    createdTime: row.created_time,
    lastUpdateTime: row.last_update_time,
  };
}

/** The events of an agent (docs/events.md): its data is the agent as the API shows it. */
export const agentEvent = (type: 'agent.created' | 'agent.updated' | 'agent.deleted', agent: Agent): NewEvent => ({
  type,
  orgId: agent.orgId,
  resource: resourceOf.agent(agent.agentId),
  data: { agent },
});
