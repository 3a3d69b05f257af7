import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import { invalid } from '../common/errors.ts';
import { sendProblem } from '../http/problem.ts';
import { problemResponses } from '../http/schemas.ts';
import { Event, EVENT_TYPES } from './event-types.ts';
import type { EventStreamHub, StreamedEvent } from './event-stream.ts';

const KEEP_ALIVE_MS = 15_000;
/** Open streams per organization on one instance; more get 429. */
const MAX_STREAMS_PER_ORG = 50;
/** A client that does not read: past this much unsent, its stream is closed (it resumes with Last-Event-ID). */
const MAX_BUFFERED_BYTES = 1024 * 1024;

const EventStreamQuery = Type.Object(
  {
    types: Type.Optional(
      Type.String({
        maxLength: 1024,
        description: 'Comma-separated event types; every type when absent.',
        examples: ['phone_number.linked,registration.state_changed'],
      }),
    ),
    lastEventId: Type.Optional(
      Type.String({
        pattern: '^[0-9]{1,15}$',
        description: 'Resume after this event (as the Last-Event-ID header does, for clients that cannot set it).',
      }),
    ),
  },
  { additionalProperties: false },
);

export const eventRoutes: FastifyPluginAsyncTypebox<{ hub: EventStreamHub }> = async (app, { hub }) => {
  const open = new Map<string, number>();
  app.get(
    '/events',
    {
      schema: {
        tags: ['Events'],
        summary: 'Stream the organization’s events',
        operationId: 'streamEvents',
        description:
          'Server-Sent Events: one `event:` per event, named by its type, with `id:` its position in the event log and `data:` the event as webhooks carry it. ' +
          'Send the last id seen as Last-Event-ID (or lastEventId) to resume; events are retained for DIALPLANE_EVENT_RETENTION_HOURS.',
        querystring: EventStreamQuery,
        response: {
          200: {
            description: 'The event stream: each `data:` line is one Event.',
            content: { 'text/event-stream': { schema: Event } },
          },
          ...problemResponses,
        },
      },
    },
    async (request, reply) => {
      const types = request.query.types
        ?.split(',')
        .map((type) => type.trim())
        .filter((type) => type !== '');
      const unknown = types?.filter((type) => !(EVENT_TYPES as readonly string[]).includes(type)) ?? [];
      if (unknown.length > 0) throw invalid('types', `unknown event types: ${unknown.join(', ')}`);
      const header = request.headers['last-event-id'];
      const resumeText = request.query.lastEventId ?? (typeof header === 'string' ? header : undefined);
      if (resumeText !== undefined && !/^[0-9]{1,15}$/.test(resumeText)) throw invalid('Last-Event-ID', 'must be an event id from this stream');
      const orgId = request.orgId;
      const count = open.get(orgId) ?? 0;
      if (count >= MAX_STREAMS_PER_ORG) {
        return sendProblem(request, reply, 429, `At most ${MAX_STREAMS_PER_ORG} event streams per organization are open at once`);
      }
      open.set(orgId, count + 1);
      reply.hijack();
      const raw = reply.raw;
      raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no', connection: 'keep-alive' });
      raw.write(': dialplane events\n\n');
      let closed = false;
      const subscription: { cancel?: () => void } = {};
      const close = () => {
        if (closed) return;
        closed = true;
        clearInterval(keepAlive);
        subscription.cancel?.();
        const left = (open.get(orgId) ?? 1) - 1;
        if (left > 0) open.set(orgId, left);
        else open.delete(orgId);
        raw.end();
      };
      const send = (event: StreamedEvent) => {
        if (closed) return;
        if (raw.writableLength > MAX_BUFFERED_BYTES) return close();
        raw.write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${event.payload}\n\n`);
      };
      const keepAlive = setInterval(() => raw.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
      request.raw.on('close', close);
      const unsubscribe = await hub.subscribe(
        { orgId, types: types ? new Set(types) : null, send },
        resumeText === undefined ? null : Number(resumeText),
      );
      if (closed) unsubscribe();
      else subscription.cancel = unsubscribe;
    },
  );
};
