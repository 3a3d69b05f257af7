import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { openDatabase } from '../src/db/connection.ts';
import { loadConfig } from '../src/config.ts';
import { testBackends } from './support/backends.ts';
import { freshDatabase } from './support/server.ts';
import { spawnServer } from './support/process.ts';
import { request } from './support/server.ts';

/**
 * kill -9 in the middle of a stream of creates and links: after a restart, every write that
 * was answered 2xx is there, and the database is consistent.
 */
for (const backend of await testBackends()) {
  describe(`crash consistency (${backend})`, () => {
    test('every acknowledged write survives kill -9', { timeout: 60000 }, async () => {
      const database = await freshDatabase(backend);
      try {
        const first = await spawnServer(database.env);
        const key = /\b(dpk_[A-Za-z0-9_-]+)/.exec(first.output())![1];
        const api = (method: string, path: string, options: Parameters<typeof request>[3] = {}) =>
          request(first.url, method, path, { key, ...options });

        const creds = await api('POST', '/api/v1/sip-credentials', { body: { server: 'sip.example.com' } });
        const agents = await Promise.all(Array.from({ length: 4 }, (_, i) => api('POST', '/api/v1/agents', { body: { name: `agent ${i}` } })));
        const acknowledgedNumbers = new Map<string, string>();
        const acknowledgedLinks = new Map<string, string>();
        let stop = false;
        let counter = 0;
        const worker = async (w: number) => {
          while (!stop) {
            const n = counter++;
            const phoneNumber = `+1555${String(w).padStart(2, '0')}${String(n).padStart(6, '0')}`;
            try {
              const number = await api('POST', '/api/v1/sip-phone-numbers', { body: { phoneNumber, credentialsId: creds.body.id } });
              if (number.status !== 201) continue;
              acknowledgedNumbers.set(number.body.id, phoneNumber);
              const agentId = agents[n % agents.length].body.agentId;
              const linked = await api('PUT', `/api/v1/sip-phone-numbers/${number.body.id}/agent-link`, { query: { agentId } });
              if (linked.status === 200) acknowledgedLinks.set(number.body.id, agentId);
            } catch {
              return; // the server is gone
            }
          }
        };
        const workers = Array.from({ length: 8 }, (_, w) => worker(w));
        await new Promise((resolve) => setTimeout(resolve, 1500));
        first.child.kill('SIGKILL');
        assert.equal(await first.exited, 'SIGKILL');
        stop = true;
        await Promise.all(workers);
        assert.ok(acknowledgedLinks.size > 20, `the stream wrote something (${acknowledgedLinks.size} links)`);

        const second = await spawnServer(database.env);
        try {
          for (const [id, phoneNumber] of acknowledgedNumbers) {
            const got = await request(second.url, 'GET', `/api/v1/sip-phone-numbers/${id}`, { key });
            assert.equal(got.status, 200, `acknowledged number ${phoneNumber} is present`);
            assert.equal(got.body.phoneNumber, phoneNumber);
            if (acknowledgedLinks.has(id)) assert.equal(got.body.incomingCallsAgentId, acknowledgedLinks.get(id));
          }
        } finally {
          second.child.kill('SIGTERM');
          assert.equal(await second.exited, 0, 'graceful shutdown exits 0');
        }

        const handle = openDatabase(loadConfig({ ...database.env }).database);
        try {
          if (backend === 'sqlite') {
            const integrity = await sql<{ integrity_check: string }>`pragma integrity_check`.execute(handle.db);
            assert.equal(integrity.rows[0].integrity_check, 'ok');
            const danglingRefs = await sql`pragma foreign_key_check`.execute(handle.db);
            assert.equal(danglingRefs.rows.length, 0);
          }
          const duplicates = await handle.db
            .selectFrom('phone_numbers')
            .select(['phone_number', (eb) => eb.fn.countAll<string | number>().as('n')])
            .where('incoming_calls_agent_id', 'is not', null)
            .groupBy('phone_number')
            .having((eb) => eb.fn.countAll(), '>', 1)
            .execute();
          assert.deepEqual(duplicates, []);
        } finally {
          await handle.close();
        }
      } finally {
        await database.drop();
      }
    });
  });
}
