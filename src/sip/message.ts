/**
 * SIP message model (RFC 3261 §7) and header-value helpers.
 *
 * Header values are stored as raw strings and parsed on demand with the
 * `parse*` helpers, so a proxy only pays for the headers it inspects. The
 * exceptions are Via, Route, Record-Route and Contact, which RFC 3261 §7.3.1
 * allows to carry comma-separated lists: the parser splits those into one
 * value per element so that "top Via" and friends are a plain array access.
 *
 * Bodies are Buffers: Content-Length counts octets and bodies may be binary
 * (S/MIME, multipart), so a string would either be wrong or lossy. Bodies are
 * treated as immutable and may share memory with the buffer they were parsed
 * from; `cloneMessage` shares them too.
 */
import { formatHost, hostKind, parsePort } from './uri.ts';

export const SIP_VERSION = 'SIP/2.0';

// ---------------------------------------------------------------------------
// Header names

/** Compact header forms (RFC 3261 §7.3.3 and the IANA SIP header registry). */
const COMPACT_FORMS: Readonly<Record<string, string>> = {
  a: 'accept-contact',
  b: 'referred-by',
  c: 'content-type',
  d: 'request-disposition',
  e: 'content-encoding',
  f: 'from',
  i: 'call-id',
  j: 'reject-contact',
  k: 'supported',
  l: 'content-length',
  m: 'contact',
  n: 'identity-info',
  o: 'event',
  r: 'refer-to',
  s: 'subject',
  t: 'to',
  u: 'allow-events',
  v: 'via',
  x: 'session-expires',
  y: 'identity',
};

/** Conventional spelling used when serializing well-known headers. */
const DISPLAY_NAMES: ReadonlyMap<string, string> = new Map(
  [
    'Accept', 'Accept-Contact', 'Accept-Encoding', 'Accept-Language', 'Alert-Info', 'Allow',
    'Allow-Events', 'Authentication-Info', 'Authorization', 'Call-ID', 'Call-Info', 'Contact',
    'Content-Disposition', 'Content-Encoding', 'Content-Language', 'Content-Length',
    'Content-Type', 'CSeq', 'Date', 'Error-Info', 'Event', 'Expires', 'From', 'History-Info',
    'Identity', 'Identity-Info', 'In-Reply-To', 'Max-Forwards', 'Min-Expires', 'Min-SE',
    'MIME-Version', 'Organization', 'P-Asserted-Identity', 'P-Preferred-Identity', 'Path',
    'Priority', 'Privacy', 'Proxy-Authenticate', 'Proxy-Authorization', 'Proxy-Require', 'RAck',
    'Reason', 'Record-Route', 'Refer-To', 'Referred-By', 'Reject-Contact', 'Replaces',
    'Reply-To', 'Request-Disposition', 'Require', 'Retry-After', 'Route', 'RSeq', 'Server',
    'Service-Route', 'Session-Expires', 'SIP-ETag', 'SIP-If-Match', 'Subject',
    'Subscription-State', 'Supported', 'Timestamp', 'To', 'Unsupported', 'User-Agent', 'Via',
    'Warning', 'WWW-Authenticate',
  ].map((name) => [name.toLowerCase(), name]),
);

/** Returns the lookup key for a header name: lowercase, compact forms expanded. */
export function canonicalHeaderName(name: string): string {
  const lower = name.toLowerCase();
  return lower.length === 1 ? (COMPACT_FORMS[lower] ?? lower) : lower;
}

// ---------------------------------------------------------------------------
// Character classes

const enum Char {
  Tab = 0x09,
  Space = 0x20,
  DoubleQuote = 0x22,
  Comma = 0x2c,
  Slash = 0x2f,
  Zero = 0x30,
  Nine = 0x39,
  Colon = 0x3a,
  Semicolon = 0x3b,
  LessThan = 0x3c,
  Equals = 0x3d,
  GreaterThan = 0x3e,
  OpenBracket = 0x5b,
  Backslash = 0x5c,
  CloseBracket = 0x5d,
}

