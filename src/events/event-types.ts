import { Type, type Static } from '@sinclair/typebox';

/** Every event type dialplane emits (docs/events.md). */
export const EVENT_TYPES = [
  'phone_number.created',
  'phone_number.updated',
  'phone_number.deleted',
  'phone_number.linked',
  'phone_number.unlinked',
  'agent.created',
  'agent.updated',
  'agent.deleted',
  'sip_credentials.created',
  'sip_credentials.updated',
  'sip_credentials.deleted',
  'registration.state_changed',
  'call.started',
  'call.answered',
  'call.ended',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export const EventTypeSchema = Type.Unsafe<EventType>({ type: 'string', enum: [...EVENT_TYPES], title: 'EventType', description: 'What happened.' });

export const Event = Type.Object(
  {
    id: Type.String({
      description: 'Unique per event; the `webhook-id` of its deliveries, kept across retries.',
      examples: ['evt_5c1d0f6a2b7e4e0c9d3a'],
    }),
    type: EventTypeSchema,
    orgId: Type.String(),
    time: Type.String({ format: 'date-time', description: 'When the change was made (UTC).' }),
    data: Type.Record(Type.String(), Type.Unknown(), {
      description: 'The resource as the API shows it, and what the type adds (see docs/events.md).',
    }),
  },
  { title: 'Event', description: 'One event, as webhooks and the event stream carry it.' },
);
export type Event = Static<typeof Event>;

/** An event before it is written: the log adds its id and position. */
export interface NewEvent {
  type: EventType;
  orgId: string;
  /** Events of one resource (`phone_number:<id>`…) reach each endpoint in the order they were written. */
  resource: string;
  data: Record<string, unknown>;
}

export const resourceOf = {
  number: (id: string) => `phone_number:${id}`,
  agent: (id: string) => `agent:${id}`,
  credentials: (id: string) => `sip_credentials:${id}`,
  call: (callId: string) => `call:${callId}`,
};
