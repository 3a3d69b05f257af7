import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Context } from '../context.ts';
import { problemResponses } from '../http/schemas.ts';
import { listCallRecords } from './records.ts';
import { CallRecordListQuery, CallRecordPage } from './schemas.ts';

export const callRecordRoutes: FastifyPluginAsyncTypebox<{ ctx: Context }> = async (app, { ctx }) => {
  app.get(
    '/call-records',
    {
      schema: {
        tags: ['Call records'],
        summary: 'List call attempts through the SIP edge, newest first',
        operationId: 'listCallRecords',
        description:
          'Every INVITE the edge handled for the organization, inbound and outbound, with its outcome and final status; filter by direction, outcome, number and agent.',
        querystring: CallRecordListQuery,
        response: { 200: CallRecordPage, ...problemResponses },
      },
    },
    (request) => listCallRecords(ctx, request.orgId, request.query),
  );
};
