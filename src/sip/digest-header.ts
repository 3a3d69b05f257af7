/**
 * The syntax of SIP digest authentication headers (RFC 8760, RFC 7616, RFC 2617, RFC 3261 §22.4):
 * the shared types, the parser of `WWW-Authenticate` / `Proxy-Authenticate` challenges and the
 * formatter of `Authorization` / `Proxy-Authorization` credentials. It takes and returns header
 * values (strings) and knows nothing of SIP messages or transports.
 *
 * qop `auth` is preferred; `auth-int` is used only when the server offers it without `auth`; no
 * qop means the RFC 2069 form. A `-sess` challenge without qop is unsupported, since cnonce is
 * only defined with qop. `userhash` and `username*` (RFC 7616 §3.4.4) are not implemented: the
 * client always sends the plain username, which RFC 7616 allows.
 */
import { isToken } from './lexical.ts';
import { failed, ok, type Result } from './result.ts';

/** Digest algorithms supported by this module (canonical spelling). */
export type DigestAlgorithm = 'MD5' | 'MD5-sess' | 'SHA-256' | 'SHA-256-sess' | 'SHA-512-256' | 'SHA-512-256-sess';

/** Quality-of-protection values supported by this module. */
export type DigestQop = 'auth' | 'auth-int';

/** All supported algorithms, strongest first. */
export const DIGEST_ALGORITHMS: readonly DigestAlgorithm[] = Object.freeze([
  'SHA-512-256',
  'SHA-512-256-sess',
  'SHA-256',
  'SHA-256-sess',
  'MD5',
  'MD5-sess',
]);

export type DigestErrorCode =
  /** Header value could not be parsed (syntax). */
  | 'malformed'
  /** The challenge/credentials use another scheme (Basic, Bearer, ...). */
  | 'not-digest'
  /** A required parameter (realm, nonce, uri, response, ...) is missing. */
  | 'missing-parameter'
  /** Algorithm unknown or not allowed by the caller. */
  | 'unsupported-algorithm'
  /** qop offered/used is not one we can handle. */
  | 'unsupported-qop'
  /** No challenge at all in the header values. */
  | 'no-challenge'
  // --- verification / realm matching ---
  | 'realm-mismatch'
  | 'username-mismatch'
  | 'unknown-user'
  | 'uri-mismatch'
  | 'nonce-mismatch'
  | 'opaque-mismatch'
  | 'bad-response';

export interface DigestError {
  readonly code: DigestErrorCode;
  readonly message: string;
}

export type DigestResult<T> = Result<T, DigestError>;

/** A parsed, validated Digest challenge. */
export interface DigestChallenge {
  readonly realm: string;
  readonly nonce: string;
  /** Present (possibly empty) iff the server sent it; echoed back verbatim. */
  readonly opaque?: string;
  /** Canonical algorithm; MD5 when the challenge did not name one. */
  readonly algorithm: DigestAlgorithm;
  /** qop the client will use; undefined => RFC 2069 form (no qop offered). */
  readonly qop?: DigestQop;
  /** qop values as offered by the server (lower-cased). */
  readonly qopOptions: readonly string[];
  readonly stale: boolean;
  /** `domain` URIs (space separated in the header). */
  readonly domain: readonly string[];
  /** All parameters, names lower-cased, values unquoted. */
  readonly params: Readonly<Record<string, string>>;
}

/** Parsed `Authorization` / `Proxy-Authorization` credentials. */
export interface DigestCredentialsHeader {
  readonly username: string;
  readonly realm: string;
  readonly nonce: string;
  readonly uri: string;
  readonly response: string;
  readonly algorithm: DigestAlgorithm;
  readonly cnonce?: string;
  readonly opaque?: string;
  readonly qop?: DigestQop;
  /** nc exactly as sent (8 hex digits); present iff qop is. */
  readonly nc?: string;
  /** All parameters, names lower-cased, values unquoted. */
  readonly params: Readonly<Record<string, string>>;
}

export type ChallengeStatus = 401 | 407;
export type ChallengeHeaderName = 'WWW-Authenticate' | 'Proxy-Authenticate';
export type AuthorizationHeaderName = 'Authorization' | 'Proxy-Authorization';

/** A failed result with a digest error. */
export function digestFailure(code: DigestErrorCode, message: string): DigestResult<never> {
  return failed({ code, message });
}

/** `WWW-Authenticate` for 401, `Proxy-Authenticate` for 407. */
export function challengeHeaderName(status: ChallengeStatus): ChallengeHeaderName {
  return status === 407 ? 'Proxy-Authenticate' : 'WWW-Authenticate';
}

/** `Authorization` for 401, `Proxy-Authorization` for 407. */
export function authorizationHeaderName(status: ChallengeStatus): AuthorizationHeaderName {
  return status === 407 ? 'Proxy-Authorization' : 'Authorization';
}

