import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { TargetRules } from '../common/addresses.ts';
import type { Context } from '../context.ts';
import type { ActiveCalls } from './credentials.ts';
import { ForceQuery, IdParams, Problem, problemResponses } from '../http/schemas.ts';
import {
  createCredentials,
  credentialsAffectedAgents,
  deleteCredentials,
  getCredentials,
  listCredentials,
  replaceCredentials,
} from './credentials.ts';
import { Credentials, CredentialsAffectedAgents, CredentialsInput, CredentialsListQuery, CredentialsPage } from './schemas.ts';

const tags = ['SIP credentials'];

export const credentialsRoutes: FastifyPluginAsyncTypebox<{ ctx: Context; targets: TargetRules; activeCalls: ActiveCalls }> = async (
  app,
  { ctx, targets, activeCalls },
) => {
  app.get(
    '/sip-credentials',
    {
      schema: {
        tags,
        summary: 'List SIP credentials',
        operationId: 'listSipCredentials',
        description: 'The organization’s trunks, oldest first, a page at a time (skip, take).',
        querystring: CredentialsListQuery,
        response: { 200: CredentialsPage, ...problemResponses },
      },
    },
    (request) => listCredentials(ctx, request.orgId, request.query),
  );
  app.post(
    '/sip-credentials',
    {
      schema: {
        tags,
        summary: 'Create SIP credentials',
        operationId: 'createSipCredentials',
        description:
          'A trunk: where outbound calls and REGISTERs go, who may send calls in, how fast calls may go out. authPassword is stored encrypted and never returned.',
        body: CredentialsInput,
        response: { 201: Credentials, ...problemResponses },
      },
    },
    async (request, reply) => reply.code(201).send(await createCredentials(ctx, request.orgId, request.body, targets)),
  );
  app.get(
    '/sip-credentials/:id',
    {
      schema: {
        tags,
        summary: 'Get SIP credentials',
        operationId: 'getSipCredentials',
        description: 'One trunk, with its health when healthCheck is on.',
        params: IdParams,
        response: { 200: Credentials, ...problemResponses },
      },
    },
    (request) => getCredentials(ctx, request.orgId, request.params.id),
  );
  app.put(
    '/sip-credentials/:id',
    {
      schema: {
        tags,
        summary: 'Replace SIP credentials',
        operationId: 'replaceSipCredentials',
        description: 'Full replacement; an absent authPassword keeps the stored one, null clears it.',
        params: IdParams,
        body: CredentialsInput,
        response: { 200: Credentials, ...problemResponses },
      },
    },
    (request) => replaceCredentials(ctx, request.orgId, request.params.id, request.body, targets),
  );
  app.delete(
    '/sip-credentials/:id',
    {
      schema: {
        tags,
        summary: 'Delete SIP credentials',
        operationId: 'deleteSipCredentials',
        description: '409 while phone numbers use them, unless force=true, which deletes those numbers and their links too.',
        params: IdParams,
        querystring: ForceQuery,
        response: { 204: Type.Null(), 409: Problem, ...problemResponses },
      },
    },
    async (request, reply) => {
      await deleteCredentials(ctx, request.orgId, request.params.id, request.query.force);
      return reply.code(204).send(null);
    },
  );
  app.get(
    '/sip-credentials/:id/affected-agents',
    {
      schema: {
        tags,
        summary: 'Phone numbers and agents that depend on these credentials',
        operationId: 'getSipCredentialsAffectedAgents',
        description:
          'What a forced delete would remove: the numbers on the trunk with the agents that use each, and the inbound calls being set up through it now.',
        params: IdParams,
        response: { 200: CredentialsAffectedAgents, ...problemResponses },
      },
    },
    (request) => credentialsAffectedAgents(ctx, request.orgId, request.params.id, activeCalls),
  );
};
