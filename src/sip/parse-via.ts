/** The Via header (RFC 3261 §20.42): parsed, formatted, and the top one of a message. */
import { Char, isLws, skipLws, tokenEnd } from './lexical.ts';
import type { SipMessage } from './message.ts';
import { formatHeaderParams, parseParamsInto, type HeaderParams } from './parse-header.ts';
import { formatHost, hostKind, parsePort } from './uri.ts';

export interface Via {
  /** Protocol name and version, e.g. `SIP/2.0`. */
  protocol: string;
  /** Uppercase transport, e.g. `UDP`, `TCP`, `TLS`. */
  transport: string;
  /** sent-by host; IPv6 without brackets. */
  host: string;
  /** sent-by port, or null when absent (the transport's default applies). */
  port: number | null;
  /** `branch`, `received`, `rport` (null when sent as a flag), `maddr`, `ttl`, extensions. */
  params: HeaderParams;
}

/** Parses one Via element (`SIP / 2.0 / UDP host:port;params`), tolerating LWS as RFC 3261 allows. */
export function parseVia(value: string): Via | null {
  let pos = skipLws(value, 0);
  const nameStart = pos;
  pos = tokenEnd(value, pos);
  if (pos === nameStart) return null;
  const protocolName = value.slice(nameStart, pos);

  pos = skipLws(value, pos);
  if (value.charCodeAt(pos) !== Char.Slash) return null;
  pos = skipLws(value, pos + 1);
  const versionStart = pos;
  pos = tokenEnd(value, pos);
  if (pos === versionStart) return null;
  const protocolVersion = value.slice(versionStart, pos);

  pos = skipLws(value, pos);
  if (value.charCodeAt(pos) !== Char.Slash) return null;
  pos = skipLws(value, pos + 1);
  const transportStart = pos;
  pos = tokenEnd(value, pos);
  if (pos === transportStart) return null;
  const transport = value.slice(transportStart, pos).toUpperCase();

  const hostStart = skipLws(value, pos);
  if (hostStart === pos) return null;
  pos = hostStart;
  let host: string;
  if (value.charCodeAt(pos) === Char.OpenBracket) {
    const close = value.indexOf(']', pos);
    if (close === -1) return null;
    host = value.slice(pos + 1, close);
    if (hostKind(host) !== 'ipv6') return null;
    pos = close + 1;
  } else {
    while (pos < value.length) {
      const code = value.charCodeAt(pos);
      if (isLws(code) || code === Char.Colon || code === Char.Semicolon) break;
      pos++;
    }
    host = value.slice(hostStart, pos);
    const kind = hostKind(host);
    if (kind === null || kind === 'ipv6') return null;
  }

  let port: number | null = null;
  const afterHost = skipLws(value, pos);
  if (value.charCodeAt(afterHost) === Char.Colon) {
    const portStart = skipLws(value, afterHost + 1);
    let portEnd = portStart;
    while (portEnd < value.length && value.charCodeAt(portEnd) >= Char.Zero && value.charCodeAt(portEnd) <= Char.Nine) portEnd++;
    port = parsePort(value, portStart, portEnd);
    if (port === null) return null;
    pos = portEnd;
  }

  const params: HeaderParams = new Map();
  if (!parseParamsInto(value, pos, params)) return null;
  return { protocol: `${protocolName}/${protocolVersion}`, transport, host, port, params };
}

export function formatVia(via: Via): string {
  const port = via.port === null ? '' : `:${via.port}`;
  return `${via.protocol}/${via.transport} ${formatHost(via.host)}${port}${formatHeaderParams(via.params)}`;
}

/** Parses the topmost Via of a message, or null when absent or malformed. */
export function topVia(message: SipMessage): Via | null {
  const value = message.headers.get('via');
  return value === undefined ? null : parseVia(value);
}
