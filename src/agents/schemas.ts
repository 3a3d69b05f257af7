import { Type, type Static } from '@sinclair/typebox';
import { Nullable, Timestamp, Uuid } from '../http/schemas.ts';

const FreeObject = (description: string) => Type.Object({}, { additionalProperties: true, description });

const SipUri = Type.String({
  maxLength: 1024,
  pattern: '^sips?:[^\\s<>"]+$',
  description: 'SIP URI of the conversation runtime that serves this agent.',
});

const agentFields = {
  name: Type.String({ minLength: 1, maxLength: 255 }),
  description: Nullable(Type.String({ maxLength: 4096 })),
  // No default here: the validator would fill it into a partial update and re-enable the agent.
  isEnabled: Type.Boolean(),
  config: FreeObject('Agent configuration, kept as given.'),
  additionalData: FreeObject('Anything the client wants to keep with the agent, kept as given.'),
  sipUri: Nullable(SipUri),
};

export const AgentCreate = Type.Object(
  {
    name: agentFields.name,
    description: Type.Optional(agentFields.description),
    isEnabled: Type.Optional(Type.Boolean({ default: true })),
    config: Type.Optional(agentFields.config),
    additionalData: Type.Optional(agentFields.additionalData),
    sipUri: Type.Optional(agentFields.sipUri),
  },
  {
    additionalProperties: false,
    title: 'AgentCreate',
    examples: [{ name: 'Front desk', sipUri: 'sip:front-desk@agents.example.com' }],
  },
);
export type AgentCreate = Static<typeof AgentCreate>;

/** Partial update: the fields sent replace those fields. */
export const AgentUpdate = Type.Partial(Type.Object(agentFields), { additionalProperties: false, title: 'AgentUpdate' });
export type AgentUpdate = Static<typeof AgentUpdate>;

export const Agent = Type.Object(
  {
    agentId: Uuid,
    orgId: Type.String(),
    name: Type.String(),
    description: Nullable(Type.String()),
    isEnabled: Type.Boolean(),
    config: FreeObject('Agent configuration.'),
    additionalData: FreeObject('Client data.'),
    sipUri: Nullable(Type.String()),
    outboundPhoneNumberId: Nullable(Uuid),
    createdTime: Timestamp,
    lastUpdateTime: Timestamp,
  },
  { title: 'Agent' },
);
export type Agent = Static<typeof Agent>;

export const AgentIdParams = Type.Object({ agentId: Uuid });
