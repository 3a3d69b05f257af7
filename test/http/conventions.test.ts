import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { testBackends } from '../support/backends.ts';
import { REPO_ROOT } from '../support/process.ts';
import { request, startTestServer, type TestServer } from '../support/server.ts';
import { createApiKey, revokeApiKey } from '../../src/orgs/orgs.ts';
import { ISO_UTC, assertProblem, assertProblemShape, clientFor, eventually, missingId, type Client } from '../support/api.ts';

/** README (The CLI) and docs/api.md (Conventions): running it, and the conventions every route follows. */

/** Every operation of the API that docs/api.md names. */
const OPERATIONS = [
  'GET /api/v1/sip-credentials',
  'POST /api/v1/sip-credentials',
  'GET /api/v1/sip-credentials/{id}',
  'PUT /api/v1/sip-credentials/{id}',
  'DELETE /api/v1/sip-credentials/{id}',
  'GET /api/v1/sip-credentials/{id}/affected-agents',
  'GET /api/v1/agents',
  'POST /api/v1/agents',
  'GET /api/v1/agents/{agentId}',
  'PUT /api/v1/agents/{agentId}',
  'DELETE /api/v1/agents/{agentId}',
  'GET /api/v1/sip-phone-numbers',
  'POST /api/v1/sip-phone-numbers',
  'GET /api/v1/sip-phone-numbers/{id}',
  'PUT /api/v1/sip-phone-numbers/{id}',
  'DELETE /api/v1/sip-phone-numbers/{id}',
  'GET /api/v1/sip-phone-numbers/{id}/affected-agents',
  'PUT /api/v1/sip-phone-numbers/{id}/agent-link',
  'DELETE /api/v1/sip-phone-numbers/{id}/agent-link',
];

/** The values a parameter schema allows, whether written as `enum` or as a union of constants. */
function allowedValues(schema: any): string[] {
  if (Array.isArray(schema.enum)) return schema.enum;
  if (schema.const !== undefined) return [schema.const];
  return (schema.anyOf ?? schema.oneOf ?? []).flatMap(allowedValues);
}

