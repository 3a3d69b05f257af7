/**
 * SIP, SIPS (RFC 3261 §19.1) and tel (RFC 3966) URI parsing and formatting.
 *
 * Parsed components are unescaped (`%41` becomes `A`), and formatting escapes
 * only what the grammar requires, so `formatUri(parseUri(x))` is equivalent to
 * `x` but not necessarily byte-identical. Parameter names are lowercased because
 * RFC 3261 §19.1.4 compares them case-insensitively; parameter values keep
 * their case. IPv6 hosts are stored without brackets (ready for `net`/`dgram`)
 * and bracketed again when formatted.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { Char, charTable } from './lexical.ts';

/** URI parameters keyed by lowercase name; `null` marks a flag such as `lr`. */
export type UriParams = Map<string, string | null>;

export interface SipUri {
  scheme: 'sip' | 'sips';
  user: string | null;
  password: string | null;
  /** Hostname, IPv4 address, or IPv6 address without brackets. */
  host: string;
  port: number | null;
  params: UriParams;
  /** `?name=value&...` headers in order, unescaped. */
  headers: Array<[name: string, value: string]>;
}

export interface TelUri {
  scheme: 'tel';
  /** The number as written, e.g. `+1-201-555-0123` or `7042` (visual separators kept). */
  number: string;
  params: UriParams;
}

export type Uri = SipUri | TelUri;

export type HostKind = 'hostname' | 'ipv4' | 'ipv6';

// Characters that may appear unescaped in each component (RFC 3261 §25.1).
const UNRESERVED = "-_.!~*'()";
const USER_SAFE = charTable(UNRESERVED + '&=+$,;?/');
const PASSWORD_SAFE = charTable(UNRESERVED + '&=+$,');
const PARAM_SAFE = charTable(UNRESERVED + '[]/:&+$');
const HEADER_SAFE = charTable(UNRESERVED + '[]/?:+$');
const HOSTNAME_CHARS = charTable('-._');
const SCHEME_CHARS = charTable('+-.');
// tel numbers: digits, hex digits and * # for local numbers, + and visual separators.
const TEL_NUMBER_CHARS = charTable('0123456789abcdefABCDEF*#+-.()', false);
const PERCENT_ESCAPES = Array.from({ length: 256 }, (_, byte) => '%' + byte.toString(16).toUpperCase().padStart(2, '0'));

/**
 * Characters tolerated raw inside a URI on input. Stricter than printable
 * ASCII only where accepting would make the URI ambiguous inside a SIP
 * message (whitespace, quotes and angle brackets delimit name-addr values).
 * Real-world devices send unescaped `#` and similar, so those are accepted.
 */
function isUriInputChar(code: number): boolean {
  return code > 0x20 && code < 0x7f && code !== 0x22 && code !== 0x3c && code !== 0x3e;
}

/** Lowercase scheme of an absolute URI (`sip`, `tel`, `urn`, ...), or null when there is none. */
export function uriScheme(text: string): string | null {
  const colon = text.indexOf(':');
  if (colon <= 0) return null;
  const first = text.charCodeAt(0) | 0x20;
  if (first < 0x61 || first > 0x7a) return null;
  for (let i = 1; i < colon; i++) {
    const code = text.charCodeAt(i);
    if (code >= 128 || SCHEME_CHARS[code] !== 1) return null;
  }
  return text.slice(0, colon).toLowerCase();
}

/** Parses a SIP, SIPS or tel URI. Returns null for other schemes and for malformed input. */
export function parseUri(text: string): Uri | null {
  const scheme = uriScheme(text);
  if (scheme === 'sip' || scheme === 'sips') return parseSipUriBody(scheme, text, scheme.length + 1);
  if (scheme === 'tel') return parseTelUriBody(text, 4);
  return null;
}

/** Parses a SIP or SIPS URI; null for any other scheme or malformed input. */
export function parseSipUri(text: string): SipUri | null {
  const uri = parseUri(text);
  return uri !== null && uri.scheme !== 'tel' ? uri : null;
}

