import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { STATUS_CODES } from 'node:http';
import { DomainError } from '../common/errors.ts';

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  errors?: Record<string, string[]>;
}

export function sendProblem(
  request: FastifyRequest,
  reply: FastifyReply,
  status: number,
  detail: string,
  errors?: Record<string, string[]>,
): FastifyReply {
  const body: ProblemBody = {
    type: 'about:blank',
    title: STATUS_CODES[status] ?? 'Error',
    status,
    detail,
    instance: request.url,
  };
  if (errors) body.errors = errors;
  return reply.code(status).type('application/problem+json').serializer(JSON.stringify).send(body);
}

interface AjvLikeError {
  keyword: string;
  instancePath: string;
  params: Record<string, unknown>;
  message?: string;
}

/** Turns the validator's findings into the `errors` map: field name → messages. */
function validationErrors(error: FastifyError): Record<string, string[]> {
  // No prototype: a client's field may be named `toString` or `constructor`.
  const errors = Object.create(null) as Record<string, string[]>;
  const add = (field: string, message: string) => (errors[field] ??= []).push(message);
  const context = error.validationContext ?? 'request';
  for (const raw of (error.validation ?? []) as AjvLikeError[]) {
    const path = raw.instancePath.replace(/^\//, '').replace(/\//g, '.');
    const prefix = path === '' ? '' : `${path}.`;
    if (raw.keyword === 'required') add(`${prefix}${String(raw.params.missingProperty)}`, 'is required');
    else if (raw.keyword === 'additionalProperties') add(`${prefix}${String(raw.params.additionalProperty)}`, 'is not a known field');
    else add(path === '' ? context : path, raw.message ?? 'is invalid');
  }
  return errors;
}

/**
 * What Fastify refuses before routing (a malformed percent-encoding, an overlong path
 * parameter) would otherwise leave as Fastify's own JSON; it is a problem like any other.
 */
export function frameworkError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const status = error.statusCode ?? 400;
  sendProblem(request, reply, status, error.message, status === 400 ? { path: [error.message] } : undefined);
}

/**
 * Every error leaves as problem details. Client errors keep their status; anything else is a
 * bug, logged with its stack and answered with a bare 500 that reveals nothing.
 */
export function installProblemHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    if (error instanceof DomainError) {
      return sendProblem(request, reply, error.status, error.message, error.errors);
    }
    if (error.validation) {
      const errors = validationErrors(error);
      const detail = Object.entries(errors)
        .map(([field, messages]) => `${field} ${messages.join(', ')}`)
        .join('; ');
      return sendProblem(request, reply, 400, `The request is not valid: ${detail}`, errors);
    }
    const status = error.statusCode ?? 500;
    // Every 400 carries `errors` (docs/api.md, Conventions); what the body parser refuses is the body's fault.
    if (status === 400) {
      const field = error.code?.startsWith('FST_ERR_CTP_') ? 'body' : 'request';
      return sendProblem(request, reply, status, error.message, { [field]: [error.message] });
    }
    if (status > 400 && status < 500) return sendProblem(request, reply, status, error.message);
    request.log.error({ reqId: request.id, err: error }, 'unhandled error');
    return sendProblem(request, reply, 500, 'An unexpected error occurred.');
  });
  app.setNotFoundHandler((request, reply) => sendProblem(request, reply, 404, `No route ${request.method} ${request.url.split('?')[0]}`));
}
