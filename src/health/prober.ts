/**
 * Probes trunks with OPTIONS (docs/sip-edge.md, "Trunk health"). Every instance probes every
 * credentials with `healthCheck`: each instance routes by what it can reach itself. Each round
 * resolves the server (RFC 3263) and probes each address it finds; the first round comes soon
 * after the credentials appear or change, the next ones once per interval. A round's result goes
 * to the in-memory DownTargets (outbound calls skip what is down), to the database (the API
 * shows it, whichever instance answers) and to the observer (metrics).
 */
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { ChangeFeed } from '../db/changes.ts';
import type { Database } from '../db/schema.ts';
import { parseServerAddress, type SipTransportName } from '../credentials/server-address.ts';
import { createRequest, SipHeaders, type SipRequest } from '../sip/message.ts';
import { transact } from '../sip/transact.ts';
import type { TransactionLayer } from '../sip/transaction.ts';
import { BRANCH_MAGIC_COOKIE, createTag } from '../sip/transaction-base.ts';
import type { Destination } from '../sip/transport.ts';
import { formatHost, formatUri } from '../sip/uri.ts';
import { deleteTrunkHealth, writeTrunkHealth } from './health-store.ts';
import type { TargetHealth, TrunkHealth } from './schemas.ts';
import { probeVerdict, trunkHealth, type DownTargets } from './trunk-health.ts';

/** What the prober needs from the edge. */
export interface ProbeAccess {
  transactions(): TransactionLayer | null;
  /** Public host and port written into Via and Contact for a request over `transport`. */
  address(transport: Destination['transport']): { host: string; port: number } | null;
  /** Every address of a trunk's server (RFC 3263), in the resolver's order; rejects when the name does not resolve. */
  resolve(host: string, port: number | null, transport: SipTransportName): Promise<Destination[]>;
}

/** Told of every round's result, and of null when a trunk stops being probed (metrics.ts). */
export interface TrunkHealthObserver {
  trunkHealth(credentialsId: string, health: TrunkHealth | null): void;
}

export interface TrunkProberOptions {
  db: Kysely<Database>;
  changes: ChangeFeed;
  access: ProbeAccess;
  down: DownTargets;
  intervalMs: number;
  /** How long a probe waits for a final response before the target counts as down. */
  timeoutMs: number;
  observer?: TrunkHealthObserver;
  onError: (error: unknown) => void;
  /** Full re-read of the credentials to probe, besides the change feed (default 5 minutes). */
  resyncMs?: number;
  random?: () => number;
}

/** A server with more addresses than this has its first ones probed (the ones calls try first). */
const MAX_TARGETS = 16;

interface Trunk {
  id: string;
  server: string;
  transport: SipTransportName;
  timer: NodeJS.Timeout | null;
  probing: Promise<void> | null;
  /** The last round's result, whose down targets are in DownTargets. */
  health: TrunkHealth | null;
  removed: boolean;
}

type ProbedRow = { id: string; server: string; transport: string };

export class TrunkProber {
  readonly #options: TrunkProberOptions;
  readonly #random: () => number;
  readonly #trunks = new Map<string, Trunk>();
  #unsubscribe: (() => void) | null = null;
  #resyncTimer: NodeJS.Timeout | null = null;
  /** Reads of the database after changes, one at a time and in order. */
  #reads: Promise<void> = Promise.resolve();
  #closing = false;

  constructor(options: TrunkProberOptions) {
    this.#options = options;
    this.#random = options.random ?? Math.random;
  }

