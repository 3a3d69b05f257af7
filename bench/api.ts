import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';
import { cpuSeconds, stopChild, track } from './processes.ts';

/**
 * `npm run bench:api`: requests per second of GET /api/v1/sip-phone-numbers/{id} and of
 * PUT …/agent-link (alternating between two agents, so every request is a real write) on SQLite
 * and on PostgreSQL, beside a bare Fastify route on the same machine, in one run. Each server
 * runs in its own process; autocannon loads it from this one.
 *
 * This machine's speed drifts by tens of percent within minutes, so the rows are measured in
 * rounds, each round loading every server once in turn, and each row reports its median over
 * the rounds; the ratio divides by the bare route's median.
 */
const DURATION_S = Number(process.env.BENCH_DURATION ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);
const PG_URL = process.env.DIALPLANE_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const GOALS: Record<string, number> = { GET: 0.5, PUT: 0.25 };

interface Server {
  pid: number;
  stop(): Promise<void>;
}

const servers: Server[] = [];

/** Starts a server process and resolves once its stdout matches `ready`. */
function start(args: string[], env: Record<string, string>, ready: RegExp): Promise<Server & { match: RegExpExecArray; stdout: string }> {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, DIALPLANE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  const exited = track(child);
  let out = '';
  let started = false;
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      if (started) return;
      out += chunk;
      const match = ready.exec(out);
      if (!match) return;
      started = true;
      const server = { pid: child.pid!, match, stdout: out, stop: () => stopChild(child, exited) };
      servers.push(server);
      resolve(server);
    });
    void exited.then((code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
}

async function json(url: string, method: string, key: string, body?: unknown): Promise<any> {
  const response = await fetch(url, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!response.ok) throw new Error(`${method} ${url}: ${response.status} ${await response.text()}`);
  return response.json();
}

/** One kind of request against one server: a row of the table. */
interface Row {
  name: string;
  server: Server;
  options: autocannon.Options;
  rps: number[];
  cpuPerRequestUs: number[];
}

async function load(row: Row, durationS: number, record: boolean): Promise<void> {
  const cpuBefore = cpuSeconds([row.server.pid]);
  const result = await autocannon({ connections: CONNECTIONS, duration: durationS, ...row.options });
  const cpu = cpuSeconds([row.server.pid]) - cpuBefore;
  const bad = result.non2xx + result.errors + result.timeouts;
  if (bad > 0) throw new Error(`${row.name}: ${bad} failed requests of ${result.requests.total}`);
  if (!record) return;
  row.rps.push(result.requests.average);
  row.cpuPerRequestUs.push((cpu * 1e6) / result.requests.total);
  process.stderr.write(`  ${row.name}: ${Math.round(result.requests.average)} req/s, p99 ${result.latency.p99} ms\n`);
}

/** A dialplane server with one number and two agents, and its two rows. */
async function dialplaneRows(label: string, env: Record<string, string>): Promise<Row[]> {
  const server = await start(
    ['bin/dialplane.js', 'serve'],
    { DIALPLANE_HTTP_PORT: '0', DIALPLANE_SIP_PORT: '0', ...env },
    /"http":"(http:\/\/[^"]+)"[^\n]*"msg":"dialplane ready"/,
  );
  const url = server.match[1]!;
  const key = /\b(dpk_[A-Za-z0-9_-]+)/.exec(server.stdout)![1]!;
  const creds = await json(`${url}/api/v1/sip-credentials`, 'POST', key, { server: 'sip.example.com' });
  const number = await json(`${url}/api/v1/sip-phone-numbers`, 'POST', key, { phoneNumber: '+15550100000', credentialsId: creds.id });
  const [a, b] = [await json(`${url}/api/v1/agents`, 'POST', key, { name: 'a' }), await json(`${url}/api/v1/agents`, 'POST', key, { name: 'b' })];
  const headers = { authorization: `Bearer ${key}` };
  const link = `/api/v1/sip-phone-numbers/${number.id}/agent-link?agentId=`;
  return [
    { name: `${label}: GET /sip-phone-numbers/{id}`, server, options: { url: `${url}/api/v1/sip-phone-numbers/${number.id}`, headers }, rps: [], cpuPerRequestUs: [] },
    {
      name: `${label}: PUT …/agent-link`,
      server,
      options: {
        url,
        headers,
        requests: [
          { method: 'PUT', path: `${link}${a.agentId}` },
          { method: 'PUT', path: `${link}${b.agentId}` },
        ],
      },
      rps: [],
      cpuPerRequestUs: [],
    },
  ];
}

async function postgresSchema(): Promise<{ url: string; drop: () => Promise<void> } | null> {
  const schema = `dp_bench_${crypto.randomBytes(4).toString('hex')}`;
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query(`create schema ${schema}`);
  } catch (error) {
    process.stderr.write(`PostgreSQL not reachable at ${PG_URL}: ${String(error)}; its rows are skipped\n`);
    return null;
  } finally {
    await client.end().catch(() => {});
  }
  const url = new URL(PG_URL);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return {
    url: url.toString(),
    async drop() {
      const admin = new pg.Client({ connectionString: PG_URL });
      await admin.connect();
      await admin.query(`drop schema ${schema} cascade`);
      await admin.end();
    },
  };
}

const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)]!;

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-bench-'));
const schema = await postgresSchema();
try {
  const bare = await start(['--import', 'tsx', 'bench/bare-server.ts'], {}, /listening (\d+)/);
  const bareRow: Row = { name: 'bare Fastify route (anchor)', server: bare, options: { url: `http://127.0.0.1:${bare.match[1]}/bare` }, rps: [], cpuPerRequestUs: [] };
  const rows = [bareRow, ...(await dialplaneRows('SQLite', { DIALPLANE_DB: path.join(dataDir, 'bench.db') }))];
  if (schema) {
    rows.push(...(await dialplaneRows('PostgreSQL', { DIALPLANE_DB: schema.url, DIALPLANE_SECRET_KEY: crypto.randomBytes(32).toString('hex') })));
  }
  for (const row of rows) await load(row, 2, false);
  for (let round = 1; round <= ROUNDS; round++) {
    process.stderr.write(`round ${round} of ${ROUNDS}\n`);
    for (const row of rows) await load(row, DURATION_S, true);
  }

  const bareRps = median(bareRow.rps);
  process.stdout.write(
    `\n${CONNECTIONS} connections, ${ROUNDS} rounds of ${DURATION_S} s per row, medians; ${os.cpus().length} cores (${os.cpus()[0]?.model ?? ''})\n\n`,
  );
  process.stdout.write('| route | req/s | ratio to bare | ratio per round | server CPU per request | goal |\n|---|---:|---:|---:|---:|---:|\n');
  for (const row of rows) {
    const goal = row.name.includes('GET /sip') ? GOALS.GET : row.name.includes('PUT') ? GOALS.PUT : undefined;
    const rps = median(row.rps);
    const ratio = rps / bareRps;
    const perRound = row.rps.map((value, i) => (value / bareRow.rps[i]!).toFixed(2)).join(' ');
    const verdict = goal === undefined ? '' : `${goal} ${ratio >= goal ? 'met' : 'MISSED'}`;
    process.stdout.write(`| ${row.name} | ${Math.round(rps)} | ${ratio.toFixed(2)} | ${perRound} | ${Math.round(median(row.cpuPerRequestUs))} µs | ${verdict} |\n`);
  }
} finally {
  await Promise.all(servers.map((server) => server.stop()));
  fs.rmSync(dataDir, { recursive: true, force: true });
  await schema?.drop();
}