function parseSipUriBody(scheme: 'sip' | 'sips', text: string, start: number): SipUri | null {
  for (let i = start; i < text.length; i++) {
    if (!isUriInputChar(text.charCodeAt(i))) return null;
  }
  // '@' cannot appear unescaped in any component other than as the userinfo
  // delimiter, so the first one ends the userinfo even when the user part
  // itself contains ';' or '?' (RFC 4475 §3.1.1.9 "semiuri").
  const at = text.indexOf('@', start);
  let user: string | null = null;
  let password: string | null = null;
  let hostStart = start;
  if (at !== -1) {
    const colon = text.indexOf(':', start);
    const userEnd = colon !== -1 && colon < at ? colon : at;
    user = unescape(text, start, userEnd);
    if (user === null || user.length === 0) return null;
    if (userEnd !== at) {
      password = unescape(text, userEnd + 1, at);
      if (password === null) return null;
    }
    hostStart = at + 1;
  }

  let hostEnd = hostStart;
  while (hostEnd < text.length) {
    const code = text.charCodeAt(hostEnd);
    if (code === Char.Semicolon || code === Char.Question) break;
    hostEnd++;
  }
  const hostPort = parseHostPort(text, hostStart, hostEnd);
  if (hostPort === null) return null;

  const params: UriParams = new Map();
  let pos = hostEnd;
  while (pos < text.length && text.charCodeAt(pos) === Char.Semicolon) {
    let end = pos + 1;
    while (end < text.length) {
      const code = text.charCodeAt(end);
      if (code === Char.Semicolon || code === Char.Question) break;
      end++;
    }
    if (!addParam(params, text, pos + 1, end)) return null;
    pos = end;
  }

  const headers: Array<[string, string]> = [];
  if (pos < text.length) {
    // pos is at '?'
    let fieldStart = pos + 1;
    while (fieldStart <= text.length) {
      let fieldEnd = text.indexOf('&', fieldStart);
      if (fieldEnd === -1) fieldEnd = text.length;
      const equals = text.indexOf('=', fieldStart);
      if (equals === -1 || equals > fieldEnd || equals === fieldStart) return null;
      const name = unescape(text, fieldStart, equals);
      const value = unescape(text, equals + 1, fieldEnd);
      if (name === null || value === null) return null;
      headers.push([name, value]);
      fieldStart = fieldEnd + 1;
    }
  }

  return { scheme, user, password, host: hostPort.host, port: hostPort.port, params, headers };
}

function parseTelUriBody(text: string, start: number): TelUri | null {
  let numberEnd = text.indexOf(';', start);
  if (numberEnd === -1) numberEnd = text.length;
  if (numberEnd === start) return null;
  let digits = 0;
  for (let i = start; i < numberEnd; i++) {
    const code = text.charCodeAt(i);
    if (code >= 128 || TEL_NUMBER_CHARS[code] !== 1) return null;
    if (code >= Char.Zero && code <= Char.Nine) digits++;
  }
  if (digits === 0) return null;
  for (let i = numberEnd; i < text.length; i++) {
    if (!isUriInputChar(text.charCodeAt(i))) return null;
  }
  const params: UriParams = new Map();
  let pos = numberEnd;
  while (pos < text.length) {
    let end = text.indexOf(';', pos + 1);
    if (end === -1) end = text.length;
    if (!addParam(params, text, pos + 1, end)) return null;
    pos = end;
  }
  return { scheme: 'tel', number: text.slice(start, numberEnd), params };
}

/** Adds `name[=value]` found in text[start, end) to params; the first occurrence of a name wins. */
function addParam(params: UriParams, text: string, start: number, end: number): boolean {
  const equals = text.indexOf('=', start);
  const nameEnd = equals !== -1 && equals < end ? equals : end;
  const name = unescape(text, start, nameEnd);
  if (name === null || name.length === 0) return false;
  let value: string | null = null;
  if (nameEnd !== end) {
    value = unescape(text, nameEnd + 1, end);
    if (value === null) return false;
  }
  const key = name.toLowerCase();
  if (!params.has(key)) params.set(key, value);
  return true;
}

/**
 * Percent-decodes text[start, end). Escaped octets are decoded as UTF-8 when
 * they form valid UTF-8 and as Latin-1 otherwise, so arbitrary octets survive.
 * Returns null for a malformed escape such as `%4` or `%ZZ`.
 */
