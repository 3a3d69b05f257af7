import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendProblem } from '../http/problem.ts';

/** Where `npm run build:console` puts the console (scripts/build-console.ts). */
export const CONSOLE_DIST = fileURLToPath(new URL('../../console/dist/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'console.js': 'text/javascript; charset=utf-8',
  'console.css': 'text/css; charset=utf-8',
  'console.js.map': 'application/json; charset=utf-8',
};

/**
 * The console may load only its own files and talk only to this server: a script injected
 * through data it shows could neither run nor send the API key anywhere.
 */
const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/**
 * Serves the built console at /console. Its few files are read once at start; when it was not
 * built, /console answers 503 saying how to build it.
 */
export async function consoleRoutes(app: FastifyInstance, options: { dist: string }): Promise<void> {
  const files = new Map<string, Buffer>();
  for (const name of Object.keys(CONTENT_TYPES)) {
    const file = path.join(options.dist, name);
    if (fs.existsSync(file)) files.set(name, fs.readFileSync(file));
  }

  const handler = (name: string) => async (request: FastifyRequest, reply: FastifyReply) => {
    const body = files.get(name);
    if (body === undefined) return sendProblem(request, reply, 503, 'The console is not built: run `npm run build:console` (npm start does it).');
    return reply
      .header('content-type', CONTENT_TYPES[name])
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', CONTENT_SECURITY_POLICY)
      .send(body);
  };
  const hidden = { schema: { hide: true } };
  app.get('/console', hidden, handler('index.html'));
  app.get('/console/', hidden, handler('index.html'));
  for (const name of Object.keys(CONTENT_TYPES)) if (name !== 'index.html') app.get(`/console/${name}`, hidden, handler(name));
}