const ALGORITHM_BY_LOWER: ReadonlyMap<string, DigestAlgorithm> = new Map(DIGEST_ALGORITHMS.map((a) => [a.toLowerCase(), a] as const));

/** Canonicalises an algorithm name (case-insensitive); null if unsupported. */
export function parseDigestAlgorithm(name: string): DigestAlgorithm | null {
  return ALGORITHM_BY_LOWER.get(name.trim().toLowerCase()) ?? null;
}

/** True for the `-sess` variants. */
export function isSessionAlgorithm(algorithm: DigestAlgorithm): boolean {
  return algorithm.endsWith('-sess');
}

/** Formats a nonce count as 8 lower-case hex digits (1 => "00000001"). */
export function formatNonceCount(nc: number): string {
  if (!Number.isInteger(nc) || nc < 1 || nc > 0xffffffff) {
    throw new RangeError(`nonce count out of range: ${nc}`);
  }
  return nc.toString(16).padStart(8, '0');
}

/** Parses an nc value (exactly 8 hex digits); null if invalid. */
export function parseNonceCount(nc: string): number | null {
  return /^[0-9a-fA-F]{8}$/.test(nc) ? parseInt(nc, 16) : null;
}

// Control characters are exactly what this pattern is for.
// eslint-disable-next-line no-control-regex
const CONTROL_RE = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/** Refuses control characters, which would let a value end the header line (header injection). */
export function assertHeaderSafe(what: string, value: string): void {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string`);
  if (CONTROL_RE.test(value)) {
    throw new TypeError(`${what} must not contain control characters (CR, LF, NUL, ...)`);
  }
}

/** A SIP method is a token (RFC 3261 §25.1); anything else is a programming error. */
export function assertMethod(method: string): void {
  if (typeof method !== 'string' || !isToken(method)) {
    throw new TypeError(`invalid SIP method: ${JSON.stringify(method)}`);
  }
}

/** Quotes a value as an RFC 7230 / RFC 3261 quoted-string. */
export function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

// ---------------------------------------------------------------------------
// Auth header tokenizer (RFC 7235 §2.1 / §4.1 grammar, tolerant)
// ---------------------------------------------------------------------------

export interface RawAuthItem {
  /** Scheme as written. */
  readonly scheme: string;
  readonly params: Map<string, string>;
  readonly token68?: string;
}

const TCHAR_RE = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const WS_RE = /[ \t\r\n]/;
// token68 followed by end of element.
const TOKEN68_RE = /[A-Za-z0-9\-._~+/]+=*(?=[ \t\r\n]*(?:,|$))/y;

class AuthHeaderParser {
  #pos = 0;
  readonly #src: string;

  constructor(src: string) {
    this.#src = src;
  }

  /** Parses a full header value into auth items (challenges or credentials). */
  parseAll(): DigestResult<RawAuthItem[]> {
    const items: RawAuthItem[] = [];
    for (;;) {
      this.#skipWsAndCommas();
      if (this.#atEnd()) break;
      const item = this.#parseItem();
      if (!item.ok) return item;
      items.push(item.value.item);
      if (item.value.atNextItem) continue;
      this.#skipWs();
      if (this.#atEnd()) break;
      if (this.#peek() !== ',') return this.#syntaxError('expected "," between challenges');
    }
    return ok(items);
  }

  #parseItem(): DigestResult<{ item: RawAuthItem; atNextItem: boolean }> {
    const scheme = this.#readToken();
    if (!scheme) return this.#syntaxError('expected an auth scheme');
    const params = new Map<string, string>();
    const hadWs = this.#skipWs();
    if (this.#atEnd() || this.#peek() === ',') {
      return ok({ item: { scheme, params }, atNextItem: false });
    }
    if (!hadWs) return this.#syntaxError(`expected whitespace after scheme "${scheme}"`);

    TOKEN68_RE.lastIndex = this.#pos;
    const t68 = TOKEN68_RE.exec(this.#src);
    if (t68) {
      this.#pos += t68[0].length;
      return ok({ item: { scheme, params, token68: t68[0] }, atNextItem: false });
    }

    for (;;) {
      this.#skipWs();
      const nameStart = this.#pos;
      const name = this.#readToken();
      if (!name) return this.#syntaxError('expected a parameter name');
      this.#skipWs();
      if (this.#peek() !== '=') {
        if (params.size === 0) return this.#syntaxError(`expected "=" after "${name}"`);
        // A token without "=" after a comma starts the next challenge.
        this.#pos = nameStart;
        return ok({ item: { scheme, params }, atNextItem: true });
      }
      this.#pos++; // '='
      this.#skipWs();
      const value = this.#readValue();
      if (!value.ok) return value;
      const key = name.toLowerCase();
      if (params.has(key)) return this.#syntaxError(`duplicate parameter "${key}"`);
      params.set(key, value.value);

      this.#skipWs();
      if (this.#atEnd()) return ok({ item: { scheme, params }, atNextItem: false });
      if (this.#peek() === ',') {
        this.#skipWsAndCommas();
        if (this.#atEnd()) return ok({ item: { scheme, params }, atNextItem: false });
        continue;
      }
      // Tolerate a missing comma between parameters (seen in the wild), but
      // only if what follows really is `name=`.
      if (!this.#lookingAtParam()) {
        return this.#syntaxError(`unexpected character ${JSON.stringify(this.#peek())}`);
      }
    }
  }

  #lookingAtParam(): boolean {
    const save = this.#pos;
    const name = this.#readToken();
    this.#skipWs();
    const result = !!name && this.#peek() === '=';
    this.#pos = save;
    return result;
  }

  #readValue(): DigestResult<string> {
    if (this.#peek() === '"') {
      this.#pos++;
      let out = '';
      while (!this.#atEnd()) {
        const c = this.#src[this.#pos++];
        if (c === '"') return ok(out);
        if (c === '\\') {
          if (this.#atEnd()) break;
          out += this.#src[this.#pos++];
          continue;
        }
        out += c;
      }
      return this.#syntaxError('unterminated quoted string');
    }
    const start = this.#pos;
    while (!this.#atEnd()) {
      const c = this.#src[this.#pos];
      if (c === ',' || c === '"' || WS_RE.test(c)) break;
      this.#pos++;
    }
    if (this.#pos === start) return this.#syntaxError('expected a parameter value');
    return ok(this.#src.slice(start, this.#pos));
  }

  #readToken(): string {
    const start = this.#pos;
    while (!this.#atEnd() && TCHAR_RE.test(this.#src[this.#pos])) this.#pos++;
    return this.#src.slice(start, this.#pos);
  }

  #skipWs(): boolean {
    const start = this.#pos;
    while (!this.#atEnd() && WS_RE.test(this.#src[this.#pos])) this.#pos++;
    return this.#pos > start;
  }

  #skipWsAndCommas(): void {
    while (!this.#atEnd() && (this.#src[this.#pos] === ',' || WS_RE.test(this.#src[this.#pos]))) {
      this.#pos++;
    }
  }

  #peek(): string {
    return this.#src[this.#pos] ?? '';
  }

  #atEnd(): boolean {
    return this.#pos >= this.#src.length;
  }

  #syntaxError<T>(what: string): DigestResult<T> {
    return digestFailure('malformed', `${what} at offset ${this.#pos} in ${JSON.stringify(this.#src)}`);
  }
}

