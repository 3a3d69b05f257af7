import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { testBackends } from './support/backends.ts';
import { freshDatabase, request } from './support/server.ts';
import { spawnServer } from './support/process.ts';

/**
 * SIGTERM: stop accepting, finish what is in flight, close the pool, exit 0. Every request that
 * reached the server before the signal gets its answer; every write it answered is kept.
 */
for (const backend of await testBackends()) {
  describe(`graceful shutdown (${backend})`, () => {
    test('requests in flight at SIGTERM are answered and kept; the process exits 0', { timeout: 60000 }, async () => {
      const database = await freshDatabase(backend);
      try {
        const first = await spawnServer(database.env);
        const key = /\b(dpk_[A-Za-z0-9_-]+)/.exec(first.output())![1];
        const inFlight = Array.from({ length: 40 }, (_, i) =>
          request(first.url, 'POST', '/api/v1/agents', { key, body: { name: `in flight ${i}` } }).then(
            (response) => ({ status: response.status, id: response.body.agentId as string }),
            (error: Error) => ({ status: 0, error }),
          ),
        );
        // Stop the server as soon as it has answered one: the others are then in flight or queued.
        await Promise.race(inFlight);
        first.child.kill('SIGTERM');
        const results = await Promise.all(inFlight);
        assert.equal(await first.exited, 0, 'graceful shutdown exits 0');
        const answered = results.filter((r) => r.status === 201);
        assert.ok(answered.length > 0, 'some requests were in flight');
        // Requests that arrive while it closes get 503 or a refused connection; none gets a 500.
        for (const r of results) assert.ok([201, 503, 0].includes(r.status), `status ${r.status}`);

        const second = await spawnServer(database.env);
        try {
          for (const r of answered) {
            const got = await request(second.url, 'GET', `/api/v1/agents/${(r as { id: string }).id}`, { key });
            assert.equal(got.status, 200);
          }
        } finally {
          second.child.kill('SIGTERM');
          await second.exited;
        }
      } finally {
        await database.drop();
      }
    });
  });
}
