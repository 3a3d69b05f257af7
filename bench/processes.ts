import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Child processes of the benches (proxies, sipp): tracked so that no exit path leaves one
 * behind, stopped by process group, and measured through /proc.
 */
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** Every child still running. */
export const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) killTree(child, 'SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

/** Resolves with the child's exit code; until then the child counts as running. */
export function track(child: ChildProcess): Promise<number | null> {
  running.add(child);
  return new Promise((resolve) => {
    child.on('exit', (code) => {
      running.delete(child);
      resolve(code);
    });
  });
}

/** Children spawned detached lead their own process group: Kamailio's workers go with it. */
export function killTree(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // Already gone.
  }
}

/** SIGTERM, then SIGKILL if it has not exited within 5 s. */
export async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  killTree(child, 'SIGTERM');
  const timer = setTimeout(() => killTree(child, 'SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** User plus system CPU seconds of these processes so far (all threads included). */
export function cpuSeconds(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      // Fields after the parenthesized command name: utime and stime are the 12th and 13th.
      const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Exited in between: its time is lost from both readings alike.
    }
  }
  return ticks / CLOCK_TICKS;
}

/**
 * Memory of these processes: the sum of their proportional set sizes (pages shared between
 * Kamailio's processes counted once in all), in bytes.
 */
export function memoryBytes(pids: number[]): number {
  let kilobytes = 0;
  for (const pid of pids) {
    try {
      const match = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      kilobytes += Number(match?.[1] ?? 0);
    } catch {
      // Exited in between.
    }
  }
  return kilobytes * 1024;
}

/** The process and its direct children (Kamailio's main process forks its workers). */
export function processTree(pid: number): number[] {
  const pids = [pid];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = fs.readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ');
      if (Number(fields[1]) === pid) pids.push(Number(entry));
    } catch {
      // Exited while listed.
    }
  }
  return pids;
}

/** One worker per core: the usual sizing for a CPU-bound proxy, and the most it can use here. */
export const KAMAILIO_WORKERS = os.cpus().length;

/**
 * Starts Kamailio with `config` (its DB_URL a text database in `dbDir`) on UDP `port`, in the
 * foreground, logging to stderr, its runtime files in `dir`; resolves once its workers run.
 * 256 MB of shared memory: tm keeps every transaction there until its wait timer, and the
 * 64 MB default ran out near 1,000 calls/s. `extraArgs` adds listeners and defines (the TLS rows).
 */
export async function startKamailioWorkers(
  config: string,
  dbDir: string,
  dir: string,
  port: number,
  extraArgs: string[] = [],
): Promise<{ pids: () => number[]; stop: () => Promise<void> }> {
  const args = [
    ...['-f', config, '-A', `DB_URL="text://${dbDir}"`, '-A', `CHILDREN=${KAMAILIO_WORKERS}`, '-l', `udp:127.0.0.1:${port}`],
    ...['-n', String(KAMAILIO_WORKERS), '-m', '256', ...extraArgs],
  ];
  const child = spawn('kamailio', [...args, '-DD', '-E', '-w', dir, '-Y', dir], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  const exited = track(child);
  let output = '';
  child.stderr?.on('data', (chunk) => (output += chunk));
  // Kamailio prints its listening sockets before forking the workers; wait for those too.
  const deadline = Date.now() + 10_000;
  while (processTree(child.pid!).length < 1 + KAMAILIO_WORKERS) {
    if (child.exitCode !== null) throw new Error(`kamailio exited with ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) throw new Error(`kamailio did not start its workers:\n${output}`);
    await sleep(50);
  }
  await sleep(200);
  return { pids: () => processTree(child.pid!), stop: () => stopChild(child, exited) };
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface StartedProcess {
  pid: number;
  /** The first match of `ready` in its stdout. */
  match: RegExpExecArray;
  stop(): Promise<void>;
}

/** Starts a Node.js process from the repository's root and resolves once its stdout matches `ready`. */
export function startNodeProcess(args: string[], ready: RegExp): Promise<StartedProcess> {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  const exited = track(child);
  let out = '';
  let started = false;
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      if (started) return;
      out += chunk;
      const match = ready.exec(out);
      if (!match) return;
      started = true;
      resolve({ pid: child.pid!, match, stop: () => stopChild(child, exited) });
    });
    void exited.then((code) => reject(new Error(`process exited with ${code}: ${out}`)));
  });
}
