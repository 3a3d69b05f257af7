/**
 * What a number registers, where, and as whom (docs/registration.md): the AOR
 * `sip:<authUser or the number's digits>@<domain>` (domain: the credentials' domain, else the
 * server's host), sent to the credentials' server over their transport. Numbers whose target has
 * the same key share one registration.
 */
import net from 'node:net';
import { parseServerAddress, type SipTransportName } from '../credentials/server-address.ts';
import type { Destination } from '../sip/transport.ts';
import { formatUri } from '../sip/uri.ts';

/** The columns of a number and its credentials that registration depends on. */
export interface RegistrationSource {
  numberId: string;
  orgId: string;
  phoneNumber: string;
  credentialsId: string;
  server: string;
  transport: string;
  domain: string | null;
  authUser: string | null;
  authPasswordEnc: string | null;
}

export interface RegistrationTarget {
  /** One registration per key: transport, registrar address, AOR. */
  key: string;
  /** The address-of-record, in To and From. */
  aor: string;
  /** The AOR's user part, also the user part of our Contact. */
  user: string;
  /** REGISTER's Request-URI (RFC 3261 §10.2: the registrar's domain, no user part). */
  requestUri: string;
  transport: SipTransportName;
  /** Where REGISTER goes; null with `problem` when the edge cannot send there. */
  destination: Destination | null;
  /** The server is a name without a port: NAPTR and SRV say where it is (RFC 3263). */
  located: boolean;
  problem: string | null;
  credentialsId: string;
  /** Digest username: authUser, else the AOR user. */
  username: string;
  /** Changes whenever anything the registration depends on changes (password included). */
  fingerprint: string;
}

function sipUri(user: string | null, hostPort: string): string {
  const address = parseServerAddress(hostPort, 'udp');
  const explicitPort = address !== null && /:\d+$/.test(hostPort.replace(/^\[[^\]]*\]/, ''));
  return formatUri({
    scheme: 'sip',
    user,
    password: null,
    host: address?.host ?? hostPort,
    port: explicitPort ? address.port : null,
    params: new Map(),
    headers: [],
  });
}

export function registrationTarget(source: RegistrationSource): RegistrationTarget {
  const transport = (['udp', 'tcp', 'tls'].includes(source.transport) ? source.transport : 'udp') as SipTransportName;
  const server = parseServerAddress(source.server, transport);
  const domain = source.domain ?? server?.host ?? source.server;
  const user = source.authUser ?? source.phoneNumber.replace(/^\+/, '');
  const aor = sipUri(user, domain);
  const requestUri = sipUri(null, domain);
  let destination: Destination | null = null;
  let problem: string | null = null;
  if (server === null) problem = `the credentials' server "${source.server}" is not host or host:port`;
  else destination = { transport, host: server.host, port: server.port };
  const hostPort = server === null ? source.server.toLowerCase() : `${server.host.toLowerCase()}:${server.port}`;
  return {
    located: server !== null && !server.portGiven && net.isIP(server.host) === 0,
    key: `${transport}|${hostPort}|${aor}`,
    aor,
    user,
    requestUri,
    transport,
    destination,
    problem,
    credentialsId: source.credentialsId,
    username: source.authUser ?? user,
    fingerprint: [source.credentialsId, source.server, transport, source.domain ?? '', source.authUser ?? '', source.authPasswordEnc ?? ''].join(
      '\n',
    ),
  };
}