  async start(): Promise<void> {
    this.#unsubscribe = this.#options.changes.subscribe((change) => {
      if (change.kind === 'credentials') this.#serialized(() => this.#refresh(change.id));
      else if (change.kind === 'reload') this.#serialized(() => this.#resync());
    });
    await this.#resync();
    this.#resyncTimer = setInterval(() => this.#serialized(() => this.#resync()), this.#options.resyncMs ?? 5 * 60_000);
    this.#resyncTimer.unref();
  }

  async stop(): Promise<void> {
    this.#closing = true;
    this.#unsubscribe?.();
    if (this.#resyncTimer) clearInterval(this.#resyncTimer);
    await this.#reads;
    for (const trunk of this.#trunks.values()) {
      trunk.removed = true;
      if (trunk.timer) clearTimeout(trunk.timer);
    }
    await Promise.all([...this.#trunks.values()].flatMap((trunk) => trunk.probing ?? []));
  }

  #serialized(read: () => Promise<void>): void {
    this.#reads = this.#reads.then(read).catch((error: unknown) => this.#options.onError(error));
  }

  #query() {
    return this.#options.db.selectFrom('sip_credentials').select(['id', 'server', 'transport']).where('health_check', '=', 1);
  }

  async #resync(): Promise<void> {
    const rows = await this.#query().execute();
    const wanted = new Set(rows.map((row) => row.id));
    for (const id of [...this.#trunks.keys()]) if (!wanted.has(id)) await this.#remove(id);
    for (const row of rows) this.#keep(row);
  }

  async #refresh(id: string): Promise<void> {
    const row = await this.#query().where('id', '=', id).executeTakeFirst();
    if (row) this.#keep(row);
    else await this.#remove(id);
  }

  /** Starts probing a trunk, or starts over when what is probed changed. */
  #keep(row: ProbedRow): void {
    if (this.#closing) return;
    const transport = (['udp', 'tcp', 'tls'].includes(row.transport) ? row.transport : 'udp') as SipTransportName;
    const existing = this.#trunks.get(row.id);
    if (existing && existing.server === row.server && existing.transport === transport) return;
    if (existing) this.#forget(existing);
    const trunk: Trunk = { id: row.id, server: row.server, transport, timer: null, probing: null, health: null, removed: false };
    this.#trunks.set(row.id, trunk);
    // Soon, but not every trunk at the same instant after a restart.
    this.#schedule(trunk, this.#random() * Math.min(1000, this.#options.intervalMs));
  }

  /** Stops probing a trunk whose credentials are gone or no longer ask for it; its stored result goes too. */
  async #remove(id: string): Promise<void> {
    const trunk = this.#trunks.get(id);
    if (!trunk) return;
    this.#forget(trunk);
    this.#trunks.delete(id);
    await trunk.probing;
    await deleteTrunkHealth(this.#options.db, id);
    this.#options.observer?.trunkHealth(id, null);
  }

  #forget(trunk: Trunk): void {
    trunk.removed = true;
    if (trunk.timer) clearTimeout(trunk.timer);
    this.#options.down.update(trunk.health?.targets ?? [], []);
    trunk.health = null;
  }

  #schedule(trunk: Trunk, delayMs: number): void {
    trunk.timer = setTimeout(() => {
      trunk.timer = null;
      trunk.probing = this.#round(trunk)
        .catch((error: unknown) => this.#options.onError(error))
        .finally(() => {
          trunk.probing = null;
          // ±10 %: trunks created together drift apart instead of probing in bursts.
          if (!trunk.removed) this.#schedule(trunk, this.#options.intervalMs * (0.9 + 0.2 * this.#random()));
        });
    }, delayMs);
    trunk.timer.unref();
  }

  async #round(trunk: Trunk): Promise<void> {
    const health = await this.#probe(trunk);
    if (trunk.removed) return;
    this.#options.down.update(trunk.health?.targets ?? [], health.targets);
    trunk.health = health;
    await writeTrunkHealth(this.#options.db, trunk.id, health);
    this.#options.observer?.trunkHealth(trunk.id, health);
  }

  async #probe(trunk: Trunk): Promise<TrunkHealth> {
    const checkedTime = new Date().toISOString();
    const server = parseServerAddress(trunk.server, trunk.transport);
    if (server === null) return trunkHealth([], checkedTime, `the server "${trunk.server}" is not host or host:port`);
    let destinations: Destination[];
    try {
      destinations = await this.#options.access.resolve(server.host, server.portGiven ? server.port : null, trunk.transport);
    } catch (error) {
      return trunkHealth([], checkedTime, `${server.host} was not found in DNS: ${(error as Error).message}`);
    }
    const targets = await Promise.all(destinations.slice(0, MAX_TARGETS).map((destination) => this.#probeTarget(destination)));
    return trunkHealth(targets, new Date().toISOString());
  }

  async #probeTarget(destination: Destination): Promise<TargetHealth> {
    const { timeoutMs } = this.#options;
    const layer = this.#options.access.transactions();
    const address = this.#options.access.address(destination.transport);
    const verdict =
      layer === null || address === null
        ? { state: 'down' as const, lastResponse: 'the SIP edge is not running' }
        : probeVerdict(await transact(layer, optionsRequest(destination, address), destination, timeoutMs), timeoutMs / 1000);
    return {
      transport: destination.transport,
      host: destination.serverName ?? destination.host,
      address: destination.host,
      port: destination.port,
      ...verdict,
      lastCheckedTime: new Date().toISOString(),
    };
  }
}

/** An out-of-dialog OPTIONS to one address of a trunk (RFC 3261 §11), addressed to the trunk's name. */
function optionsRequest(destination: Destination, address: { host: string; port: number }): SipRequest {
  const transport = destination.transport;
  const uri = formatUri({
    scheme: 'sip',
    user: null,
    password: null,
    host: destination.serverName ?? destination.host,
    port: destination.port,
    params: new Map(transport === 'udp' ? [] : [['transport', transport]]),
    headers: [],
  });
  const local = `${formatHost(address.host)}:${address.port}`;
  const headers = new SipHeaders();
  headers.set('Via', `SIP/2.0/${transport.toUpperCase()} ${local};branch=${BRANCH_MAGIC_COOKIE}${randomBytes(10).toString('hex')};rport`);
  headers.set('Max-Forwards', '70');
  headers.set('From', `<sip:dialplane@${local}>;tag=${createTag()}`);
  headers.set('To', `<${uri}>`);
  headers.set('Call-ID', `${randomBytes(12).toString('hex')}@${formatHost(address.host)}`);
  headers.set('CSeq', '1 OPTIONS');
  headers.set('Accept', 'application/sdp');
  headers.set('User-Agent', 'dialplane');
  return createRequest({ method: 'OPTIONS', uri, headers });
}
