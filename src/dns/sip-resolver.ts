/**
 * Locating a trunk's SIP server (RFC 3263 §4): from the credentials' `server` and transport to
 * an ordered list of addresses to try. A host with a port is looked up as A/AAAA only; a host
 * without one goes NAPTR → SRV → A/AAAA: the NAPTR records for the transport (SIP+D2U,
 * SIP+D2T, SIPS+D2T) name the SRV records to use, or, without NAPTR, `_sip._udp`, `_sip._tcp`
 * or `_sips._tcp` of the host are asked directly; SRV targets come in priority order, weighted at
 * random within a priority (RFC 2782); without SRV, the host's addresses on the default port.
 * Results are cached for the shortest TTL of the address records (Node's resolver does not show
 * NAPTR and SRV TTLs), at most MAX_CACHE_SECONDS.
 */
import dns from 'node:dns';
import net from 'node:net';
import type { TransportProtocol as SipTransportName } from '../sip/transport.ts';

/** One place to send to: `host` is what the certificate must name (TLS), `address` where to connect. */
export interface ResolvedTarget {
  transport: SipTransportName;
  address: string;
  port: number;
  host: string;
}

export class ResolutionError extends Error {}

const NAPTR_SERVICE: Record<SipTransportName, string> = { udp: 'SIP+D2U', tcp: 'SIP+D2T', tls: 'SIPS+D2T' };
const SRV_PREFIX: Record<SipTransportName, string> = { udp: '_sip._udp.', tcp: '_sip._tcp.', tls: '_sips._tcp.' };
const DEFAULT_PORT: Record<SipTransportName, number> = { udp: 5060, tcp: 5060, tls: 5061 };
const MAX_CACHE_SECONDS = 300;
const MAX_CACHED_NAMES = 10_000;
/** Answers that say "no such record" rather than "the DNS failed". */
const NO_RECORDS = new Set<string>([dns.NODATA, dns.NOTFOUND]);

interface CacheEntry {
  targets: ResolvedTarget[];
  expiresAt: number;
}

export interface SipResolverOptions {
  /** `ip` or `ip:port` of the DNS servers to ask (DIALPLANE_DNS_SERVERS); the system's when empty. */
  servers?: readonly string[];
  /** Milliseconds before a query is given up (per try). */
  timeoutMs?: number;
  random?: () => number;
  now?: () => number;
}

/** RFC 2782's selection: within one priority, each record in turn drawn with probability weight/sum. */
export function orderSrv(records: readonly dns.SrvRecord[], random: () => number = Math.random): dns.SrvRecord[] {
  const byPriority = new Map<number, dns.SrvRecord[]>();
  for (const record of records) byPriority.set(record.priority, [...(byPriority.get(record.priority) ?? []), record]);
  const ordered: dns.SrvRecord[] = [];
  for (const priority of [...byPriority.keys()].sort((a, b) => a - b)) {
    // Zero weights first, as RFC 2782 asks, so they get a small chance when others have weight.
    const left = [...byPriority.get(priority)!].sort((a, b) => a.weight - b.weight);
    while (left.length > 0) {
      const sum = left.reduce((total, record) => total + record.weight, 0);
      const draw = random() * (sum + 1);
      let running = 0;
      let chosen = left.length - 1;
      for (let i = 0; i < left.length; i++) {
        running += left[i].weight;
        if (running >= draw) {
          chosen = i;
          break;
        }
      }
      ordered.push(...left.splice(chosen, 1));
    }
  }
  return ordered;
}

export class SipResolver {
  readonly #resolver: dns.promises.Resolver;
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #cache = new Map<string, CacheEntry>();

  constructor(options: SipResolverOptions = {}) {
    this.#resolver = new dns.promises.Resolver({ timeout: options.timeoutMs ?? 2000, tries: 2 });
    if (options.servers !== undefined && options.servers.length > 0) this.#resolver.setServers([...options.servers]);
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
  }

  /** Where to send for `host` (`port` null: not given) over `transport`, best first. Rejects with a ResolutionError when nothing resolves. */
  async resolve(host: string, port: number | null, transport: SipTransportName): Promise<ResolvedTarget[]> {
    const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
    if (net.isIP(bare) !== 0) return [{ transport, address: bare, port: port ?? DEFAULT_PORT[transport], host: bare }];
    const key = `${transport}|${bare.toLowerCase()}|${port ?? ''}`;
    const cached = this.#cache.get(key);
    if (cached !== undefined && cached.expiresAt > this.#now()) return cached.targets;
    const { targets, ttl } = await this.#lookUp(bare, port, transport);
    if (targets.length === 0) throw new ResolutionError(`${bare} does not resolve to any address for SIP over ${transport}`);
    this.#cache.delete(key);
    this.#cache.set(key, { targets, expiresAt: this.#now() + Math.min(ttl, MAX_CACHE_SECONDS) * 1000 });
    // Names are tenants' choice: the oldest answers go first past the bound.
    if (this.#cache.size > MAX_CACHED_NAMES) this.#cache.delete(this.#cache.keys().next().value!);
    return targets;
  }

  async #lookUp(host: string, port: number | null, transport: SipTransportName): Promise<{ targets: ResolvedTarget[]; ttl: number }> {
    if (port !== null) return this.#addressesOf(host, port, transport, host);
    const srvNames = await this.#naptr(host, transport);
    const srv: dns.SrvRecord[] = [];
    for (const name of srvNames.length > 0 ? srvNames : [`${SRV_PREFIX[transport]}${host}`]) {
      srv.push(...orderSrv(await this.#query(() => this.#resolver.resolveSrv(name)), this.#random));
    }
    if (srv.length === 0) return this.#addressesOf(host, DEFAULT_PORT[transport], transport, host);
    const targets: ResolvedTarget[] = [];
    let ttl = MAX_CACHE_SECONDS;
    for (const record of srv) {
      const found = await this.#addressesOf(record.name, record.port, transport, host);
      targets.push(...found.targets);
      ttl = Math.min(ttl, found.ttl);
    }
    return { targets, ttl };
  }

  /** The SRV names the host's NAPTR records give for the transport, in order and preference. */
  async #naptr(host: string, transport: SipTransportName): Promise<string[]> {
    const records = await this.#query(() => this.#resolver.resolveNaptr(host));
    return records
      .filter(
        (record) => record.flags.toLowerCase() === 's' && record.service.toUpperCase() === NAPTR_SERVICE[transport] && record.replacement !== '',
      )
      .sort((a, b) => a.order - b.order || a.preference - b.preference)
      .map((record) => record.replacement);
  }

  async #addressesOf(name: string, port: number, transport: SipTransportName, host: string): Promise<{ targets: ResolvedTarget[]; ttl: number }> {
    const [v4, v6] = await Promise.all([
      this.#query(() => this.#resolver.resolve4(name, { ttl: true })),
      this.#query(() => this.#resolver.resolve6(name, { ttl: true })),
    ]);
    const records = [...v4, ...v6];
    const ttl = records.reduce((shortest, record) => Math.min(shortest, record.ttl), MAX_CACHE_SECONDS);
    return { targets: records.map((record) => ({ transport, address: record.address, port, host })), ttl };
  }

  /** A query whose "no such record" is an empty answer; other failures (a dead DNS server) are errors. */
  async #query<T>(run: () => Promise<T[]>): Promise<T[]> {
    try {
      return await run();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== undefined && NO_RECORDS.has(code)) return [];
      throw new ResolutionError(`DNS lookup failed: ${(error as Error).message}`);
    }
  }
}
