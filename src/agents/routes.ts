import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { TargetRules } from '../common/addresses.ts';
import type { Context } from '../context.ts';
import { problemResponses } from '../http/schemas.ts';
import { createAgent, deleteAgent, getAgent, listAgents, updateAgent } from './agents.ts';
import { Agent, AgentCreate, AgentIdParams, AgentUpdate } from './schemas.ts';

const tags = ['Agents'];

export const agentRoutes: FastifyPluginAsyncTypebox<{ ctx: Context; targets: TargetRules }> = async (app, { ctx, targets }) => {
  app.get(
    '/agents',
    {
      schema: {
        tags,
        summary: 'List agents, newest first',
        operationId: 'listAgents',
        description: 'Every agent of the organization, newest first.',
        response: { 200: Type.Array(Agent), ...problemResponses },
      },
    },
    (request) => listAgents(ctx, request.orgId),
  );
  app.post(
    '/agents',
    {
      schema: {
        tags,
        summary: 'Create an agent',
        operationId: 'createAgent',
        description: 'An agent: where its inbound calls go (sipUri, else the default runtime) and, once linked, the number it calls out with.',
        body: AgentCreate,
        response: { 201: Agent, ...problemResponses },
      },
    },
    async (request, reply) => reply.code(201).send(await createAgent(ctx, request.orgId, request.body, targets)),
  );
  app.get(
    '/agents/:agentId',
    {
      schema: {
        tags,
        summary: 'Get an agent',
        operationId: 'getAgent',
        description: 'One agent: its settings, its sipUri and the number it calls out with.',
        params: AgentIdParams,
        response: { 200: Agent, ...problemResponses },
      },
    },
    (request) => getAgent(ctx, request.orgId, request.params.agentId),
  );
  app.put(
    '/agents/:agentId',
    {
      schema: {
        tags,
        summary: 'Update an agent',
        operationId: 'updateAgent',
        description: 'Partial: the fields sent replace those fields.',
        params: AgentIdParams,
        body: AgentUpdate,
        response: { 200: Agent, ...problemResponses },
      },
    },
    (request) => updateAgent(ctx, request.orgId, request.params.agentId, request.body, targets),
  );
  app.delete(
    '/agents/:agentId',
    {
      schema: {
        tags,
        summary: 'Delete an agent',
        operationId: 'deleteAgent',
        description: 'Its inbound links are removed first.',
        params: AgentIdParams,
        response: { 204: Type.Null(), ...problemResponses },
      },
    },
    async (request, reply) => {
      await deleteAgent(ctx, request.orgId, request.params.agentId);
      return reply.code(204).send(null);
    },
  );
};
