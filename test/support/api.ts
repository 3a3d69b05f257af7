import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import type { ApiResponse, RequestOptions, TestServer } from './server.ts';

/** Helpers shared by the API suites: a per-organization client and the checks every response gets. */

export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A UUID no resource has. */
export const missingId = () => crypto.randomUUID();

/** Stored timestamps have millisecond precision: wait past it before a change that must move one. */
export const nextMillisecond = () => sleep(3);

/**
 * Polls until `check` holds, failing after `withinMs`. For what a running server learns late by
 * design: a revoked API key is remembered as valid for up to a second (src/orgs/api-key-cache.ts).
 */
export async function eventually(what: string, check: () => Promise<boolean>, withinMs = 2500): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > withinMs) assert.fail(`${what}: not within ${withinMs} ms`);
    await sleep(50);
  }
}

const TIMESTAMP_KEY = /(Time|lastUpdated|expiresAt)$/;

/** Every timestamp in a response is ISO 8601 UTC with Z (docs/api.md, Conventions). */
export function assertTimestamps(value: unknown, where = 'body'): void {
  if (Array.isArray(value)) {
    value.forEach((item, i) => assertTimestamps(item, `${where}[${i}]`));
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (TIMESTAMP_KEY.test(k) && v !== null) assert.match(String(v), ISO_UTC, `${where}.${k} is ISO 8601 UTC with Z`);
      else assertTimestamps(v, `${where}.${k}`);
    }
  }
}

/** RFC 9457 problem details as docs/api.md, Conventions describes them; a 400 carries an `errors` map. */
export function assertProblemShape(res: ApiResponse): void {
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/, `problem content type for ${res.status}`);
  const body = res.body as Record<string, unknown>;
  assert.equal(typeof body, 'object');
  assert.equal(typeof body.type, 'string');
  assert.equal(typeof body.title, 'string');
  assert.equal(body.status, res.status);
  assert.equal(typeof body.detail, 'string');
  assert.equal(typeof body.instance, 'string');
  assert.doesNotMatch(JSON.stringify(body), /\bat .+\.(ts|js):\d+/, 'no stack trace reaches the client');
  if (res.status === 400) {
    assert.equal(typeof body.errors, 'object', '400 carries errors');
    assert.ok(body.errors && Object.keys(body.errors).length > 0, '400 errors is not empty');
    for (const messages of Object.values(body.errors as Record<string, unknown>)) {
      assert.ok(Array.isArray(messages) && messages.length > 0 && messages.every((m) => typeof m === 'string'));
    }
  }
}

/** Asserts a problem response with this status; for 400, that `errors` names each of `fields`. */
export function assertProblem(res: ApiResponse, status: number, fields: string[] = [], detail?: RegExp): void {
  assert.equal(res.status, status, `expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
  assertProblemShape(res);
  for (const field of fields) {
    assert.ok(field in res.body.errors, `errors names "${field}": ${JSON.stringify(res.body.errors)}`);
  }
  if (detail) assert.match(res.body.detail, detail);
}

function expectStatus(res: ApiResponse, status: number, what: string): void {
  assert.equal(res.status, status, `${what}: expected ${status}, got ${res.status}: ${JSON.stringify(res.body)}`);
}

/** One organization's view of the API. No response may be a 5xx; each error is checked for its shape. */
export class Client {
  constructor(
    readonly server: TestServer,
    readonly key: string,
    readonly orgId: string,
  ) {}

  async req<T = any>(method: string, urlPath: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    const res = await this.server.request<T>(method, urlPath, { key: this.key, ...options });
    assert.ok(res.status < 500, `${method} ${urlPath} answered ${res.status}: ${JSON.stringify(res.body)}`);
    if (res.status >= 400) assertProblemShape(res);
    else if (urlPath.startsWith('/api/')) assertTimestamps(res.body);
    return res;
  }

  async createCredentials(body: Record<string, unknown> = {}): Promise<any> {
    const res = await this.req('POST', '/api/v1/sip-credentials', { body: { server: 'sip.example.com', ...body } });
    expectStatus(res, 201, 'create credentials');
    return res.body;
  }

  async createAgent(body: Record<string, unknown> = {}): Promise<any> {
    const res = await this.req('POST', '/api/v1/agents', { body: { name: 'agent', ...body } });
    expectStatus(res, 201, 'create agent');
    return res.body;
  }

  async createNumber(body: { phoneNumber: string; credentialsId: string } & Record<string, unknown>): Promise<any> {
    const res = await this.req('POST', '/api/v1/sip-phone-numbers', { body });
    expectStatus(res, 201, 'create number');
    return res.body;
  }

  async getNumber(id: string): Promise<any> {
    const res = await this.req('GET', `/api/v1/sip-phone-numbers/${id}`);
    expectStatus(res, 200, 'get number');
    return res.body;
  }

  async getAgent(agentId: string): Promise<any> {
    const res = await this.req('GET', `/api/v1/agents/${agentId}`);
    expectStatus(res, 200, 'get agent');
    return res.body;
  }

  linkRaw(numberId: string, query: Record<string, string | undefined>): Promise<ApiResponse> {
    return this.req('PUT', `/api/v1/sip-phone-numbers/${numberId}/agent-link`, { query });
  }

  unlinkRaw(numberId: string, query: Record<string, string | undefined>): Promise<ApiResponse> {
    return this.req('DELETE', `/api/v1/sip-phone-numbers/${numberId}/agent-link`, { query });
  }

  async link(numberId: string, agentId: string, mode: 'inbound' | 'replaceOutbound' = 'inbound'): Promise<any> {
    const res = await this.linkRaw(numberId, { agentId, mode });
    expectStatus(res, 200, `link ${mode}`);
    return res.body;
  }
}

/** A client for the server's default organization, or for a new organization. */
export async function clientFor(server: TestServer, which: 'default' | 'new' = 'new'): Promise<Client> {
  if (which === 'default') return new Client(server, server.defaultKey, server.defaultOrgId);
  const org = await server.newOrg();
  return new Client(server, org.apiKey, org.orgId);
}
