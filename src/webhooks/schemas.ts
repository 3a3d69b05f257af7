import { Type, type Static } from '@sinclair/typebox';
import { EVENT_TYPES, EventTypeSchema } from '../events/event-types.ts';
import { Nullable, Page, PageQuery, StringEnum, Timestamp, Uuid } from '../http/schemas.ts';

const EventTypeList = Type.Array(EventTypeSchema, {
  minItems: 1,
  maxItems: EVENT_TYPES.length,
  uniqueItems: true,
  description: 'The event types this endpoint receives; every type when absent or null.',
});

const Url = Type.String({
  minLength: 8,
  maxLength: 2048,
  pattern: '^https?://',
  description: 'Where events are POSTed: http or https. The operator’s target rules apply (DIALPLANE_PRIVATE_TARGETS); redirects are not followed.',
  examples: ['https://hooks.example.com/dialplane'],
});

export const WebhookInput = Type.Object(
  {
    url: Url,
    eventTypes: Type.Optional(Nullable(EventTypeList)),
    enabled: Type.Optional(Type.Boolean({ default: true, description: 'Enabling clears what the server noted when it disabled the endpoint.' })),
    description: Type.Optional(Nullable(Type.String({ maxLength: 4096 }))),
  },
  {
    additionalProperties: false,
    title: 'WebhookInput',
    examples: [{ url: 'https://hooks.example.com/dialplane', eventTypes: ['phone_number.linked', 'call.ended'], description: 'CRM sync' }],
  },
);
export type WebhookInput = Static<typeof WebhookInput>;

export const Webhook = Type.Object(
  {
    id: Uuid,
    orgId: Type.String(),
    url: Type.String(),
    eventTypes: Nullable(Type.Array(EventTypeSchema)),
    enabled: Type.Boolean(),
    disabledReason: Nullable(Type.String({ description: 'Set when the server disabled the endpoint after failing deliveries.' })),
    failingSince: Nullable(Timestamp),
    description: Nullable(Type.String()),
    previousSecretValidUntil: Nullable(Timestamp),
    createdTime: Timestamp,
    lastUpdateTime: Timestamp,
  },
  {
    title: 'Webhook',
    description: 'An endpoint that receives the organization’s events. Its secret is never shown again after creation or rotation.',
  },
);
export type Webhook = Static<typeof Webhook>;

export const WebhookWithSecret = Type.Intersect(
  [
    Webhook,
    Type.Object({
      secret: Type.String({
        description: 'The signing secret (Standard Webhooks, `whsec_…`): shown only in this response.',
        examples: ['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'],
      }),
    }),
  ],
  { title: 'WebhookWithSecret' },
);

export const WebhookList = Type.Object({ items: Type.Array(Webhook) }, { title: 'WebhookList' });

export const RotateSecretInput = Type.Object(
  {
    graceSeconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 7 * 86400,
        description: 'How long the old secret stays valid (requests carry both signatures); the server’s default when absent.',
      }),
    ),
  },
  { additionalProperties: false, title: 'RotateSecretInput' },
);

export const DeliveryStatus = StringEnum(['pending', 'delivered', 'failed'] as const);

export const DeliveryAttempt = Type.Object(
  {
    attempt: Type.Integer({ minimum: 1 }),
    time: Timestamp,
    responseStatus: Nullable(Type.Integer({ description: 'The HTTP status the endpoint answered; null when none came.' })),
    durationMs: Type.Integer({ minimum: 0 }),
    error: Nullable(Type.String()),
  },
  { title: 'WebhookDeliveryAttempt' },
);

export const Delivery = Type.Object(
  {
    eventId: Type.String(),
    eventType: EventTypeSchema,
    status: DeliveryStatus,
    attemptCount: Type.Integer({ minimum: 0 }),
    nextAttemptTime: Nullable(Timestamp),
    createdTime: Timestamp,
    finishedTime: Nullable(Timestamp),
    attempts: Type.Array(DeliveryAttempt),
  },
  { title: 'WebhookDelivery' },
);
export type Delivery = Static<typeof Delivery>;

export const DeliveryPage = Page(Delivery, 'WebhookDeliveryPage');

export const DeliveryListQuery = Type.Object({ ...PageQuery, status: Type.Optional(DeliveryStatus) }, { additionalProperties: false });
export type DeliveryListQuery = Static<typeof DeliveryListQuery>;

export const DeliveryParams = Type.Object({ id: Uuid, eventId: Type.String({ maxLength: 64 }) }, { additionalProperties: false });
