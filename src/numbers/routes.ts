import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { Context } from '../context.ts';
import { ForceQuery, IdParams, Problem, problemResponses } from '../http/schemas.ts';
import { linkAgent, unlinkAgent } from './links.ts';
import type { NumberRowCache } from './number-cache.ts';
import { createNumber, deleteNumber, getNumber, listNumbers, numberAffectedAgents, replaceNumber } from './numbers.ts';
import { LinkQuery, NumberAffectedAgents, PhoneNumber, PhoneNumberInput, PhoneNumberListQuery, PhoneNumberPage, UnlinkQuery } from './schemas.ts';

const tags = ['SIP phone numbers'];

/** `numberRows`: where a GET of one number may be answered from memory (SQLite only, numbers/number-cache.ts). */
export const numberRoutes: FastifyPluginAsyncTypebox<{ ctx: Context; numberRows?: NumberRowCache }> = async (app, { ctx, numberRows }) => {
  app.get(
    '/sip-phone-numbers',
    {
      schema: {
        tags,
        summary: 'List phone numbers',
        operationId: 'listSipPhoneNumbers',
        description: 'The organization’s numbers, a page at a time, with their registration status; filter by linked state or search by number.',
        querystring: PhoneNumberListQuery,
        response: { 200: PhoneNumberPage, ...problemResponses },
      },
    },
    (request) => listNumbers(ctx, request.orgId, request.query),
  );
  app.post(
    '/sip-phone-numbers',
    {
      schema: {
        tags,
        summary: 'Create a phone number',
        operationId: 'createSipPhoneNumber',
        description: 'A number on a trunk, normalized to E.164; registration: true keeps it registered with the trunk.',
        body: PhoneNumberInput,
        response: { 201: PhoneNumber, 409: Problem, ...problemResponses },
      },
    },
    async (request, reply) => reply.code(201).send(await createNumber(ctx, request.orgId, request.body)),
  );
  app.get(
    '/sip-phone-numbers/:id',
    {
      schema: {
        tags,
        summary: 'Get a phone number',
        operationId: 'getSipPhoneNumber',
        description: 'One number with its registration status and its inbound agent.',
        params: IdParams,
        response: { 200: PhoneNumber, ...problemResponses },
      },
    },
    (request) => getNumber(ctx, request.orgId, request.params.id, numberRows),
  );
  app.put(
    '/sip-phone-numbers/:id',
    {
      schema: {
        tags,
        summary: 'Replace a phone number',
        operationId: 'replaceSipPhoneNumber',
        description: 'Full replacement of the writable fields.',
        params: IdParams,
        body: PhoneNumberInput,
        response: { 200: PhoneNumber, 409: Problem, ...problemResponses },
      },
    },
    (request) => replaceNumber(ctx, request.orgId, request.params.id, request.body),
  );
  app.delete(
    '/sip-phone-numbers/:id',
    {
      schema: {
        tags,
        summary: 'Delete a phone number',
        operationId: 'deleteSipPhoneNumber',
        description: '409 while agents use it, unless force=true, which removes the links first.',
        params: IdParams,
        querystring: ForceQuery,
        response: { 204: Type.Null(), 409: Problem, ...problemResponses },
      },
    },
    async (request, reply) => {
      await deleteNumber(ctx, request.orgId, request.params.id, request.query.force);
      return reply.code(204).send(null);
    },
  );
  app.get(
    '/sip-phone-numbers/:id/affected-agents',
    {
      schema: {
        tags,
        summary: 'Agents that use this phone number',
        operationId: 'getSipPhoneNumberAffectedAgents',
        description: 'The agents a delete would unlink: the inbound one and those calling out with the number.',
        params: IdParams,
        response: { 200: NumberAffectedAgents, ...problemResponses },
      },
    },
    (request) => numberAffectedAgents(ctx, request.orgId, request.params.id),
  );
  app.put(
    '/sip-phone-numbers/:id/agent-link',
    {
      schema: {
        tags,
        summary: 'Link phone number to agent',
        operationId: 'linkSipPhoneNumber',
        description:
          'mode=inbound: inbound calls to this number reach the agent, replacing any previous agent; a normalized number may have ' +
          'only one inbound agent in the whole system (409 otherwise). mode=replaceOutbound: the agent calls out with this number.',
        params: IdParams,
        querystring: LinkQuery,
        response: { 200: PhoneNumber, 409: Problem, ...problemResponses },
      },
    },
    (request) => linkAgent(ctx, request.orgId, request.params.id, request.query.agentId, request.query.mode),
  );
  app.delete(
    '/sip-phone-numbers/:id/agent-link',
    {
      schema: {
        tags,
        summary: 'Unlink phone number from agent',
        operationId: 'unlinkSipPhoneNumber',
        description: 'mode=inbound removes the inbound link; mode=replaceOutbound&agentId=… clears that agent’s outbound number if it is this one.',
        params: IdParams,
        querystring: UnlinkQuery,
        response: { 200: PhoneNumber, ...problemResponses },
      },
    },
    (request) => unlinkAgent(ctx, request.orgId, request.params.id, request.query.mode, request.query.agentId),
  );
};
