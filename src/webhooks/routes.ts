import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { TargetRules } from '../common/addresses.ts';
import type { Context } from '../context.ts';
import { IdParams, problemResponses } from '../http/schemas.ts';
import { createWebhook, deleteWebhook, getWebhook, listDeliveries, listWebhooks, replaceWebhook, resendDelivery, rotateSecret } from './endpoints.ts';
import {
  DeliveryListQuery,
  DeliveryPage,
  DeliveryParams,
  RotateSecretInput,
  Webhook,
  WebhookInput,
  WebhookList,
  WebhookWithSecret,
} from './schemas.ts';

const tags = ['Webhooks'];

/** `secretGraceSeconds`: how long a rotated-out secret stays valid unless the request says otherwise. */
export const webhookRoutes: FastifyPluginAsyncTypebox<{ ctx: Context; targets: TargetRules; secretGraceSeconds: number; wake: () => void }> = async (
  app,
  { ctx, targets, secretGraceSeconds, wake },
) => {
  app.get(
    '/webhooks',
    {
      schema: {
        tags,
        summary: 'List webhook endpoints',
        operationId: 'listWebhooks',
        description: 'The organization’s webhook endpoints, oldest first, with whether each is enabled and why the server disabled it.',
        response: { 200: WebhookList, ...problemResponses },
      },
    },
    (request) => listWebhooks(ctx, request.orgId),
  );
  app.post(
    '/webhooks',
    {
      schema: {
        tags,
        summary: 'Create a webhook endpoint',
        operationId: 'createWebhook',
        description:
          'Events of the organization are POSTed to the URL, signed (Standard Webhooks). The answer holds the signing secret, shown only this once.',
        body: WebhookInput,
        response: { 201: WebhookWithSecret, ...problemResponses },
      },
    },
    async (request, reply) => reply.code(201).send(await createWebhook(ctx, request.orgId, request.body, targets)),
  );
  app.get(
    '/webhooks/:id',
    {
      schema: {
        tags,
        summary: 'Get a webhook endpoint',
        operationId: 'getWebhook',
        description: 'One endpoint, without its secret.',
        params: IdParams,
        response: { 200: Webhook, ...problemResponses },
      },
    },
    (request) => getWebhook(ctx, request.orgId, request.params.id),
  );
  app.put(
    '/webhooks/:id',
    {
      schema: {
        tags,
        summary: 'Replace a webhook endpoint',
        operationId: 'replaceWebhook',
        description: 'Full replacement of url, eventTypes, enabled and description. Enabling an endpoint the server disabled clears its reason.',
        params: IdParams,
        body: WebhookInput,
        response: { 200: Webhook, ...problemResponses },
      },
    },
    async (request) => {
      const webhook = await replaceWebhook(ctx, request.orgId, request.params.id, request.body, targets);
      wake();
      return webhook;
    },
  );
  app.delete(
    '/webhooks/:id',
    {
      schema: {
        tags,
        summary: 'Delete a webhook endpoint',
        operationId: 'deleteWebhook',
        description: 'The endpoint and its deliveries; nothing more is sent to it.',
        params: IdParams,
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (request, reply) => {
      await deleteWebhook(ctx, request.orgId, request.params.id);
      return reply.code(204).send(null);
    },
  );
  app.post(
    '/webhooks/:id/rotate-secret',
    {
      schema: {
        tags,
        summary: 'Rotate a webhook endpoint’s secret',
        operationId: 'rotateWebhookSecret',
        description: 'A new secret, returned once. During the grace period requests carry signatures with both secrets.',
        params: IdParams,
        body: Type.Optional(RotateSecretInput),
        response: { 200: WebhookWithSecret, ...problemResponses },
      },
    },
    (request) => rotateSecret(ctx, request.orgId, request.params.id, request.body?.graceSeconds ?? secretGraceSeconds),
  );
  app.get(
    '/webhooks/:id/deliveries',
    {
      schema: {
        tags,
        summary: 'List an endpoint’s deliveries',
        operationId: 'listWebhookDeliveries',
        description: 'Newest event first: each delivery’s status and every attempt (response status, duration, error).',
        params: IdParams,
        querystring: DeliveryListQuery,
        response: { 200: DeliveryPage, ...problemResponses },
      },
    },
    (request) => listDeliveries(ctx, request.orgId, request.params.id, request.query),
  );
  app.post(
    '/webhooks/:id/deliveries/:eventId/resend',
    {
      schema: {
        tags,
        summary: 'Send a delivery again',
        operationId: 'resendWebhookDelivery',
        description: 'Queues the event for this endpoint again at once, with the same webhook-id and a new retry period.',
        params: DeliveryParams,
        response: { 202: Type.Null(), ...problemResponses },
      },
    },
    async (request, reply) => {
      await resendDelivery(ctx, request.orgId, request.params.id, request.params.eventId);
      wake();
      return reply.code(202).send(null);
    },
  );
};
