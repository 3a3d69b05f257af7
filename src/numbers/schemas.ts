import { Type, type Static } from '@sinclair/typebox';
import { Defaulted, Nullable, Page, PageQuery, Timestamp, Uuid, StringEnum } from '../http/schemas.ts';

export const RegistrationState = StringEnum(['Disabled', 'Registering', 'Registered', 'Failed'], {
  description: 'Registration with the SIP provider.',
});
export type RegistrationState = Static<typeof RegistrationState>;

export const RegistrationStatus = Type.Object(
  {
    state: RegistrationState,
    errorDescription: Nullable(Type.String()),
    sipResponseMessage: Nullable(Type.String()),
    lastUpdated: Timestamp,
    expiresAt: Nullable(Timestamp),
  },
  { title: 'RegistrationStatus' },
);

export const PhoneNumber = Type.Object(
  {
    id: Uuid,
    orgId: Type.String({ minLength: 1 }),
    phoneNumber: Type.String({ minLength: 1, description: 'Normalized: + and 3 to 15 digits.' }),
    credentialsId: Uuid,
    createdTime: Timestamp,
    lastUpdateTime: Timestamp,
    registrationStatus: RegistrationStatus,
    description: Nullable(Type.String()),
    displayName: Nullable(Type.String()),
    registration: Type.Boolean(),
    providerId: Nullable(Type.String()),
    incomingCallsAgentId: Nullable(Type.String()),
  },
  { title: 'SipPhoneNumber' },
);
export type PhoneNumber = Static<typeof PhoneNumber>;

/** Body of POST and PUT (PUT replaces every writable field). */
export const PhoneNumberInput = Type.Object(
  {
    phoneNumber: Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'Any common notation; stored normalized (spaces, dashes, dots, parentheses dropped; 00 → +).',
    }),
    credentialsId: Uuid,
    displayName: Type.Optional(Nullable(Type.String({ maxLength: 255 }))),
    description: Type.Optional(Nullable(Type.String({ maxLength: 1024 }))),
    registration: Type.Optional(Type.Boolean({ default: false })),
  },
  {
    additionalProperties: false,
    title: 'SipPhoneNumberInput',
    examples: [{ phoneNumber: '+15551230000', credentialsId: '0b9f7a52-3c4d-4e5f-8a6b-7c8d9e0f1a2b', registration: true }],
  },
);
export type PhoneNumberInput = Static<typeof PhoneNumberInput>;

export const PhoneNumberPage = Page(PhoneNumber, 'SipPhoneNumberPage');

export const PhoneNumberListQuery = Type.Object({
  ...PageQuery,
  phoneNumber: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Exactly this number (normalized first).' })),
  search: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 64,
      description: 'Numbers containing these digits, or whose display name or description contains this text (any case). A dialplane extension.',
    }),
  ),
  linkedAgentId: Type.Optional(Uuid),
  unlinkedOnly: Type.Optional(Type.Boolean()),
  providerId: Type.Optional(Uuid),
});
export type PhoneNumberListQuery = Static<typeof PhoneNumberListQuery>;

export const LinkMode = StringEnum(['inbound', 'replaceOutbound'], {
  default: 'inbound',
  description: '`inbound`: calls to the number reach the agent. `replaceOutbound`: the agent calls out with this number.',
});
export type LinkMode = Static<typeof LinkMode>;

export const LinkQuery = Type.Object({ agentId: Uuid, mode: Defaulted(LinkMode) });
export const UnlinkQuery = Type.Object({ mode: Defaulted(LinkMode), agentId: Type.Optional(Uuid) });

export const AgentUse = StringEnum(['inbound', 'outbound']);
export type AgentUse = Static<typeof AgentUse>;

export const AffectedAgent = Type.Object(
  { agentId: Type.String(), agentName: Type.String(), uses: Type.Array(AgentUse) },
  { title: 'AffectedAgent' },
);
export type AffectedAgent = Static<typeof AffectedAgent>;

export const NumberAffectedAgents = Type.Object(
  { id: Uuid, phoneNumber: Type.String(), affectedAgents: Type.Array(AffectedAgent) },
  { title: 'SipPhoneNumberAffectedAgents' },
);
export type NumberAffectedAgents = Static<typeof NumberAffectedAgents>;
