import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import type { Database } from '../db/schema.ts';
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

/** Every route of the scope needs `Authorization: Bearer <apiKey>` of an active key. */
export function requireApiKey(app: FastifyInstance, db: Kysely<Database>): void {
  const keys = new ApiKeyCache(db);
  app.decorateRequest('orgId', '');
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    const match = BEARER.exec(request.headers.authorization ?? '');
    if (!match) {
      reply.header('WWW-Authenticate', 'Bearer');
      return sendProblem(request, reply, 401, 'An Authorization header with a Bearer API key is required');
    }
    const orgId = await keys.orgFor(match[1]!);
    if (orgId === null) {
      reply.header('WWW-Authenticate', 'Bearer error="invalid_token"');
      return sendProblem(request, reply, 401, 'The API key is unknown or revoked');
    }
    request.orgId = orgId;
  });
}
