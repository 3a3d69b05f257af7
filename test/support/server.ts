import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import crypto from 'node:crypto';
import { loadConfig, type Config } from '../../src/config.ts';
import { createOrg } from '../../src/orgs/orgs.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { freshPostgresSchema, type Backend } from './backends.ts';

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface RequestOptions {
  key?: string | null;
  body?: unknown;
  rawBody?: string;
  query?: Record<string, string | number | boolean | undefined>;
  headers?: Record<string, string>;
}

export interface TestServer {
  backend: Backend;
  url: string;
  server: RunningServer;
  config: Config;
  /** The key of the `default` organization created on first start. */
  defaultKey: string;
  defaultOrgId: string;
  newOrg(name?: string): Promise<{ orgId: string; apiKey: string }>;
  request<T = any>(method: string, urlPath: string, options?: RequestOptions): Promise<ApiResponse<T>>;
  close(): Promise<void>;
}

export interface TestDatabase {
  backend: Backend;
  env: Record<string, string>;
  drop: () => Promise<void>;
}

/** A fresh SQLite file in a temporary folder, or a fresh PostgreSQL schema. */
export async function freshDatabase(backend: Backend): Promise<TestDatabase> {
  if (backend === 'sqlite') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-test-'));
    return {
      backend,
      env: { DIALPLANE_DB: path.join(dir, 'dialplane.db') },
      drop: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  }
  const schema = await freshPostgresSchema();
  return {
    backend,
    env: { DIALPLANE_DB: schema.url, DIALPLANE_SECRET_KEY: crypto.randomBytes(32).toString('hex') },
    drop: schema.drop,
  };
}

export async function request<T = any>(baseUrl: string, method: string, urlPath: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
  const url = new URL(urlPath, baseUrl);
  for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
  const headers: Record<string, string> = { ...options.headers };
  if (options.key) headers.authorization = `Bearer ${options.key}`;
  let payload: string | undefined = options.rawBody;
  if (options.body !== undefined) payload = JSON.stringify(options.body);
  if (payload !== undefined) headers['content-type'] ??= 'application/json';
  // Bounded, so that a server that stops answering fails the test instead of hanging it.
  const response = await fetch(url, { method, headers, body: payload, signal: AbortSignal.timeout(20000) });
  const text = await response.text();
  let body: any = text;
  if (text !== '' && /json/.test(response.headers.get('content-type') ?? '')) body = JSON.parse(text);
  return { status: response.status, headers: response.headers, body };
}

/**
 * A real server on an ephemeral port over a fresh database. `database` lets two servers share
 * one database (several instances); the first to start creates the `default` organization.
 */
export async function startTestServer(
  backend: Backend,
  options: { database?: TestDatabase; env?: Record<string, string>; logs?: object[] } = {},
): Promise<TestServer> {
  const database = options.database ?? (await freshDatabase(backend));
  const config = loadConfig({
    DIALPLANE_HTTP_HOST: '127.0.0.1',
    DIALPLANE_HTTP_PORT: '0',
    DIALPLANE_SIP_HOST: '127.0.0.1',
    DIALPLANE_SIP_PORT: '0',
    ...database.env,
    ...options.env,
  });
  // With `logs`, warnings and errors are collected there as parsed JSON lines.
  const logs = options.logs;
  const logger = logs === undefined ? false : { level: 'warn', destination: { write: (line: string) => void logs.push(JSON.parse(line) as object) } };
  const server = await startServer(config, { logger });
  const url = `http://127.0.0.1:${server.httpPort}`;
  let defaultOrg = server.defaultOrg;
  defaultOrg ??= await createOrg(server.ctx.db, `org-${crypto.randomUUID()}`);
  return {
    backend,
    url,
    server,
    config,
    defaultKey: defaultOrg.apiKey,
    defaultOrgId: defaultOrg.orgId,
    newOrg: (name) => createOrg(server.ctx.db, name ?? `org-${crypto.randomUUID()}`),
    request: (method, urlPath, requestOptions) => request(url, method, urlPath, requestOptions),
    async close() {
      await server.close();
      if (!options.database) await database.drop();
    },
  };
}
