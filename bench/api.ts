import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { api, firstStartKey, startDialplane } from './dialplane-process.ts';
import { postgresSchema } from './postgres-schema.ts';
import { cpuSeconds, startNodeProcess, stopChild, type StartedProcess } from './processes.ts';

/**
 * `npm run bench:api`: requests per second of GET /api/v1/sip-phone-numbers/{id} and of
 * PUT …/agent-link (alternating between two agents, so every request is a real write) on SQLite
 * and on PostgreSQL, beside a bare Fastify route on the same machine, in one run. Each server
 * runs in its own process; autocannon loads it from this one.
 *
 * This machine's speed drifts by tens of percent within minutes, so the rows are measured in
 * rounds, each round loading every server once in turn, and each row reports its median over
 * the rounds; the ratio divides by the bare route's median.
 *
 * The link rows are also measured on a server whose every event goes to a webhook receiver
 * (bench/webhook-receiver.ts, its own process) while it is loaded, and, with
 * BENCH_API_BASELINE=<git ref>, on that commit: what events and their delivery cost the link.
 */
const DURATION_S = Number(process.env.BENCH_DURATION ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);
const PG_URL = process.env.DIALPLANE_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
/** The control-plane issue's goals, for dialplane on its default database, SQLite. */
const GOALS = { GET: 0.5, PUT: 0.25 };

type Server = Pick<StartedProcess, 'pid' | 'stop'>;

const servers: Server[] = [];

