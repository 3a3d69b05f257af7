import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchRoutingIndex } from './routing-index.ts';
import { freePort } from '../test/support/sipp.ts';
import { api, firstStartKey, startDialplane } from './dialplane-process.ts';
import { runSipp, type SippStats } from './sipp-run.ts';
import { cpuSeconds, killTree, memoryBytes, running, sleep, startKamailioWorkers, stopChild } from './processes.ts';
import { openIdleConnections, runTlsCaller } from './tls-caller.ts';
import { makeTestPki } from '../test/support/tls-certs.ts';
import { benchOutbound } from './sip-outbound.ts';
import { benchSigning } from './signing.ts';
import { startRtpengine } from '../test/support/rtpengine.ts';
import { NgClient, type NgAddress } from '../src/media/ng-client.ts';

/**
 * `npm run bench:sip`: the highest call rate the SIP edge proxies cleanly, beside Kamailio doing
 * the same job (bench/kamailio/kamailio.cfg), then the routing index at a million numbers.
 *
 * For each proxy, sipp places full calls (bench/sipp/caller.xml: INVITE … BYE, each to another
 * number of a 1,000-number table) through it to a sipp agent runtime
 * (test/interop/scenarios/agent-answer.xml, which fails a call missing an X-Dialplane header).
 * A rate is clean when every call succeeds on both sides and nobody retransmitted anything:
 * over loopback a retransmission means some message waited 500 ms (T1) in a queue. The rate
 * doubles from 100 calls/s until a step is not clean, then a few bisection steps narrow it.
 *
 * Every step gets a fresh proxy process (a failed step leaves transactions behind that would
 * spill into the next one) and warms it with a few hundred calls first, so that Node's JIT is
 * not measured cold; Kamailio gets the same warm-up. Everything runs on UDP over 127.0.0.1,
 * on this machine's cores shared with the two sipp processes.
 *
 * The TLS rows search the same way with calls arriving over TLS (the carrier side is
 * bench/tls-caller.ts, since sipp has no TLS; the agent stays sipp over UDP) through dialplane's
 * TLS listener and Kamailio's tls module, both presenting one openssl-made certificate; then
 * each proxy holds 1,000 idle TLS connections and its memory growth per connection is read
 * from /proc.
 *
 * The anchored rows search the same UDP calls with every SDP rewritten through rtpengine
 * (docs/media.md): the caller's INVITE and the agent's 200 already carry SDP, so dialplane (with
 * DIALPLANE_RTPENGINE) sends an offer, an answer and a delete per call, and Kamailio the same
 * through its rtpengine module (-A WITH_RTPENGINE). Both talk to one rtpengine, started once for
 * the part; no RTP flows. After each step rtpengine should hold no call: what it still holds is
 * reported and deleted, so that a failed step's calls do not take ports from the next one.
 *
 * BENCH_SIP_ONLY=udp, tls or anchored runs one part alone.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STEP_SECONDS = Number(process.env.BENCH_SIP_STEP_SECONDS ?? 6);
const NUMBERS = 1000;
const START_RATE = 100;
/** The doubling stops here: far above what either proxy manages on a small machine. */
const MAX_RATE = 12_800;
const BISECTIONS = 3;
const WARMUP_CALLS = 200;
const WARMUP_RATE = 200;
/** How long sipp waits, beyond the calls' own time, for stragglers before it gives up. */
const DRAIN_SECONDS = 5;
const CORES = os.cpus().length;
/** `udp`, `tls` or `anchored`: only that part (its search, and for TLS the idle-connection memory); unset: everything. */
const ONLY = process.env.BENCH_SIP_ONLY as 'udp' | 'tls' | 'anchored' | undefined;
/** TLS connections the TLS caller spreads its calls over (a carrier keeps a few open). */
const TLS_CONNECTIONS = 20;
const IDLE_TLS_CONNECTIONS = 1000;
/**
 * rtpengine's media ports in the anchored rows: 4 per call (RTP and RTCP on each side), so 2,500
 * calls at once, below the ephemeral range and the 20,000–31,999 the tests' rtpengines take.
 */
const RTPENGINE_PORTS = { portMin: 10_000, portMax: 19_999 };