/** Splits a challenge or credentials header value into its auth items. Never throws. */
export function parseAuthItems(value: string): DigestResult<RawAuthItem[]> {
  if (typeof value !== 'string') return digestFailure('malformed', 'header value must be a string');
  return new AuthHeaderParser(value).parseAll();
}

/** The parameters as a frozen record without a prototype, so names like `__proto__` stay data. */
export function paramsRecord(params: Map<string, string>): Readonly<Record<string, string>> {
  const out = Object.create(null) as Record<string, string>;
  for (const [k, v] of params) out[k] = v;
  return Object.freeze(out);
}

/** The name of the first parameter whose value holds a control character, if any. */
export function hasControlChars(params: Map<string, string>): string | undefined {
  for (const [k, v] of params) if (CONTROL_RE.test(v)) return k;
  return undefined;
}

// ---------------------------------------------------------------------------
// Challenge parsing
// ---------------------------------------------------------------------------

function challengeFromItem(item: RawAuthItem): DigestResult<DigestChallenge> {
  if (item.scheme.toLowerCase() !== 'digest') {
    return digestFailure('not-digest', `unsupported auth scheme "${item.scheme}"`);
  }
  if (item.token68 !== undefined) {
    return digestFailure('malformed', 'Digest challenge must use auth-params, not token68');
  }
  const p = item.params;
  const bad = hasControlChars(p);
  if (bad) return digestFailure('malformed', `parameter "${bad}" contains control characters`);

  const realm = p.get('realm');
  if (realm === undefined) return digestFailure('missing-parameter', 'Digest challenge without realm');
  const nonce = p.get('nonce');
  if (!nonce) return digestFailure('missing-parameter', 'Digest challenge without nonce');

  const algName = p.get('algorithm');
  const algorithm = algName === undefined ? 'MD5' : parseDigestAlgorithm(algName);
  if (!algorithm) return digestFailure('unsupported-algorithm', `unsupported digest algorithm "${algName}"`);

  let qop: DigestQop | undefined;
  let qopOptions: string[] = [];
  const qopRaw = p.get('qop');
  if (qopRaw !== undefined) {
    qopOptions = qopRaw
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s.length > 0);
    if (qopOptions.length === 0) return digestFailure('malformed', 'empty qop parameter');
    if (qopOptions.includes('auth')) qop = 'auth';
    else if (qopOptions.includes('auth-int')) qop = 'auth-int';
    else return digestFailure('unsupported-qop', `unsupported qop "${qopRaw}"`);
  }
  if (qop === undefined && isSessionAlgorithm(algorithm)) {
    return digestFailure('unsupported-qop', `${algorithm} requires qop (cnonce is only defined with qop)`);
  }

  const stale = (p.get('stale') ?? '').trim().toLowerCase() === 'true';
  const domainRaw = p.get('domain');
  const domain = domainRaw === undefined ? [] : domainRaw.split(/[ \t]+/).filter(Boolean);
  const opaque = p.get('opaque');

  const challenge: DigestChallenge = {
    realm,
    nonce,
    ...(opaque !== undefined ? { opaque } : {}),
    algorithm,
    ...(qop !== undefined ? { qop } : {}),
    qopOptions: Object.freeze(qopOptions),
    stale,
    domain: Object.freeze(domain),
    params: paramsRecord(p),
  };
  return ok(Object.freeze(challenge));
}