const TOKEN_CHARS = new Uint8Array(128);
for (const char of "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~") {
  TOKEN_CHARS[char.charCodeAt(0)] = 1;
}

function isTokenCode(code: number): boolean {
  return code < 128 && TOKEN_CHARS[code] === 1;
}

/** RFC 3261 `token`: one or more of alphanumerics and `-.!%*_+`'~`. */
export function isToken(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    if (!isTokenCode(text.charCodeAt(i))) return false;
  }
  return true;
}

function isLws(code: number): boolean {
  return code === Char.Space || code === Char.Tab;
}

function skipLws(text: string, pos: number): number {
  while (pos < text.length && isLws(text.charCodeAt(pos))) pos++;
  return pos;
}

function tokenEnd(text: string, pos: number): number {
  while (pos < text.length && isTokenCode(text.charCodeAt(pos))) pos++;
  return pos;
}

/**
 * Trims SP and HT only. String.prototype.trim would also strip Unicode
 * spaces such as NBSP, which are data in SIP, not linear whitespace.
 */
export function trimLws(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isLws(text.charCodeAt(start))) start++;
  while (end > start && isLws(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

// ---------------------------------------------------------------------------
// Headers

/** One header name with all its values in order. */
export interface HeaderField {
  /** Canonical lookup key (lowercase long form). */
  readonly key: string;
  /** Name written when serializing. */
  readonly name: string;
  readonly values: readonly string[];
}

interface MutableHeaderField {
  key: string;
  name: string;
  values: string[];
}

const NO_VALUES: readonly string[] = Object.freeze([]);

/**
 * Ordered multi-map of header fields keyed by canonical name. Values of the
 * same header keep their relative order, which is significant (RFC 3261
 * §7.3.1); fields of different names keep first-insertion order, which is not
 * significant but is preserved for readable output.
 *
 * Each stored value is one header value: callers adding a Via or Route pass
 * one element per call, as the parser does after splitting lists. Values
 * are checked for CR, LF and NUL when serialized, not on every mutation.
 */
export class SipHeaders implements Iterable<HeaderField> {
  readonly #fields: Map<string, MutableHeaderField>;

  constructor(init?: Iterable<readonly [name: string, value: string]>) {
    this.#fields = new Map();
    if (init !== undefined) {
      for (const [name, value] of init) this.append(name, value);
    }
  }

  /** First (topmost) value, or undefined when the header is absent. */
  get(name: string): string | undefined {
    return this.#fields.get(canonicalHeaderName(name))?.values[0];
  }

  /** All values in order; an empty array when absent. Do not mutate the result. */
  getAll(name: string): readonly string[] {
    return this.#fields.get(canonicalHeaderName(name))?.values ?? NO_VALUES;
  }

  has(name: string): boolean {
    return this.#fields.has(canonicalHeaderName(name));
  }

  /** Replaces all values of a header, keeping its position when it already exists. */
  set(name: string, value: string | readonly string[]): this {
    const values = typeof value === 'string' ? [value] : [...value];
    if (values.length === 0) {
      this.delete(name);
      return this;
    }
    const key = canonicalHeaderName(name);
    const field = this.#fields.get(key);
    if (field !== undefined) field.values = values;
    else this.#create(name, key).values = values;
    return this;
  }

  /** Adds a value after the existing ones (bottom). */
  append(name: string, value: string): this {
    const key = canonicalHeaderName(name);
    const field = this.#fields.get(key) ?? this.#create(name, key);
    field.values.push(value);
    return this;
  }

  /** Adds a value before the existing ones (top), e.g. a new Via or Record-Route. */
  prepend(name: string, value: string): this {
    const key = canonicalHeaderName(name);
    const field = this.#fields.get(key) ?? this.#create(name, key);
    field.values.unshift(value);
    return this;
  }

  /** Replaces the topmost value, adding the header when absent. */
  replaceFirst(name: string, value: string): this {
    const key = canonicalHeaderName(name);
    const field = this.#fields.get(key) ?? this.#create(name, key);
    if (field.values.length === 0) field.values.push(value);
    else field.values[0] = value;
    return this;
  }

  /** Removes and returns the topmost value (e.g. popping the top Via). */
  removeFirst(name: string): string | undefined {
    const key = canonicalHeaderName(name);
    const field = this.#fields.get(key);
    if (field === undefined) return undefined;
    const value = field.values.shift();
    if (field.values.length === 0) this.#fields.delete(key);
    return value;
  }

  /** Removes every value of a header; returns whether it was present. */
  delete(name: string): boolean {
    return this.#fields.delete(canonicalHeaderName(name));
  }

  /** Number of distinct header names. */
  get size(): number {
    return this.#fields.size;
  }

  clone(): SipHeaders {
    const copy = new SipHeaders();
    for (const field of this.#fields.values()) {
      copy.#fields.set(field.key, { key: field.key, name: field.name, values: field.values.slice() });
    }
    return copy;
  }

  [Symbol.iterator](): IterableIterator<HeaderField> {
    return this.#fields.values();
  }

  #create(name: string, key: string): MutableHeaderField {
    if (!isToken(name)) throw new TypeError(`invalid SIP header name: ${JSON.stringify(name)}`);
    const field: MutableHeaderField = { key, name: DISPLAY_NAMES.get(key) ?? name, values: [] };
    this.#fields.set(key, field);
    return field;
  }
}

// ---------------------------------------------------------------------------
// Messages

export interface SipRequest {
  readonly kind: 'request';
  method: string;
  /** Request-URI as written; parse with `parseUri` when needed. */
  uri: string;
  version: string;
  headers: SipHeaders;
  body: Buffer;
}

export interface SipResponse {
  readonly kind: 'response';
  status: number;
  reason: string;
  version: string;
  headers: SipHeaders;
  body: Buffer;
}

export type SipMessage = SipRequest | SipResponse;

const EMPTY_BODY = Buffer.alloc(0);

export interface RequestInit {
  method: string;
  uri: string;
  headers?: SipHeaders;
  body?: Buffer;
}

export interface ResponseInit {
  status: number;
  reason?: string;
  headers?: SipHeaders;
  body?: Buffer;
}

export function createRequest(init: RequestInit): SipRequest {
  return {
    kind: 'request',
    method: init.method,
    uri: init.uri,
    version: SIP_VERSION,
    headers: init.headers ?? new SipHeaders(),
    body: init.body ?? EMPTY_BODY,
  };
}

export function createResponse(init: ResponseInit): SipResponse {
  return {
    kind: 'response',
    status: init.status,
    reason: init.reason ?? reasonPhrase(init.status),
    version: SIP_VERSION,
    headers: init.headers ?? new SipHeaders(),
    body: init.body ?? EMPTY_BODY,
  };
}

export function isRequest(message: SipMessage): message is SipRequest {
  return message.kind === 'request';
}

/** Copies a message so its start line and headers can be changed independently (bodies are shared). */
export function cloneMessage<T extends SipMessage>(message: T): T {
  return { ...message, headers: message.headers.clone() };
}

// ---------------------------------------------------------------------------
// Generic header syntax

/** Header parameters keyed by lowercase name; `null` marks a flag parameter such as `lr` or `rport`. */
export type HeaderParams = Map<string, string | null>;

/**
 * Splits a comma-separated header value into elements, ignoring commas inside
 * quoted strings and `<...>`. Returns null when an element is empty
 * (`a,,b`), which the RFC 3261 list grammar does not allow.
 */
export function splitHeaderList(value: string): string[] | null {
  if (value.indexOf(',') === -1) return [value];
  const parts: string[] = [];
  let start = 0;
  let inQuotes = false;
  let inAngles = false;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (inQuotes) {
      if (code === Char.Backslash) i++;
      else if (code === Char.DoubleQuote) inQuotes = false;
    } else if (code === Char.DoubleQuote) {
      inQuotes = true;
    } else if (code === Char.LessThan) {
      inAngles = true;
    } else if (code === Char.GreaterThan) {
      inAngles = false;
    } else if (code === Char.Comma && !inAngles) {
      const part = trimLws(value.slice(start, i));
      if (part.length === 0) return null;
      parts.push(part);
      start = i + 1;
    }
  }
  const last = trimLws(value.slice(start));
  if (last.length === 0) return null;
  parts.push(last);
  return parts;
}