const CALLER_SCENARIO = path.join(ROOT, 'bench/sipp/caller.xml');
const AGENT_SCENARIO = path.join(ROOT, 'test/interop/scenarios/agent-answer.xml');
const KAMAILIO_CONFIG = path.join(ROOT, 'bench/kamailio/kamailio.cfg');

// --- the proxies ---------------------------------------------------------------------------

interface RunningProxy {
  port: number;
  /** Where it takes SIP over TLS (the TLS rows' proxies). */
  tlsPort: number | null;
  /** The processes doing the proxy's work, for their CPU time. */
  pids(): number[];
  stop(): Promise<void>;
}

interface Proxy {
  name: string;
  /** What the table says about how it runs. */
  shape: string;
  start(): Promise<RunningProxy>;
}

interface Table {
  /** Dialled as carriers send them: E.164 digits without the '+'. */
  dialled: string[];
  numberIds: string[];
  agentId: string;
  orgId: string;
  agentUri: string;
}

/**
 * Creates the table through the API of a first dialplane process: a trunk on 127.0.0.1 (so the
 * callers' source address is allowed), one agent whose runtime is the sipp UAS, and NUMBERS
 * numbers linked inbound to it. Every later process reads the same database file.
 */
async function createTable(db: string, sipPort: number, agentPort: number): Promise<Table> {
  const server = await startDialplane({ DIALPLANE_DB: db, DIALPLANE_SIP_PORT: String(sipPort) });
  try {
    const key = await firstStartKey(server);
    const credentials = await api(server.url, key, 'POST', '/sip-credentials', { server: '127.0.0.1' });
    const agentUri = `sip:agent@127.0.0.1:${agentPort}`;
    const agent = await api(server.url, key, 'POST', '/agents', { name: 'bench agent', sipUri: agentUri });
    const dialled = Array.from({ length: NUMBERS }, (_, i) => `1555${String(i).padStart(7, '0')}`);
    const numberIds: string[] = [];
    // A few requests in flight at a time: quicker than one by one, gentle on SQLite's one writer.
    for (let start = 0; start < dialled.length; start += 20) {
      const ids = await Promise.all(
        dialled.slice(start, start + 20).map(async (digits) => {
          const number = await api(server.url, key, 'POST', '/sip-phone-numbers', { phoneNumber: `+${digits}`, credentialsId: credentials.id });
          await api(server.url, key, 'PUT', `/sip-phone-numbers/${number.id}/agent-link?agentId=${agent.agentId}&mode=inbound`);
          return number.id as string;
        }),
      );
      numberIds.push(...ids);
    }
    return { dialled, numberIds, agentId: agent.agentId, orgId: agent.orgId, agentUri };
  } finally {
    await stopChild(server.child, server.exited);
  }
}

/** The certificate both proxies present in the TLS rows (made by openssl for 127.0.0.1). */
interface TlsFiles {
  cert: string;
  key: string;
  port: number;
}

/** What a proxy does beside relaying UDP: take calls over TLS, or anchor media through rtpengine. */
interface ProxyOptions {
  tls?: TlsFiles;
  rtpengine?: NgAddress;
}

function dialplaneProxy(db: string, port: number, { tls, rtpengine }: ProxyOptions = {}): Proxy {
  const tlsEnv: Record<string, string> = tls
    ? {
        DIALPLANE_SIP_TLS_CERT: tls.cert,
        DIALPLANE_SIP_TLS_KEY: tls.key,
        DIALPLANE_SIP_TLS_PORT: String(tls.port),
        // Every bench connection comes from 127.0.0.1: the per-source caps would refuse the idle ones.
        DIALPLANE_SIP_TCP_MAX_PER_SOURCE: '20000',
        DIALPLANE_SIP_TCP_MAX_CONNECTIONS: '20000',
      }
    : {};
  const mediaEnv: Record<string, string> = rtpengine ? { DIALPLANE_RTPENGINE: `${rtpengine.host}:${rtpengine.port}` } : {};
  return {
    name: 'dialplane',
    shape: '1 Node.js process',
    async start() {
      const server = await startDialplane({ DIALPLANE_DB: db, DIALPLANE_SIP_PORT: String(port), ...tlsEnv, ...mediaEnv });
      return {
        port,
        tlsPort: tls?.port ?? null,
        pids: () => [server.child.pid!],
        stop: () => stopChild(server.child, server.exited),
      };
    },
  };
}

