import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import net from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import os from 'node:os';
import { REPO_ROOT } from './process.ts';

export const SCENARIOS = path.join(REPO_ROOT, 'test/interop/scenarios');

/** Whether sipp is installed; under CI its absence is a failure, elsewhere the interop suites skip. */
export function sippAvailable(): boolean {
  const found = spawnSync('sipp', ['-v'], { stdio: 'ignore' }).error === undefined;
  if (!found && process.env.CI) throw new Error('sipp (Debian package sip-tester) is required in CI');
  if (!found) process.stderr.write('\n# SKIPPED: SIP interop suites — sipp is not installed (apt-get install sip-tester)\n');
  return found;
}

/** A port free for both UDP and TCP on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  for (;;) {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise((resolve) => server.close(resolve));
    const socket = dgram.createSocket('udp4');
    const ok = await new Promise<boolean>((resolve) => {
      socket.once('error', () => resolve(false));
      socket.bind(port, '127.0.0.1', () => resolve(true));
    });
    socket.close();
    if (ok) return port;
  }
}

export type SippTransport = 'udp' | 'tcp';

export interface SippRun {
  child: ChildProcess;
  /** Resolves with sipp's exit code (0: every call succeeded) and what it printed. */
  done: Promise<{ code: number | null; output: string; log: string }>;
  stop(): void;
}

export interface SippOptions {
  scenario: string;
  transport: SippTransport;
  localPort: number;
  /** host:port to call; absent for a UAS. */
  remote?: string;
  service?: string;
  calls: number;
  rate?: number;
  /** Values for the scenario's {{name}} placeholders (sipp cannot vary a scenario's expected response code). */
  fill?: Record<string, string>;
  timeoutSeconds?: number;
}

/** Runs sipp as a real peer on loopback, bounded in calls and time. */
export function runSipp(options: SippOptions): SippRun {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-sipp-'));
  const logFile = path.join(dir, 'sipp.log');
  let scenario = fs.readFileSync(path.join(SCENARIOS, options.scenario), 'utf8');
  for (const [name, value] of Object.entries(options.fill ?? {})) scenario = scenario.replaceAll(`{{${name}}}`, value);
  const scenarioFile = path.join(dir, options.scenario);
  fs.writeFileSync(scenarioFile, scenario);
  const args = [
    '-sf',
    scenarioFile,
    '-i',
    '127.0.0.1',
    '-p',
    String(options.localPort),
    '-t',
    options.transport === 'udp' ? 'u1' : 't1',
    '-m',
    String(options.calls),
    '-nostdin',
    '-timeout',
    `${options.timeoutSeconds ?? 20}s`,
    '-timeout_error',
    '-trace_logs',
    '-log_file',
    logFile,
    '-trace_err',
    '-error_file',
    path.join(dir, 'errors.log'),
  ];
  if (options.rate !== undefined) args.push('-r', String(options.rate), '-l', String(Math.max(1, options.rate * 2)));
  if (options.service !== undefined) args.push('-s', options.service);
  if (options.remote) args.push(options.remote);
  const child = spawn('sipp', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const done = new Promise<{ code: number | null; output: string; log: string }>((resolve) => {
    child.on('exit', (code) => {
      const read = (file: string) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');
      const log = read(logFile);
      const errors = read(path.join(dir, 'errors.log'));
      fs.rmSync(dir, { recursive: true, force: true });
      resolve({ code, output: `${output}\n${errors}`, log });
    });
  });
  return { child, done, stop: () => child.kill('SIGKILL') };
}

/** Waits until sipp's UAS socket is bound (sipp prints nothing useful for it; a short pause is what works). */
export function settle(ms = 300): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it gives a value, failing after `timeoutMs`. */
export async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await settle(50);
  }
}