/**
 * Reads a quoted string starting at text[pos] (which must be `"`), resolving
 * quoted-pairs. Returns the unescaped content and the index after the closing
 * quote, or null when the string is unterminated.
 */
function readQuotedString(text: string, pos: number): { value: string; end: number } | null {
  let value = '';
  let chunkStart = pos + 1;
  for (let i = pos + 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === Char.Backslash) {
      if (i + 1 >= text.length) return null;
      value += text.slice(chunkStart, i);
      chunkStart = i + 1;
      i++;
    } else if (code === Char.DoubleQuote) {
      return { value: value + text.slice(chunkStart, i), end: i + 1 };
    }
  }
  return null;
}

function quoteString(text: string): string {
  let needsEscape = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === Char.DoubleQuote || code === Char.Backslash) {
      needsEscape = true;
      break;
    }
  }
  return needsEscape ? `"${text.replace(/["\\]/g, '\\$&')}"` : `"${text}"`;
}

/** Characters allowed in an unquoted parameter value: token, host and IPv6 literal characters. */
function isBareParamValueCode(code: number): boolean {
  return isTokenCode(code) || code === Char.Colon || code === Char.OpenBracket || code === Char.CloseBracket;
}

/**
 * Parses `*(SEMI name[EQUAL value])` from text[pos] to the end into params,
 * tolerating LWS around `;` and `=`. Unquoted values are taken leniently (any
 * non-whitespace other than `;`, `,` and `"`); quoted values are unescaped.
 * The first occurrence of a repeated name wins. Returns false on syntax errors
 * such as an empty name (`;;`) or trailing garbage.
 */
