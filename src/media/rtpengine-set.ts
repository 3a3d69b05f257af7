import type { RtpengineAddress } from '../config.ts';
import { formatAddress, type NgAddress } from './ng-client.ts';

/** How long an rtpengine that failed to answer is passed over for new calls. */
const DEAD_FOR_MS = 10_000;

/**
 * The configured rtpengines as new calls are spread over them: in weighted random order, those
 * that recently failed to answer last (they are still tried when every other one fails too).
 */
export class RtpengineSet {
  readonly #entries: RtpengineAddress[];
  readonly #deadUntil = new Map<string, number>();
  readonly #random: () => number;
  readonly #now: () => number;

  constructor(addresses: readonly RtpengineAddress[], options: { random?: () => number; now?: () => number } = {}) {
    this.#entries = [...addresses];
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
  }

  /** The order to try for a new call: live ones by weighted lot, then the dead ones. */
  candidates(): NgAddress[] {
    const now = this.#now();
    const live = this.#entries.filter((entry) => (this.#deadUntil.get(formatAddress(entry)) ?? 0) <= now);
    const dead = this.#entries.filter((entry) => !live.includes(entry));
    const ordered: NgAddress[] = [];
    while (live.length > 0) {
      const total = live.reduce((sum, entry) => sum + entry.weight, 0);
      let lot = this.#random() * total;
      let index = 0;
      while (index < live.length - 1 && lot >= live[index].weight) lot -= live[index++].weight;
      const [chosen] = live.splice(index, 1);
      ordered.push({ host: chosen.host, port: chosen.port });
    }
    return [...ordered, ...dead.map(({ host, port }) => ({ host, port }))];
  }

  /** It did not answer: pass it over for a while. */
  failed(address: NgAddress): void {
    this.#deadUntil.set(formatAddress(address), this.#now() + DEAD_FOR_MS);
  }

  answered(address: NgAddress): void {
    this.#deadUntil.delete(formatAddress(address));
  }
}

/** A relay named in a route (`host:port` or `[v6]:port`) as an ng address; null when it is not one. */
export function parseRelay(relay: string): NgAddress | null {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(relay);
  if (match === null) return null;
  const port = Number(match[3]);
  return port >= 1 && port <= 65535 ? { host: match[1] ?? match[2], port } : null;
}
