import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { loadConfig } from '../src/config.ts';
import { openDatabase } from '../src/db/connection.ts';
import { migrateToLatest } from '../src/db/migrations.ts';
import { createOrg } from '../src/orgs/orgs.ts';
import { startServer } from '../src/server.ts';

/**
 * `npm run bench:register`: BENCH_NUMBERS (10,000) numbers with `registration: true` against one
 * sipp registrar on loopback (test/interop/scenarios/registrar-bench.xml, granting
 * BENCH_EXPIRES = 60 s, so every binding is refreshed about every 28 s: ~350 REGISTER/s for
 * 10,000). Measures, for dialplane running in this process on SQLite:
 *  - the time from start until every number reads Registered in the database (what the API shows);
 *  - over BENCH_STEADY_S (90) seconds of steady state with refreshes running: CPU (share of
 *    one core), memory, event-loop delay, refreshes done and whether any came late (its 2xx
 *    after the previous binding had expired), and the largest delay of a refresh timer;
 *  - the graceful stop, which unREGISTERs everything.
 */
const NUMBERS = Number(process.env.BENCH_NUMBERS ?? 10_000);
const EXPIRES = Number(process.env.BENCH_EXPIRES ?? 60);
const STEADY_S = Number(process.env.BENCH_STEADY_S ?? 90);
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const mb = (bytes: number) => Math.round(bytes / 1024 / 1024);