function parseParamsInto(text: string, pos: number, params: HeaderParams): boolean {
  const length = text.length;
  for (;;) {
    pos = skipLws(text, pos);
    if (pos >= length) return true;
    if (text.charCodeAt(pos) !== Char.Semicolon) return false;
    pos = skipLws(text, pos + 1);
    const nameStart = pos;
    pos = tokenEnd(text, pos);
    if (pos === nameStart) return false;
    const name = text.slice(nameStart, pos).toLowerCase();
    pos = skipLws(text, pos);
    let value: string | null = null;
    if (pos < length && text.charCodeAt(pos) === Char.Equals) {
      pos = skipLws(text, pos + 1);
      if (pos < length && text.charCodeAt(pos) === Char.DoubleQuote) {
        const quoted = readQuotedString(text, pos);
        if (quoted === null) return false;
        value = quoted.value;
        pos = quoted.end;
      } else {
        const valueStart = pos;
        while (pos < length) {
          const code = text.charCodeAt(pos);
          if (code <= Char.Space || code === Char.Semicolon || code === Char.Comma || code === Char.DoubleQuote || code === 0x7f) break;
          pos++;
        }
        value = text.slice(valueStart, pos);
      }
    }
    if (!params.has(name)) params.set(name, value);
  }
}

/** Parses a generic parameter list such as `;tag=abc;lr;q="0.5"`. Returns null on syntax errors. */
export function parseHeaderParams(text: string): HeaderParams | null {
  const params: HeaderParams = new Map();
  return parseParamsInto(text, 0, params) ? params : null;
}