/** db_text's format: a header of typed columns, then one row per line, ':' between fields. */
function dbTextTable(rows: [string, string][]): string {
  const escape = (value: string) => value.replaceAll('\\', '\\\\').replaceAll(':', '\\:');
  const header = 'id(int,auto) key_name(string) key_type(int) value_type(int) key_value(string) expires(int)';
  return [header, ...rows.map(([key, value], i) => `${i + 1}:${escape(key)}:0:0:${escape(value)}:0`)].join('\n') + '\n';
}

/**
 * Kamailio with as many UDP workers as there are cores: the usual sizing for a CPU-bound proxy,
 * and the most it can use here, while dialplane is one Node process (one core for its event
 * loop).
 */
function kamailioProxy(table: Table, dir: string, port: number, { tls, rtpengine }: ProxyOptions = {}): Proxy {
  const dbDir = path.join(dir, 'kamailio-db');
  fs.mkdirSync(dbDir, { recursive: true });
  fs.writeFileSync(
    path.join(dbDir, 'numbers'),
    dbTextTable(table.dialled.map((digits, i) => [`+${digits}`, `${table.numberIds[i]}|${table.agentId}`])),
  );
  fs.writeFileSync(path.join(dbDir, 'agents'), dbTextTable([[table.agentId, `${table.orgId}|${table.agentUri}`]]));
  return {
    name: 'Kamailio',
    shape: tls ? `${CORES} UDP and ${CORES} TCP/TLS workers` : `${CORES} UDP workers (-n ${CORES})${rtpengine ? ', rtpengine module' : ''}`,
    async start() {
      const tlsArgs = tls ? ['-A', 'WITH_TLS', '-A', `TLS_CERT="${tls.cert}"`, '-A', `TLS_KEY="${tls.key}"`, '-l', `tls:127.0.0.1:${tls.port}`] : [];
      const mediaArgs = rtpengine ? ['-A', 'WITH_RTPENGINE', '-A', `RTPENGINE_SOCK="udp:${rtpengine.host}:${rtpengine.port}"`] : [];
      const kamailio = await startKamailioWorkers(KAMAILIO_CONFIG, dbDir, dir, port, [...tlsArgs, ...mediaArgs]);
      return { port, tlsPort: tls?.port ?? null, ...kamailio };
    },
  };
}

// --- the search ----------------------------------------------------------------------------

interface Step {
  rate: number;
  clean: boolean;
  why: string;
  cpuSeconds: number;
  calls: number;
}

interface Setup {
  dir: string;
  agentPort: number;
  numbersFile: string;
  /** The rtpengine of the anchored rows, asked after each step what calls it still holds. */
  media?: { ng: NgAddress; client: NgClient };
}

/** Why a sipp run was not clean, or null when it was. */
function problem(expected: number, side: string, stats: SippStats): string | null {
  if (stats.code === 0 && stats.failed === 0 && stats.successful === expected && stats.retransmissions === 0) return null;
  return `${side} ${stats.successful}/${expected} ok, ${stats.failed} failed, ${stats.retransmissions} retransmissions (exit ${stats.code})`;
}

/** Places `count` calls at `rate` through a running proxy: sipp over UDP, or our TLS caller. */
type Caller = (instance: RunningProxy, name: string, count: number, rate: number) => Promise<SippStats>;

function udpCaller(setup: Setup): Caller {
  return async (instance, name, count, rate) =>
    runSipp({
      scenario: CALLER_SCENARIO,
      port: await freePort(),
      calls: count,
      rate,
      dir: setup.dir,
      name,
      remote: `127.0.0.1:${instance.port}`,
      numbersFile: setup.numbersFile,
      timeoutSeconds: count / rate + DRAIN_SECONDS,
    });
}