for (const backend of await testBackends()) {
  describe(`HTTP conventions (${backend})`, () => {
    let server: TestServer;
    let api: Client;
    let creds: any;
    let agent: any;
    let number: any;

    before(async () => {
      // These tests fail authentication on purpose, more often than the default throttle allows.
      server = await startTestServer(backend, { env: { DIALPLANE_HTTP_AUTH_FAILURE_BURST: '1000' } });
      api = await clientFor(server, 'default');
      creds = await api.createCredentials();
      agent = await api.createAgent();
      number = await api.createNumber({ phoneNumber: '+15550120000', credentialsId: creds.id });
    });
    after(() => server.close());

    const raw = (method: string, path: string, options: Parameters<typeof request>[3] = {}) =>
      request(server.url, method, path, options).then((res) => {
        assert.ok(res.status < 500, `${method} ${path} answered ${res.status}`);
        return res;
      });

    describe('authentication', () => {
      const routes: [string, string][] = [
        ['GET', '/api/v1/agents'],
        ['POST', '/api/v1/sip-credentials'],
        ['GET', '/api/v1/sip-phone-numbers'],
        ['DELETE', `/api/v1/sip-credentials/00000000-0000-4000-8000-000000000000`],
        ['PUT', '/api/v1/sip-phone-numbers/not-a-uuid/agent-link'],
      ];

      test('a missing or malformed Authorization header is 401', async () => {
        const headers: (Record<string, string> | undefined)[] = [
          undefined,
          { authorization: '' },
          { authorization: 'Bearer' },
          { authorization: 'Bearer ' },
          { authorization: `Bearer ${server.defaultKey} extra` },
          { authorization: `Basic ${Buffer.from(`user:${server.defaultKey}`).toString('base64')}` },
          { authorization: `Token ${server.defaultKey}` },
          { authorization: server.defaultKey },
          { authorization: `Bearer "${server.defaultKey}"` },
          { authorization: `Bearer ${server.defaultKey}\u00e9` },
        ];
        for (const [method, path] of routes) {
          for (const h of headers) {
            const res = await raw(method, path, { headers: h, body: method === 'GET' || method === 'DELETE' ? undefined : { bad: true } });
            assertProblem(res, 401);
            assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer/);
          }
        }
      });

      test('an unknown key is 401, checked before validation and lookup', async () => {
        for (const key of ['dpk_unknown', `${server.defaultKey}x`, server.defaultKey.slice(0, -1), 'x']) {
          for (const [method, path] of routes) {
            assertProblem(await raw(method, path, { key, body: method === 'GET' || method === 'DELETE' ? undefined : {} }), 401);
          }
        }
      });

      test('the scheme name is case-insensitive, the key is not', async () => {
        const ok = await raw('GET', '/api/v1/agents', { headers: { authorization: `bearer ${server.defaultKey}` } });
        assert.equal(ok.status, 200);
        assertProblem(await raw('GET', '/api/v1/agents', { key: server.defaultKey.toUpperCase() }), 401);
      });

      test('a revoked key is 401; the organization’s other keys keep working', async () => {
        const org = await server.newOrg();
        const second = await createApiKey(server.server.ctx.db, org.orgId);
        assert.equal((await raw('GET', '/api/v1/agents', { key: org.apiKey })).status, 200);
        const revoked = await revokeApiKey(server.server.ctx.db, org.apiKey.slice(0, 12));
        assert.equal(revoked.orgId, org.orgId);
        // A running server may honour a key it has just seen for up to a second after revocation.
        await eventually('the revoked key is refused', async () => (await raw('GET', '/api/v1/agents', { key: org.apiKey })).status === 401);
        for (const [method, path] of routes) assertProblem(await raw(method, path, { key: org.apiKey }), 401);
        assert.equal((await raw('GET', '/api/v1/agents', { key: second.apiKey })).status, 200);
        await revokeApiKey(server.server.ctx.db, second.apiKey);
        await eventually(
          'the second revoked key is refused',
          async () => (await raw('GET', '/api/v1/agents', { key: second.apiKey })).status === 401,
        );
        assertProblem(await raw('GET', '/api/v1/agents', { key: second.apiKey }), 401);
      });

      test('keys are stored hashed', async () => {
        const rows = await server.server.ctx.db.selectFrom('api_keys').selectAll().execute();
        assert.ok(rows.length > 0);
        assert.ok(!JSON.stringify(rows).includes(server.defaultKey), 'no key in clear');
      });
    });

    describe('body-less requests that say Content-Type: application/json', () => {
      const json = { 'content-type': 'application/json' };

      test('a link, an unlink, a delete and a read with the header and no body are accepted', async () => {
        const extra = await api.createAgent();
        const path = `/api/v1/sip-phone-numbers/${number.id}/agent-link`;
        const linked = await raw('PUT', path, { key: server.defaultKey, headers: json, query: { agentId: extra.agentId } });
        assert.equal(linked.status, 200, JSON.stringify(linked.body));
        const unlinked = await raw('DELETE', path, { key: server.defaultKey, headers: json, query: { mode: 'inbound' } });
        assert.equal(unlinked.status, 200, JSON.stringify(unlinked.body));
        assert.equal((await raw('GET', `/api/v1/agents/${extra.agentId}`, { key: server.defaultKey, headers: json })).status, 200);
        assert.equal((await raw('DELETE', `/api/v1/agents/${extra.agentId}`, { key: server.defaultKey, headers: json })).status, 204);
      });

      test('where a body is required, an empty one is still a 400 with errors', async () => {
        for (const path of ['/api/v1/agents', '/api/v1/sip-credentials', '/api/v1/sip-phone-numbers']) {
          const res = await raw('POST', path, { key: server.defaultKey, headers: json });
          assertProblem(res, 400);
          assert.ok(res.body.errors, path);
          const blank = await raw('POST', path, { key: server.defaultKey, rawBody: '  ' });
          assertProblem(blank, 400);
        }
      });
    });

    describe('400 with an errors map', () => {
      test('a malformed UUID in the path', async () => {
        const paths = [
          ['GET', '/api/v1/sip-credentials/nope', 'id'],
          ['PUT', '/api/v1/sip-credentials/123', 'id'],
          ['DELETE', '/api/v1/sip-credentials/nope', 'id'],
          ['GET', '/api/v1/sip-credentials/nope/affected-agents', 'id'],
          ['GET', '/api/v1/agents/nope', 'agentId'],
          ['PUT', '/api/v1/agents/nope', 'agentId'],
          ['DELETE', `/api/v1/agents/${agent.agentId.slice(0, -1)}`, 'agentId'],
          ['GET', '/api/v1/sip-phone-numbers/nope', 'id'],
          ['PUT', '/api/v1/sip-phone-numbers/nope', 'id'],
          ['DELETE', '/api/v1/sip-phone-numbers/nope', 'id'],
          ['GET', '/api/v1/sip-phone-numbers/nope/affected-agents', 'id'],
          ['PUT', '/api/v1/sip-phone-numbers/nope/agent-link', 'id'],
          ['DELETE', '/api/v1/sip-phone-numbers/nope/agent-link', 'id'],
        ] as const;
        const bodies: Record<string, unknown> = {
          'PUT /api/v1/sip-credentials/123': { server: 'sip.example.com' },
          'PUT /api/v1/agents/nope': { name: 'x' },
          'PUT /api/v1/sip-phone-numbers/nope': { phoneNumber: '+15550120000', credentialsId: creds.id },
        };
        for (const [method, path, field] of paths) {
          const res = await api.req(method, path, {
            body: bodies[`${method} ${path}`],
            query: path.endsWith('agent-link') ? { agentId: agent.agentId } : {},
          });
          assertProblem(res, 400, [field]);
        }
      });

      test('paging values out of range', async () => {
        for (const path of ['/api/v1/sip-credentials', '/api/v1/sip-phone-numbers']) {
          for (const [query, field] of [
            [{ skip: -1 }, 'skip'],
            [{ skip: 2147483648 }, 'skip'],
            [{ skip: 1.5 }, 'skip'],
            [{ skip: 'abc' }, 'skip'],
            [{ take: 0 }, 'take'],
            [{ take: 1001 }, 'take'],
            [{ take: -5 }, 'take'],
            [{ take: '' }, 'take'],
          ] as const) {
            assertProblem(await api.req('GET', path, { query }), 400, [field]);
          }
          const edges = await api.req('GET', path, { query: { skip: 2147483647, take: 1000 } });
          assert.equal(edges.status, 200);
          assert.deepEqual([edges.body.skip, edges.body.take], [2147483647, 1000]);
          const defaults = await api.req('GET', path);
          assert.deepEqual([defaults.body.skip, defaults.body.take], [0, 20]);
          assert.deepEqual(Object.keys(defaults.body).sort(), ['items', 'skip', 'take', 'totalCount']);
        }
      });

      test('a value outside an enum', async () => {
        assertProblem(await api.req('POST', '/api/v1/sip-credentials', { body: { server: 'sip.example.com', transport: 'http' } }), 400, [
          'transport',
        ]);
        assertProblem(
          await api.req('PUT', `/api/v1/sip-phone-numbers/${number.id}/agent-link`, { query: { agentId: agent.agentId, mode: 'both' } }),
          400,
          ['mode'],
        );
        assertProblem(await api.req('DELETE', `/api/v1/sip-credentials/${creds.id}`, { query: { force: 'maybe' } }), 400, ['force']);
      });

      test('an unknown body field', async () => {
        const cases: [string, string, Record<string, unknown>][] = [
          ['POST', '/api/v1/agents', { name: 'a', color: 'red' }],
          ['PUT', `/api/v1/agents/${agent.agentId}`, { colour: 'red' }],
          ['POST', '/api/v1/sip-credentials', { server: 'sip.example.com', password: 'x' }],
          ['PUT', `/api/v1/sip-credentials/${creds.id}`, { server: 'sip.example.com', orgId: api.orgId }],
          ['POST', '/api/v1/sip-phone-numbers', { phoneNumber: '+15550120001', credentialsId: creds.id, providerId: null }],
          ['PUT', `/api/v1/sip-phone-numbers/${number.id}`, { phoneNumber: '+15550120000', credentialsId: creds.id, id: number.id }],
          // Names an object inherits are fields like any other.
          ['POST', '/api/v1/agents', { name: 'a', toString: 1 }],
          ['POST', '/api/v1/sip-credentials', { server: 'sip.example.com', valueOf: null }],
          ['PUT', `/api/v1/agents/${agent.agentId}`, { constructor: 'x', hasOwnProperty: true }],
        ];
        for (const [method, path, body] of cases) {
          const res = await api.req(method, path, { body });
          assert.equal(res.status, 400, `${method} ${path}`);
          assertProblemShape(res);
          assert.ok(
            Object.values(res.body.errors)
              .flat()
              .some((m) => /not a known field/.test(String(m))),
            JSON.stringify(res.body.errors),
          );
        }
      });

      test('wrong types are not coerced', async () => {
        const cases: [string, string, Record<string, unknown>, string][] = [
          ['POST', '/api/v1/agents', { name: 'a', isEnabled: 'true' }, 'isEnabled'],
          ['POST', '/api/v1/agents', { name: 'a', isEnabled: 1 }, 'isEnabled'],
          ['POST', '/api/v1/agents', { name: 123 }, 'name'],
          ['POST', '/api/v1/agents', { name: ['a'] }, 'name'],
          ['POST', '/api/v1/sip-credentials', { server: 5060 }, 'server'],
          ['POST', '/api/v1/sip-credentials', { server: 'sip.example.com', cpsLimit: '10' }, 'cpsLimit'],
          ['POST', '/api/v1/sip-credentials', { server: 'sip.example.com', allowedAddresses: '10.0.0.1' }, 'allowedAddresses'],
          ['POST', '/api/v1/sip-phone-numbers', { phoneNumber: 15550120002, credentialsId: creds.id }, 'phoneNumber'],
          ['POST', '/api/v1/sip-phone-numbers', { phoneNumber: '+15550120002', credentialsId: creds.id, registration: 'false' }, 'registration'],
          ['POST', '/api/v1/sip-phone-numbers', { phoneNumber: '+15550120002', credentialsId: creds.id, registration: 0 }, 'registration'],
          ['POST', '/api/v1/sip-phone-numbers', { phoneNumber: '+15550120002', credentialsId: creds.id, displayName: 7 }, 'displayName'],
        ];
        for (const [method, path, body, field] of cases) assertProblem(await api.req(method, path, { body }), 400, [field]);
        assert.equal((await api.req('GET', '/api/v1/sip-phone-numbers', { query: { phoneNumber: '+15550120002' } })).body.totalCount, 0);
      });

      test('a missing required field', async () => {
        assertProblem(await api.req('POST', '/api/v1/agents', { body: { description: 'no name' } }), 400, ['name']);
        assertProblem(await api.req('POST', '/api/v1/sip-credentials', { body: {} }), 400, ['server']);
        assertProblem(await api.req('POST', '/api/v1/sip-phone-numbers', { body: {} }), 400, ['phoneNumber', 'credentialsId']);
        assertProblem(await api.req('PUT', `/api/v1/sip-credentials/${creds.id}`, { body: {} }), 400, ['server']);
      });

      test('a body that is not a JSON object', async () => {
        for (const rawBody of ['{"name":', '{name: "a"}', "{'name': 'a'}", 'nul', '{"name":"a"}}', '\u0000']) {
          assertProblem(await api.req('POST', '/api/v1/agents', { rawBody }), 400, ['body']);
        }
        for (const rawBody of ['null', '[]', '"text"', '42', 'true']) {
          assertProblem(await api.req('POST', '/api/v1/agents', { rawBody }), 400, ['body']);
        }
        assertProblem(await api.req('POST', '/api/v1/agents', { rawBody: '', headers: { 'content-type': 'application/json' } }), 400, ['body']);
        assertProblem(await api.req('POST', '/api/v1/agents'), 400, ['body']);
      });

      test('a phone number that does not normalize', async () => {
        assertProblem(
          await api.req('POST', '/api/v1/sip-phone-numbers', { body: { phoneNumber: '+1 555 CALL NOW', credentialsId: creds.id } }),
          400,
          ['phoneNumber'],
        );
        assertProblem(await api.req('PUT', `/api/v1/sip-phone-numbers/${number.id}`, { body: { phoneNumber: '12', credentialsId: creds.id } }), 400, [
          'phoneNumber',
        ]);
        assertProblem(await api.req('GET', '/api/v1/sip-phone-numbers', { query: { phoneNumber: 'abc' } }), 400, ['phoneNumber']);
      });

      test('a malformed URL', async () => {
        const res = await api.req('GET', '/api/v1/agents/%E0%A4%A');
        assert.equal(res.status, 400);
        assertProblemShape(res);
        // An overlong path parameter is refused before routing, as a problem too.
        assertProblem(await api.req('GET', `/api/v1/agents/${'a'.repeat(200)}`), 414);
      });
    });

    test('413 past the body limit of 256 KiB; just under it is fine', async () => {
      assert.equal(server.config.http.bodyLimitBytes, 256 * 1024);
      const under = await api.req('POST', '/api/v1/agents', { body: { name: 'big', config: { blob: 'a'.repeat(250 * 1024) } } });
      assert.equal(under.status, 201);
      assert.equal(under.body.config.blob.length, 250 * 1024);
      const over = await api.req('POST', '/api/v1/agents', { body: { name: 'too big', config: { blob: 'a'.repeat(256 * 1024) } } });
      assertProblem(over, 413);
      const overPut = await api.req('PUT', `/api/v1/sip-credentials/${creds.id}`, {
        body: { server: 'sip.example.com', description: 'x'.repeat(300 * 1024) },
      });
      assertProblem(overPut, 413);
      assert.ok(!(await api.req('GET', '/api/v1/agents')).body.some((a: any) => a.name === 'too big'));
    });

    test('an unknown route or method is a 404 problem', async () => {
      for (const [method, path] of [
        ['GET', '/api/v1/nope'],
        ['GET', '/api/v2/agents'],
        ['GET', '/nope'],
        ['PATCH', '/api/v1/agents'],
        ['POST', `/api/v1/agents/${agent.agentId}`],
        ['GET', `/api/v1/sip-phone-numbers/${number.id}/agent-link/extra`],
      ]) {
        assertProblem(await api.req(method, path), 404);
        assertProblem(await raw(method, path), 404);
      }
    });

    test('problems name the request in `instance` and carry no stack trace', async () => {
      const res = await api.req('GET', `/api/v1/agents/${missingId()}`);
      assertProblem(res, 404);
      assert.equal(res.body.instance, new URL(res.body.instance, server.url).pathname);
      assert.ok(res.body.instance.startsWith('/api/v1/agents/'));
      assert.equal(res.body.title, 'Not Found');
    });

    test('timestamps are ISO 8601 UTC with Z; identifiers are UUIDs', async () => {
      const linked = await api.link(number.id, agent.agentId);
      for (const value of [
        creds.createdTime,
        creds.lastUpdateTime,
        agent.createdTime,
        agent.lastUpdateTime,
        linked.createdTime,
        linked.lastUpdateTime,
        linked.registrationStatus.lastUpdated,
      ]) {
        assert.match(value, ISO_UTC);
        assert.equal(new Date(value).toISOString(), value, 'a real instant, in canonical form');
      }
    });

    test('no random input to a body makes a 500', async () => {
      const targets: [string, string][] = [
        ['POST', '/api/v1/sip-credentials'],
        ['PUT', `/api/v1/sip-credentials/${creds.id}`],
        ['POST', '/api/v1/agents'],
        ['PUT', `/api/v1/agents/${agent.agentId}`],
        ['POST', '/api/v1/sip-phone-numbers'],
        ['PUT', `/api/v1/sip-phone-numbers/${number.id}`],
      ];
      const field = fc.oneof(
        fc.jsonValue({ maxDepth: 2 }),
        fc.constantFrom(creds.id, agent.agentId, number.id, '+15550120000', 'sip.example.com', 'sip:a@b', ''),
      );
      const body = fc.oneof(
        fc.jsonValue({ maxDepth: 2 }),
        fc.record(
          {
            server: field,
            transport: field,
            allowedAddresses: field,
            cpsLimit: field,
            name: field,
            config: field,
            sipUri: field,
            isEnabled: field,
            phoneNumber: field,
            credentialsId: field,
            registration: field,
          },
          { requiredKeys: [] },
        ),
      );
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...targets), body, async ([method, path], value) => {
          const res = await api.req(method, path, { rawBody: JSON.stringify(value) ?? 'null', headers: { 'content-type': 'application/json' } });
          return res.status < 500;
        }),
        { numRuns: 300, seed: 20240601 },
      );
    });

    test('no random query makes a 500', async () => {
      const value = fc.oneof(
        fc.string({ maxLength: 12 }),
        fc.constantFrom('-1', '0', '1e3', '2147483648', 'true', 'false', 'null', '[]', '%00', agent.agentId, missingId()),
      );
      const query = fc.record(
        {
          skip: value,
          take: value,
          phoneNumber: value,
          linkedAgentId: value,
          unlinkedOnly: value,
          providerId: value,
          agentId: value,
          mode: value,
          force: value,
        },
        { requiredKeys: [] },
      );
      const targets: [string, string][] = [
        ['GET', '/api/v1/sip-phone-numbers'],
        ['GET', '/api/v1/sip-credentials'],
        ['GET', '/api/v1/agents'],
        ['PUT', `/api/v1/sip-phone-numbers/${number.id}/agent-link`],
        ['DELETE', `/api/v1/sip-phone-numbers/${number.id}/agent-link`],
        ['DELETE', `/api/v1/sip-credentials/${missingId()}`],
      ];
      await fc.assert(
        fc.asyncProperty(fc.constantFrom(...targets), query, async ([method, path], q) => (await api.req(method, path, { query: q })).status < 500),
        { numRuns: 200, seed: 20240602 },
      );
    });

    describe('service routes', () => {
      test('/healthz and /readyz answer 200 without a token', async () => {
        const health = await raw('GET', '/healthz');
        assert.equal(health.status, 200);
        const ready = await raw('GET', '/readyz');
        assert.equal(ready.status, 200);
      });

      test('/openapi.json is OpenAPI 3.1 and documents every operation', async () => {
        const res = await raw('GET', '/openapi.json');
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /json/);
        const doc = res.body;
        assert.match(doc.openapi, /^3\.1\./);
        assert.ok(doc.info?.title && doc.info?.version);
        const documented = Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
          Object.keys(item)
            .filter((m) => ['get', 'put', 'post', 'delete', 'patch'].includes(m))
            .map((m) => `${m.toUpperCase()} ${path}`),
        );
        for (const op of OPERATIONS) assert.ok(documented.includes(op), `${op} is documented`);
        assert.ok(!documented.some((op) => /healthz|readyz|metrics|openapi|docs/.test(op)), 'only the API is documented');

        const operation = (op: string) => {
          const [method, path] = op.split(' ');
          return doc.paths[path][method.toLowerCase()];
        };
        const param = (op: string, name: string, where: string) =>
          (operation(op).parameters ?? []).find((p: any) => p.name === name && p.in === where);

        // Every operation says it needs the bearer key.
        const bearer = Object.entries(doc.components?.securitySchemes ?? {}).find(([, s]: any) => s.type === 'http' && s.scheme === 'bearer');
        assert.ok(bearer, 'a bearer security scheme');
        for (const op of OPERATIONS) {
          const security = operation(op).security ?? doc.security;
          assert.ok(
            security?.some((s: any) => bearer[0] in s),
            `${op} requires the bearer key`,
          );
        }

        // Path parameters are UUIDs.
        for (const op of OPERATIONS.filter((o) => o.includes('{'))) {
          const name = /\{(\w+)\}/.exec(op)![1];
          const p = param(op, name, 'path');
          assert.ok(p?.required, `${op}: path parameter ${name}`);
          assert.equal(p.schema.format, 'uuid');
        }

        // The link operation: agentId required, mode an optional enum defaulting to inbound (as in the seed page).
        const link = 'PUT /api/v1/sip-phone-numbers/{id}/agent-link';
        const agentId = param(link, 'agentId', 'query');
        assert.ok(agentId, 'agentId is documented');
        assert.equal(agentId.required, true);
        assert.equal(agentId.schema.format, 'uuid');
        const mode = param(link, 'mode', 'query');
        assert.ok(mode, 'mode is documented');
        assert.notEqual(mode.required, true, 'mode has a default, so it is not required');
        assert.deepEqual(allowedValues(mode.schema).sort(), ['inbound', 'replaceOutbound']);
        assert.equal(mode.schema.default, 'inbound');
        const unlink = 'DELETE /api/v1/sip-phone-numbers/{id}/agent-link';
        assert.deepEqual(allowedValues(param(unlink, 'mode', 'query').schema).sort(), ['inbound', 'replaceOutbound']);
        assert.notEqual(param(unlink, 'agentId', 'query')?.required, true);

        // List and delete parameters: all optional.
        for (const name of ['skip', 'take', 'phoneNumber', 'linkedAgentId', 'unlinkedOnly', 'providerId']) {
          const p = param('GET /api/v1/sip-phone-numbers', name, 'query');
          assert.ok(p, `list numbers: ${name}`);
          assert.notEqual(p.required, true, `list numbers: ${name} is optional`);
        }
        const take = param('GET /api/v1/sip-credentials', 'take', 'query');
        assert.deepEqual([take.schema.minimum, take.schema.maximum, take.schema.default], [1, 1000, 20]);
        const skip = param('GET /api/v1/sip-credentials', 'skip', 'query');
        assert.deepEqual([skip.schema.minimum, skip.schema.maximum, skip.schema.default], [0, 2147483647, 0]);
        for (const op of ['DELETE /api/v1/sip-credentials/{id}', 'DELETE /api/v1/sip-phone-numbers/{id}']) {
          const force = param(op, 'force', 'query');
          assert.ok(force, `${op}: force`);
          assert.notEqual(force.required, true);
          assert.equal(force.schema.type, 'boolean');
        }

        // Request bodies: JSON, closed, with their required fields.
        const resolve = (schema: any) =>
          schema.$ref
            ? schema.$ref
                .split('/')
                .slice(1)
                .reduce((o: any, k: string) => o[k], doc)
            : schema;
        const bodyOf = (op: string) => resolve(operation(op).requestBody.content['application/json'].schema);
        const bodies: [string, string[], string[]][] = [
          ['POST /api/v1/sip-credentials', ['server'], ['transport', 'authPassword', 'allowedAddresses', 'cpsLimit']],
          ['PUT /api/v1/sip-credentials/{id}', ['server'], ['authPassword']],
          ['POST /api/v1/agents', ['name'], ['isEnabled', 'config', 'additionalData', 'sipUri']],
          ['PUT /api/v1/agents/{agentId}', [], ['name', 'isEnabled']],
          ['POST /api/v1/sip-phone-numbers', ['phoneNumber', 'credentialsId'], ['displayName', 'description', 'registration']],
          ['PUT /api/v1/sip-phone-numbers/{id}', ['phoneNumber', 'credentialsId'], ['registration']],
        ];
        for (const [op, required, optional] of bodies) {
          const schema = bodyOf(op);
          assert.equal(schema.type, 'object', op);
          assert.equal(schema.additionalProperties, false, `${op} rejects unknown fields`);
          assert.deepEqual([...(schema.required ?? [])].sort(), [...required].sort(), `${op} required fields`);
          for (const name of [...required, ...optional]) assert.ok(name in schema.properties, `${op} documents ${name}`);
        }
        assert.ok(!('outboundPhoneNumberId' in bodyOf('PUT /api/v1/agents/{agentId}').properties), 'outboundPhoneNumberId is read-only');

        // Responses: the success status of each operation is documented.
        const success: Record<string, string> = { POST: '201', DELETE: '204' };
        for (const op of OPERATIONS) {
          const method = op.split(' ')[0];
          const status = op.endsWith('agent-link') ? '200' : (success[method] ?? '200');
          assert.ok(operation(op).responses?.[status], `${op} documents ${status}`);
        }
      });

      test('/openapi.json: named components, one operationId each, problem+json errors, described responses', async () => {
        const doc = (await raw('GET', '/openapi.json')).body;
        const schemas = doc.components.schemas;
        for (const name of ['SipPhoneNumber', 'SipPhoneNumberInput', 'SipCredentials', 'SipCredentialsInput', 'Agent', 'CallRecord', 'Problem']) {
          assert.ok(schemas[name], `components.schemas.${name}`);
        }
        const operations = Object.values(doc.paths as Record<string, Record<string, any>>).flatMap((item) => Object.values(item));
        const ids = operations.map((operation) => operation.operationId);
        assert.ok(
          ids.every((id) => typeof id === 'string'),
          'every operation has an operationId',
        );
        assert.equal(new Set(ids).size, ids.length, 'operationIds are unique');
        for (const operation of operations) {
          assert.ok(operation.description, `${operation.operationId} has a description`);
          for (const [status, response] of Object.entries(operation.responses as Record<string, any>)) {
            assert.notEqual(response.description, 'Default Response', `${operation.operationId} ${status}`);
            if (Number(status) >= 400) {
              assert.deepEqual(Object.keys(response.content), ['application/problem+json'], `${operation.operationId} ${status}`);
              assert.equal(response.content['application/problem+json'].schema.$ref, '#/components/schemas/Problem');
            }
          }
        }
        assert.equal(
          doc.paths['/api/v1/sip-phone-numbers/{id}'].get.responses['200'].content['application/json'].schema.$ref,
          '#/components/schemas/SipPhoneNumber',
        );
      });

      test('/openapi.json passes Redocly (recommended) and Spectral (spectral:oas) with no error and no warning', async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-openapi-'));
        try {
          const file = path.join(dir, 'openapi.json');
          fs.writeFileSync(file, JSON.stringify((await raw('GET', '/openapi.json')).body));
          fs.writeFileSync(path.join(dir, '.spectral.yaml'), 'extends: ["spectral:oas"]\n');
          const bin = (name: string) => path.join(REPO_ROOT, 'node_modules', '.bin', name);
          const redocly = spawnSync(bin('redocly'), ['lint', '--extends=recommended', '--format=json', file], { encoding: 'utf8', cwd: dir });
          const report = JSON.parse(redocly.stdout.slice(redocly.stdout.indexOf('{')));
          assert.deepEqual(
            report.problems.map((p: any) => `${p.severity} ${p.ruleId}: ${p.message}`),
            [],
            'Redocly finds nothing',
          );
          const results = path.join(dir, 'spectral.json');
          const spectral = spawnSync(
            bin('spectral'),
            ['lint', '-r', path.join(dir, '.spectral.yaml'), '--fail-severity=hint', '-f', 'json', '-o', results, file],
            { encoding: 'utf8', cwd: dir },
          );
          const found = JSON.parse(fs.readFileSync(results, 'utf8')) as { code: string; message: string; path: string[] }[];
          assert.deepEqual(
            found.map((r) => `${r.code} at ${r.path.join('.')}: ${r.message}`),
            [],
            'Spectral finds nothing',
          );
          assert.equal(spectral.status, 0);
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });

      test('/docs serves HTML', async () => {
        const res = await raw('GET', '/docs');
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /text\/html/);
        assert.match(String(res.body), /<html/i);
        // The page reads ./json, which must be the very document /openapi.json serves.
        assert.deepEqual((await raw('GET', '/docs/json')).body, (await raw('GET', '/openapi.json')).body);
      });

      test('/metrics serves Prometheus text with the request-duration histogram', async () => {
        await api.req('GET', '/api/v1/agents');
        const res = await raw('GET', '/metrics');
        assert.equal(res.status, 200);
        assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
        const text = String(res.body);
        assert.match(text, /^# TYPE dialplane_http_request_duration_seconds histogram$/m);
        assert.match(text, /^dialplane_http_request_duration_seconds_count\{[^}]*route="\/api\/v1\/agents"[^}]*\} \d+$/m);
        // Route patterns, not raw URLs, so the label set stays bounded.
        assert.doesNotMatch(text, new RegExp(agent.agentId));
      });
    });
  });
}
