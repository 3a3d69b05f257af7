import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { api, firstStartKey, startDialplane } from './dialplane-process.ts';
import { postgresSchema } from './postgres-schema.ts';
import { sleep, startNodeProcess, stopChild, type StartedProcess } from './processes.ts';

/**
 * `npm run bench:events`: events from a change to the webhook receiver, on SQLite and on
 * PostgreSQL. A dialplane server (its own process) has one webhook endpoint wanting
 * `phone_number.linked`; autocannon links numbers picked at random, so every request commits one
 * event. Each backend is measured twice:
 *
 * - flat out: links for DURATION_S as fast as the server takes them; events per second from the
 *   first link to the last delivery, against the links per second (1.00: delivery keeps up);
 * - at a steady RATE links per second: p50 and p99 from the event's commit (its `time`) to its
 *   arrival at the receiver (bench/webhook-receiver.ts, its own process; one clock).
 *
 * The anchor is the receiver itself: POSTs per second it takes from autocannon directly, the most
 * any webhook sender could deliver to it on this machine.
 */
const DURATION_S = Number(process.env.BENCH_DURATION ?? 10);
const RATE = Number(process.env.BENCH_EVENTS_RATE ?? 200);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 20);
const PG_URL = process.env.DIALPLANE_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const NUMBERS = 1000;

interface ReceiverStats {
  count: number;
  firstAt: number;
  lastAt: number;
  p50: number;
  p99: number;
}

const children: Pick<StartedProcess, 'stop'>[] = [];
const pick = <T>(items: T[]) => items[Math.floor(Math.random() * items.length)];

/** Events of `type` the server has committed so far (its metrics). */
async function eventsWritten(url: string, type: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`dialplane_events_written_total{type="${type}"}`));
  return line ? Number(line.split(' ')[1]) : 0;
}

async function stats(receiverUrl: string): Promise<ReceiverStats> {
  return (await fetch(`${receiverUrl}/stats`)).json() as Promise<ReceiverStats>;
}

async function reset(receiverUrl: string): Promise<void> {
  await fetch(`${receiverUrl}/reset`, { method: 'POST' });
}

/** Waits until the receiver has `count` events (or 120 s pass). */
async function delivered(receiverUrl: string, count: number): Promise<ReceiverStats> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const now = await stats(receiverUrl);
    if (now.count >= count || Date.now() > deadline) return now;
    await sleep(50);
  }
}

interface Result {
  backend: string;
  linksPerSecond: number;
  eventsPerSecond: number;
  eventsWritten: number;
  eventsDelivered: number;
  steadyP50: number;
  steadyP99: number;
  steadyDelivered: number;
  steadyWritten: number;
}