function tlsCaller(dialled: string[], ca: Buffer): Caller {
  return (instance, _name, count, rate) =>
    runTlsCaller({
      port: instance.tlsPort!,
      ca,
      connections: TLS_CONNECTIONS,
      calls: count,
      rate,
      numbers: dialled,
      callTimeoutMs: DRAIN_SECONDS * 1000,
    });
}

/** One step: a fresh proxy, a warm-up, then STEP_SECONDS of calls at `rate`. */
async function step(proxy: Proxy, setup: Setup, rate: number, caller: Caller): Promise<Step> {
  const calls = rate * STEP_SECONDS;
  const instance = await proxy.start();
  try {
    const agent = runSipp({
      scenario: AGENT_SCENARIO,
      port: setup.agentPort,
      calls: WARMUP_CALLS + calls,
      dir: setup.dir,
      name: 'agent',
      timeoutSeconds: WARMUP_CALLS / WARMUP_RATE + STEP_SECONDS + 2 * DRAIN_SECONDS + 5,
    });
    // sipp prints nothing once its socket is bound; a short pause is what works.
    await sleep(300);
    const warmup = await caller(instance, 'warmup', WARMUP_CALLS, Math.min(rate, WARMUP_RATE));
    const cpuBefore = cpuSeconds(instance.pids());
    const measured = await caller(instance, 'caller', calls, rate);
    const cpu = cpuSeconds(instance.pids()) - cpuBefore;
    const agentStats = await agent;
    const problems = [
      problem(WARMUP_CALLS, 'warm-up caller', warmup),
      problem(calls, 'caller', measured),
      problem(WARMUP_CALLS + calls, 'agent', agentStats),
    ].filter((text) => text !== null);
    // sipp's own ceiling: every call went through, but not as fast as asked. (After a failure
    // the measured rate means nothing: stuck calls kept sipp running until its timeout.)
    if (problems.length === 0 && measured.rate < rate * 0.9) problems.push(`sipp placed only ${measured.rate.toFixed(0)} calls/s`);
    const why = problems.length > 0 ? problems.join('; ') : null;
    return { rate, clean: why === null, why: why ?? 'clean', cpuSeconds: cpu, calls };
  } finally {
    await instance.stop();
  }
}

/** The rate after a step: doubling while clean, then halfway between the best and the lowest failure. */
function nextRate(best: number, failedAt: number | null, bisected: number): number | null {
  if (failedAt === null) return best * 2 <= MAX_RATE ? best * 2 : null;
  if (bisected >= BISECTIONS) return null;
  const rate = Math.round((best + failedAt) / 2 / 10) * 10;
  return rate > best && rate < failedAt ? rate : null;
}

/** Deletes every call rtpengine still holds and says how many there were. */
async function deleteSessions({ ng, client }: NonNullable<Setup['media']>): Promise<number> {
  let deleted = 0;
  for (;;) {
    // A few hundred call ids at a time: the reply is one datagram.
    const reply = await client.request(ng, { command: 'list', limit: 500 });
    const callIds = Array.isArray(reply.calls) ? reply.calls.filter((id) => typeof id === 'string') : [];
    if (callIds.length === 0) return deleted;
    // A call may end by itself (rtpengine's timeout) between the list and its delete.
    await Promise.allSettled(callIds.map((callId) => client.request(ng, { command: 'delete', 'call-id': callId })));
    deleted += callIds.length;
  }
}

/**
 * Doubles from START_RATE until a step is not clean, then bisects BISECTIONS times. With
 * rtpengine, also the calls it still held after each step (the proxy stopped, so no delete was on
 * its way), as "rate (clean|failed): count".
 */
async function search(proxy: Proxy, setup: Setup, caller: Caller): Promise<{ best: Step | null; failedAt: number | null; sessionsLeft: string[] }> {
  let best: Step | null = null;
  let failedAt: number | null = null;
  let bisected = 0;
  const sessionsLeft: string[] = [];
  for (let rate: number | null = START_RATE; rate !== null;) {
    if (failedAt !== null) bisected++;
    const result = await step(proxy, setup, rate, caller);
    const left = setup.media ? await deleteSessions(setup.media) : 0;
    if (left > 0) sessionsLeft.push(`${rate} calls/s (${result.clean ? 'clean' : 'failed'}): ${left}`);
    process.stderr.write(`  ${proxy.name} ${rate} calls/s: ${result.why}${left > 0 ? `; rtpengine still held ${left} calls` : ''}\n`);
    if (result.clean) best = result;
    else failedAt = rate;
    rate = nextRate(best?.rate ?? 0, failedAt, bisected);
  }
  return { best, failedAt, sessionsLeft };
}

