import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { LocalChangeFeed } from '../src/db/changes.ts';
import { openDatabase } from '../src/db/connection.ts';
import { migrateToLatest } from '../src/db/migrations.ts';
import { decideInbound } from '../src/inbound/decide.ts';
import { RoutingIndex } from '../src/inbound/routing-index.ts';

/**
 * The routing index at scale: N numbers (default 1,000,000) on 1,000 trunks, half of them
 * linked to one of 1,000 agents, in a real SQLite file. Reports the index's load time, its
 * memory per number, and the routing decision's p50/p99. Run with --expose-gc (the npm script
 * does) so that the memory figure is the live heap, not garbage.
 */
const COUNT = Number(process.env.BENCH_NUMBERS ?? 1_000_000);
const TRUNKS = 1000;
const AGENTS = 1000;
const LOOKUPS = 1_000_000;

function heapUsed(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run with node --expose-gc');
  gc();
  gc();
  return v8.getHeapStatistics().used_heap_size;
}

export interface RoutingIndexFigures {
  numbers: number;
  loadSeconds: number;
  bytesPerNumber: number;
  decisionP50Micros: number;
  decisionP99Micros: number;
}

export async function benchRoutingIndex(count = COUNT): Promise<RoutingIndexFigures> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dialplane-index-bench-'));
  const handle = openDatabase({ kind: 'sqlite', file: path.join(dir, 'bench.db') });
  try {
    await migrateToLatest(handle);
    const db = handle.db;
    const time = new Date().toISOString();
    const orgId = crypto.randomUUID();
    await db.insertInto('orgs').values({ id: orgId, name: 'bench', created_time: time }).execute();
    const trunkIds = Array.from({ length: TRUNKS }, () => crypto.randomUUID());
    const agentIds = Array.from({ length: AGENTS }, () => crypto.randomUUID());
    await db.transaction().execute(async (trx) => {
      for (const [i, id] of trunkIds.entries()) {
        await trx
          .insertInto('sip_credentials')
          .values({
            id,
            org_id: orgId,
            server: `10.${(i >> 8) & 255}.${i & 255}.1`,
            transport: 'udp',
            domain: null,
            auth_user: null,
            auth_password_enc: null,
            description: null,
            cps_limit: null,
            cps_key: null,
            allowed_addresses: '[]',
            source: 'manual',
            provider_id: null,
            created_time: time,
            last_update_time: time,
          })
          .execute();
      }
      for (const id of agentIds) {
        await trx
          .insertInto('agents')
          .values({
            id,
            org_id: orgId,
            name: 'agent',
            description: null,
            is_enabled: 1,
            config: '{}',
            additional_data: '{}',
            sip_uri: 'sip:agent@127.0.0.1:5070',
            outbound_phone_number_id: null,
            created_time: time,
            last_update_time: time,
          })
          .execute();
      }
    });
    const numbers: string[] = [];
    const CHUNK = 500;
    await db.transaction().execute(async (trx) => {
      for (let start = 0; start < count; start += CHUNK) {
        const rows = [];
        for (let i = start; i < Math.min(start + CHUNK, count); i++) {
          const phone = `+1${String(2000000000 + i)}`;
          numbers.push(phone);
          rows.push({
            id: crypto.randomUUID(),
            org_id: orgId,
            phone_number: phone,
            credentials_id: trunkIds[i % TRUNKS],
            display_name: null,
            description: null,
            registration: 0,
            incoming_calls_agent_id: i % 2 === 0 ? agentIds[i % AGENTS] : null,
            reg_state: 'Disabled',
            reg_error_description: null,
            reg_sip_response_message: null,
            reg_last_updated: time,
            reg_expires_at: null,
            created_time: time,
            last_update_time: time,
          });
        }
        await trx.insertInto('phone_numbers').values(rows).execute();
      }
    });

    const before = heapUsed();
    const index = new RoutingIndex(db);
    const started = performance.now();
    await index.start(new LocalChangeFeed());
    const loadSeconds = (performance.now() - started) / 1000;
    const bytesPerNumber = (heapUsed() - before) / index.size;

    const samples = new Float64Array(LOOKUPS);
    for (let i = 0; i < LOOKUPS; i++) {
      const dialled = numbers[(i * 7919) % numbers.length];
      const source = `10.${((i % TRUNKS) >> 8) & 255}.${(i % TRUNKS) & 255}.1`;
      const t0 = process.hrtime.bigint();
      decideInbound(index.lookup(dialled), source, null);
      samples[i] = Number(process.hrtime.bigint() - t0) / 1000;
    }
    samples.sort();
    index.stop();
    return {
      numbers: index.size,
      loadSeconds,
      bytesPerNumber,
      decisionP50Micros: samples[Math.floor(LOOKUPS * 0.5)],
      decisionP99Micros: samples[Math.floor(LOOKUPS * 0.99)],
    };
  } finally {
    await handle.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const figures = await benchRoutingIndex();
  process.stdout.write(
    `| numbers | load time | memory per number | decision p50 | decision p99 |\n|---:|---:|---:|---:|---:|\n` +
      `| ${figures.numbers} | ${figures.loadSeconds.toFixed(2)} s | ${Math.round(figures.bytesPerNumber)} B (goal < 300) | ` +
      `${figures.decisionP50Micros.toFixed(2)} µs | ${figures.decisionP99Micros.toFixed(2)} µs (goal < 1000) |\n`,
  );
}