async function measure(backend: string, env: Record<string, string>, receiverUrl: string): Promise<Result> {
  const dialplane = await startDialplane({ DIALPLANE_SIP_PORT: '0', ...env });
  children.push({ stop: () => stopChild(dialplane.child, dialplane.exited) });
  const { url } = dialplane;
  const key = await firstStartKey(dialplane);
  const creds = await api(url, key, 'POST', '/sip-credentials', { server: 'sip.example.com' });
  const numbers: string[] = [];
  for (let i = 0; i < NUMBERS; i++) {
    numbers.push(
      (await api(url, key, 'POST', '/sip-phone-numbers', { phoneNumber: `+1555020${String(i).padStart(4, '0')}`, credentialsId: creds.id })).id,
    );
  }
  const agents: string[] = [];
  for (const name of ['a', 'b', 'c']) agents.push((await api(url, key, 'POST', '/agents', { name })).agentId);
  await api(url, key, 'POST', '/webhooks', { url: `${receiverUrl}/hook`, eventTypes: ['phone_number.linked'] });
  // Each link picks an agent other than the number's, so every request is a real change.
  const current = new Map<string, string>();
  const links: autocannon.Request[] = [
    {
      method: 'PUT',
      setupRequest: (request) => {
        const number = pick(numbers);
        const agent = pick(agents.filter((a) => a !== current.get(number)));
        current.set(number, agent);
        return { ...request, path: `/api/v1/sip-phone-numbers/${number}/agent-link?agentId=${agent}` };
      },
    },
  ];
  const headers = { authorization: `Bearer ${key}` };

  // Two links of one number racing may pick the same agent: the second changes nothing and has
  // no event. What is waited for is what the server wrote.
  await reset(receiverUrl);
  let written = await eventsWritten(url, 'phone_number.linked');
  const started = Date.now();
  const flat = await autocannon({ url, headers, connections: CONNECTIONS, duration: DURATION_S, requests: links });
  if (flat.non2xx + flat.errors > 0) throw new Error(`${backend}: ${flat.non2xx + flat.errors} links failed`);
  const flatEvents = (await eventsWritten(url, 'phone_number.linked')) - written;
  const flatStats = await delivered(receiverUrl, flatEvents);

  await reset(receiverUrl);
  written = await eventsWritten(url, 'phone_number.linked');
  await autocannon({ url, headers, connections: 10, duration: DURATION_S, overallRate: RATE, requests: links });
  const steadyEvents = (await eventsWritten(url, 'phone_number.linked')) - written;
  const steadyStats = await delivered(receiverUrl, steadyEvents);
  await children.pop()!.stop();
  return {
    backend,
    linksPerSecond: flat.requests.average,
    eventsPerSecond: flatStats.count / ((flatStats.lastAt - started) / 1000),
    eventsWritten: flatEvents,
    eventsDelivered: flatStats.count,
    steadyP50: steadyStats.p50,
    steadyP99: steadyStats.p99,
    steadyDelivered: steadyStats.count,
    steadyWritten: steadyEvents,
  };
}

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-bench-events-'));
const schema = await postgresSchema(PG_URL);
try {
  const receiver = await startNodeProcess(['--import', 'tsx', 'bench/webhook-receiver.ts'], /listening (\d+)/);
  children.push(receiver);
  const receiverUrl = `http://127.0.0.1:${receiver.match[1]}`;
  const anchor = await autocannon({ url: `${receiverUrl}/hook`, method: 'POST', body: '{}', connections: CONNECTIONS, duration: DURATION_S });

  const results = [await measure('SQLite', { DIALPLANE_DB: path.join(dataDir, 'events.db') }, receiverUrl)];
  if (schema) {
    results.push(
      await measure('PostgreSQL', { DIALPLANE_DB: schema.url, DIALPLANE_SECRET_KEY: crypto.randomBytes(32).toString('hex') }, receiverUrl),
    );
  }

  process.stdout.write(
    `\n${os.cpus().length} cores (${os.cpus()[0]?.model ?? ''}); ${DURATION_S} s per measurement, ${CONNECTIONS} connections flat out\n`,
  );
  process.stdout.write(`anchor: the receiver alone takes ${Math.round(anchor.requests.average)} POSTs/s from autocannon\n\n`);
  process.stdout.write(
    '| database | links/s (flat out) | events delivered/s | keeps up (events ÷ links) | ratio to the receiver alone | p50 commit → receiver | p99 | at |\n|---|---:|---:|---:|---:|---:|---:|---:|\n',
  );
  for (const r of results) {
    const lost = r.eventsDelivered < r.eventsWritten || r.steadyDelivered < r.steadyWritten ? ' (NOT ALL DELIVERED)' : '';
    process.stdout.write(
      `| ${r.backend}${lost} (${r.eventsWritten} events) | ${Math.round(r.linksPerSecond)} | ${Math.round(r.eventsPerSecond)} | ${(r.eventsPerSecond / r.linksPerSecond).toFixed(2)} | ${(r.eventsPerSecond / anchor.requests.average).toFixed(2)} | ${r.steadyP50} ms | ${r.steadyP99} ms | ${RATE} links/s |\n`,
    );
  }
} finally {
  await Promise.all(children.map((child) => child.stop()));
  fs.rmSync(dataDir, { recursive: true, force: true });
  await schema?.drop();
}