/** Formats parameters as `;name=value;flag`, quoting values that are not token or host characters. */
export function formatHeaderParams(params: HeaderParams): string {
  let out = '';
  for (const [name, value] of params) {
    out += ';' + name;
    if (value === null) continue;
    let bare = value.length > 0;
    for (let i = 0; bare && i < value.length; i++) bare = isBareParamValueCode(value.charCodeAt(i));
    out += '=' + (bare ? value : quoteString(value));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Via

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

// ---------------------------------------------------------------------------
// name-addr / addr-spec (From, To, Contact, Route, Record-Route, ...)

export interface NameAddr {
  /** Unquoted display name, or null when absent. */
  displayName: string | null;
  /** The URI as written; parse with `parseUri` when its parts are needed. */
  uri: string;
  /** Header parameters after the address (`tag`, `expires`, `q`, ...). URI parameters such as `lr` stay in `uri`. */
  params: HeaderParams;
}

function isValidAddressUri(uri: string, enclosed: boolean): boolean {
  const colon = uri.indexOf(':');
  if (colon <= 0) return false;
  for (let i = 0; i < uri.length; i++) {
    const code = uri.charCodeAt(i);
    if (code <= Char.Space || code === 0x7f || code === Char.DoubleQuote || code === Char.LessThan || code === Char.GreaterThan) return false;
    // RFC 3261 §20.10: a URI containing ',', '?' or ';' must be enclosed in <>;
    // ';' is unambiguous here because it already ended the addr-spec.
    if (!enclosed && (code === Char.Comma || code === 0x3f)) return false;
  }
  for (let i = 0; i < colon; i++) {
    const code = uri.charCodeAt(i);
    const alpha = (code | 0x20) >= 0x61 && (code | 0x20) <= 0x7a;
    if (!alpha && (i === 0 || !((code >= Char.Zero && code <= Char.Nine) || code === 0x2b || code === 0x2d || code === 0x2e))) return false;
  }
  return true;
}

/**
 * Parses `[display-name] <uri> *(;param)` or `addr-spec *(;param)`. In the
 * addr-spec form, parameters after the URI are header parameters
 * (RFC 3261 §20.10). Returns null for malformed input, including unbalanced
 * quotes, unquoted non-token display names, and whitespace inside `<...>`.
 * The Contact wildcard `*` is not a name-addr; check for it separately.
 */
export function parseNameAddr(value: string): NameAddr | null {
  let pos = skipLws(value, 0);
  let displayName: string | null = null;
  let uri: string;

  if (value.charCodeAt(pos) === Char.DoubleQuote) {
    const quoted = readQuotedString(value, pos);
    if (quoted === null) return null;
    displayName = quoted.value;
    pos = skipLws(value, quoted.end);
    if (value.charCodeAt(pos) !== Char.LessThan) return null;
  } else {
    // A display name is tokens separated by LWS; a URI reveals itself by a
    // non-token character (the scheme's ':') before any '<'. Raw non-ASCII
    // text is tolerated because user agents send unquoted UTF-8 names.
    let scan = pos;
    while (scan < value.length) {
      const code = value.charCodeAt(scan);
      if (!isTokenCode(code) && !isLws(code) && code < 0x80) break;
      scan++;
    }
    if (value.charCodeAt(scan) === Char.LessThan) {
      const name = trimLws(value.slice(pos, scan));
      displayName = name.length > 0 ? name : null;
      pos = scan;
    }
  }

  if (value.charCodeAt(pos) === Char.LessThan) {
    const close = value.indexOf('>', pos + 1);
    if (close === -1) return null;
    uri = value.slice(pos + 1, close);
    if (!isValidAddressUri(uri, true)) return null;
    pos = close + 1;
  } else {
    let end = value.indexOf(';', pos);
    if (end === -1) end = value.length;
    uri = trimLws(value.slice(pos, end));
    if (!isValidAddressUri(uri, false)) return null;
    pos = end;
  }

  const params: HeaderParams = new Map();
  if (!parseParamsInto(value, pos, params)) return null;
  return { displayName, uri, params };
}

/** Formats a name-addr, always using `<...>` and a quoted display name so any URI and name are safe. */
export function formatNameAddr(address: NameAddr): string {
  const display = address.displayName === null ? '' : quoteString(address.displayName) + ' ';
  return `${display}<${address.uri}>${formatHeaderParams(address.params)}`;
}

// ---------------------------------------------------------------------------
// Scalar headers

/**
 * Parses an unsigned decimal in text[start, end) (digits only, leading zeros
 * allowed). Returns -1 when empty, non-numeric, or greater than max.
 */
function parseDecimal(text: string, start: number, end: number, max: number): number {
  if (end <= start) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code < Char.Zero || code > Char.Nine) return -1;
    value = value * 10 + (code - Char.Zero);
    if (value > max) return -1;
  }
  return value;
}

