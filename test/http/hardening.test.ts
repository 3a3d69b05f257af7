import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startTestServer, type TestServer } from '../support/server.ts';

/**
 * What the API refuses so that a tenant's key cannot aim the SIP edge at the operator's own
 * network, break the server with a hostile body, or guess keys at speed (SECURITY.md).
 */
describe('API hardening', () => {
  let server: TestServer;
  const api = (method: string, urlPath: string, body?: unknown) => server.request(method, urlPath, { key: server.defaultKey, body });

  before(async () => {
    server = await startTestServer('sqlite');
  });
  after(() => server.close());

  const refusedTargets = [
    ['a link-local address', 'sip:agent@169.254.10.1'],
    ['the cloud metadata address', 'sip:agent@169.254.169.254:80'],
    ['an IPv6 link-local address', 'sip:agent@[fe80::1]'],
    ['an IPv6 metadata address', 'sip:agent@[fd00:ec2::254]'],
    ['a multicast address', 'sip:agent@224.0.0.1'],
    ['an unspecified address', 'sip:agent@0.0.0.0'],
    ['maddr', 'sip:agent@203.0.113.5;maddr=10.0.0.1'],
    ['what is no SIP URI', 'sip:agent@exa mple.com'],
  ];
  for (const [name, sipUri] of refusedTargets) {
    test(`an agent's sipUri may not be ${name}`, async () => {
      const created = await api('POST', '/api/v1/agents', { name: 'target', sipUri });
      assert.equal(created.status, 400, JSON.stringify(created.body));
      assert.ok(created.body.errors.sipUri);
      const agent = await api('POST', '/api/v1/agents', { name: 'target', sipUri: 'sip:agent@203.0.113.5' });
      const updated = await api('PUT', `/api/v1/agents/${agent.body.agentId}`, { sipUri });
      assert.equal(updated.status, 400);
      assert.equal((await api('GET', `/api/v1/agents/${agent.body.agentId}`)).body.sipUri, 'sip:agent@203.0.113.5', 'nothing changed');
    });
  }

  test('a trunk server may not be a link-local or metadata address', async () => {
    for (const server of ['169.254.169.254', '169.254.1.1:5060', '[fe80::1]:5060', '[fd00:ec2::254]', '100.100.100.200']) {
      const created = await api('POST', '/api/v1/sip-credentials', { server });
      assert.equal(created.status, 400, server);
      assert.ok(created.body.errors.server, server);
    }
  });

  test('agent config and additionalData nest 32 levels at most; a body nested beyond reason is a 400, not a 500', async () => {
    const nested = (depth: number): unknown => (depth === 0 ? 'leaf' : { next: nested(depth - 1) });
    assert.equal((await api('POST', '/api/v1/agents', { name: 'deep', config: nested(32) })).status, 201);
    const tooDeep = await api('POST', '/api/v1/agents', { name: 'deep', config: nested(33) });
    assert.equal(tooDeep.status, 400);
    assert.ok(tooDeep.body.errors.config);
    const agent = await api('POST', '/api/v1/agents', { name: 'deep' });
    const update = await api('PUT', `/api/v1/agents/${agent.body.agentId}`, { additionalData: nested(40) });
    assert.equal(update.status, 400);
    assert.ok(update.body.errors.additionalData);
    // 100,000 levels: as deep as the body limit allows.
    const rawBody = `{"name":"x","config":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const hostile = await server.request('POST', '/api/v1/agents', { key: server.defaultKey, rawBody });
    assert.equal(hostile.status, 400);
  });

  test('the SQLite file, its WAL and its folder are the owner’s alone', async () => {
    const file = server.config.database.kind === 'sqlite' ? server.config.database.file : assert.fail('SQLite');
    for (const created of [file, `${file}-wal`]) assert.equal(fs.statSync(created).mode & 0o777, 0o600, created);
    assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);
  });
});

describe('API hardening: failed authentication is throttled per source', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer('sqlite', { env: { DIALPLANE_HTTP_AUTH_FAILURE_BURST: '3', DIALPLANE_HTTP_AUTH_FAILURES_PER_MINUTE: '6' } });
  });
  after(() => server.close());

  test('past the burst, 429 with Retry-After, even for a good key, until a token is back', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await server.request('GET', '/api/v1/agents', { key: `dpk_wrong${i}` })).status);
    assert.deepEqual(statuses, [401, 401, 401]);
    const throttled = await server.request('GET', '/api/v1/agents', { key: 'dpk_wrong' });
    assert.equal(throttled.status, 429);
    assert.match(throttled.headers.get('content-type') ?? '', /^application\/problem\+json/);
    const retryAfter = Number(throttled.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 10, `Retry-After ${retryAfter}`);
    assert.equal((await server.request('GET', '/api/v1/agents', { key: server.defaultKey })).status, 429, 'no key is looked at while throttled');
  });
});

describe('API hardening: private targets as the operator allows', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer('sqlite', { env: { DIALPLANE_PRIVATE_TARGETS: '10.1.0.0/16' } });
  });
  after(() => server.close());

  test('loopback and private ranges only where listed; public addresses and names always', async () => {
    const cases: Array<[string, number]> = [
      ['10.1.2.3', 201],
      ['10.2.0.1', 400],
      ['127.0.0.1:5060', 400],
      ['192.168.1.1', 400],
      ['[::1]', 400],
      ['203.0.113.5', 201],
      ['sip.example.com', 201],
    ];
    for (const [address, status] of cases) {
      const created = await server.request('POST', '/api/v1/sip-credentials', { key: server.defaultKey, body: { server: address } });
      assert.equal(created.status, status, address);
      const agent = await server.request('POST', '/api/v1/agents', { key: server.defaultKey, body: { name: 'a', sipUri: `sip:agent@${address}` } });
      assert.equal(agent.status, status, `agent at ${address}`);
    }
  });
});
