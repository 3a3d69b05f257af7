import { spawn, spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './process.ts';

export const KAMAILIO_CONFIGS = path.join(REPO_ROOT, 'test/interop/kamailio');

/** Whether Kamailio is installed; under CI its absence is a failure, elsewhere its suites skip. */
export function kamailioAvailable(): boolean {
  const found = spawnSync('kamailio', ['-v'], { stdio: 'ignore' }).error === undefined;
  if (!found && process.env.CI) throw new Error('kamailio (Debian package kamailio) is required in CI');
  if (!found) process.stderr.write('\n# SKIPPED: Kamailio suites — kamailio is not installed (apt-get install kamailio)\n');
  return found;
}

export interface Kamailio {
  /** What it logged so far. */
  output(): string;
  stop(): Promise<void>;
}

/** Answers once Kamailio does, to any request on UDP: then its workers are up. */
async function answering(port: number, deadline: number): Promise<void> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  try {
    for (;;) {
      const local = socket.address().port;
      const probe = [
        `OPTIONS sip:127.0.0.1:${port} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${local};branch=z9hG4bK-probe${Date.now()}`,
        'From: <sip:probe@127.0.0.1>;tag=probe',
        'To: <sip:probe@127.0.0.1>',
        `Call-ID: probe-${Date.now()}`,
        'CSeq: 1 OPTIONS',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n');
      const answered = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 200);
        socket.once('message', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      socket.send(probe, port, '127.0.0.1');
      if (await answered) return;
      if (Date.now() > deadline) throw new Error('kamailio did not answer');
    }
  } finally {
    socket.close();
  }
}

/** Runs Kamailio in the foreground with a configuration of test/interop/kamailio, on UDP and TCP `port` (and TLS `tlsPort`). */
export async function startKamailio(config: string, port: number, defines: Record<string, string> = {}, tlsPort?: number): Promise<Kamailio> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-kamailio-'));
  const args = [
    '-f',
    path.join(KAMAILIO_CONFIGS, config),
    '-l',
    `udp:127.0.0.1:${port}`,
    '-l',
    `tcp:127.0.0.1:${port}`,
    '-DD',
    '-E',
    '-w',
    dir,
    '-Y',
    dir,
  ];
  if (tlsPort !== undefined) args.push('-l', `tls:127.0.0.1:${tlsPort}`);
  for (const [name, value] of Object.entries(defines)) args.push('-A', `${name}=${value}`);
  const child = spawn('kamailio', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  try {
    await answering(port, Date.now() + 10_000);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${String(error)}:\n${output}`);
  }
  return {
    output: () => output,
    async stop() {
      child.kill('SIGTERM');
      await exited;
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
