import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import pg from 'pg';

/**
 * `npm run bench:api`: requests per second of GET /api/v1/sip-phone-numbers/{id} and of
 * PUT …/agent-link (alternating between two agents, so every request is a real write) on SQLite
 * and on PostgreSQL, beside a bare Fastify route on the same machine, in one run. Each server
 * runs in its own process; autocannon loads it from this one.
 */
const DURATION_S = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);
const PG_URL = process.env.DIALPLANE_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

interface Server {
  child: ChildProcess;
  url: string;
  stdout: () => string;
}

function start(args: string[], env: Record<string, string>, ready: RegExp): Promise<Server & { match: RegExpExecArray }> {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, DIALPLANE_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      const match = ready.exec(out);
      if (match) resolve({ child, url: '', stdout: () => out, match });
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
}

async function stop(server: Server): Promise<void> {
  const exited = new Promise((resolve) => server.child.on('exit', resolve));
  server.child.kill('SIGTERM');
  await exited;
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

async function load(name: string, options: autocannon.Options): Promise<number> {
  const result = await autocannon({ connections: CONNECTIONS, duration: DURATION_S, ...options });
  const bad = result.non2xx + result.errors + result.timeouts;
  if (bad > 0) throw new Error(`${name}: ${bad} failed requests of ${result.requests.total}`);
  process.stderr.write(`  ${name}: ${Math.round(result.requests.average)} req/s, p99 ${result.latency.p99} ms\n`);
  return result.requests.average;
}

async function dialplaneRows(backend: 'sqlite' | 'postgres', env: Record<string, string>) {
  const server = await start(['bin/dialplane.js', 'serve'], { DIALPLANE_HTTP_PORT: '0', ...env }, /"http":"(http:\/\/[^"]+)"[^\n]*"msg":"dialplane ready"/);
  const url = server.match[1]!;
  try {
    const key = /\b(dpk_[A-Za-z0-9_-]+)/.exec(server.stdout())![1]!;
    const creds = await json(`${url}/api/v1/sip-credentials`, 'POST', key, { server: 'sip.example.com' });
    const number = await json(`${url}/api/v1/sip-phone-numbers`, 'POST', key, { phoneNumber: '+15550100000', credentialsId: creds.id });
    const [a, b] = [await json(`${url}/api/v1/agents`, 'POST', key, { name: 'a' }), await json(`${url}/api/v1/agents`, 'POST', key, { name: 'b' })];
    const headers = { authorization: `Bearer ${key}` };
    const get = await load(`${backend} GET number`, { url: `${url}/api/v1/sip-phone-numbers/${number.id}`, headers });
    const link = `/api/v1/sip-phone-numbers/${number.id}/agent-link?agentId=`;
    const put = await load(`${backend} PUT agent-link`, {
      url,
      headers,
      requests: [
        { method: 'PUT', path: `${link}${a.agentId}` },
        { method: 'PUT', path: `${link}${b.agentId}` },
      ],
    });
    return { get, put };
  } finally {
    await stop(server);
  }
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

const bare = await start(['--import', 'tsx', 'bench/bare-server.ts'], {}, /listening (\d+)/);
let bareRps: number;
try {
  bareRps = await load('bare Fastify route', { url: `http://127.0.0.1:${bare.match[1]}/bare` });
} finally {
  await stop(bare);
}

const rows: [string, number][] = [['bare Fastify route (anchor)', bareRps]];
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-bench-'));
try {
  const sqlite = await dialplaneRows('sqlite', { DIALPLANE_DB: path.join(dataDir, 'bench.db') });
  rows.push(['SQLite: GET /sip-phone-numbers/{id}', sqlite.get], ['SQLite: PUT …/agent-link', sqlite.put]);
} finally {
  fs.rmSync(dataDir, { recursive: true, force: true });
}
const schema = await postgresSchema();
if (schema) {
  try {
    const postgres = await dialplaneRows('postgres', {
      DIALPLANE_DB: schema.url,
      DIALPLANE_SECRET_KEY: crypto.randomBytes(32).toString('hex'),
    });
    rows.push(['PostgreSQL: GET /sip-phone-numbers/{id}', postgres.get], ['PostgreSQL: PUT …/agent-link', postgres.put]);
  } finally {
    await schema.drop();
  }
}

const goals: Record<string, number> = { GET: 0.5, PUT: 0.25 };
process.stdout.write(`\n${CONNECTIONS} connections, ${DURATION_S} s each, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? ''})\n\n`);
process.stdout.write('| route | req/s | ratio to bare | goal |\n|---|---:|---:|---:|\n');
for (const [name, rps] of rows) {
  const goal = name.includes('GET /sip') ? goals.GET : name.includes('PUT') ? goals.PUT : undefined;
  const ratio = rps / bareRps;
  const verdict = goal === undefined ? '' : `${goal} ${ratio >= goal ? 'met' : 'MISSED'}`;
  process.stdout.write(`| ${name} | ${Math.round(rps)} | ${ratio.toFixed(2)} | ${verdict} |\n`);
}
