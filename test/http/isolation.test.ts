import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { testBackends } from '../support/backends.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { assertProblem, clientFor, missingId, type Client } from '../support/api.ts';

/**
 * docs/api.md, Conventions: everything a key can see or touch belongs to its organization, and another
 * organization's resource is answered exactly like a missing one. The routes come from the
 * OpenAPI document, so a route added later is walked too (or fails here until it is).
 */
interface Operation {
  method: string;
  path: string;
  parameters: { name: string; in: string; required?: boolean; schema: any }[];
  hasBody: boolean;
}

/** The values a parameter schema allows, whether written as `enum` or as a union of constants. */
function allowedValues(schema: any): string[] {
  if (Array.isArray(schema.enum)) return schema.enum;
  if (schema.const !== undefined) return [schema.const];
  return (schema.anyOf ?? schema.oneOf ?? []).flatMap(allowedValues);
}

type Kind = 'sip-credentials' | 'agents' | 'sip-phone-numbers' | 'webhooks';
const KINDS: Kind[] = ['sip-credentials', 'agents', 'sip-phone-numbers', 'webhooks'];
/** The event stream never ends: test/events/event-stream.test.ts checks that it carries the caller's events only. */
const STREAMS = ['/api/v1/events'];

for (const backend of await testBackends()) {
  describe(`organization isolation (${backend})`, () => {
    let server: TestServer;
    let a: Client;
    let b: Client;
    // The first organization's resources, which the second must not reach.
    let credsA: any;
    let agentA: any;
    let agentA2: any;
    let numberA: any;
    let numberA2: any;
    let webhookA: any;
    // The second organization's own.
    let credsB: any;
    let agentB: any;
    let numberB: any;
    const providerA = crypto.randomUUID();
    let operations: Operation[] = [];

    before(async () => {
      server = await startTestServer(backend);
      a = await clientFor(server, 'default');
      b = await clientFor(server);
      credsA = await a.createCredentials({
        authUser: 'alice',
        authPassword: 'alice-secret',
        description: 'A private trunk',
        source: 'provider',
        providerId: providerA,
      });
      // Disabled: nothing is sent, so the organization's state holds still while the test runs.
      webhookA = (
        await a.req('POST', '/api/v1/webhooks', { body: { url: 'http://127.0.0.1:9/a-hook', enabled: false, description: 'A private trunk' } })
      ).body;
      agentA = await a.createAgent({ name: 'A secret agent', config: { prompt: 'A only' } });
      agentA2 = await a.createAgent({ name: 'A second agent' });
      numberA = await a.createNumber({ phoneNumber: '+15550130001', credentialsId: credsA.id, displayName: 'A line' });
      numberA2 = await a.createNumber({ phoneNumber: '+15550130002', credentialsId: credsA.id });
      await a.link(numberA.id, agentA.agentId);
      await a.link(numberA.id, agentA.agentId, 'replaceOutbound');
      await a.link(numberA2.id, agentA2.agentId, 'replaceOutbound');
      credsB = await b.createCredentials();
      agentB = await b.createAgent({ name: 'B agent' });
      numberB = await b.createNumber({ phoneNumber: '+15550130003', credentialsId: credsB.id });

      const doc = (await a.req('GET', '/openapi.json')).body;
      operations = Object.entries(doc.paths as Record<string, Record<string, any>>)
        .filter(([path]) => path.startsWith('/api/v1/'))
        .flatMap(([path, item]) =>
          Object.entries(item)
            .filter(([method]) => ['get', 'put', 'post', 'delete', 'patch'].includes(method))
            .map(([method, op]) => ({
              method: method.toUpperCase(),
              path,
              parameters: [...(item.parameters ?? []), ...(op.parameters ?? [])],
              hasBody: op.requestBody !== undefined,
            })),
        );
    });
    after(() => server.close());

    /** Everything the first organization has, as its own key and the database see it. */
    async function snapshotOfA() {
      const api: Record<string, unknown> = {};
      for (const path of ['/api/v1/sip-credentials', '/api/v1/agents', '/api/v1/sip-phone-numbers', '/api/v1/webhooks']) {
        api[path] = (await a.req('GET', path, { query: path === '/api/v1/agents' ? {} : { take: 1000 } })).body;
      }
      for (const id of [credsA.id]) api[`creds ${id}`] = (await a.req('GET', `/api/v1/sip-credentials/${id}/affected-agents`)).body;
      for (const id of [numberA.id, numberA2.id]) api[`number ${id}`] = (await a.req('GET', `/api/v1/sip-phone-numbers/${id}/affected-agents`)).body;
      const db = server.server.ctx.db;
      const rows = {
        credentials: await db.selectFrom('sip_credentials').selectAll().where('org_id', '=', a.orgId).orderBy('id').execute(),
        agents: await db.selectFrom('agents').selectAll().where('org_id', '=', a.orgId).orderBy('id').execute(),
        numbers: await db.selectFrom('phone_numbers').selectAll().where('org_id', '=', a.orgId).orderBy('id').execute(),
        webhooks: await db.selectFrom('webhook_endpoints').selectAll().where('org_id', '=', a.orgId).orderBy('id').execute(),
        events: await db.selectFrom('events').select('id').where('org_id', '=', a.orgId).orderBy('seq').execute(),
      };
      return { api, rows };
    }

    const kindOf = (path: string): Kind => {
      const kind = path.split('/')[3] as Kind;
      assert.ok(KINDS.includes(kind), `${path}: a resource this test does not know; teach the isolation test about it`);
      return kind;
    };
    const idOfA = (kind: Kind) =>
      ({ 'sip-credentials': credsA.id, agents: agentA.agentId, 'sip-phone-numbers': numberA.id, webhooks: webhookA.id })[kind];
    /** A body that is valid for the route, so that only the organization can make it fail. */
    const bodyFor = (kind: Kind, credentialsId: string, path = '') =>
      path.endsWith('/rotate-secret')
        ? { graceSeconds: 0 }
        : {
            'sip-credentials': { server: 'evil.example.com', authPassword: 'stolen' },
            agents: { name: 'hijacked', isEnabled: false },
            'sip-phone-numbers': { phoneNumber: numberA.phoneNumber, credentialsId },
            webhooks: { url: 'http://127.0.0.1:9/hijacked' },
          }[kind];

    /** The query variants of an operation: every mode, agents of either organization, force on. */
    function queriesFor(op: Operation): Record<string, string>[] {
      let variants: Record<string, string>[] = [{}];
      for (const p of op.parameters.filter((p) => p.in === 'query')) {
        let values: string[];
        if (p.name === 'agentId') values = [agentB.agentId, agentA.agentId];
        else if (p.name === 'mode') values = allowedValues(p.schema);
        else if (p.name === 'force') values = ['true'];
        else {
          assert.notEqual(p.required, true, `${op.method} ${op.path}: required query parameter ${p.name} is unknown to this test`);
          continue;
        }
        assert.ok(values.length > 0, `${op.method} ${op.path}: ${p.name} has values`);
        variants = variants.flatMap((v) => values.map((value) => ({ ...v, [p.name]: value })));
      }
      return variants;
    }

    test('the OpenAPI document lists the routes to walk', () => {
      assert.ok(operations.length > 0);
      const names = operations.map((op) => `${op.method} ${op.path}`);
      assert.ok(names.includes('PUT /api/v1/sip-phone-numbers/{id}/agent-link'), 'agent-link is walked');
      assert.ok(names.includes('DELETE /api/v1/sip-phone-numbers/{id}/agent-link'));
      for (const kind of KINDS) assert.ok(names.includes(`GET /api/v1/${kind}`), kind);
    });

    test('every route with a resource in its path answers 404 to the other organization, like a missing one', async () => {
      const before = await snapshotOfA();
      let probes = 0;
      for (const op of operations.filter((o) => o.path.includes('{'))) {
        const kind = kindOf(op.path);
        const pathParams = op.parameters.filter((p) => p.in === 'path').map((p) => p.name);
        assert.equal(pathParams[0], pathParams.includes('agentId') ? 'agentId' : 'id', `${op.method} ${op.path}: the resource comes first`);
        // Further path parameters (a delivery's event id) get a fixed value: the resource decides.
        const fill = (id: string) => op.path.replace(/\{[^}]+\}/, id).replace(/\{eventId\}/, 'evt_0');
        assert.ok(!/\{/.test(fill('x')), `${op.method} ${op.path}: every path parameter is filled`);
        const bodies = op.hasBody ? [bodyFor(kind, credsB.id, op.path), bodyFor(kind, credsA.id, op.path)] : [undefined];
        for (const query of queriesFor(op)) {
          for (const body of bodies) {
            const what = `${op.method} ${op.path} ${JSON.stringify(query)} ${JSON.stringify(body ?? null)}`;
            const theirs = await b.req(op.method, fill(idOfA(kind)), { query, body });
            assertProblem(theirs, 404);
            probes++;
            // Exactly like a missing one: the same answer, but for the id asked about.
            const absent = missingId();
            const missing = await b.req(op.method, fill(absent), { query, body });
            assertProblem(missing, 404);
            const neutral = (text: string, id: string) => text.split(id).join('<id>');
            assert.equal(neutral(theirs.body.detail, idOfA(kind)), neutral(missing.body.detail, absent), what);
            assert.equal(neutral(theirs.body.instance, idOfA(kind)), neutral(missing.body.instance, absent), what);
            assert.deepEqual(Object.keys(theirs.body).sort(), Object.keys(missing.body).sort(), what);
            const text = JSON.stringify(theirs.body);
            for (const secret of ['A secret agent', 'A private trunk', 'alice', a.orgId, numberA2.id, credsA.id === idOfA(kind) ? '' : credsA.id]) {
              if (secret) assert.ok(!text.includes(secret), `${what} reveals nothing of the other organization`);
            }
          }
        }
      }
      assert.ok(probes >= operations.filter((o) => o.path.includes('{')).length);
      assert.deepEqual(await snapshotOfA(), before, 'the first organization’s resources are unchanged');
    });

    test('collection routes answer the caller’s own resources only', async () => {
      const before = await snapshotOfA();
      const aIds = [credsA.id, agentA.agentId, agentA2.agentId, numberA.id, numberA2.id, a.orgId];
      // A list filter named after something of the first organization's is given that thing.
      const filterValues: Record<string, string[]> = {
        linkedAgentId: [agentA.agentId, agentA2.agentId],
        agentId: [agentA.agentId, agentA2.agentId],
        phoneNumberId: [numberA.id, numberA2.id],
        credentialsId: [credsA.id],
        providerId: [providerA],
        phoneNumber: [numberA.phoneNumber],
      };
      for (const op of operations.filter((o) => !o.path.includes('{') && !STREAMS.includes(o.path))) {
        const what = `${op.method} ${op.path}`;
        if (op.method === 'GET') {
          const queries: Record<string, string>[] = [{}];
          for (const p of op.parameters.filter((p) => p.in === 'query')) {
            for (const value of filterValues[p.name] ?? []) queries.push({ [p.name]: value });
          }
          for (const query of queries) {
            const res = await b.req('GET', op.path, { query });
            assert.equal(res.status, 200, what);
            const items = Array.isArray(res.body) ? res.body : res.body.items;
            assert.ok(
              items.every((item: any) => item.orgId === b.orgId),
              `${what} ${JSON.stringify(query)}: only the caller's own`,
            );
            const text = JSON.stringify(res.body);
            for (const id of aIds) assert.ok(!text.includes(id), `${what} ${JSON.stringify(query)} leaks nothing`);
          }
        } else if (op.method === 'POST') {
          const kind = kindOf(op.path);
          if (kind === 'sip-phone-numbers') {
            // A reference to the other organization's credentials is a reference to nothing.
            const res = await b.req('POST', op.path, { body: bodyFor(kind, credsA.id) });
            assertProblem(res, 404, [], /credentials/i);
          } else {
            // Nothing to reach: it creates in the caller's organization.
            const res = await b.req('POST', op.path, { body: bodyFor(kind, credsB.id) });
            assert.equal(res.status, 201, what);
            assert.equal(res.body.orgId, b.orgId);
          }
        } else {
          assert.fail(`${what}: a collection operation unknown to this test`);
        }
      }
      assert.deepEqual(await snapshotOfA(), before);
    });

    test('the caller’s own resources cannot point at the other organization’s', async () => {
      const before = await snapshotOfA();
      const number = `/api/v1/sip-phone-numbers/${numberB.id}`;
      assertProblem(await b.req('PUT', number, { body: { phoneNumber: '+15550130003', credentialsId: credsA.id } }), 404, [], /credentials/i);
      for (const mode of ['inbound', 'replaceOutbound']) {
        for (const agentId of [agentA.agentId, agentA2.agentId]) {
          assertProblem(await b.req('PUT', `${number}/agent-link`, { query: { agentId, mode } }), 404, [], /agent/i);
        }
      }
      assertProblem(
        await b.req('DELETE', `${number}/agent-link`, { query: { agentId: agentA2.agentId, mode: 'replaceOutbound' } }),
        404,
        [],
        /agent/i,
      );
      // The first organization's inbound link still holds its number against the second's record of it.
      const twin = await b.createNumber({ phoneNumber: '0015550130001', credentialsId: credsB.id });
      assertProblem(await b.req('PUT', `/api/v1/sip-phone-numbers/${twin.id}/agent-link`, { query: { agentId: agentB.agentId } }), 409);
      assert.deepEqual(await b.getNumber(numberB.id), numberB);
      assert.deepEqual(await snapshotOfA(), before);
      // And the first organization sees none of the second's records of its number.
      const mine = await a.req('GET', '/api/v1/sip-phone-numbers', { query: { phoneNumber: '+15550130001' } });
      assert.deepEqual(
        mine.body.items.map((n: any) => n.id),
        [numberA.id],
      );
    });
  });
}
