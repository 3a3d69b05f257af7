import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import type { Change } from '../../src/db/changes.ts';
import { PostgresChangeFeed } from '../../src/db/postgres-changes.ts';
import { PG_ADMIN_URL, testBackends } from '../support/backends.ts';
import { freshDatabase, startTestServer, type TestDatabase, type TestServer } from '../support/server.ts';

/** Several instances on one PostgreSQL: one database constraint, one change feed. */
const postgres = (await testBackends()).includes('postgres');

function nextChange(feed: { subscribe(l: (c: Change) => void): () => void }, match: (c: Change) => boolean, timeoutMs: number) {
  return new Promise<Change>((resolve, reject) => {
    const timer = setTimeout(() => {
      stop();
      reject(new Error(`no matching change within ${timeoutMs} ms`));
    }, timeoutMs);
    const stop = feed.subscribe((change) => {
      if (!match(change)) return;
      clearTimeout(timer);
      stop();
      resolve(change);
    });
  });
}

describe('two instances on one PostgreSQL', { skip: !postgres && 'PostgreSQL not available' }, () => {
  let database: TestDatabase;
  let a: TestServer;
  let b: TestServer;

  before(async () => {
    database = await freshDatabase('postgres');
    a = await startTestServer('postgres', { database });
    b = await startTestServer('postgres', { database });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await database?.drop();
  });

  test('both instances serve the same data', async () => {
    const created = await a.request('POST', '/api/v1/agents', { key: a.defaultKey, body: { name: 'shared' } });
    const seen = await b.request('GET', `/api/v1/agents/${created.body.agentId}`, { key: a.defaultKey });
    assert.equal(seen.status, 200);
    assert.equal(seen.body.name, 'shared');
  });

  test('a link made on A reaches B’s change subscription within one second', async () => {
    const key = a.defaultKey;
    const creds = await a.request('POST', '/api/v1/sip-credentials', { key, body: { server: 'sip.example.com' } });
    const number = await a.request('POST', '/api/v1/sip-phone-numbers', {
      key,
      body: { phoneNumber: '+15550101000', credentialsId: creds.body.id },
    });
    const agent = await a.request('POST', '/api/v1/agents', { key, body: { name: 'answerer' } });

    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      const seen = nextChange(b.server.ctx.changes, (c) => c.kind === 'number' && c.id === number.body.id, 1000);
      const started = performance.now();
      const path = `/api/v1/sip-phone-numbers/${number.body.id}/agent-link`;
      const response =
        i % 2 === 0
          ? await a.request('PUT', path, { key, query: { agentId: agent.body.agentId } })
          : await a.request('DELETE', path, { key, query: { mode: 'inbound' } });
      assert.equal(response.status, 200);
      await seen;
      latencies.push(performance.now() - started);
    }
    const worst = Math.max(...latencies);
    process.stdout.write(`# change A → B latency: worst ${worst.toFixed(1)} ms over ${latencies.length} changes\n`);
    assert.ok(worst < 1000, `worst latency ${worst} ms`);
  });

  test('agents and credentials changes reach B as well', async () => {
    const key = a.defaultKey;
    const agentSeen = nextChange(b.server.ctx.changes, (c) => c.kind === 'agent', 1000);
    await a.request('POST', '/api/v1/agents', { key, body: { name: 'another' } });
    await agentSeen;
    const credsSeen = nextChange(b.server.ctx.changes, (c) => c.kind === 'credentials', 1000);
    await a.request('POST', '/api/v1/sip-credentials', { key, body: { server: 'sip2.example.com' } });
    await credsSeen;
  });

  test('the 50-request link race split across both instances has exactly one winner', async () => {
    const contenders = await Promise.all(
      Array.from({ length: 10 }, async () => {
        const org = await a.newOrg();
        const key = org.apiKey;
        const creds = await a.request('POST', '/api/v1/sip-credentials', { key, body: { server: 'sip.example.com' } });
        const number = await a.request('POST', '/api/v1/sip-phone-numbers', {
          key,
          body: { phoneNumber: '+4420 7946 0000', credentialsId: creds.body.id },
        });
        const agents = await Promise.all(
          Array.from({ length: 5 }, (_, j) => a.request('POST', '/api/v1/agents', { key, body: { name: `agent ${j}` } })),
        );
        return { key, numberId: number.body.id as string, agentIds: agents.map((x) => x.body.agentId as string) };
      }),
    );
    let n = 0;
    const responses = await Promise.all(
      contenders.flatMap((c) =>
        c.agentIds.map((agentId) =>
          (n++ % 2 === 0 ? a : b).request('PUT', `/api/v1/sip-phone-numbers/${c.numberId}/agent-link`, {
            key: c.key,
            query: { agentId },
          }),
        ),
      ),
    );
    assert.equal(responses.length, 50);
    assert.ok(
      responses.every((r) => r.status === 200 || r.status === 409),
      'only 200 or 409',
    );
    const winners = new Set(responses.filter((r) => r.status === 200).map((r) => r.body.orgId));
    assert.equal(winners.size, 1);
    const linked = await a.server.ctx.db
      .selectFrom('phone_numbers')
      .select('id')
      .where('phone_number', '=', '+442079460000')
      .where('incoming_calls_agent_id', 'is not', null)
      .execute();
    assert.equal(linked.length, 1);
  });
});

describe('PostgreSQL change feed', { skip: !postgres && 'PostgreSQL not available' }, () => {
  test('after its connection is lost it reconnects, announces a reload and keeps delivering', async () => {
    const database = await freshDatabase('postgres');
    const server = await startTestServer('postgres', { database });
    const feed = new PostgresChangeFeed(database.env.DIALPLANE_DB);
    try {
      await feed.start();
      const pid = feed.listenerPid;
      assert.ok(pid);
      const reload = nextChange(feed, (c) => c.kind === 'reload', 10000);
      const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
      await admin.connect();
      await admin.query('select pg_terminate_backend($1)', [pid]);
      await admin.end();
      await reload;
      assert.notEqual(feed.listenerPid, pid);

      const seen = nextChange(feed, (c) => c.kind === 'agent', 2000);
      await server.request('POST', '/api/v1/agents', { key: server.defaultKey, body: { name: 'after reconnect' } });
      await seen;
    } finally {
      await feed.close();
      await server.close();
      await database.drop();
    }
  });
});
