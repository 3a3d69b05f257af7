import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
import { sourceOwner } from '../common/addresses.ts';
import { TokenBuckets } from '../common/token-buckets.ts';
import { ApiKeyCache } from '../orgs/api-key-cache.ts';
import { sendProblem } from './problem.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** The organization of the request's API key; set by the auth hook on every /api/v1 route. */
    orgId: string;
  }
}

// The scheme name is case-insensitive (RFC 9110 §11.1); `i` leaves the token's classes as they were.
const BEARER = /^Bearer +([A-Za-z0-9_\-.~+/]+=*)$/i;

/**
 * Every route of the scope needs `Authorization: Bearer <apiKey>` of an active key. Failed
 * attempts draw from a token bucket per source address; once it is empty, every request from
 * that address gets 429 with Retry-After until a token is back, before any key is looked at, so
 * keys cannot be guessed at speed. (Behind a reverse proxy every client shares its address.)
 */
export function requireApiKey(app: FastifyInstance, db: Kysely<Database>, failures: { burst: number; perMinute: number }): void {
  const keys = new ApiKeyCache(db);
  const throttle = new TokenBuckets({ burst: failures.burst, ratePerSecond: failures.perMinute / 60 });
  app.decorateRequest('orgId', '');
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const waitMs = throttle.waitMs(request.ip);
    if (waitMs > 0) {
      reply.header('Retry-After', String(Math.ceil(waitMs / 1000)));
      return sendProblem(request, reply, 429, 'Too many failed authentications from this address; retry later');
    }
    const match = BEARER.exec(request.headers.authorization ?? '');
    if (!match) {
      throttle.take(sourceOwner(request.ip));
      reply.header('WWW-Authenticate', 'Bearer');
      return sendProblem(request, reply, 401, 'An Authorization header with a Bearer API key is required');
    }
    const orgId = await keys.orgFor(match[1]);
    if (orgId === null) {
      throttle.take(sourceOwner(request.ip));
      reply.header('WWW-Authenticate', 'Bearer error="invalid_token"');
      return sendProblem(request, reply, 401, 'The API key is unknown or revoked');
    }
    request.orgId = orgId;
  });
}