function unescape(text: string, start: number, end: number): string | null {
  const percent = text.indexOf('%', start);
  if (percent === -1 || percent >= end) return text.slice(start, end);
  for (let i = percent; i < end; i++) {
    if (text.charCodeAt(i) !== Char.Percent) continue;
    if (i + 2 >= end || !isHexDigit(text.charCodeAt(i + 1)) || !isHexDigit(text.charCodeAt(i + 2))) {
      return null;
    }
    i += 2;
  }
  const slice = text.slice(start, end);
  try {
    return decodeURIComponent(slice);
  } catch {
    return slice.replace(/%([0-9a-fA-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  }
}

function isHexDigit(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || ((code | 0x20) >= 0x61 && (code | 0x20) <= 0x66);
}

/**
 * Parses `host[:port]` in text[start, end). Hostnames may contain `_`, which
 * RFC 3261 forbids but deployed DNS names use.
 */
function parseHostPort(text: string, start: number, end: number): { host: string; port: number | null } | null {
  let hostEnd: number;
  let host: string;
  if (text.charCodeAt(start) === Char.OpenBracket) {
    const close = text.indexOf(']', start);
    if (close === -1 || close >= end) return null;
    host = text.slice(start + 1, close);
    if (!isIPv6(host)) return null;
    hostEnd = close + 1;
  } else {
    const colon = text.indexOf(':', start);
    hostEnd = colon !== -1 && colon < end ? colon : end;
    host = text.slice(start, hostEnd);
    if (hostKind(host) === null) return null;
  }
  if (hostEnd === end) return { host, port: null };
  if (text.charCodeAt(hostEnd) !== Char.Colon) return null;
  const port = parsePort(text, hostEnd + 1, end);
  return port === null ? null : { host, port };
}

/** Parses a decimal port (0-65535, at most 5 digits) in text[start, end). */
export function parsePort(text: string, start: number, end: number): number | null {
  if (end <= start || end - start > 5) return null;
  let port = 0;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code < Char.Zero || code > Char.Nine) return null;
    port = port * 10 + (code - Char.Zero);
  }
  return port <= 65535 ? port : null;
}

/**
 * Classifies a host as written without brackets: an IPv6 or IPv4 literal or
 * a DNS hostname. Returns null when it is none of these. A name whose last
 * label is numeric must be a valid IPv4 address (RFC 3261 `toplabel`).
 */
export function hostKind(host: string): HostKind | null {
  if (host.length === 0) return null;
  if (host.indexOf(':') !== -1) return isIPv6(host) ? 'ipv6' : null;
  let labelStart = 0;
  let lastLabelNumeric = true;
  for (let i = 0; i <= host.length; i++) {
    const code = i < host.length ? host.charCodeAt(i) : 0x2e;
    if (code === 0x2e) {
      // An empty label is only allowed as the trailing dot of a FQDN.
      if (i === labelStart && i !== host.length) return null;
      if (i > labelStart) {
        lastLabelNumeric = true;
        for (let j = labelStart; j < i; j++) {
          const c = host.charCodeAt(j);
          if (c < Char.Zero || c > Char.Nine) {
            lastLabelNumeric = false;
            break;
          }
        }
      }
      labelStart = i + 1;
      continue;
    }
    if (code >= 128 || HOSTNAME_CHARS[code] !== 1) return null;
  }
  if (lastLabelNumeric) return isIPv4(host) ? 'ipv4' : null;
  return 'hostname';
}

/** Formats a host for use in a URI or Via: IPv6 literals get brackets. */
export function formatHost(host: string): string {
  return host.indexOf(':') !== -1 ? `[${host}]` : host;
}

/** Formats a URI, escaping only characters the grammar does not allow raw. */
export function formatUri(uri: Uri): string {
  if (uri.scheme === 'tel') return `tel:${uri.number}${formatUriParams(uri.params)}`;
  let out = uri.scheme + ':';
  if (uri.user !== null) {
    out += escape(uri.user, USER_SAFE);
    if (uri.password !== null) out += ':' + escape(uri.password, PASSWORD_SAFE);
    out += '@';
  }
  out += formatHost(uri.host);
  if (uri.port !== null) out += ':' + uri.port;
  out += formatUriParams(uri.params);
  for (let i = 0; i < uri.headers.length; i++) {
    const [name, value] = uri.headers[i];
    out += (i === 0 ? '?' : '&') + escape(name, HEADER_SAFE) + '=' + escape(value, HEADER_SAFE);
  }
  return out;
}

function formatUriParams(params: UriParams): string {
  let out = '';
  for (const [name, value] of params) {
    out += ';' + escape(name, PARAM_SAFE);
    if (value !== null) out += '=' + escape(value, PARAM_SAFE);
  }
  return out;
}

/** Percent-encodes (as UTF-8) every character not marked safe in the table. */
function escape(text: string, safe: Uint8Array): string {
  let i = 0;
  while (i < text.length) {
    const code = text.charCodeAt(i);
    if (code >= 128 || safe[code] !== 1) break;
    i++;
  }
  if (i === text.length) return text;
  let out = text.slice(0, i);
  for (const char of text.slice(i)) {
    const code = char.charCodeAt(0);
    if (char.length === 1 && code < 128 && safe[code] === 1) {
      out += char;
    } else {
      for (const byte of Buffer.from(char, 'utf8')) out += PERCENT_ESCAPES[byte];
    }
  }
  return out;
}

/** The user part of a sip:/sips: Request-URI, or the number of a tel: URI. */
export function dialledNumber(requestUri: string): string | null {
  const uri = parseUri(requestUri);
  if (!uri) return null;
  if (uri.scheme === 'tel') return uri.number;
  return uri.user ?? null;
}