async function freeUdpPort(): Promise<number> {
  const dgram = await import('node:dgram');
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-bench-register-'));
  const dbFile = path.join(dir, 'dialplane.db');
  const registrarPort = await freeUdpPort();

  // The registrar: one sipp call per registration (Call-ID), accepting every REGISTER of it.
  const scenario = fs.readFileSync(path.join(ROOT, 'test/interop/scenarios/registrar-bench.xml'), 'utf8').replaceAll('{{expires}}', String(EXPIRES));
  fs.writeFileSync(path.join(dir, 'registrar.xml'), scenario);
  const sipp = spawn(
    'sipp',
    [
      '-sf',
      'registrar.xml',
      '-i',
      '127.0.0.1',
      '-p',
      String(registrarPort),
      '-t',
      'u1',
      '-m',
      '100000000',
      '-l',
      '1000000',
      '-nostdin',
      '-buff_size',
      String(8 * 1024 * 1024),
    ],
    { cwd: dir, stdio: 'ignore' },
  );
  const sippExited = new Promise((resolve) => sipp.on('exit', resolve));

  // NUMBERS numbers on one trunk, written before the server starts (as after a restart).
  const env = {
    DIALPLANE_DB: dbFile,
    DIALPLANE_HTTP_HOST: '127.0.0.1',
    DIALPLANE_HTTP_PORT: '0',
    DIALPLANE_SIP_HOST: '127.0.0.1',
    DIALPLANE_SIP_PORT: '0',
    DIALPLANE_REGISTRATION_EXPIRES: String(EXPIRES),
  };
  const config = loadConfig(env);
  const setup = openDatabase(config.database);
  await migrateToLatest(setup);
  const org = await createOrg(setup.db, 'bench');
  const time = new Date().toISOString();
  const credentialsId = crypto.randomUUID();
  await setup.db
    .insertInto('sip_credentials')
    .values({
      id: credentialsId,
      org_id: org.orgId,
      server: `127.0.0.1:${registrarPort}`,
      transport: 'udp',
      domain: 'bench.example',
      auth_user: null,
      auth_password_enc: null,
      description: null,
      cps_limit: null,
      cps_key: null,
      allowed_addresses: '[]',
      source: 'manual',
      provider_id: null,
      created_time: time,
      last_update_time: time,
    })
    .execute();
  await setup.db.transaction().execute(async (trx) => {
    for (let i = 0; i < NUMBERS; i += 500) {
      const rows = Array.from({ length: Math.min(500, NUMBERS - i) }, (_, j) => ({
        id: crypto.randomUUID(),
        org_id: org.orgId,
        phone_number: `+1555${String(i + j).padStart(7, '0')}`,
        credentials_id: credentialsId,
        display_name: null,
        description: null,
        registration: 1,
        incoming_calls_agent_id: null,
        reg_state: 'Registering',
        reg_error_description: null,
        reg_sip_response_message: null,
        reg_last_updated: time,
        reg_expires_at: null,
        created_time: time,
        last_update_time: time,
      }));
      await trx.insertInto('phone_numbers').values(rows).execute();
    }
  });
  await setup.close();
  await sleep(500); // sipp binds

  const registered = async (db: typeof setup.db) =>
    Number(
      (
        await db
          .selectFrom('phone_numbers')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('reg_state', '=', 'Registered')
          .executeTakeFirstOrThrow()
      ).n,
    );

  const started = performance.now();
  const server = await startServer(config, { logger: false });
  const serverStartedMs = performance.now() - started;
  let allRegisteredMs = 0;
  for (;;) {
    if ((await registered(server.ctx.db)) === NUMBERS) {
      allRegisteredMs = performance.now() - started;
      break;
    }
    if (performance.now() - started > 300_000) throw new Error('not all registered within 5 minutes');
    await sleep(50);
  }
  const afterStart = server.registrations.stats();

  // Steady state: let the first refreshes begin, then measure a window of STEADY_S.
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  const before = server.registrations.stats();
  const cpuBefore = process.cpuUsage();
  const wallBefore = performance.now();
  let maxRss = 0;
  let maxHeap = 0;
  for (let s = 0; s < STEADY_S; s++) {
    await sleep(1000);
    const memory = process.memoryUsage();
    maxRss = Math.max(maxRss, memory.rss);
    maxHeap = Math.max(maxHeap, memory.heapUsed);
  }
  const cpu = process.cpuUsage(cpuBefore);
  const wall = performance.now() - wallBefore;
  eld.disable();
  // What stays alive, without the garbage a collection would take (run with --expose-gc).
  (globalThis as { gc?: () => void }).gc?.();
  const liveHeap = process.memoryUsage().heapUsed;
  const after = server.registrations.stats();
  const stillRegistered = await registered(server.ctx.db);

  const stopStarted = performance.now();
  await server.close();
  const stopMs = performance.now() - stopStarted;
  sipp.kill('SIGKILL');
  await sippExited;
  fs.rmSync(dir, { recursive: true, force: true });

  const result = {
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, Node ${process.version}`,
    numbers: NUMBERS,
    grantedExpiresS: EXPIRES,
    serverStartMs: Math.round(serverStartedMs),
    allRegisteredMs: Math.round(allRegisteredMs),
    failuresDuringStart: afterStart.failures,
    steadyWindowS: Math.round(wall / 1000),
    cpuShareOfOneCore: Number(((cpu.user + cpu.system) / 1000 / wall).toFixed(3)),
    maxRssMB: mb(maxRss),
    maxHeapUsedMB: mb(maxHeap),
    heapAfterGcMB: mb(liveHeap),
    eventLoopDelayP99Ms: Number((eld.percentile(99) / 1e6).toFixed(1)),
    eventLoopDelayMaxMs: Number((eld.max / 1e6).toFixed(1)),
    refreshesInWindow: after.refreshes - before.refreshes,
    refreshesPerSecond: Number(((after.refreshes - before.refreshes) / (wall / 1000)).toFixed(1)),
    lateRefreshes: after.lateRefreshes,
    maxRefreshTimerLagMs: after.maxTimerLagMs,
    failuresInWindow: after.failures - before.failures,
    registeredAtEndOfWindow: stillRegistered,
    gracefulStopWithUnregisterMs: Math.round(stopMs),
  };
  console.log(JSON.stringify(result, null, 2));
  console.log(`
| measure | value |
|---|---|
| numbers (one trunk, one sipp registrar on loopback, UDP) | ${NUMBERS} |
| expiry granted by the registrar | ${EXPIRES} s (refresh every ${Math.round(EXPIRES * 0.45)}-${Math.round(EXPIRES * 0.5)} s) |
| time from start until all read Registered | ${(allRegisteredMs / 1000).toFixed(2)} s (failures: ${afterStart.failures}) |
| steady state, ${Math.round(wall / 1000)} s window: refreshes | ${result.refreshesInWindow} (${result.refreshesPerSecond}/s), failures ${result.failuresInWindow} |
| CPU (share of one core) | ${(result.cpuShareOfOneCore * 100).toFixed(1)}% |
| memory: max RSS / max heap used / heap after GC | ${result.maxRssMB} MB / ${result.maxHeapUsedMB} MB / ${result.heapAfterGcMB} MB |
| event-loop delay p99 / max | ${result.eventLoopDelayP99Ms} ms / ${result.eventLoopDelayMaxMs} ms |
| late refreshes (2xx after the binding expired) | ${result.lateRefreshes} |
| largest delay of a refresh timer past its due time | ${result.maxRefreshTimerLagMs} ms |
| graceful stop (unREGISTER all) | ${(stopMs / 1000).toFixed(2)} s |
| machine | ${result.machine} |
`);
}

await main();
