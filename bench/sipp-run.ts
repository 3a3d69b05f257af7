/**
 * Runs sipp for the benches: to completion (it stops by itself after `calls` calls or its
 * timeout), then reads its final statistics.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { track } from './processes.ts';

export interface SippStats {
  code: number | null;
  successful: number;
  failed: number;
  retransmissions: number;
  /** Calls per second over the whole run, as sipp measured it. */
  rate: number;
}

export interface SippRunOptions {
  scenario: string;
  port: number;
  calls: number;
  dir: string;
  name: string;
  /** host:port to call; absent for the agent runtime (UAS). */
  remote?: string;
  rate?: number;
  numbersFile?: string;
  /** The Request-URI user part (`-s`), for a UAC without a numbers file. */
  service?: string;
  timeoutSeconds: number;
}

export async function runSipp(options: SippRunOptions): Promise<SippStats> {
  const statsFile = path.join(options.dir, `${options.name}.csv`);
  fs.rmSync(statsFile, { force: true });
  const args = [
    '-sf',
    options.scenario,
    '-i',
    '127.0.0.1',
    '-p',
    String(options.port),
    '-t',
    'u1',
    '-m',
    String(options.calls),
    '-nostdin',
    '-timeout',
    `${options.timeoutSeconds}s`,
    '-timeout_error',
    // Statistics at the end only: a periodic dump would be sipp work during the run.
    '-trace_stat',
    '-stf',
    statsFile,
    '-fd',
    '3600',
  ];
  if (options.numbersFile) args.push('-inf', options.numbersFile);
  // The concurrent-call cap only guards sipp against a proxy that stopped answering.
  if (options.rate !== undefined) args.push('-r', String(options.rate), '-l', String(options.rate * 2));
  if (options.service !== undefined) args.push('-s', options.service);
  if (options.remote) args.push(options.remote);
  // sipp redraws its screen on stdout all along; nothing in it is needed beyond the stats file.
  const child = spawn('sipp', args, { cwd: options.dir, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const code = await track(child);
  const lines = fs.existsSync(statsFile) ? fs.readFileSync(statsFile, 'utf8').trim().split('\n') : [];
  if (lines.length < 2) throw new Error(`sipp ${options.name} wrote no statistics (exit ${code}): ${stderr}`);
  const columns = lines[0].split(';');
  const last = lines.at(-1)!.split(';');
  const column = (name: string) => Number(last[columns.indexOf(name)]);
  return {
    code,
    successful: column('SuccessfulCall(C)'),
    failed: column('FailedCall(C)'),
    retransmissions: column('Retransmissions(C)'),
    rate: column('CallRate(C)'),
  };
}
