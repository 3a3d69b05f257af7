import type net from 'node:net';

/**
 * The inbound routing decision of CONTRACT 5, as one pure function over what the routing index
 * holds. The SIP edge, the tests and the benchmark all call this.
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
  /** Who may send calls for this trunk: the configured addresses, else the server's. */
  allowed: net.BlockList;
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
  | { outcome: 'forbidden'; status: 403; reason: 'Forbidden'; number: NumberEntry }
  | { outcome: 'unavailable'; status: 480; reason: 'Temporarily Unavailable'; number: NumberEntry; why: string }
  | { outcome: 'route'; number: NumberEntry; agent: AgentEntry; target: string };

const NOT_FOUND: InboundDecision = { outcome: 'not_found', status: 404, reason: 'Not Found' };

function allows(credentials: CredentialsEntry, source: string, family: 'ipv4' | 'ipv6'): boolean {
  return credentials.allowed.check(source, family);
}

/**
 * - no record for the number: 404;
 * - a record exists, but the source is allowed by none of their credentials: 403;
 * - no inbound agent, the agent is disabled, or it has nowhere to go: 480;
 * - otherwise: route to the agent's sipUri, else the default runtime.
 *
 * When several records share the number (other organizations or other credentials), only one
 * can hold the inbound link (CONTRACT 3.4); the others can only ever answer 480.
 */
export function decideInbound(
  candidates: readonly NumberEntry[] | NumberEntry | undefined,
  source: string,
  defaultRuntimeUri: string | null,
): InboundDecision {
  if (candidates === undefined) return NOT_FOUND;
  const family = source.includes(':') ? 'ipv6' : 'ipv4';
  const list = Array.isArray(candidates) ? candidates : [candidates as NumberEntry];
  let allowedWithoutAgent: NumberEntry | null = null;
  for (const number of list) {
    if (!allows(number.credentials, source, family)) continue;
    if (number.agent === null) {
      allowedWithoutAgent ??= number;
      continue;
    }
    if (!number.agent.isEnabled) {
      return { outcome: 'unavailable', status: 480, reason: 'Temporarily Unavailable', number, why: 'agent disabled' };
    }
    const target = number.agent.sipUri ?? defaultRuntimeUri;
    if (target === null) {
      return { outcome: 'unavailable', status: 480, reason: 'Temporarily Unavailable', number, why: 'no agent runtime' };
    }
    return { outcome: 'route', number, agent: number.agent, target };
  }
  if (allowedWithoutAgent) {
    return { outcome: 'unavailable', status: 480, reason: 'Temporarily Unavailable', number: allowedWithoutAgent, why: 'no inbound agent' };
  }
  return { outcome: 'forbidden', status: 403, reason: 'Forbidden', number: list[0]! };
}
