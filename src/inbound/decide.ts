import type { AddressSet } from '../common/addresses.ts';
import type { TrunkMediaSettings } from '../media/media-policy.ts';

/**
 * The inbound routing decision of docs/sip-edge.md, as one pure function over what the routing
 * index holds. The SIP edge, the tests and the benchmark all call this.
 */

export interface AgentEntry {
  id: string;
  orgId: string;
  isEnabled: boolean;
  sipUri: string | null;
}

export interface CredentialsEntry {
  id: string;
  orgId: string;
  /** Who may send calls for this trunk, as written: the configured addresses, else the server's. */
  sources: string[];
  /** The same, for matching. */
  allowed: AddressSet;
  media: TrunkMediaSettings;
}

/** A number record. Its organization is its credentials' (kept once there, not per number). */
export interface NumberEntry {
  id: string;
  /** The normalized number, packed (see numberKey). */
  key: number;
  credentials: CredentialsEntry;
  agent: AgentEntry | null;
}

export type InboundDecision =
  | { outcome: 'not_found'; status: 404; reason: 'Not Found' }
  | {
      outcome: 'forbidden';
      status: 403;
      reason: 'Forbidden';
      number: NumberEntry;
      /** Set when the linked record lost to another organization's record that matches the source more closely. */
      capture?: { linked: NumberEntry; closer: NumberEntry };
    }
  | { outcome: 'unavailable'; status: 480; reason: 'Temporarily Unavailable'; number: NumberEntry; why: string }
  | { outcome: 'route'; number: NumberEntry; agent: AgentEntry; target: string };

const NOT_FOUND: InboundDecision = { outcome: 'not_found', status: 404, reason: 'Not Found' };

/**
 * - no record for the number: 404;
 * - a record exists, but the source is allowed by none of their credentials: 403;
 * - the linked record's credentials match the source less closely (a longer matching prefix)
 *   than another organization's record of the same number: 403, so an organization cannot
 *   capture a number's calls with a broad allowedAddresses;
 * - no inbound agent, the agent is disabled, or it has nowhere to go: 480;
 * - a `sips:` Request-URI (`secure`) asks for TLS on every hop, so only a `sips:` target may
 *   take it (RFC 3261 §16.5, RFC 5630 §3.1.3): any other target leaves none, 480;
 * - otherwise: route to the agent's sipUri, else the default runtime.
 *
 * When several records share the number (other organizations or other credentials), only one
 * can hold the inbound link (docs/api.md, Links); the others can only ever
 * answer 480.
 */
export function decideInbound(
  candidates: readonly NumberEntry[] | NumberEntry | undefined,
  source: string,
  defaultRuntimeUri: string | null,
  secure = false,
): InboundDecision {
  if (candidates === undefined) return NOT_FOUND;
  const list: readonly NumberEntry[] = candidates instanceof Array ? candidates : [candidates];
  let linked: NumberEntry | null = null;
  let linkedMatch = -1;
  let allowedWithoutAgent: NumberEntry | null = null;
  for (const number of list) {
    const match = number.credentials.allowed.longestMatch(source);
    if (match < 0) continue;
    if (number.agent === null) allowedWithoutAgent ??= number;
    else if (linked === null) {
      linked = number;
      linkedMatch = match;
    }
  }
  if (linked === null || linked.agent === null) {
    if (allowedWithoutAgent) {
      return { outcome: 'unavailable', status: 480, reason: 'Temporarily Unavailable', number: allowedWithoutAgent, why: 'no inbound agent' };
    }
    return { outcome: 'forbidden', status: 403, reason: 'Forbidden', number: list[0] };
  }
  for (const other of list) {
    if (other.credentials.orgId !== linked.credentials.orgId && other.credentials.allowed.longestMatch(source) > linkedMatch) {
      return { outcome: 'forbidden', status: 403, reason: 'Forbidden', number: linked, capture: { linked, closer: other } };
    }
  }
  const agent = linked.agent;
  if (!agent.isEnabled) return { outcome: 'unavailable', status: 480, reason: 'Temporarily Unavailable', number: linked, why: 'agent disabled' };
  const target = agent.sipUri ?? defaultRuntimeUri;
  if (target === null) return { outcome: 'unavailable', status: 480, reason: 'Temporarily Unavailable', number: linked, why: 'no agent runtime' };
  if (secure && !/^sips:/i.test(target)) {
    return { outcome: 'unavailable', status: 480, reason: 'Temporarily Unavailable', number: linked, why: 'sips: call, agent not sips:' };
  }
  return { outcome: 'route', number: linked, agent, target };
}
