import net from 'node:net';
import type { TrunkMediaSettings } from '../media/media-policy.ts';
import { parseServerAddress, type SipTransportName } from '../credentials/server-address.ts';
import { formatHost, parseSipUri } from '../sip/uri.ts';

/**
 * The outbound decision of docs/outbound.md as a pure function of what the one database lookup found
 * (agent → outbound number → credentials) and the dialled user part.
 */

/** The joined row: agent, its outbound number (null columns without one) and that number's credentials. */
export interface OutboundRow {
  agentId: string;
  orgId: string;
  isEnabled: boolean;
  numberId: string | null;
  phoneNumber: string | null;
  displayName: string | null;
  credentialsId: string | null;
  server: string | null;
  transport: string | null;
  domain: string | null;
  authUser: string | null;
  authPasswordEnc: string | null;
  cpsLimit: number | null;
  cpsKey: string | null;
  media: TrunkMediaSettings;
}

export interface OutboundRoute {
  outcome: 'route';
  row: OutboundRow & { numberId: string; phoneNumber: string; credentialsId: string };
  /** Request-URI at the credentials' server and transport. */
  target: string;
  /** Where the target is located (RFC 3263): the server's host, its port when given, the transport. */
  server: { host: string; port: number | null; transport: SipTransportName };
  /** The caller ID: the number at the credentials' domain (else the server host). */
  callerUri: string;
  displayName: string | null;
  /** Digest username: authUser, else the number's digits. */
  authUser: string;
}

export type OutboundRejection =
  | {
      outcome: 'forbidden';
      status: 403;
      reason: 'Forbidden: not an agent runtime' | 'Unknown Agent' | 'Agent Disabled' | 'No Outbound Number';
      row: OutboundRow | null;
    }
  | { outcome: 'rejected'; status: 484; reason: 'Address Incomplete'; row: OutboundRow }
  | { outcome: 'failed'; status: 503; reason: 'Service Unavailable'; row: OutboundRow };

export type OutboundDecision = OutboundRoute | OutboundRejection;

export const NOT_A_RUNTIME: OutboundRejection = { outcome: 'forbidden', status: 403, reason: 'Forbidden: not an agent runtime', row: null };
export const UNKNOWN_AGENT: OutboundRejection = { outcome: 'forbidden', status: 403, reason: 'Unknown Agent', row: null };

/** Characters that may stand in a SIP URI user part unescaped (RFC 3261 §25.1 user). */
const SAFE_USER = /^[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+$/;

export function decideOutbound(row: OutboundRow | undefined, dialledUser: string | null): OutboundDecision {
  if (row === undefined) return UNKNOWN_AGENT;
  if (!row.isEnabled) return { outcome: 'forbidden', status: 403, reason: 'Agent Disabled', row };
  if (row.numberId === null || row.phoneNumber === null || row.credentialsId === null || row.server === null) {
    return { outcome: 'forbidden', status: 403, reason: 'No Outbound Number', row };
  }
  if (dialledUser === null || dialledUser === '' || !SAFE_USER.test(dialledUser)) {
    return { outcome: 'rejected', status: 484, reason: 'Address Incomplete', row };
  }
  const transport = (row.transport ?? 'udp') as SipTransportName;
  const server = parseServerAddress(row.server, transport);
  if (server === null) return { outcome: 'failed', status: 503, reason: 'Service Unavailable', row };
  const transportParam = transport === 'udp' ? '' : `;transport=${transport}`;
  // A name without a port is left for NAPTR and SRV to locate, so the URI names no port (RFC 3263 §4.2).
  const located = !server.portGiven && net.isIP(server.host) === 0;
  const target = `sip:${dialledUser}@${formatHost(server.host)}${located ? '' : `:${server.port}`}${transportParam}`;
  // A domain that cannot stand in a SIP URI (the API accepts any text) falls back to the server host.
  let callerUri = `sip:${row.phoneNumber}@${row.domain ?? formatHost(server.host)}`;
  if (parseSipUri(callerUri) === null) callerUri = `sip:${row.phoneNumber}@${formatHost(server.host)}`;
  return {
    outcome: 'route',
    row: row as OutboundRoute['row'],
    target,
    server: { host: server.host, port: located ? null : server.port, transport },
    callerUri,
    displayName: row.displayName,
    authUser: row.authUser ?? row.phoneNumber.replace(/^\+/, ''),
  };
}
