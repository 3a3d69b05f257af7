import net from 'node:net';

export type SipTransportName = 'udp' | 'tcp' | 'tls';

export interface ServerAddress {
  host: string;
  port: number;
  /** Whether `server` named the port; without one a name is located by NAPTR and SRV (RFC 3263). */
  portGiven: boolean;
}

const HOSTNAME = /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?$/;

/**
 * Reads a credentials' `server`: `host` or `host:port`, where host is a name, an IPv4 address or
 * a bracketed IPv6 address. The port defaults to 5060, or 5061 for TLS. Null when malformed.
 */
export function parseServerAddress(server: string, transport: SipTransportName): ServerAddress | null {
  const defaultPort = transport === 'tls' ? 5061 : 5060;
  let host: string;
  let portText: string | undefined;
  if (server.startsWith('[')) {
    const close = server.indexOf(']');
    if (close === -1) return null;
    host = server.slice(1, close);
    const rest = server.slice(close + 1);
    if (rest !== '' && !rest.startsWith(':')) return null;
    portText = rest === '' ? undefined : rest.slice(1);
    if (net.isIPv6(host) === false) return null;
  } else {
    const colon = server.indexOf(':');
    host = colon === -1 ? server : server.slice(0, colon);
    portText = colon === -1 ? undefined : server.slice(colon + 1);
    if (!net.isIPv4(host) && !HOSTNAME.test(host)) return null;
  }
  if (portText === undefined) return { host, port: defaultPort, portGiven: false };
  if (!/^[0-9]{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  return port >= 1 && port <= 65535 ? { host, port, portGiven: true } : null;
}