/** One kind of request against one server: a row of the table. */
interface Row {
  name: string;
  server: Server;
  options: autocannon.Options;
  /** The goal of its kind of request, for the rows that have one. */
  goal?: number;
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

const SPREAD_NUMBERS = 1000;
const pick = <T>(items: T[]) => items[Math.floor(Math.random() * items.length)];

/**
 * A dialplane server with two agents, one number, and SPREAD_NUMBERS more, and its rows: GET
 * and PUT on the one number, then on a number picked at random for each request. The second
 * pair matters for the link: writes that arrive together commit together, and links of one
 * number share the pages they change, which links of numbers spread over the table do not.
 * The goals hold for the SQLite rows (`goals`).
 */
async function dialplaneRows(
  label: string,
  env: Record<string, string>,
  goals: { GET: number; PUT: number } | null,
  options: { linksOnly?: boolean; root?: string; webhookUrl?: string } = {},
): Promise<Row[]> {
  const dialplane = await startDialplane({ DIALPLANE_SIP_PORT: '0', ...env }, options.root);
  const server: Server = { pid: dialplane.child.pid!, stop: () => stopChild(dialplane.child, dialplane.exited) };
  servers.push(server);
  const { url } = dialplane;
  const key = await firstStartKey(dialplane);
  const creds = await api(url, key, 'POST', '/sip-credentials', { server: 'sip.example.com' });
  const createNumber = async (i: number) =>
    (await api(url, key, 'POST', '/sip-phone-numbers', { phoneNumber: `+1555010${String(i).padStart(4, '0')}`, credentialsId: creds.id }))
      .id as string;
  const one = await createNumber(0);
  const spread: string[] = [];
  for (let i = 1; i <= SPREAD_NUMBERS; i++) spread.push(await createNumber(i));
  const agents: string[] = [];
  for (const name of ['a', 'b']) agents.push((await api(url, key, 'POST', '/agents', { name })).agentId);
  // Every event of the organization goes to this endpoint while the rows are loaded.
  if (options.webhookUrl) await api(url, key, 'POST', '/webhooks', { url: options.webhookUrl });
  const headers = { authorization: `Bearer ${key}` };
  const number = (id: string) => `/api/v1/sip-phone-numbers/${id}`;
  const link = (id: string, agentId: string) => `${number(id)}/agent-link?agentId=${agentId}`;
  const row = (name: string, goal: number | undefined, requests: autocannon.Request[]): Row => ({
    name: `${label}: ${name}`,
    server,
    options: { url, headers, requests },
    goal,
    rps: [],
    cpuPerRequestUs: [],
  });
  const rows = [
    row('GET /sip-phone-numbers/{id}, one number', goals?.GET, [{ path: number(one) }]),
    // Alternating between the two agents, so that every request is a real write.
    row('PUT …/agent-link, one number', goals?.PUT, [
      { method: 'PUT', path: link(one, agents[0]) },
      { method: 'PUT', path: link(one, agents[1]) },
    ]),
    row(`GET /sip-phone-numbers/{id}, ${SPREAD_NUMBERS} numbers at random`, goals?.GET, [
      { setupRequest: (request) => ({ ...request, path: number(pick(spread)) }) },
    ]),
    row(`PUT …/agent-link, ${SPREAD_NUMBERS} numbers at random`, goals?.PUT, [
      { method: 'PUT', setupRequest: (request) => ({ ...request, path: link(pick(spread), pick(agents)) }) },
    ]),
  ];
  return options.linksOnly ? rows.filter((r) => r.name.includes('agent-link')) : rows;
}

/**
 * BENCH_API_BASELINE=<git ref>: that commit, checked out beside this one (sharing its
 * node_modules), is loaded in the same rounds, for its link rows: what a change cost.
 */
function baselineCheckout(ref: string): string {
  const dir = path.join(os.tmpdir(), `dialplane-baseline-${ref.replace(/[^A-Za-z0-9]/g, '_')}`);
  if (!fs.existsSync(dir)) {
    execFileSync('git', ['worktree', 'add', '--detach', dir, ref], { cwd: ROOT, stdio: 'ignore' });
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  }
  return dir;
}

const median = (values: number[]) => [...values].sort((x, y) => x - y)[Math.floor(values.length / 2)];

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-bench-'));
const schema = await postgresSchema(PG_URL);
try {
  const bare = await startNodeProcess(['--import', 'tsx', 'bench/bare-server.ts'], /listening (\d+)/);
  servers.push(bare);
  const bareRow: Row = {
    name: 'bare Fastify route (anchor)',
    server: bare,
    options: { url: `http://127.0.0.1:${bare.match[1]}/bare` },
    rps: [],
    cpuPerRequestUs: [],
  };
  const rows = [bareRow, ...(await dialplaneRows('SQLite', { DIALPLANE_DB: path.join(dataDir, 'bench.db') }, GOALS))];
  // The link with every event delivered to a webhook receiver in its own process, meanwhile.
  const receiver = await startNodeProcess(['--import', 'tsx', 'bench/webhook-receiver.ts'], /listening (\d+)/);
  servers.push(receiver);
  rows.push(
    ...(await dialplaneRows('SQLite, a webhook receiving every event', { DIALPLANE_DB: path.join(dataDir, 'webhook.db') }, null, {
      linksOnly: true,
      webhookUrl: `http://127.0.0.1:${receiver.match[1]}/hook`,
    })),
  );
  const baseline = process.env.BENCH_API_BASELINE;
  if (baseline) {
    rows.push(
      ...(await dialplaneRows(`SQLite, baseline ${baseline}`, { DIALPLANE_DB: path.join(dataDir, 'baseline.db') }, null, {
        linksOnly: true,
        root: baselineCheckout(baseline),
      })),
    );
  }
  if (schema) {
    rows.push(
      ...(await dialplaneRows('PostgreSQL', { DIALPLANE_DB: schema.url, DIALPLANE_SECRET_KEY: crypto.randomBytes(32).toString('hex') }, null)),
    );
  }
  for (const row of rows) await load(row, 2, false);
  for (let round = 1; round <= ROUNDS; round++) {
    process.stderr.write(`round ${round} of ${ROUNDS}\n`);
    for (const row of rows) await load(row, DURATION_S, true);
  }

  process.stdout.write(
    `\n${CONNECTIONS} connections, ${ROUNDS} rounds of ${DURATION_S} s per row; ${os.cpus().length} cores (${os.cpus()[0]?.model ?? ''})\n`,
  );
  process.stdout.write("req/s and CPU: medians over the rounds; ratio: the median of the rounds' ratios to the bare route\n\n");
  process.stdout.write('| route | req/s | server CPU per request | ratio to bare | ratio per round | goal |\n|---|---:|---:|---:|---:|---:|\n');
  for (const row of rows) {
    const ratios = row.rps.map((value, i) => value / bareRow.rps[i]);
    const ratio = median(ratios);
    const verdict = row.goal === undefined ? '' : `${row.goal} ${ratio >= row.goal ? 'met' : 'MISSED'}`;
    const perRound = ratios.map((r) => r.toFixed(2)).join(' ');
    process.stdout.write(
      `| ${row.name} | ${Math.round(median(row.rps))} | ${Math.round(median(row.cpuPerRequestUs))} µs | ${ratio.toFixed(2)} | ${perRound} | ${verdict} |\n`,
    );
  }
} finally {
  await Promise.all(servers.map((server) => server.stop()));
  fs.rmSync(dataDir, { recursive: true, force: true });
  await schema?.drop();
  if (process.env.BENCH_API_BASELINE)
    execFileSync('git', ['worktree', 'remove', '--force', baselineCheckout(process.env.BENCH_API_BASELINE)], { cwd: ROOT });
}