/**
 * sipp alone, the caller straight to the agent runtime, at the highest rate where a proxy
 * failed: clean means the two sipp processes were not what failed there.
 */
async function sippCeiling(setup: Setup, rate: number): Promise<string | null> {
  // The agent runtime's header checks fail without a proxy to add them; the calls are the same.
  const scenario = path.join(setup.dir, 'agent-unchecked.xml');
  fs.writeFileSync(scenario, fs.readFileSync(AGENT_SCENARIO, 'utf8').replaceAll('check_it="true"', 'check_it="false"'));
  const calls = rate * STEP_SECONDS;
  const agent = runSipp({ scenario, port: setup.agentPort, calls, dir: setup.dir, name: 'agent', timeoutSeconds: STEP_SECONDS + 2 * DRAIN_SECONDS });
  await sleep(300);
  const caller = await runSipp({
    scenario: CALLER_SCENARIO,
    port: await freePort(),
    calls,
    rate,
    dir: setup.dir,
    name: 'caller',
    remote: `127.0.0.1:${setup.agentPort}`,
    numbersFile: setup.numbersFile,
    timeoutSeconds: STEP_SECONDS + DRAIN_SECONDS,
  });
  const agentStats = await agent;
  const problems = [problem(calls, 'caller', caller), problem(calls, 'agent', agentStats)].filter((text) => text !== null);
  if (problems.length === 0 && caller.rate < rate * 0.9) problems.push(`sipp placed only ${caller.rate.toFixed(0)} calls/s`);
  return problems.length > 0 ? problems.join('; ') : null;
}

// --- main ----------------------------------------------------------------------------------

type Searched = { proxy: Proxy } & Awaited<ReturnType<typeof search>>;

/** sipp alone at the highest rate where a proxy failed, as the line that goes under the table. */
async function sippCeilingNote(results: Searched[], setup: Setup): Promise<string> {
  const failures = results.map((r) => r.failedAt).filter((rate): rate is number => rate !== null);
  const ceilingRate = failures.length > 0 ? Math.max(...failures) : MAX_RATE;
  process.stderr.write(`sipp alone at ${ceilingRate} calls/s…\n`);
  const ceiling = await sippCeiling(setup, ceilingRate);
  return ceiling === null
    ? `sipp alone (caller straight to the agent) is clean at ${ceilingRate} calls/s: the proxies, not sipp, set these limits.\n`
    : `sipp alone is NOT clean at ${ceilingRate} calls/s (${ceiling}): sipp may be the ceiling there.\n`;
}

/** Searches each proxy's highest clean rate with `caller`. */
async function searchAll(proxies: Proxy[], setup: Setup, caller: Caller, what: string): Promise<Searched[]> {
  const results: Searched[] = [];
  for (const proxy of proxies) {
    process.stderr.write(`${proxy.name} (${what}): ${STEP_SECONDS} s steps from ${START_RATE} calls/s\n`);
    results.push({ proxy, ...(await search(proxy, setup, caller)) });
  }
  return results;
}

/** The rate table of one transport, and dialplane's ratio to Kamailio. */
function printRates(results: Searched[], heading: string): void {
  process.stdout.write(`\n${heading}\n\n`);
  process.stdout.write(
    '| proxy | runs as | highest clean rate | lowest failing rate | CPU during best run | CPU per call |\n|---|---|---:|---:|---:|---:|\n',
  );
  for (const { proxy, best, failedAt } of results) {
    const cpu = best ? `${best.cpuSeconds.toFixed(2)} s / ${STEP_SECONDS} s` : '–';
    const perCall = best ? `${((best.cpuSeconds / best.calls) * 1e6).toFixed(0)} µs` : '–';
    process.stdout.write(
      `| ${proxy.name} | ${proxy.shape} | ${best?.rate ?? 0} calls/s | ${failedAt ?? `none up to ${MAX_RATE}`} | ${cpu} | ${perCall} |\n`,
    );
  }
  const [edge, kamailio] = results.map((r) => r.best?.rate ?? 0);
  const ratio = kamailio > 0 ? edge / kamailio : NaN;
  process.stdout.write(`\ndialplane / Kamailio: ${ratio.toFixed(2)} (goal ≥ 0.5: ${ratio >= 0.5 ? 'met' : 'MISSED'})\n`);
}

