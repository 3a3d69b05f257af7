import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { CLIENT_DIR, generatedClientFiles } from '../../scripts/generate-client.ts';
import { REPO_ROOT } from '../support/process.ts';
import { startTestServer, type TestServer } from '../support/server.ts';
import { createDialplaneClient, DialplaneProblem, paginate, type DialplaneClient } from '../../clients/typescript/src/index.ts';

/** clients/typescript: generated from the served document, built as published, used against a live server. */

describe('typed TypeScript client', () => {
  let server: TestServer;
  let client: DialplaneClient;

  before(async () => {
    server = await startTestServer('sqlite');
    client = createDialplaneClient({ baseUrl: server.url, apiKey: server.defaultKey });
  });
  after(() => server.close());

  test('the committed client is what the served document generates (run npm run generate:client when this fails)', async () => {
    const document = (await (await fetch(`${server.url}/openapi.json`)).json()) as object;
    for (const [name, expected] of Object.entries(await generatedClientFiles(document))) {
      const committed = fs.readFileSync(path.join(CLIENT_DIR, name), 'utf8');
      assert.ok(committed === expected, `clients/typescript/${name} is stale: run npm run generate:client`);
    }
  });

  test('trunk, agent, number, link, relink, unlink and delete through the client; list types hold', async () => {
    const trunk = await client.credentials.create({ server: 'sip.example.com', transport: 'udp' });
    assert.equal(trunk.authPasswordSet, false);
    const [first, second] = [await client.agents.create({ name: 'First' }), await client.agents.create({ name: 'Second' })];
    const number = await client.numbers.create({ phoneNumber: '+1 (555) 010-2000', credentialsId: trunk.id });
    assert.equal(number.phoneNumber, '+15550102000');

    assert.equal((await client.numbers.link(number.id, { agentId: first.agentId })).incomingCallsAgentId, first.agentId);
    assert.equal((await client.numbers.link(number.id, { agentId: second.agentId, mode: 'inbound' })).incomingCallsAgentId, second.agentId);
    await client.numbers.link(number.id, { agentId: first.agentId, mode: 'replaceOutbound' });
    assert.equal((await client.agents.get(first.agentId)).outboundPhoneNumberId, number.id);
    assert.deepEqual((await client.numbers.affectedAgents(number.id)).affectedAgents.map((agent) => agent.agentName).sort(), ['First', 'Second']);

    const linked = await client.numbers.list({ linkedAgentId: second.agentId });
    assert.deepEqual(
      linked.items.map((item) => item.id),
      [number.id],
    );
    assert.equal((await client.numbers.unlink(number.id, { mode: 'inbound' })).incomingCallsAgentId, null);
    assert.equal((await client.numbers.unlink(number.id, { mode: 'replaceOutbound', agentId: first.agentId })).id, number.id);
    assert.equal((await client.agents.get(first.agentId)).outboundPhoneNumberId, null);
    assert.equal((await client.callRecords.list({ take: 5 })).totalCount, 0);

    await client.numbers.delete(number.id);
    await client.credentials.delete(trunk.id);
    await client.agents.delete(first.agentId);
    await client.agents.delete(second.agentId);
    await assert.rejects(client.numbers.get(number.id), (error: unknown) => error instanceof DialplaneProblem && error.status === 404);
  });

  test('errors are typed problems: 400 with errors per field, 409 of the global inbound rule, 401 for a wrong key', async () => {
    const invalid = await client.credentials.create({ server: '' }).catch((error: unknown) => error);
    assert.ok(invalid instanceof DialplaneProblem);
    assert.equal(invalid.status, 400);
    assert.ok(invalid.errors && Object.keys(invalid.errors).length > 0);

    const other = await server.newOrg();
    const theirs = createDialplaneClient({ baseUrl: server.url, apiKey: other.apiKey });
    const mine = await client.credentials.create({ server: 'sip.example.com' });
    const myNumber = await client.numbers.create({ phoneNumber: '+15550102001', credentialsId: mine.id });
    await client.numbers.link(myNumber.id, { agentId: (await client.agents.create({ name: 'Mine' })).agentId });
    const theirNumber = await theirs.numbers.create({
      phoneNumber: '+15550102001',
      credentialsId: (await theirs.credentials.create({ server: 'sip.example.org' })).id,
    });
    const conflict = await theirs.numbers
      .link(theirNumber.id, { agentId: (await theirs.agents.create({ name: 'Theirs' })).agentId })
      .catch((error: unknown) => error);
    assert.ok(conflict instanceof DialplaneProblem);
    assert.equal(conflict.status, 409);
    assert.match(conflict.detail, /already linked/);

    const anonymous = createDialplaneClient({ baseUrl: server.url, apiKey: 'dpk_wrong' });
    await assert.rejects(anonymous.agents.list(), (error: unknown) => error instanceof DialplaneProblem && error.status === 401);
  });

  test('webhooks and the event stream through the client', async () => {
    const created = await client.webhooks.create({ url: 'http://127.0.0.1:9/hook', eventTypes: ['agent.created'], enabled: false });
    assert.match(created.secret, /^whsec_/);
    assert.deepEqual(
      (await client.webhooks.list()).items.map((w) => w.id),
      [created.id],
    );
    const rotated = await client.webhooks.rotateSecret(created.id, 0);
    assert.notEqual(rotated.secret, created.secret);
    assert.equal((await client.webhooks.deliveries(created.id)).totalCount, 0, 'a disabled endpoint gets no deliveries');
    await assert.rejects(
      client.webhooks.resend(created.id, 'evt_none'),
      (error: unknown) => error instanceof DialplaneProblem && error.status === 404,
    );

    const controller = new AbortController();
    const stream = client.events.stream({ types: ['agent.created'], signal: controller.signal });
    const first = stream.next();
    // The stream is open once the server has answered; an agent made afterwards is streamed.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const agent = await client.agents.create({ name: 'streamed' });
    const { value } = await first;
    assert.ok(value);
    assert.equal(value.event.type, 'agent.created');
    assert.equal((value.event.data as { agent: { agentId: string } }).agent.agentId, agent.agentId);
    assert.match(value.id, /^\d+$/);
    controller.abort();
    await stream.return(undefined);
    await client.webhooks.delete(created.id);
  });

  test('paginate walks every page', async () => {
    const trunk = await client.credentials.create({ server: 'sip.example.net' });
    for (let i = 0; i < 7; i++) await client.numbers.create({ phoneNumber: `+1555010300${i}`, credentialsId: trunk.id });
    const seen: string[] = [];
    for await (const number of paginate((page) => client.numbers.list({ ...page, search: '555-0103' }), 3)) seen.push(number.phoneNumber);
    assert.equal(seen.length, 7);
    assert.equal(new Set(seen).size, 7);
  });

  test('the package builds as published and its built module works against the server', async () => {
    // Inside the package, so that the built module finds openapi-fetch as an installed package would.
    const outDir = fs.mkdtempSync(path.join(CLIENT_DIR, '.build-'));
    try {
      execFileSync(path.join(REPO_ROOT, 'node_modules/.bin/tsc'), ['-p', path.join(CLIENT_DIR, 'tsconfig.json'), '--outDir', outDir], {
        stdio: 'pipe',
      });
      assert.ok(fs.existsSync(path.join(outDir, 'index.d.ts')), 'type declarations are emitted');
      const built = (await import(pathToFileURL(path.join(outDir, 'index.js')).href)) as typeof import('../../clients/typescript/src/index.ts');
      const agents = await built.createDialplaneClient({ baseUrl: `${server.url}/`, apiKey: server.defaultKey }).agents.list();
      assert.ok(Array.isArray(agents));
    } finally {
      fs.rmSync(outDir, { recursive: true, force: true });
    }
  });
});
