import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import { freePort } from './sipp.ts';

/** Whether rtpengine is installed; under CI its absence is a failure, elsewhere its suites skip. */
export function rtpengineAvailable(): boolean {
  const found = spawnSync('rtpengine', ['--version'], { stdio: 'ignore' }).error === undefined;
  if (!found && process.env.CI) throw new Error('rtpengine (Debian package rtpengine-daemon) is required in CI');
  if (!found) process.stderr.write('\n# SKIPPED: media suites — rtpengine is not installed (apt-get install rtpengine-daemon)\n');
  return found;
}

export interface Rtpengine {
  /** Where it takes ng commands (UDP). */
  ng: { host: string; port: number };
  /** The address (the first interface's) and port range it relays media on. */
  media: { address: string; portMin: number; portMax: number };
  /** What it logged so far. */
  output(): string;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
}

/** Answers once rtpengine's ng listener does: an ng `ping` (written by hand, not with the code under test) gets `pong`. */
async function answering(port: number, deadline: number, exited: () => boolean): Promise<void> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  try {
    for (let probe = 0; ; probe++) {
      const cookie = `probe${probe}`;
      const answered = new Promise<boolean>((resolve) => {
        const onMessage = (data: Buffer) => {
          clearTimeout(timer);
          resolve(data.toString('latin1') === `${cookie} d6:result4:ponge`);
        };
        // An unanswered probe takes its listener with it.
        const timer = setTimeout(() => {
          socket.off('message', onMessage);
          resolve(false);
        }, 100);
        socket.once('message', onMessage);
      });
      socket.send(`${cookie} d7:command4:pinge`, port, '127.0.0.1');
      if (await answered) return;
      if (exited()) throw new Error('rtpengine exited');
      if (Date.now() > deadline) throw new Error('rtpengine did not answer ping');
    }
  } finally {
    socket.close();
  }
}

const OUTPUT_KEPT = 256 * 1024;

/** A media port range of the caller's choosing, for more calls at once than the default block holds. */
export interface RtpenginePorts {
  portMin: number;
  portMax: number;
}

/**
 * Runs rtpengine in the foreground, in userspace (no kernel forwarding) and without its config file,
 * taking ng commands on a free loopback port and relaying media on `interfaces` (rtpengine's
 * `--interface` values: an address, or `name/address` for named interfaces). The media ports
 * are `ports`, or else a random block of 100 below Linux's ephemeral range, so files running at once
 * rarely share ports (rtpengine skips a port that is taken anyway).
 */
export async function startRtpengine(interfaces: string | string[] = '127.0.0.1', ports?: RtpenginePorts): Promise<Rtpengine> {
  const listed = Array.isArray(interfaces) ? interfaces : [interfaces];
  const ngPort = await freePort();
  const block = 20_000 + 100 * crypto.randomInt(120);
  const { portMin, portMax } = ports ?? { portMin: block, portMax: block + 99 };
  const child = spawn(
    'rtpengine',
    [
      '--config-file=none',
      '--foreground',
      '--log-stderr',
      '--table=-1',
      ...listed.map((value) => `--interface=${value}`),
      `--listen-ng=127.0.0.1:${ngPort}`,
      `--port-min=${portMin}`,
      `--port-max=${portMax}`,
      // A deleted call is gone at once, not kept for the default 30 s.
      '--delete-delay=0',
      '--num-threads=2',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let output = '';
  // The start is kept (why it failed to come up, the first calls); a long run would otherwise hold every call's lines.
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    if (output.length < OUTPUT_KEPT) output += chunk;
  });
  let hasExited = false;
  const exited = new Promise<void>((resolve) =>
    child.on('exit', () => {
      hasExited = true;
      resolve();
    }),
  );
  try {
    await answering(ngPort, Date.now() + 10_000, () => hasExited);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${String(error)}:\n${output}`);
  }
  const end = async (signal: NodeJS.Signals) => {
    if (!hasExited) child.kill(signal);
    await exited;
  };
  return {
    ng: { host: '127.0.0.1', port: ngPort },
    media: { address: listed[0].split('/').pop()!, portMin, portMax },
    output: () => output,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
  };
}