/** The proxies' memory with IDLE_TLS_CONNECTIONS idle TLS connections open, per connection. */
async function idleTlsMemory(proxies: Proxy[], ca: Buffer): Promise<void> {
  process.stdout.write(
    `\nMemory per idle TLS connection (${IDLE_TLS_CONNECTIONS} connections, each after one OPTIONS; PSS of all the proxy's processes)\n\n` +
      '| proxy | before | with the connections | per connection |\n|---|---:|---:|---:|\n',
  );
  for (const proxy of proxies) {
    const instance = await proxy.start();
    try {
      await sleep(1000);
      const before = memoryBytes(instance.pids());
      const close = await openIdleConnections(instance.tlsPort!, ca, IDLE_TLS_CONNECTIONS);
      await sleep(2000);
      const after = memoryBytes(instance.pids());
      close();
      const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
      process.stdout.write(`| ${proxy.name} | ${mb(before)} | ${mb(after)} | ${((after - before) / IDLE_TLS_CONNECTIONS / 1024).toFixed(1)} kB |\n`);
    } finally {
      await instance.stop();
    }
  }
  process.stdout.write(`\nKamailio's own documentation puts OpenSSL's memory at about 61 kB per connection; the goal is below it.\n`);
}

const started = performance.now();
// Other work on the machine takes cores from the proxies and sipp alike: say how much there was.
const loadBefore = os.loadavg()[0];
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-sip-bench-'));
const pki = makeTestPki();
try {
  const [edgePort, kamailioPort, agentPort] = [await freePort(), await freePort(), await freePort()];
  const db = path.join(dir, 'bench.db');
  process.stderr.write(`creating ${NUMBERS} numbers through the API…\n`);
  const table = await createTable(db, edgePort, agentPort);
  const numbersFile = path.join(dir, 'numbers.csv');
  // SEQUENTIAL: call n dials line n (wrapping around), so consecutive calls hit different numbers.
  fs.writeFileSync(numbersFile, ['SEQUENTIAL', ...table.dialled.map((digits) => `${digits};`)].join('\n') + '\n');
  const setup: Setup = { dir, agentPort, numbersFile };
  const machine =
    `${CORES} cores (${os.cpus()[0]?.model ?? ''}), 1-minute load average ${loadBefore.toFixed(2)} before, ` +
    `${os.loadavg()[0].toFixed(2)} after (above 0 means other work shared the cores)`;

  let udpBest: Step | null = null;
  if (ONLY === undefined || ONLY === 'udp') {
    const results = await searchAll([dialplaneProxy(db, edgePort), kamailioProxy(table, dir, kamailioPort)], setup, udpCaller(setup), 'UDP');
    const ceiling = await sippCeilingNote(results, setup);
    printRates(
      results,
      `Full calls (INVITE/100/180/200/ACK/BYE/200) over UDP on 127.0.0.1, ${STEP_SECONDS} s per step, ${NUMBERS} numbers; ${machine}`,
    );
    process.stdout.write(ceiling);
    udpBest = results[0]?.best ?? null;
  }

  if (ONLY === undefined || ONLY === 'anchored') {
    const rtpengine = await startRtpengine('127.0.0.1', RTPENGINE_PORTS);
    // processes.ts exits on SIGINT and SIGTERM, which skips the finally below.
    const killRtpengine = () => void rtpengine.kill();
    process.once('exit', killRtpengine);
    const client = new NgClient();
    try {
      const anchored: Setup = { ...setup, media: { ng: rtpengine.ng, client } };
      const proxies = [
        dialplaneProxy(db, edgePort, { rtpengine: rtpengine.ng }),
        kamailioProxy(table, dir, kamailioPort, { rtpengine: rtpengine.ng }),
      ];
      const results = await searchAll(proxies, anchored, udpCaller(anchored), 'anchored');
      const ceiling = await sippCeilingNote(results, setup);
      printRates(
        results,
        `Anchored full calls over UDP on 127.0.0.1, every SDP through one rtpengine (offer on the INVITE, answer on the 200, ` +
          `delete on the BYE; no RTP), ${STEP_SECONDS} s per step, ${NUMBERS} numbers; ${machine}`,
      );
      process.stdout.write(ceiling);
      for (const { proxy, sessionsLeft } of results) {
        process.stdout.write(
          `Calls rtpengine still held after ${proxy.name}'s steps (deleted before the next): ${sessionsLeft.length > 0 ? sessionsLeft.join(', ') : 'none'}\n`,
        );
      }
    } finally {
      await client.close();
      await rtpengine.stop();
      process.off('exit', killRtpengine);
    }
  }

  if (ONLY === undefined || ONLY === 'tls') {
    const tls = { cert: pki.cert, key: pki.key };
    const ca = fs.readFileSync(pki.caCert);
    const tlsProxies = [
      dialplaneProxy(db, edgePort, { tls: { ...tls, port: await freePort() } }),
      kamailioProxy(table, dir, kamailioPort, { tls: { ...tls, port: await freePort() } }),
    ];
    const results = await searchAll(tlsProxies, setup, tlsCaller(table.dialled, ca), 'TLS');
    printRates(
      results,
      `Inbound calls over TLS (carrier → proxy over TLS, ${TLS_CONNECTIONS} connections; proxy → agent over UDP), our TLS caller ` +
        `(bench/tls-caller.ts) in place of sipp, ${STEP_SECONDS} s per step; ${machine}`,
    );
    await idleTlsMemory(tlsProxies, ca);
  }
  // The rest only in a whole run (BENCH_SIP_ONLY unset).
  if (ONLY === undefined) {
    process.stderr.write('\noutbound calls, the carrier challenging every call…\n');
    const outbound = await benchOutbound();
    const outboundRatio = outbound.kamailioCps > 0 ? outbound.dialplaneCps / outbound.kamailioCps : NaN;
    process.stdout.write(
      `\nOutbound (runtime → edge → carrier answering 401, digest re-send, full call), ${CORES} cores\n\n` +
        `| proxy | highest clean outbound rate |\n|---|---:|\n| dialplane | ${outbound.dialplaneCps} calls/s |\n` +
        `| Kamailio (uac_auth) | ${outbound.kamailioCps} calls/s |\n\ndialplane / Kamailio (outbound): ${outboundRatio.toFixed(2)}\n`,
    );

    const signing = benchSigning();
    const edgeBest = udpBest;
    const share = edgeBest
      ? ` (${((signing.microsPerCall / ((edgeBest.cpuSeconds / edgeBest.calls) * 1e6)) * 100).toFixed(1)} % of dialplane's CPU per call above)`
      : '';
    process.stdout.write(
      `\nDialog signatures: ${signing.microsPerCall.toFixed(1)} µs of CPU per inbound call: ${signing.macsPerCall} HMAC-SHA256 ` +
        `(Record-Route signed, ACK and BYE verified, three branches), the Record-Route parsed once${share}\n`,
    );

    process.stderr.write(`\nrouting index: ${process.env.BENCH_NUMBERS ?? '1000000'} numbers…\n`);
    const figures = await benchRoutingIndex();
    process.stdout.write(
      `\n| numbers | load time | memory per number | decision p50 | decision p99 |\n|---:|---:|---:|---:|---:|\n` +
        `| ${figures.numbers} | ${figures.loadSeconds.toFixed(2)} s | ${Math.round(figures.bytesPerNumber)} B (goal < 300) | ` +
        `${figures.decisionP50Micros.toFixed(2)} µs | ${figures.decisionP99Micros.toFixed(2)} µs (goal < 1000) |\n`,
    );
  }
  process.stdout.write(`\nbench:sip took ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
} finally {
  for (const child of running) killTree(child, 'SIGKILL');
  fs.rmSync(dir, { recursive: true, force: true });
  pki.remove();
}