const UINT32_MAX = 0xffffffff;

export interface CSeq {
  seq: number;
  method: string;
}

/** Parses `CSeq: <number> <method>`; the number must fit in 32 bits (RFC 3261 §8.1.1.5). */
export function parseCSeq(value: string): CSeq | null {
  const start = skipLws(value, 0);
  let end = start;
  while (end < value.length && !isLws(value.charCodeAt(end))) end++;
  const seq = parseDecimal(value, start, end, UINT32_MAX);
  if (seq < 0) return null;
  const methodStart = skipLws(value, end);
  if (methodStart === end) return null;
  const methodEnd = tokenEnd(value, methodStart);
  if (methodEnd === methodStart || skipLws(value, methodEnd) !== value.length) return null;
  return { seq, method: value.slice(methodStart, methodEnd) };
}

export function formatCSeq(cseq: CSeq): string {
  return `${cseq.seq} ${cseq.method}`;
}

function parseTrimmedDecimal(value: string, max: number): number {
  const start = skipLws(value, 0);
  let end = value.length;
  while (end > start && isLws(value.charCodeAt(end - 1))) end--;
  return parseDecimal(value, start, end, max);
}

/** Parses Max-Forwards (0-255, RFC 3261 §20.22), or null when invalid. */
export function parseMaxForwards(value: string): number | null {
  const hops = parseTrimmedDecimal(value, 255);
  return hops < 0 ? null : hops;
}

/** Parses Content-Length (a 32-bit unsigned octet count), or null when invalid. */
export function parseContentLength(value: string): number | null {
  const length = parseTrimmedDecimal(value, UINT32_MAX);
  return length < 0 ? null : length;
}

/**
 * Parses an Expires header or `expires` parameter value in seconds. Values
 * beyond 2^32-1, the range RFC 3261 §20.19 defines, are clamped to it rather
 * than rejected, so an absurd registration interval still yields a number the
 * registrar can cap with its own maximum.
 */
export function parseExpires(value: string): number | null {
  const start = skipLws(value, 0);
  let end = value.length;
  while (end > start && isLws(value.charCodeAt(end - 1))) end--;
  if (end <= start) return null;
  for (let i = start; i < end; i++) {
    const code = value.charCodeAt(i);
    if (code < Char.Zero || code > Char.Nine) return null;
  }
  const seconds = parseDecimal(value, start, end, UINT32_MAX);
  return seconds < 0 ? UINT32_MAX : seconds;
}

// ---------------------------------------------------------------------------
// Responses

