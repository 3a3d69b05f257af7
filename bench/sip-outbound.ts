import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../test/support/sipp.ts';
import { api, firstStartKey, startDialplane } from './dialplane-process.ts';
import { runSipp, type SippStats } from './sipp-run.ts';
import { killTree, running, sleep, startKamailioWorkers, stopChild } from './processes.ts';
import { fileURLToPath } from 'node:url';

/**
 * The outbound row of `npm run bench:sip`: the highest rate of outbound calls (docs/outbound.md) the
 * SIP edge carries cleanly with the carrier challenging every call, beside Kamailio doing the
 * same job (bench/kamailio/outbound.cfg, whose uac module answers the challenge).
 *
 * A sipp agent runtime (bench/sipp/runtime.xml) places full calls with X-Dialplane-Agent-Id
 * through the proxy; a sipp carrier (bench/sipp/carrier-auth.xml) answers each INVITE with 401,
 * checks the re-sent INVITE's answer with sipp's verifyauth and P-Asserted-Identity with an
 * ereg, then 180, 200, ACK, BYE. A rate is clean when every call succeeds on both sides and
 * nobody retransmitted anything. The rate doubles from START_RATE until a step is not clean,
 * then BISECTIONS steps narrow it; every step gets a fresh proxy and a warm-up. Bounded to a
 * few minutes: MAX_RATE caps the doubling, steps are STEP_SECONDS long.
 *
 * Alone: `node --import tsx bench/sip-outbound.ts` (BENCH_SIP_OUTBOUND_STEP_SECONDS to change
 * the step length).
 */

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const STEP_SECONDS = Number(process.env.BENCH_SIP_OUTBOUND_STEP_SECONDS ?? 5);
const START_RATE = 50;
const MAX_RATE = 6400;
const BISECTIONS = 3;
const WARMUP_CALLS = 200;
const WARMUP_RATE = 100;
const DRAIN_SECONDS = 5;
const CORES = os.cpus().length;

const RUNTIME_SCENARIO = path.join(ROOT, 'bench/sipp/runtime.xml');
const CARRIER_SCENARIO = path.join(ROOT, 'bench/sipp/carrier-auth.xml');
const KAMAILIO_CONFIG = path.join(ROOT, 'bench/kamailio/outbound.cfg');

const NUMBER = '+15550199000';
const DISPLAY_NAME = 'Bench Caller';
const DOMAIN = 'carrier.example';
const AUTH_USER = 'benchtrunk';
const PASSWORD = 'bench-secret';

// --- sipp scenarios -------------------------------------------------------------------------

/** A scenario with its {{placeholders}} filled, written into the run's folder. */
function filled(dir: string, scenario: string, values: Record<string, string>): string {
  let text = fs.readFileSync(scenario, 'utf8');
  for (const [name, value] of Object.entries(values)) text = text.replaceAll(`{{${name}}}`, value);
  const file = path.join(dir, `filled-${path.basename(scenario)}`);
  fs.writeFileSync(file, text);
  return file;
}

// --- the proxies ---------------------------------------------------------------------------

interface RunningProxy {
  port: number;
  stop(): Promise<void>;
}

interface Proxy {
  name: string;
  shape: string;
  start(): Promise<RunningProxy>;
}

/** Through the API of a first dialplane process: the trunk at the carrier, the number, the agent, the outbound link. */
async function createAgent(db: string, sipPort: number, carrierPort: number): Promise<string> {
  const server = await startDialplane({ DIALPLANE_DB: db, DIALPLANE_SIP_PORT: String(sipPort), DIALPLANE_RUNTIME_ADDRESSES: '127.0.0.1' });
  try {
    const key = await firstStartKey(server);
    const credentials = await api(server.url, key, 'POST', '/sip-credentials', {
      server: `127.0.0.1:${carrierPort}`,
      domain: DOMAIN,
      authUser: AUTH_USER,
      authPassword: PASSWORD,
    });
    const number = await api(server.url, key, 'POST', '/sip-phone-numbers', {
      phoneNumber: NUMBER,
      credentialsId: credentials.id,
      displayName: DISPLAY_NAME,
    });
    const agent = await api(server.url, key, 'POST', '/agents', { name: 'bench outbound agent' });
    await api(server.url, key, 'PUT', `/sip-phone-numbers/${number.id}/agent-link?agentId=${agent.agentId}&mode=replaceOutbound`);
    return agent.agentId as string;
  } finally {
    await stopChild(server.child, server.exited);
  }
}

function dialplaneProxy(db: string, port: number): Proxy {
  return {
    name: 'dialplane',
    shape: '1 Node.js process, SQLite',
    async start() {
      const server = await startDialplane({ DIALPLANE_DB: db, DIALPLANE_SIP_PORT: String(port), DIALPLANE_RUNTIME_ADDRESSES: '127.0.0.1' });
      return { port, stop: () => stopChild(server.child, server.exited) };
    },
  };
}

function kamailioProxy(agentId: string, carrierPort: number, dir: string, port: number): Proxy {
  const dbDir = path.join(dir, 'kamailio-db');
  fs.mkdirSync(dbDir, { recursive: true });
  const escape = (value: string) => value.replaceAll('\\', '\\\\').replaceAll(':', '\\:');
  const value = [NUMBER, DISPLAY_NAME, DOMAIN, `127.0.0.1:${carrierPort}`, AUTH_USER, PASSWORD].join('|');
  fs.writeFileSync(
    path.join(dbDir, 'agents'),
    `id(int,auto) key_name(string) key_type(int) value_type(int) key_value(string) expires(int)\n1:${escape(agentId)}:0:0:${escape(value)}:0\n`,
  );
  return {
    name: 'Kamailio',
    shape: `${CORES} UDP workers, uac_auth`,
    async start() {
      const kamailio = await startKamailioWorkers(KAMAILIO_CONFIG, dbDir, dir, port);
      return { port, stop: kamailio.stop };
    },
  };
}

