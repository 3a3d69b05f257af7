/**
 * Targets that failed lately (a transport error, a timeout, a 503), skipped for a while: a call
 * tries them after the others (RFC 3263 §4.3 leaves how long to the client;
 * DIALPLANE_SIP_FAILED_TARGET_SKIP_SECONDS).
 */
import type { Destination } from '../sip/transport.ts';

/** Past this many, the oldest failures are forgotten: the map stays bounded. */
const MAX_REMEMBERED = 10_000;

const keyOf = (destination: Destination) => `${destination.transport}|${destination.host.toLowerCase()}|${destination.port}`;

export class FailedTargets {
  readonly #skipMs: number;
  readonly #now: () => number;
  /** Until when each failed target is skipped. */
  readonly #until = new Map<string, number>();

  constructor(skipSeconds: number, now: () => number = Date.now) {
    this.#skipMs = skipSeconds * 1000;
    this.#now = now;
  }

  failed(destination: Destination): void {
    const key = keyOf(destination);
    this.#until.delete(key);
    this.#until.set(key, this.#now() + this.#skipMs);
    if (this.#until.size > MAX_REMEMBERED) this.#until.delete(this.#until.keys().next().value!);
  }

  /** The destinations in their order, those skipped moved to the end (still tried when nothing else is left). */
  order<T extends Destination>(destinations: readonly T[]): T[] {
    const now = this.#now();
    const skipped = (destination: T) => (this.#until.get(keyOf(destination)) ?? 0) > now;
    return [...destinations.filter((d) => !skipped(d)), ...destinations.filter(skipped)];
  }
}
