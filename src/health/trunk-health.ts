/**
 * What a trunk's health is (docs/sip-edge.md, "Trunk health"): the rules that turn OPTIONS
 * probes into a verdict per target and per trunk, and the one place outbound calls ask which of
 * a trunk's targets to skip.
 */
import type { Destination } from '../sip/transport.ts';
import type { TransactionResult } from '../sip/transact.ts';
import type { TargetHealth, TrunkHealth } from './schemas.ts';

export type TargetState = TargetHealth['state'];

export const UNKNOWN_HEALTH: TrunkHealth = { state: 'unknown', lastCheckedTime: null, lastResponse: null, targets: [] };

/**
 * A target that answers OPTIONS at all is reachable and speaking SIP, whatever it thinks of the
 * request (403, 404 and 405 are common from carriers that only take calls): up. Silence, a
 * transport error, 408 and the server errors that RFC 3263 §4.3 fails over on (500, 503, 504)
 * and their kin (5xx) mean it cannot take a call now: down. 6xx is a definite answer: up.
 */
export function probeVerdict(result: TransactionResult, timeoutSeconds: number): { state: TargetState; lastResponse: string } {
  if ('timeout' in result) return { state: 'down', lastResponse: `no response within ${timeoutSeconds} s` };
  if ('error' in result) return { state: 'down', lastResponse: `transport error: ${result.error.message}` };
  const { status, reason } = result.response;
  const down = status === 408 || (status >= 500 && status < 600);
  return { state: down ? 'down' : 'up', lastResponse: `${status} ${reason}` };
}

/** The trunk's verdict from its targets' (none resolved: down, with `why`). */
export function trunkHealth(targets: TargetHealth[], checkedTime: string, why: string | null = null): TrunkHealth {
  const best = targets.find((t) => t.state === 'up') ?? targets[0];
  return {
    state: best?.state ?? 'down',
    lastCheckedTime: checkedTime,
    lastResponse: best?.lastResponse ?? why ?? 'no target to probe',
    targets,
  };
}

const keyOf = (destination: Destination) => `${destination.transport}|${destination.host.toLowerCase()}|${destination.port}`;
const targetKey = (target: TargetHealth) => keyOf({ transport: target.transport, host: target.address, port: target.port });

/** Targets whose last probe found them down, as this instance saw it; a call skips them while another target is not down. */
export class DownTargets {
  /** Target → how many trunks' last probes found it down (two trunks may share a carrier's address). */
  readonly #down = new Map<string, number>();

  /** Takes in one trunk's probe results in place of its previous ones (`before`). */
  update(before: readonly TargetHealth[], after: readonly TargetHealth[]): void {
    for (const target of before.filter((t) => t.state === 'down')) {
      const key = targetKey(target);
      const count = (this.#down.get(key) ?? 1) - 1;
      if (count > 0) this.#down.set(key, count);
      else this.#down.delete(key);
    }
    for (const target of after.filter((t) => t.state === 'down')) {
      const key = targetKey(target);
      this.#down.set(key, (this.#down.get(key) ?? 0) + 1);
    }
  }

  skipDown<T extends Destination>(destinations: readonly T[]): T[] {
    const usable = destinations.filter((d) => !this.#down.has(keyOf(d)));
    return usable.length > 0 ? usable : [...destinations];
  }
}