/**
 * Parses every challenge in one or more `WWW-Authenticate` /
 * `Proxy-Authenticate` header values. Each header value may itself hold
 * several comma-separated challenges. Returns one result per challenge found;
 * a header value with a syntax error yields a single `malformed` result, and
 * non-Digest challenges yield `not-digest` results. Never throws.
 */
export function parseDigestChallenges(headerValues: string | readonly string[]): DigestResult<DigestChallenge>[] {
  const values = typeof headerValues === 'string' ? [headerValues] : headerValues;
  const out: DigestResult<DigestChallenge>[] = [];
  for (const value of values) {
    const items = parseAuthItems(value);
    if (!items.ok) {
      out.push(items);
      continue;
    }
    for (const item of items.value) out.push(challengeFromItem(item));
  }
  return out;
}

/**
 * Parses a header value that must contain exactly one challenge, which must
 * be a supported Digest challenge.
 */
export function parseDigestChallenge(headerValue: string): DigestResult<DigestChallenge> {
  const results = parseDigestChallenges(headerValue);
  if (results.length === 0) return digestFailure('no-challenge', 'no challenge in header value');
  if (results.length > 1) {
    const bad = results.find((r) => !r.ok && r.error.code === 'malformed');
    if (bad) return bad;
    return digestFailure('malformed', `expected one challenge, found ${results.length}`);
  }
  return results[0];
}

// ---------------------------------------------------------------------------
// Authorization header formatting
// ---------------------------------------------------------------------------

/** What an `Authorization` value is written from: the parsed shape, with nc as a count or as sent. */
export interface AuthorizationParams extends Omit<DigestCredentialsHeader, 'nc' | 'params'> {
  readonly nc?: number | string;
}

/**
 * Formats an `Authorization` / `Proxy-Authorization` value:
 * `Digest username="..", realm="..", nonce="..", uri="..", response="..",
 * algorithm=X, cnonce="..", opaque="..", qop=auth, nc=00000001`.
 * username, realm, nonce, uri, response, cnonce and opaque are quoted;
 * algorithm, qop and nc are not (RFC 7616 §3.4, RFC 8760, RFC 3261 §25.1).
 * cnonce, qop and nc are emitted only with qop; opaque only when given.
 * Throws TypeError on values containing control characters (header injection).
 */
export function formatAuthorization(p: AuthorizationParams): string {
  for (const key of ['username', 'realm', 'nonce', 'uri', 'response', 'cnonce', 'opaque'] as const) {
    const v = p[key];
    if (v !== undefined) assertHeaderSafe(key, v);
  }
  const parts = [
    `username=${quote(p.username)}`,
    `realm=${quote(p.realm)}`,
    `nonce=${quote(p.nonce)}`,
    `uri=${quote(p.uri)}`,
    `response=${quote(p.response)}`,
    `algorithm=${p.algorithm}`,
  ];
  if (p.qop !== undefined) {
    if (p.cnonce === undefined || p.nc === undefined) {
      throw new TypeError('qop requires nc and cnonce');
    }
    parts.push(`cnonce=${quote(p.cnonce)}`);
  }
  if (p.opaque !== undefined) parts.push(`opaque=${quote(p.opaque)}`);
  if (p.qop !== undefined) {
    const nc = typeof p.nc === 'number' ? formatNonceCount(p.nc) : p.nc!;
    if (parseNonceCount(nc) === null) throw new TypeError(`invalid nc: ${nc}`);
    parts.push(`qop=${p.qop}`, `nc=${nc}`);
  }
  return `Digest ${parts.join(', ')}`;
}
