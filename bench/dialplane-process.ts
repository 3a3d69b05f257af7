import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sleep, track } from './processes.ts';

/** `dialplane serve` as the SIP benches run it: its own process (group), HTTP and SIP on 127.0.0.1. */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUTPUT_KEPT = 64 * 1024;

export interface DialplaneProcess {
  child: ChildProcess;
  url: string;
  output: () => string;
  exited: Promise<number | null>;
}

/**
 * Starts `dialplane serve` and resolves once it listens, with what it printed so far. `root`:
 * another checkout to run (bench:api's baseline commit).
 */
export async function startDialplane(env: Record<string, string>, root = ROOT): Promise<DialplaneProcess> {
  // Node's own flags for the server, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` (NODE_OPTIONS refuses --cpu-prof).
  const nodeFlags = (process.env.BENCH_DIALPLANE_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeFlags, 'bin/dialplane.js', 'serve'], {
    cwd: root,
    env: {
      ...process.env,
      DIALPLANE_LOG_LEVEL: 'info',
      DIALPLANE_HTTP_HOST: '127.0.0.1',
      DIALPLANE_HTTP_PORT: '0',
      DIALPLANE_SIP_HOST: '127.0.0.1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const exited = track(child);
  // Only the start is kept (the key, the listening line): under load the server logs a line per
  // request, which is read and dropped.
  let output = '';
  const keep = (chunk: Buffer) => {
    if (output.length < OUTPUT_KEPT) output += chunk.toString();
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const match = /Server listening at (http:\/\/[^"\s]+)/.exec(output);
      if (match) {
        child.stdout.off('data', check);
        resolve(match[1]);
      }
    };
    child.stdout.on('data', check);
    void exited.then((code) => reject(new Error(`dialplane exited with ${code}:\n${output}`)));
  });
  return { child, url, output: () => output, exited };
}

/** The default organization's key, printed on a database's first start right after the listening line. */
export async function firstStartKey(server: DialplaneProcess): Promise<string> {
  while (!/\bdpk_[A-Za-z0-9_-]+\s/.test(server.output())) await sleep(20);
  return /\b(dpk_[A-Za-z0-9_-]+)/.exec(server.output())![1];
}

export async function api(url: string, key: string, method: string, route: string, body?: unknown): Promise<any> {
  const response = await fetch(`${url}/api/v1${route}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (!response.ok) throw new Error(`${method} ${route}: ${response.status} ${await response.text()}`);
  return response.json();
}