// --- the search ----------------------------------------------------------------------------

interface Setup {
  dir: string;
  carrierPort: number;
  runtimeScenario: string;
  carrierScenario: string;
}

function verdict(expected: number, side: string, stats: SippStats): string | null {
  if (stats.code !== 0 || stats.failed > 0 || stats.successful !== expected) {
    return `${side}: ${stats.successful}/${expected} calls succeeded, ${stats.failed} failed (exit ${stats.code})`;
  }
  if (stats.retransmissions > 0) return `${side}: ${stats.retransmissions} retransmissions`;
  return null;
}

async function step(proxy: Proxy, setup: Setup, rate: number): Promise<{ clean: boolean; why: string }> {
  const calls = rate * STEP_SECONDS;
  const instance = await proxy.start();
  try {
    const carrier = runSipp({
      scenario: setup.carrierScenario,
      port: setup.carrierPort,
      calls: WARMUP_CALLS + calls,
      dir: setup.dir,
      name: 'carrier',
      timeoutSeconds: WARMUP_CALLS / WARMUP_RATE + STEP_SECONDS + 2 * DRAIN_SECONDS + 5,
    });
    await sleep(300);
    const runtime = async (name: string, count: number, callRate: number) =>
      runSipp({
        scenario: setup.runtimeScenario,
        port: await freePort(),
        calls: count,
        rate: callRate,
        service: '15557770000',
        dir: setup.dir,
        name,
        remote: `127.0.0.1:${instance.port}`,
        timeoutSeconds: count / callRate + DRAIN_SECONDS,
      });
    const warmup = await runtime('warmup', WARMUP_CALLS, Math.min(rate, WARMUP_RATE));
    const measured = await runtime('runtime', calls, rate);
    const carrierStats = await carrier;
    const why =
      verdict(WARMUP_CALLS, 'warm-up runtime', warmup) ??
      verdict(calls, 'runtime', measured) ??
      verdict(WARMUP_CALLS + calls, 'carrier', carrierStats) ??
      (measured.rate < rate * 0.9 ? `sipp placed only ${measured.rate.toFixed(0)} calls/s` : null);
    return { clean: why === null, why: why ?? 'clean' };
  } finally {
    await instance.stop();
  }
}

async function search(proxy: Proxy, setup: Setup): Promise<{ best: number; failedAt: number | null }> {
  let best = 0;
  let failedAt: number | null = null;
  const attempt = async (rate: number) => {
    const result = await step(proxy, setup, rate);
    process.stderr.write(`  ${proxy.name} outbound ${rate} calls/s: ${result.why}\n`);
    if (result.clean) best = rate;
    else failedAt = rate;
    return result.clean;
  };
  for (let rate = START_RATE; rate <= MAX_RATE && (await attempt(rate)); rate *= 2);
  for (let i = 0; i < BISECTIONS && failedAt !== null; i++) {
    const high: number = failedAt;
    const rate = Math.round((best + high) / 2 / 10) * 10;
    if (rate <= best || rate >= high) break;
    await attempt(rate);
  }
  return { best, failedAt };
}

/** Highest clean outbound call rate through the edge and through Kamailio, the carrier challenging every call. */
export async function benchOutbound(): Promise<{ dialplaneCps: number; kamailioCps: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-sip-outbound-bench-'));
  try {
    const [edgePort, kamailioPort, carrierPort] = [await freePort(), await freePort(), await freePort()];
    const db = path.join(dir, 'bench.db');
    const agentId = await createAgent(db, edgePort, carrierPort);
    const caller = `${DISPLAY_NAME}. .sip:\\${NUMBER}@${DOMAIN.replace('.', '\\.')}`;
    const setup: Setup = {
      dir,
      carrierPort,
      runtimeScenario: filled(dir, RUNTIME_SCENARIO, { agent: agentId }),
      carrierScenario: filled(dir, CARRIER_SCENARIO, { user: AUTH_USER, password: PASSWORD, caller }),
    };
    const results: number[] = [];
    for (const proxy of [dialplaneProxy(db, edgePort), kamailioProxy(agentId, carrierPort, dir, kamailioPort)]) {
      process.stderr.write(`${proxy.name} (${proxy.shape}): outbound, ${STEP_SECONDS} s steps from ${START_RATE} calls/s\n`);
      results.push((await search(proxy, setup)).best);
    }
    return { dialplaneCps: results[0], kamailioCps: results[1] };
  } finally {
    for (const child of running) killTree(child, 'SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { dialplaneCps, kamailioCps } = await benchOutbound();
  const ratio = kamailioCps > 0 ? dialplaneCps / kamailioCps : NaN;
  process.stdout.write(
    `\nOutbound calls (INVITE/401/ACK/INVITE+auth/100/180/200/ACK/BYE/200) over UDP on 127.0.0.1, carrier challenging every call, ` +
      `${STEP_SECONDS} s per step; ${CORES} cores (${os.cpus()[0]?.model ?? ''})\n\n` +
      `| proxy | highest clean outbound rate |\n|---|---:|\n| dialplane | ${dialplaneCps} calls/s |\n| Kamailio (uac_auth) | ${kamailioCps} calls/s |\n\n` +
      `dialplane / Kamailio: ${ratio.toFixed(2)}\n`,
  );
}
