import { spawn, spawnSync } from 'node:child_process';
import { setTimeout as delay } from 'node:timers/promises';
import dns from 'node:dns';
import { freePort } from './sipp.ts';

/** Whether dnsmasq is installed; under CI its absence is a failure, elsewhere its suites skip. */
export function dnsmasqAvailable(): boolean {
  const found = spawnSync('dnsmasq', ['--version'], { stdio: 'ignore' }).error === undefined;
  if (!found && process.env.CI) throw new Error('dnsmasq (Debian package dnsmasq-base) is required in CI');
  if (!found) process.stderr.write('\n# SKIPPED: DNS suites — dnsmasq is not installed (apt-get install dnsmasq-base)\n');
  return found;
}

export interface Dnsmasq {
  /** `127.0.0.1:port`, for DIALPLANE_DNS_SERVERS. */
  server: string;
  stop(): Promise<void>;
}

/** A real DNS server on loopback answering only the records given as dnsmasq options (e.g. `--srv-host=…`). */
export async function startDnsmasq(records: string[], ttlSeconds = 60): Promise<Dnsmasq> {
  const port = await freePort();
  const child = spawn(
    'dnsmasq',
    [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--no-resolv',
      '--no-hosts',
      '--no-poll',
      '--bind-interfaces',
      '--listen-address=127.0.0.1',
      `--port=${port}`,
      `--local-ttl=${ttlSeconds}`,
      '--user=root',
      '--pid-file=',
      ...records,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let output = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const server = `127.0.0.1:${port}`;
  const resolver = new dns.promises.Resolver({ timeout: 200, tries: 1 });
  resolver.setServers([server]);
  for (let i = 0; ; i++) {
    try {
      await resolver.resolveSoa('probe.invalid');
      break;
    } catch (error) {
      // Any DNS answer (NXDOMAIN, REFUSED…) means it is up; a timeout or refusal to connect means not yet.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== dns.TIMEOUT && code !== dns.CONNREFUSED) break;
      if (child.exitCode !== null || i > 50) throw new Error(`dnsmasq did not start:\n${output}`);
      await delay(100);
    }
  }
  return {
    server,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