const REASON_PHRASES: ReadonlyMap<number, string> = new Map([
  [100, 'Trying'], [180, 'Ringing'], [181, 'Call Is Being Forwarded'], [182, 'Queued'],
  [183, 'Session Progress'], [199, 'Early Dialog Terminated'],
  [200, 'OK'], [202, 'Accepted'], [204, 'No Notification'],
  [300, 'Multiple Choices'], [301, 'Moved Permanently'], [302, 'Moved Temporarily'],
  [305, 'Use Proxy'], [380, 'Alternative Service'],
  [400, 'Bad Request'], [401, 'Unauthorized'], [402, 'Payment Required'], [403, 'Forbidden'],
  [404, 'Not Found'], [405, 'Method Not Allowed'], [406, 'Not Acceptable'],
  [407, 'Proxy Authentication Required'], [408, 'Request Timeout'], [410, 'Gone'],
  [412, 'Conditional Request Failed'], [413, 'Request Entity Too Large'],
  [414, 'Request-URI Too Long'], [415, 'Unsupported Media Type'],
  [416, 'Unsupported URI Scheme'], [417, 'Unknown Resource-Priority'], [420, 'Bad Extension'],
  [421, 'Extension Required'], [422, 'Session Interval Too Small'], [423, 'Interval Too Brief'],
  [428, 'Use Identity Header'], [429, 'Provide Referrer Identity'], [430, 'Flow Failed'],
  [433, 'Anonymity Disallowed'], [436, 'Bad Identity-Info'], [437, 'Unsupported Certificate'],
  [438, 'Invalid Identity Header'], [439, 'First Hop Lacks Outbound Support'],
  [440, 'Max-Breadth Exceeded'], [469, 'Bad Info Package'], [470, 'Consent Needed'],
  [480, 'Temporarily Unavailable'], [481, 'Call/Transaction Does Not Exist'],
  [482, 'Loop Detected'], [483, 'Too Many Hops'], [484, 'Address Incomplete'],
  [485, 'Ambiguous'], [486, 'Busy Here'], [487, 'Request Terminated'],
  [488, 'Not Acceptable Here'], [489, 'Bad Event'], [491, 'Request Pending'],
  [493, 'Undecipherable'], [494, 'Security Agreement Required'],
  [500, 'Server Internal Error'], [501, 'Not Implemented'], [502, 'Bad Gateway'],
  [503, 'Service Unavailable'], [504, 'Server Time-out'], [505, 'Version Not Supported'],
  [513, 'Message Too Large'], [555, 'Push Notification Service Not Supported'],
  [580, 'Precondition Failure'],
  [600, 'Busy Everywhere'], [603, 'Decline'], [604, 'Does Not Exist Anywhere'],
  [606, 'Not Acceptable'], [607, 'Unwanted'], [608, 'Rejected'],
]);

/** Standard reason phrase for a status code, falling back to the class name. */
export function reasonPhrase(status: number): string {
  const phrase = REASON_PHRASES.get(status);
  if (phrase !== undefined) return phrase;
  if (status < 200) return 'Provisional';
  if (status < 300) return 'Success';
  if (status < 400) return 'Redirection';
  if (status < 500) return 'Client Error';
  if (status < 600) return 'Server Error';
  return 'Global Failure';
}

export interface BuildResponseOptions {
  reason?: string;
  /** Tag to add to To when the request's To has none (RFC 3261 §8.2.6.2). */
  toTag?: string;
}

/**
 * Builds a response to a request per RFC 3261 §8.2.6: Via (all values, in
 * order), From, To, Call-ID and CSeq are copied, a To tag is added when given
 * and the request had none, and a 100 (Trying) echoes Timestamp
 * (§8.2.6.1). Record-Route is not copied: only dialog-creating responses
 * from a UAS need it (§12.1.1), and that is the caller's decision.
 */
export function buildResponse(request: SipRequest, status: number, options: BuildResponseOptions = {}): SipResponse {
  if (!Number.isInteger(status) || status < 100 || status > 699) {
    throw new RangeError(`invalid SIP status code: ${status}`);
  }
  const source = request.headers;
  const headers = new SipHeaders();
  for (const name of ['via', 'from', 'to', 'call-id', 'cseq']) {
    const values = source.getAll(name);
    if (values.length > 0) headers.set(name, values);
  }
  if (options.toTag !== undefined) {
    if (!isToken(options.toTag)) throw new TypeError(`invalid To tag: ${JSON.stringify(options.toTag)}`);
    const to = source.get('to');
    if (to !== undefined && parseNameAddr(to)?.params.has('tag') === false) {
      headers.replaceFirst('to', `${to};tag=${options.toTag}`);
    }
  }
  if (status === 100) {
    const timestamp = source.get('timestamp');
    if (timestamp !== undefined) headers.set('timestamp', timestamp);
  }
  return createResponse({ status, reason: options.reason ?? reasonPhrase(status), headers });
}
