import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { spawnServer, type ServerProcess } from '../support/process.ts';

/**
 * Slowloris against the SIP edge's TCP listener, on a real server process: a thousand
 * connections from twenty addresses, each sending the start of a message and no more. Memory
 * stays bounded while they are open, and the message deadline closes every one of them.
 */
const SOURCES = 20;
const PER_SOURCE = 50;
const DEADLINE_MS = 2000;
/** What one slow connection may cost the server, at most (socket, framer, bookkeeping). */
const BUDGET_PER_CONNECTION_BYTES = 40 * 1024;

function rssBytes(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

function connect(port: number, localAddress: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

describe('SIP edge: slow TCP senders', () => {
  let dir: string;
  let server: ServerProcess;
  let port: number;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-flood-'));
    server = await spawnServer({ DIALPLANE_DB: path.join(dir, 'dialplane.db'), DIALPLANE_SIP_TCP_MESSAGE_TIMEOUT_MS: String(DEADLINE_MS) });
    port = Number(/"sip":"127\.0\.0\.1:(\d+)"/.exec(server.output())![1]);
  });
  after(async () => {
    server.child.kill('SIGTERM');
    await server.exited;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('1,000 slow connections cost bounded memory and are all closed by the message deadline', async () => {
    await delay(500);
    const before = rssBytes(server.child.pid!);
    const sockets: net.Socket[] = [];
    const closed: Promise<void>[] = [];
    for (let s = 0; s < SOURCES; s++) {
      for (let i = 0; i < PER_SOURCE; i++) {
        const socket = await connect(port, `127.0.1.${s + 1}`);
        socket.on('error', () => undefined);
        closed.push(new Promise((resolve) => socket.once('close', () => resolve())));
        socket.write(
          `INVITE sip:+15550100000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.1.${s + 1}:5060;branch=z9hG4bK${s}x${i}\r\nFrom: <sip:x@y>;tag=${i}\r\n`,
        );
        sockets.push(socket);
      }
    }
    await delay(300);
    const during = rssBytes(server.child.pid!);
    const growth = during - before;
    process.stdout.write(
      `# ${sockets.length} slow connections: server RSS ${(before / 2 ** 20).toFixed(1)} → ${(during / 2 ** 20).toFixed(1)} MiB (${Math.round(growth / sockets.length)} B each)\n`,
    );
    assert.ok(growth < sockets.length * BUDGET_PER_CONNECTION_BYTES, `RSS grew by ${growth} bytes`);
    const started = Date.now();
    await Promise.all(closed);
    assert.ok(Date.now() - started < 2 * DEADLINE_MS + 1000, 'closed by the deadline');
    const response = await fetch(`${server.url}/metrics`);
    assert.match(await response.text(), new RegExp(`dialplane_sip_tcp_refusals\\{reason="message_timeout"\\} ${SOURCES * PER_SOURCE}`));
  });

  test('one address cannot hold more than its share of connections', async () => {
    const sockets: net.Socket[] = [];
    const closed: boolean[] = [];
    for (let i = 0; i < 100; i++) {
      const socket = await connect(port, '127.0.2.1');
      const index = closed.push(false) - 1;
      socket.on('error', () => undefined);
      socket.once('close', () => (closed[index] = true));
      sockets.push(socket);
    }
    await delay(300);
    assert.equal(closed.filter(Boolean).length, 100 - 64, 'the default cap is 64 per source');
    for (const socket of sockets) socket.destroy();
  });
});
