import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { DOCUMENT_INFO, finishDocument } from './openapi.ts';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { TargetRules } from '../common/addresses.ts';
import type { Context } from '../context.ts';
import type { ActiveCalls } from '../credentials/credentials.ts';
import type { NumberRowCache } from '../numbers/number-cache.ts';
import { agentRoutes } from '../agents/routes.ts';
import { callRecordRoutes } from '../calls/routes.ts';
import { CONSOLE_DIST, consoleRoutes } from '../console/routes.ts';
import { credentialsRoutes } from '../credentials/routes.ts';
import { numberRoutes } from '../numbers/routes.ts';
import type { EventStreamHub } from '../events/event-stream.ts';
import { eventRoutes } from '../events/routes.ts';
import { webhookRoutes } from '../webhooks/routes.ts';
import { requireApiKey } from './auth.ts';
import type { Metrics } from '../metrics.ts';
import type { RequestRate } from './request-rate.ts';
import { frameworkError, installProblemHandlers } from './problem.ts';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

export interface AppOptions {
  ctx: Context;
  metrics: Metrics;
  /** What tenant-chosen addresses are checked against. */
  targets: TargetRules;
  /** Number rows a GET may be answered from (SQLite only). */
  numberRows?: NumberRowCache;
  /** The calls the SIP edge is setting up, for credentials' affected-agents. */
  activeCalls: ActiveCalls;
  /** Failed authentications allowed per source address before 429. */
  authFailures: { burst: number; perMinute: number };
  bodyLimitBytes: number;
  logger: FastifyBaseLogger;
  /** Counts the API's requests, for work that steps aside under load. */
  requestRate?: RequestRate;
  /** The event stream and the webhooks' delivery (src/events/, src/webhooks/). */
  events: { hub: EventStreamHub; secretGraceSeconds: number; wake: () => void };
  /** True when the database and the SIP edge can serve; /readyz reports it. */
  isReady: () => Promise<boolean>;
}

/**
 * Bodies are validated strictly (no type coercion, unknown fields rejected); path and query
 * values arrive as text and are coerced to the schema's types.
 */
function validators() {
  const common = { allErrors: true, useDefaults: true, removeAdditional: false, strict: false } as const;
  const body = addFormats(new Ajv({ ...common, coerceTypes: false }));
  const text = addFormats(new Ajv({ ...common, coerceTypes: 'array' }));
  return (httpPart: string | undefined) => (httpPart === 'body' ? body : text);
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: options.logger,
    bodyLimit: options.bodyLimitBytes,
    frameworkErrors: frameworkError,
    // Logs carry no request bodies or headers: those hold SIP passwords and API keys.
    logController: new LogController({ disableRequestLogging: true }),
    // With requests not logged, a per-request child logger (made for every request) is seldom
    // used; what is logged about a request names its id itself (problem.ts).
    childLoggerFactory: (logger) => logger,
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Many clients send `Content-Type: application/json` on every request, a body or not: an empty
  // body is no body (a route that needs one still answers 400 when validation finds it missing).
  const parseJson = app.getDefaultJsonParser('error', 'error');
  void app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (body === '') done(null, undefined);
    else void parseJson(request, body as string, done);
  });

  const ajvFor = validators();
  app.setValidatorCompiler(({ schema, httpPart }) => ajvFor(httpPart).compile(schema));
  installProblemHandlers(app);

  // Once closing, answer in-flight requests with `Connection: close`: a keep-alive connection
  // left idle after its last answer would otherwise hold close() until its timeout.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (closing) reply.header('connection', 'close');
    done(null, payload);
  });

  const { requestRate } = options;
  if (requestRate) {
    app.addHook('onRequest', (_request, _reply, done) => {
      requestRate.hit();
      done();
    });
  }

  // One line per request, and its duration in the metrics: the route as declared (no ids, no
  // query), never a header or a body (API keys, SIP passwords).
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    options.metrics.httpRequest(request.method, route, reply.statusCode, reply.elapsedTime / 1000);
    options.logger.info(
      {
        method: request.method,
        route,
        status: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime * 10) / 10,
        orgId: request.orgId || undefined,
      },
      'http request',
    );
    done();
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      ...DOCUMENT_INFO,
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key (dpk_…).' } } },
      security: [{ bearer: [] }],
    },
    transformObject: (document) => finishDocument('openapiObject' in document ? document.openapiObject : document.swaggerObject),
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_request, reply) => {
    const ready = await options.isReady().catch(() => false);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready' });
  });
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) =>
    reply.type(options.metrics.registry.contentType).send(await options.metrics.registry.metrics()),
  );
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(consoleRoutes, { dist: CONSOLE_DIST });

  await app.register(
    async (api) => {
      requireApiKey(api, options.ctx.db, options.authFailures);
      await api.register(credentialsRoutes, { ctx: options.ctx, targets: options.targets, activeCalls: options.activeCalls });
      await api.register(agentRoutes, { ctx: options.ctx, targets: options.targets });
      await api.register(numberRoutes, { ctx: options.ctx, numberRows: options.numberRows });
      await api.register(callRecordRoutes, { ctx: options.ctx });
      await api.register(webhookRoutes, {
        ctx: options.ctx,
        targets: options.targets,
        secretGraceSeconds: options.events.secretGraceSeconds,
        wake: options.events.wake,
      });
      await api.register(eventRoutes, { hub: options.events.hub });
    },
    { prefix: '/api/v1' },
  );
  return app;
}
