import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Kysely, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';
import { testBackends } from '../support/backends.ts';
import { spawnServer, type ServerProcess } from '../support/process.ts';
import { freshDatabase, request } from '../support/server.ts';
import { freePort, runSipp, settle, sippAvailable } from '../support/sipp.ts';

/**
 * docs/registration.md, several instances: two real processes on one PostgreSQL; exactly one registers
 * the number; kill -9 that one and the other takes the registration over within a lease
 * period (2 s here; 30 s by default).
 */
const postgres = (await testBackends()).includes('postgres');
const hasSipp = sippAvailable();

const LEASE_SECONDS = 2;
/** The sweep runs every third of a lease: a lapsed lease is noticed within that. */
const SWEEP_MS = (LEASE_SECONDS * 1000) / 3;

/**
 * Creates Kysely's migration bookkeeping tables in the test schema. Kysely looks for them in
 * every schema of the database, so while another suite's schema has them (suites running side
 * by side on one PostgreSQL) a server would skip creating its own and fail to migrate.
 */
async function prepareMigrationTables(url: string): Promise<void> {
  const schema = /search_path=(\w+)/.exec(decodeURIComponent(url))![1];
  const db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }) });
  try {
    const migrator = new Migrator({ db, migrationTableSchema: schema, provider: { getMigrations: async () => ({}) } });
    const { error } = await migrator.migrateToLatest();
    if (error) throw error instanceof Error ? error : new Error(JSON.stringify(error));
  } finally {
    await db.destroy();
  }
}

async function registeredHere(server: ServerProcess): Promise<number> {
  const metrics = await request(server.url, 'GET', '/metrics');
  const match = /^dialplane_registrations\{state="Registered"\} (\d+)/m.exec(metrics.body);
  return match ? Number(match[1]) : 0;
}

describe(
  'registration takeover between instances (postgres)',
  { skip: (!postgres && 'PostgreSQL not available') || (!hasSipp && 'sipp not installed') },
  () => {
    test('kill -9 the registering instance: the other registers the number within the lease period', { timeout: 45_000 }, async () => {
      const database = await freshDatabase('postgres');
      const registrarPort = await freePort();
      const registrar = runSipp({
        scenario: 'registrar-bench.xml',
        transport: 'udp',
        localPort: registrarPort,
        calls: 100,
        fill: { expires: '60' },
        timeoutSeconds: 40,
      });
      const servers: ServerProcess[] = [];
      try {
        await prepareMigrationTables(database.env.DIALPLANE_DB);
        await settle();
        const env = {
          ...database.env,
          DIALPLANE_SIP_T1_MS: '50',
          DIALPLANE_REGISTRATION_LEASE_SECONDS: String(LEASE_SECONDS),
          DIALPLANE_REGISTRATION_RETRY_BASE_MS: '500',
        };
        servers.push(await spawnServer(env));
        servers.push(await spawnServer(env));
        const key = /\b(dpk_[A-Za-z0-9_-]+)/.exec(servers[0].output())![1];
        const api = (server: ServerProcess, method: string, path: string, body?: unknown) => request(server.url, method, path, { key, body });

        const creds = await api(servers[0], 'POST', '/api/v1/sip-credentials', { server: `127.0.0.1:${registrarPort}` });
        const number = await api(servers[1], 'POST', '/api/v1/sip-phone-numbers', {
          phoneNumber: '+15550301000',
          credentialsId: creds.body.id,
          registration: true,
        });
        assert.equal(number.status, 201);
        const state = async (server: ServerProcess) =>
          (await api(server, 'GET', `/api/v1/sip-phone-numbers/${number.body.id}`)).body.registrationStatus;

        for (let i = 0; (await state(servers[0])).state !== 'Registered'; i++) {
          assert.ok(i < 100, 'registered within 5 s');
          await settle(50);
        }
        // Exactly one instance keeps it, and keeps it (several sweeps later, still one).
        await settle(3 * SWEEP_MS);
        const counts = await Promise.all(servers.map(registeredHere));
        assert.deepEqual([...counts].sort(), [0, 1], `one instance registers it (${counts.join(', ')})`);
        const owner = servers[counts.indexOf(1)];
        const survivor = servers[counts.indexOf(0)];

        owner.child.kill('SIGKILL');
        assert.equal(await owner.exited, 'SIGKILL');
        const killedAt = Date.now();
        while ((await registeredHere(survivor)) !== 1) {
          assert.ok(Date.now() - killedAt < LEASE_SECONDS * 1000 + SWEEP_MS + 2000, 'taken over in time');
          await settle(50);
        }
        const takeoverMs = Date.now() - killedAt;
        process.stderr.write(`# takeover after kill -9: ${takeoverMs} ms (lease ${LEASE_SECONDS * 1000} ms)\n`);
        assert.ok(takeoverMs <= LEASE_SECONDS * 1000 + SWEEP_MS + 500, `within the lease period plus one sweep (${takeoverMs} ms)`);
        // The 200 reached the survivor; its status write (with its event) follows.
        let status = await state(survivor);
        for (let i = 0; status.state !== 'Registered' && i < 40; i++) {
          await settle(50);
          status = await state(survivor);
        }
        assert.equal(status.state, 'Registered');
        assert.ok(Date.parse(status.lastUpdated) >= killedAt, 'the survivor wrote the status after the kill');
        assert.ok(Date.parse(status.expiresAt) > killedAt + 55_000, 'a fresh binding');

        survivor.child.kill('SIGTERM');
        assert.equal(await survivor.exited, 0);
      } finally {
        for (const server of servers) if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
        registrar.stop();
        await registrar.done;
        await database.drop();
      }
    });
  },
);
