/**
 * SIP digest access authentication (client and server side).
 *
 * Standards: RFC 8760 (SIP digest with MD5, SHA-256, SHA-512-256), RFC 7616
 * (HTTP digest; same hashing rules including the `-sess` variants),
 * RFC 2617, RFC 3261 §22.4.
 *
 * The module is pure: it takes header *values* (strings) and returns header
 * values. It knows nothing about SIP message classes or transports.
 *
 * Building blocks:
 *   - {@link parseDigestChallenges} / {@link parseDigestChallenge}: parse
 *     `WWW-Authenticate` / `Proxy-Authenticate` values.
 *   - {@link selectDigestChallenges}: pick the strongest supported challenge
 *     per realm (RFC 8760 §2.4: SHA-512-256 > SHA-256 > MD5).
 *   - {@link computeDigestResponse}, {@link computeHA1}, {@link computeHA2}.
 *   - {@link formatAuthorization} / {@link buildAuthorization}: build the
 *     `Authorization` / `Proxy-Authorization` value.
 *   - {@link DigestClient}: per-credential state (nonce reuse, nc counting,
 *     stale handling, rejected-credential detection).
 *   - {@link parseAuthorization} / {@link verifyAuthorization} /
 *     {@link formatChallenge}: server side (test registrars, tests).
 *
 * Scope decisions:
 *   - qop: `auth` is preferred; `auth-int` is supported (HA2 includes
 *     H(body); pass the request body, default empty) and only used when the
 *     server offers it without `auth`. No qop => RFC 2069 compatibility form.
 *   - `-sess` algorithms require qop (cnonce is only defined with qop); a
 *     `-sess` challenge without qop is reported as unsupported.
 *   - `userhash` and `username*` (RFC 7616 §3.4.4) are not implemented: the
 *     client always sends the plain username (allowed: userhash is optional
 *     for the client) and the verifier rejects `userhash=true` credentials.
 *     Strings are hashed as UTF-8.
 */

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { isToken } from './lexical.ts';

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** Digest algorithms supported by this module (canonical spelling). */
export type DigestAlgorithm =
  | 'MD5'
  | 'MD5-sess'
  | 'SHA-256'
  | 'SHA-256-sess'
  | 'SHA-512-256'
  | 'SHA-512-256-sess';

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

export type DigestResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: DigestError };

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

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

function ok<T>(value: T): DigestResult<T> {
  return { ok: true, value };
}

function fail<T>(code: DigestErrorCode, message: string): DigestResult<T> {
  return { ok: false, error: { code, message } };
}

/** `WWW-Authenticate` for 401, `Proxy-Authenticate` for 407. */
export function challengeHeaderName(status: ChallengeStatus): ChallengeHeaderName {
  return status === 407 ? 'Proxy-Authenticate' : 'WWW-Authenticate';
}

/** `Authorization` for 401, `Proxy-Authorization` for 407. */
export function authorizationHeaderName(status: ChallengeStatus): AuthorizationHeaderName {
  return status === 407 ? 'Proxy-Authorization' : 'Authorization';
}

const ALGORITHM_BY_LOWER: ReadonlyMap<string, DigestAlgorithm> = new Map(
  DIGEST_ALGORITHMS.map((a) => [a.toLowerCase(), a] as const),
);

/** Canonicalises an algorithm name (case-insensitive); undefined if unsupported. */
export function parseDigestAlgorithm(name: string): DigestAlgorithm | undefined {
  return ALGORITHM_BY_LOWER.get(name.trim().toLowerCase());
}

const NODE_HASH: Readonly<Record<string, string>> = {
  MD5: 'md5',
  'SHA-256': 'sha256',
  // SHA-512/256 (FIPS 180-4), not a truncated SHA-512.
  'SHA-512-256': 'sha512-256',
};

function baseAlgorithm(algorithm: DigestAlgorithm): 'MD5' | 'SHA-256' | 'SHA-512-256' {
  return algorithm.replace(/-sess$/, '') as 'MD5' | 'SHA-256' | 'SHA-512-256';
}

/** True for the `-sess` variants. */
export function isSessionAlgorithm(algorithm: DigestAlgorithm): boolean {
  return algorithm.endsWith('-sess');
}

function algorithmStrength(algorithm: DigestAlgorithm): number {
  switch (baseAlgorithm(algorithm)) {
    case 'SHA-512-256':
      return 3;
    case 'SHA-256':
      return 2;
    default:
      return 1;
  }
}

/** H(data) as lower-case hex, using the algorithm's hash function (UTF-8 for strings). */
export function digestHash(algorithm: DigestAlgorithm, data: string | Uint8Array): string {
  const hash = createHash(NODE_HASH[baseAlgorithm(algorithm)]);
  if (typeof data === 'string') hash.update(data, 'utf8');
  else hash.update(data);
  return hash.digest('hex');
}

/** Formats a nonce count as 8 lower-case hex digits (1 => "00000001"). */
export function formatNonceCount(nc: number): string {
  if (!Number.isInteger(nc) || nc < 1 || nc > 0xffffffff) {
    throw new RangeError(`nonce count out of range: ${nc}`);
  }
  return nc.toString(16).padStart(8, '0');
}

/** Parses an nc value (exactly 8 hex digits); undefined if invalid. */
export function parseNonceCount(nc: string): number | undefined {
  return /^[0-9a-fA-F]{8}$/.test(nc) ? parseInt(nc, 16) : undefined;
}

/** A fresh random client nonce (128 bits, hex). */
export function generateCnonce(): string {
  return randomBytes(16).toString('hex');
}

const CONTROL_RE = /[\u0000-\u0008\u000a-\u001f\u007f]/;

function assertHeaderSafe(what: string, value: string): void {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string`);
  if (CONTROL_RE.test(value)) {
    throw new TypeError(`${what} must not contain control characters (CR, LF, NUL, ...)`);
  }
}

function assertMethod(method: string): void {
  if (typeof method !== 'string' || !isToken(method)) {
    throw new TypeError(`invalid SIP method: ${JSON.stringify(method)}`);
  }
}

/** Quotes a value as an RFC 7230 / RFC 3261 quoted-string. */
function quote(value: string): string {
  return `"${value.replace(/[\\"]/g, '\\$&')}"`;
}

// ---------------------------------------------------------------------------
// Auth header tokenizer (RFC 7235 §2.1 / §4.1 grammar, tolerant)
// ---------------------------------------------------------------------------

interface RawAuthItem {
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
  private pos = 0;
  private readonly src: string;

  constructor(src: string) {
    this.src = src;
  }

  /** Parses a full header value into auth items (challenges or credentials). */
  parseAll(): DigestResult<RawAuthItem[]> {
    const items: RawAuthItem[] = [];
    for (;;) {
      this.skipWsAndCommas();
      if (this.atEnd()) break;
      const item = this.parseItem();
      if (!item.ok) return item;
      items.push(item.value.item);
      if (item.value.atNextItem) continue;
      this.skipWs();
      if (this.atEnd()) break;
      if (this.peek() !== ',') return this.syntaxError('expected "," between challenges');
    }
    return ok(items);
  }

  private parseItem(): DigestResult<{ item: RawAuthItem; atNextItem: boolean }> {
    const scheme = this.readToken();
    if (!scheme) return this.syntaxError('expected an auth scheme');
    const params = new Map<string, string>();
    const hadWs = this.skipWs();
    if (this.atEnd() || this.peek() === ',') {
      return ok({ item: { scheme, params }, atNextItem: false });
    }
    if (!hadWs) return this.syntaxError(`expected whitespace after scheme "${scheme}"`);

    TOKEN68_RE.lastIndex = this.pos;
    const t68 = TOKEN68_RE.exec(this.src);
    if (t68) {
      this.pos += t68[0].length;
      return ok({ item: { scheme, params, token68: t68[0] }, atNextItem: false });
    }

    for (;;) {
      this.skipWs();
      const nameStart = this.pos;
      const name = this.readToken();
      if (!name) return this.syntaxError('expected a parameter name');
      this.skipWs();
      if (this.peek() !== '=') {
        if (params.size === 0) return this.syntaxError(`expected "=" after "${name}"`);
        // A token without "=" after a comma starts the next challenge.
        this.pos = nameStart;
        return ok({ item: { scheme, params }, atNextItem: true });
      }
      this.pos++; // '='
      this.skipWs();
      const value = this.readValue();
      if (!value.ok) return value;
      const key = name.toLowerCase();
      if (params.has(key)) return this.syntaxError(`duplicate parameter "${key}"`);
      params.set(key, value.value);

      this.skipWs();
      if (this.atEnd()) return ok({ item: { scheme, params }, atNextItem: false });
      if (this.peek() === ',') {
        this.skipWsAndCommas();
        if (this.atEnd()) return ok({ item: { scheme, params }, atNextItem: false });
        continue;
      }
      // Tolerate a missing comma between parameters (seen in the wild), but
      // only if what follows really is `name=`.
      if (!this.lookingAtParam()) {
        return this.syntaxError(`unexpected character ${JSON.stringify(this.peek())}`);
      }
    }
  }

  private lookingAtParam(): boolean {
    const save = this.pos;
    const name = this.readToken();
    this.skipWs();
    const result = !!name && this.peek() === '=';
    this.pos = save;
    return result;
  }

  private readValue(): DigestResult<string> {
    if (this.peek() === '"') {
      this.pos++;
      let out = '';
      while (!this.atEnd()) {
        const c = this.src[this.pos++];
        if (c === '"') return ok(out);
        if (c === '\\') {
          if (this.atEnd()) break;
          out += this.src[this.pos++];
          continue;
        }
        out += c;
      }
      return this.syntaxError('unterminated quoted string');
    }
    const start = this.pos;
    while (!this.atEnd()) {
      const c = this.src[this.pos];
      if (c === ',' || c === '"' || WS_RE.test(c)) break;
      this.pos++;
    }
    if (this.pos === start) return this.syntaxError('expected a parameter value');
    return ok(this.src.slice(start, this.pos));
  }

  private readToken(): string {
    const start = this.pos;
    while (!this.atEnd() && TCHAR_RE.test(this.src[this.pos])) this.pos++;
    return this.src.slice(start, this.pos);
  }

  private skipWs(): boolean {
    const start = this.pos;
    while (!this.atEnd() && WS_RE.test(this.src[this.pos])) this.pos++;
    return this.pos > start;
  }

  private skipWsAndCommas(): void {
    while (!this.atEnd() && (this.src[this.pos] === ',' || WS_RE.test(this.src[this.pos]))) {
      this.pos++;
    }
  }

  private peek(): string {
    return this.src[this.pos] ?? '';
  }

  private atEnd(): boolean {
    return this.pos >= this.src.length;
  }

  private syntaxError<T>(what: string): DigestResult<T> {
    return fail('malformed', `${what} at offset ${this.pos} in ${JSON.stringify(this.src)}`);
  }
}

function parseAuthItems(value: string): DigestResult<RawAuthItem[]> {
  if (typeof value !== 'string') return fail('malformed', 'header value must be a string');
  return new AuthHeaderParser(value).parseAll();
}

function paramsRecord(params: Map<string, string>): Readonly<Record<string, string>> {
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of params) out[k] = v;
  return Object.freeze(out);
}

function hasControlChars(params: Map<string, string>): string | undefined {
  for (const [k, v] of params) if (CONTROL_RE.test(v)) return k;
  return undefined;
}

// ---------------------------------------------------------------------------
// Challenge parsing and selection
// ---------------------------------------------------------------------------

function challengeFromItem(item: RawAuthItem): DigestResult<DigestChallenge> {
  if (item.scheme.toLowerCase() !== 'digest') {
    return fail('not-digest', `unsupported auth scheme "${item.scheme}"`);
  }
  if (item.token68 !== undefined) {
    return fail('malformed', 'Digest challenge must use auth-params, not token68');
  }
  const p = item.params;
  const bad = hasControlChars(p);
  if (bad) return fail('malformed', `parameter "${bad}" contains control characters`);

  const realm = p.get('realm');
  if (realm === undefined) return fail('missing-parameter', 'Digest challenge without realm');
  const nonce = p.get('nonce');
  if (!nonce) return fail('missing-parameter', 'Digest challenge without nonce');

  const algName = p.get('algorithm');
  const algorithm = algName === undefined ? 'MD5' : parseDigestAlgorithm(algName);
  if (!algorithm) return fail('unsupported-algorithm', `unsupported digest algorithm "${algName}"`);

  let qop: DigestQop | undefined;
  let qopOptions: string[] = [];
  const qopRaw = p.get('qop');
  if (qopRaw !== undefined) {
    qopOptions = qopRaw
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s.length > 0);
    if (qopOptions.length === 0) return fail('malformed', 'empty qop parameter');
    if (qopOptions.includes('auth')) qop = 'auth';
    else if (qopOptions.includes('auth-int')) qop = 'auth-int';
    else return fail('unsupported-qop', `unsupported qop "${qopRaw}"`);
  }
  if (qop === undefined && isSessionAlgorithm(algorithm)) {
    return fail('unsupported-qop', `${algorithm} requires qop (cnonce is only defined with qop)`);
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
export function parseDigestChallenges(
  headerValues: string | readonly string[],
): DigestResult<DigestChallenge>[] {
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
  if (results.length === 0) return fail('no-challenge', 'no challenge in header value');
  if (results.length > 1) {
    const bad = results.find((r) => !r.ok && r.error.code === 'malformed');
    if (bad) return bad;
    return fail('malformed', `expected one challenge, found ${results.length}`);
  }
  return results[0];
}

export interface SelectChallengeOptions {
  /** Algorithms the caller accepts (default: all supported). */
  readonly algorithms?: readonly DigestAlgorithm[];
  /** Only consider challenges for this realm (exact match). */
  readonly realm?: string;
}

const ERROR_PRIORITY: readonly DigestErrorCode[] = [
  'unsupported-algorithm',
  'unsupported-qop',
  'missing-parameter',
  'malformed',
  'not-digest',
];

/**
 * Parses the challenge header values and returns the strongest usable
 * challenge per realm (RFC 8760 §2.4: SHA-512-256 > SHA-256 > MD5; among
 * equal strengths, the server's order wins). Realms are returned in order of
 * first appearance. Fails if no usable challenge is found; the error is the
 * most informative problem encountered.
 */
export function selectDigestChallenges(
  headerValues: string | readonly string[],
  options: SelectChallengeOptions = {},
): DigestResult<DigestChallenge[]> {
  const allowed = new Set(options.algorithms ?? DIGEST_ALGORITHMS);
  const results = parseDigestChallenges(headerValues);
  const best = new Map<string, DigestChallenge>();
  const errors: DigestError[] = [];
  let realmSkipped = 0;

  for (const r of results) {
    if (!r.ok) {
      errors.push(r.error);
      continue;
    }
    const c = r.value;
    if (options.realm !== undefined && c.realm !== options.realm) {
      realmSkipped++;
      continue;
    }
    if (!allowed.has(c.algorithm)) {
      errors.push({
        code: 'unsupported-algorithm',
        message: `digest algorithm ${c.algorithm} is not allowed`,
      });
      continue;
    }
    const current = best.get(c.realm);
    if (!current || algorithmStrength(c.algorithm) > algorithmStrength(current.algorithm)) {
      best.set(c.realm, c);
    }
  }

  if (best.size > 0) return ok([...best.values()]);
  for (const code of ERROR_PRIORITY) {
    const e = errors.find((x) => x.code === code);
    if (e) return { ok: false, error: e };
  }
  if (realmSkipped > 0) {
    return fail('realm-mismatch', `no challenge for realm "${options.realm}"`);
  }
  return fail('no-challenge', 'no Digest challenge present');
}

// ---------------------------------------------------------------------------
// Response computation
// ---------------------------------------------------------------------------

export interface HA1Input {
  readonly algorithm: DigestAlgorithm;
  readonly username: string;
  readonly realm: string;
  readonly password: string;
  /** Required for `-sess` algorithms. */
  readonly nonce?: string;
  /** Required for `-sess` algorithms. */
  readonly cnonce?: string;
}

/** HA1 = H(username:realm:password), or H(that:nonce:cnonce) for `-sess`. */
export function computeHA1(input: HA1Input): string {
  const { algorithm } = input;
  const ha1 = digestHash(algorithm, `${input.username}:${input.realm}:${input.password}`);
  if (!isSessionAlgorithm(algorithm)) return ha1;
  if (input.nonce === undefined || input.cnonce === undefined) {
    throw new TypeError(`${algorithm} requires nonce and cnonce`);
  }
  return digestHash(algorithm, `${ha1}:${input.nonce}:${input.cnonce}`);
}

export interface HA2Input {
  readonly algorithm: DigestAlgorithm;
  readonly method: string;
  /** The digest-uri (the Request-URI in SIP). */
  readonly uri: string;
  readonly qop?: DigestQop;
  /** Entity body, only used for `auth-int` (default empty). */
  readonly body?: string | Uint8Array;
}

/** HA2 = H(method:uri), or H(method:uri:H(body)) for `auth-int`. */
export function computeHA2(input: HA2Input): string {
  const { algorithm } = input;
  if (input.qop === 'auth-int') {
    const bodyHash = digestHash(algorithm, input.body ?? '');
    return digestHash(algorithm, `${input.method}:${input.uri}:${bodyHash}`);
  }
  return digestHash(algorithm, `${input.method}:${input.uri}`);
}

export interface DigestResponseInput extends HA1Input, HA2Input {
  readonly nonce: string;
  /** Nonce count; a number is formatted as 8 hex digits, a string is used verbatim. Required with qop. */
  readonly nc?: number | string;
  /** Required with qop. */
  readonly cnonce?: string;
}

/**
 * The `response` value:
 * with qop: H(HA1:nonce:nc:cnonce:qop:HA2); without: H(HA1:nonce:HA2) (RFC 2069).
 */
export function computeDigestResponse(input: DigestResponseInput): string {
  const ha1 = computeHA1(input);
  const ha2 = computeHA2(input);
  if (input.qop === undefined) {
    return digestHash(input.algorithm, `${ha1}:${input.nonce}:${ha2}`);
  }
  if (input.nc === undefined || input.cnonce === undefined) {
    throw new TypeError('qop requires nc and cnonce');
  }
  const nc = typeof input.nc === 'number' ? formatNonceCount(input.nc) : input.nc;
  return digestHash(
    input.algorithm,
    `${ha1}:${input.nonce}:${nc}:${input.cnonce}:${input.qop}:${ha2}`,
  );
}

// ---------------------------------------------------------------------------
// Authorization header formatting
// ---------------------------------------------------------------------------

export interface AuthorizationParams {
  readonly username: string;
  readonly realm: string;
  readonly nonce: string;
  readonly uri: string;
  readonly response: string;
  readonly algorithm: DigestAlgorithm;
  readonly cnonce?: string;
  readonly opaque?: string;
  readonly qop?: DigestQop;
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
    if (parseNonceCount(nc) === undefined) throw new TypeError(`invalid nc: ${nc}`);
    parts.push(`qop=${p.qop}`, `nc=${nc}`);
  }
  return `Digest ${parts.join(', ')}`;
}

export interface BuildAuthorizationInput {
  readonly challenge: DigestChallenge;
  readonly username: string;
  readonly password: string;
  readonly method: string;
  /** Request-URI (digest-uri). */
  readonly uri: string;
  /** Nonce count (default 1); ignored without qop. */
  readonly nc?: number;
  /** Client nonce (default: random); ignored without qop. */
  readonly cnonce?: string;
  /** Request body, used for `auth-int` only. */
  readonly body?: string | Uint8Array;
}

/**
 * Computes the response for a challenge and formats the credentials header
 * value. Throws TypeError on invalid method / values with control characters.
 */
export function buildAuthorization(input: BuildAuthorizationInput): string {
  const { challenge: c } = input;
  assertMethod(input.method);
  assertHeaderSafe('username', input.username);
  assertHeaderSafe('uri', input.uri);
  const qop = c.qop;
  const nc = qop === undefined ? undefined : (input.nc ?? 1);
  const cnonce = qop === undefined ? undefined : (input.cnonce ?? generateCnonce());
  const response = computeDigestResponse({
    algorithm: c.algorithm,
    username: input.username,
    realm: c.realm,
    password: input.password,
    method: input.method,
    uri: input.uri,
    nonce: c.nonce,
    ...(qop !== undefined ? { qop, nc, cnonce } : {}),
    ...(input.body !== undefined ? { body: input.body } : {}),
  });
  return formatAuthorization({
    username: input.username,
    realm: c.realm,
    nonce: c.nonce,
    uri: input.uri,
    response,
    algorithm: c.algorithm,
    ...(c.opaque !== undefined ? { opaque: c.opaque } : {}),
    ...(qop !== undefined ? { qop, nc, cnonce } : {}),
  });
}

// ---------------------------------------------------------------------------
// Client session
// ---------------------------------------------------------------------------

export interface DigestCredentials {
  readonly username: string;
  readonly password: string;
  /** If set, only challenges for this realm are answered. */
  readonly realm?: string;
}

export interface DigestClientOptions {
  /** Algorithms to accept (default: all). E.g. exclude MD5 to enforce SHA-2. */
  readonly algorithms?: readonly DigestAlgorithm[];
  /**
   * Consecutive stale=true challenges (with no successful nonce reuse in
   * between) tolerated before giving up. Default 3.
   */
  readonly maxStaleRetries?: number;
  /** cnonce generator (default: 128 random bits as hex). Injectable for tests. */
  readonly cnonce?: () => string;
}

export interface DigestRequest {
  /** SIP method, e.g. "REGISTER", "INVITE". */
  readonly method: string;
  /** Request-URI, used as digest-uri. */
  readonly uri: string;
  /** Request body; only used when the server demands qop=auth-int. */
  readonly body?: string | Uint8Array;
}

/** One credentials header to add to an outgoing request. */
export interface DigestHeader {
  readonly name: AuthorizationHeaderName;
  readonly value: string;
  readonly realm: string;
  readonly nonce: string;
  readonly algorithm: DigestAlgorithm;
  /** Nonce count used; undefined without qop. */
  readonly nc?: number;
}

export type DigestChallengeOutcome =
  /** Resend the request (new CSeq) with all of `headers`. */
  | { readonly kind: 'authorize'; readonly headers: DigestHeader[]; readonly stale: boolean }
  /** Stop: the server does not accept these credentials. */
  | {
      readonly kind: 'rejected';
      readonly reason: 'credentials-rejected' | 'too-many-stale';
      readonly realm: string;
      readonly message: string;
    }
  /** Stop: the challenge cannot be answered (malformed, unsupported, wrong realm). */
  | { readonly kind: 'error'; readonly error: DigestError };

interface CacheEntry {
  readonly status: ChallengeStatus;
  readonly challenge: DigestChallenge;
  /** Last nc used (0 = never used). Also counts uses for no-qop challenges. */
  uses: number;
  /** Fixed cnonce for `-sess` algorithms (session key stays valid). */
  readonly sessCnonce?: string;
  /** Consecutive stale challenges answered without an intervening reuse. */
  readonly staleStreak: number;
}

/**
 * Client-side digest state for one credential set (one trunk/registration).
 *
 * Usage:
 *   const headers = client.authorize(req);           // pre-emptive, maybe []
 *   send(req + headers)
 *   on 401/407: const o = client.handleChallenge(status, challengeValues, req)
 *     'authorize' => resend with o.headers (new CSeq)
 *     'rejected' / 'error' => stop (do not loop)
 *
 * Challenges are remembered per (401|407, realm). `authorize()` reuses the
 * remembered nonces with nc 00000001, 00000002, ... and a fresh cnonce
 * (except `-sess`, whose cnonce is fixed per nonce so the session key stays
 * valid for stateless servers).
 *
 * Rejection detection (assumes every request of this credential set goes
 * through `authorize()` or a `handleChallenge()` retry):
 *   - stale=true: the nonce expired, retry with the new nonce (bounded by
 *     `maxStaleRetries` consecutive stale answers).
 *   - no stale, and the remembered nonce was used only for the direct answer
 *     to its challenge (or the new challenge repeats that nonce): the
 *     credentials were rejected.
 *   - no stale, and the remembered nonce had been reused successfully
 *     (nc > 1): treated as a nonce expiry by a server that omits stale; one
 *     fresh answer is sent, and if that one is challenged again the
 *     credentials are reported rejected.
 */
export class DigestClient {
  private readonly entries = new Map<string, CacheEntry>();
  private readonly algorithms: readonly DigestAlgorithm[];
  private readonly maxStaleRetries: number;
  private readonly makeCnonce: () => string;
  private readonly credentials: DigestCredentials;

  constructor(credentials: DigestCredentials, options: DigestClientOptions = {}) {
    assertHeaderSafe('username', credentials.username);
    if (typeof credentials.password !== 'string') throw new TypeError('password must be a string');
    if (credentials.realm !== undefined) assertHeaderSafe('realm', credentials.realm);
    this.credentials = { ...credentials };
    this.algorithms = options.algorithms ?? DIGEST_ALGORITHMS;
    this.maxStaleRetries = options.maxStaleRetries ?? 3;
    this.makeCnonce = options.cnonce ?? generateCnonce;
  }

  /** Realms with a remembered challenge. */
  get realms(): string[] {
    return [...new Set([...this.entries.values()].map((e) => e.challenge.realm))];
  }

  /**
   * Handles a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate) response to
   * `request`. `challengeValues` are the values of all challenge header
   * lines of the response. Throws only on programmer errors (bad status,
   * invalid method/URI).
   */
  handleChallenge(
    status: ChallengeStatus,
    challengeValues: string | readonly string[],
    request: DigestRequest,
  ): DigestChallengeOutcome {
    if (status !== 401 && status !== 407) throw new RangeError(`status must be 401 or 407, got ${status}`);
    this.checkRequest(request);
    const selected = selectDigestChallenges(challengeValues, {
      algorithms: this.algorithms,
      ...(this.credentials.realm !== undefined ? { realm: this.credentials.realm } : {}),
    });
    if (!selected.ok) return { kind: 'error', error: selected.error };

    // Decide for every challenged realm before mutating any state.
    const updates: [string, CacheEntry][] = [];
    let stale = false;
    for (const challenge of selected.value) {
      const key = entryKey(status, challenge.realm);
      const prev = this.entries.get(key);
      let staleStreak = 0;
      if (prev && prev.uses > 0) {
        const onlyDirectAnswer = prev.uses <= 1;
        if (challenge.stale) {
          staleStreak = onlyDirectAnswer ? prev.staleStreak + 1 : 1;
          if (staleStreak > this.maxStaleRetries) {
            this.entries.delete(key);
            return {
              kind: 'rejected',
              reason: 'too-many-stale',
              realm: challenge.realm,
              message: `server sent stale=true ${staleStreak} times in a row for realm "${challenge.realm}"`,
            };
          }
          stale = true;
        } else if (onlyDirectAnswer || challenge.nonce === prev.challenge.nonce) {
          this.entries.delete(key);
          return {
            kind: 'rejected',
            reason: 'credentials-rejected',
            realm: challenge.realm,
            message: `${status} challenge without stale after answering nonce for realm "${challenge.realm}": credentials rejected`,
          };
        }
      }
      const sessCnonce = isSessionAlgorithm(challenge.algorithm) ? this.makeCnonce() : undefined;
      updates.push([
        key,
        { status, challenge, uses: 0, staleStreak, ...(sessCnonce !== undefined ? { sessCnonce } : {}) },
      ]);
    }
    for (const [key, entry] of updates) this.entries.set(key, entry);
    return { kind: 'authorize', headers: this.authorize(request), stale };
  }

  /**
   * Credentials headers for all remembered challenges (pre-emptive
   * authorization), each with its nonce count incremented. Returns [] when
   * nothing is remembered. Entries whose nonce count is exhausted are dropped.
   */
  authorize(request: DigestRequest): DigestHeader[] {
    this.checkRequest(request);
    const headers: DigestHeader[] = [];
    for (const [key, entry] of this.entries) {
      const { challenge } = entry;
      if (entry.uses >= 0xffffffff) {
        this.entries.delete(key);
        continue;
      }
      entry.uses++;
      const nc = challenge.qop === undefined ? undefined : entry.uses;
      const value = buildAuthorization({
        challenge,
        username: this.credentials.username,
        password: this.credentials.password,
        method: request.method,
        uri: request.uri,
        ...(nc !== undefined ? { nc, cnonce: entry.sessCnonce ?? this.makeCnonce() } : {}),
        ...(request.body !== undefined ? { body: request.body } : {}),
      });
      headers.push({
        name: authorizationHeaderName(entry.status),
        value,
        realm: challenge.realm,
        nonce: challenge.nonce,
        algorithm: challenge.algorithm,
        ...(nc !== undefined ? { nc } : {}),
      });
    }
    return headers;
  }

  /** Forgets remembered challenges (all, or those of one realm). */
  forget(realm?: string): void {
    if (realm === undefined) {
      this.entries.clear();
      return;
    }
    for (const [key, entry] of this.entries) {
      if (entry.challenge.realm === realm) this.entries.delete(key);
    }
  }

  private checkRequest(request: DigestRequest): void {
    assertMethod(request.method);
    assertHeaderSafe('uri', request.uri);
  }
}

function entryKey(status: ChallengeStatus, realm: string): string {
  return `${status}\u0000${realm}`;
}

// ---------------------------------------------------------------------------
// Server side
// ---------------------------------------------------------------------------

/**
 * Parses an `Authorization` / `Proxy-Authorization` value (one Digest
 * credentials item). Never throws.
 */
export function parseAuthorization(headerValue: string): DigestResult<DigestCredentialsHeader> {
  const items = parseAuthItems(headerValue);
  if (!items.ok) return items;
  if (items.value.length === 0) return fail('missing-parameter', 'empty credentials');
  if (items.value.length > 1) return fail('malformed', 'more than one credentials item');
  const item = items.value[0];
  if (item.scheme.toLowerCase() !== 'digest') {
    return fail('not-digest', `unsupported auth scheme "${item.scheme}"`);
  }
  if (item.token68 !== undefined) return fail('malformed', 'Digest credentials must use auth-params');
  const p = item.params;
  const bad = hasControlChars(p);
  if (bad) return fail('malformed', `parameter "${bad}" contains control characters`);

  for (const name of ['username', 'realm', 'nonce', 'uri', 'response'] as const) {
    if (p.get(name) === undefined) return fail('missing-parameter', `credentials without ${name}`);
  }
  if ((p.get('userhash') ?? '').toLowerCase() === 'true') {
    return fail('malformed', 'userhash is not supported');
  }
  const algName = p.get('algorithm');
  const algorithm = algName === undefined ? 'MD5' : parseDigestAlgorithm(algName);
  if (!algorithm) return fail('unsupported-algorithm', `unsupported digest algorithm "${algName}"`);

  const qopRaw = p.get('qop');
  let qop: DigestQop | undefined;
  const cnonce = p.get('cnonce');
  const nc = p.get('nc');
  if (qopRaw !== undefined) {
    const q = qopRaw.trim().toLowerCase();
    if (q !== 'auth' && q !== 'auth-int') return fail('unsupported-qop', `unsupported qop "${qopRaw}"`);
    qop = q;
    if (cnonce === undefined) return fail('missing-parameter', 'qop without cnonce');
    if (nc === undefined) return fail('missing-parameter', 'qop without nc');
    if (parseNonceCount(nc) === undefined) return fail('malformed', `invalid nc "${nc}"`);
  } else if (isSessionAlgorithm(algorithm)) {
    return fail('unsupported-qop', `${algorithm} requires qop`);
  }
  const opaque = p.get('opaque');

  return ok(
    Object.freeze({
      username: p.get('username')!,
      realm: p.get('realm')!,
      nonce: p.get('nonce')!,
      uri: p.get('uri')!,
      response: p.get('response')!,
      algorithm,
      ...(qop !== undefined ? { qop, cnonce: cnonce!, nc: nc! } : {}),
      ...(opaque !== undefined ? { opaque } : {}),
      params: paramsRecord(p),
    }),
  );
}

export interface VerifyAuthorizationOptions {
  /** Method of the request being authenticated. */
  readonly method: string;
  /** The password, or a lookup by (username, realm); undefined => unknown user. */
  readonly password: string | ((username: string, realm: string) => string | undefined);
  /** Expected realm. */
  readonly realm?: string;
  /** Expected username. */
  readonly username?: string;
  /** Expected digest-uri (compared verbatim; normally the Request-URI). */
  readonly uri?: string;
  /** Expected nonce, or a validator (freshness, replay) for it. */
  readonly nonce?: string | ((nonce: string, nc: number | undefined) => boolean);
  /** Expected opaque. */
  readonly opaque?: string;
  /** Request body, for qop=auth-int. */
  readonly body?: string | Uint8Array;
  /** Accepted algorithms (default: all). */
  readonly algorithms?: readonly DigestAlgorithm[];
  /** Reject RFC 2069 (no qop) credentials. Default false. */
  readonly requireQop?: boolean;
}

/**
 * Verifies `Authorization` / `Proxy-Authorization` credentials against a
 * password. Nonce freshness and nc replay protection are the caller's job
 * (via `options.nonce`). The response is compared in constant time.
 */
export function verifyAuthorization(
  headerValue: string,
  options: VerifyAuthorizationOptions,
): DigestResult<DigestCredentialsHeader> {
  const parsed = parseAuthorization(headerValue);
  if (!parsed.ok) return parsed;
  const c = parsed.value;
  if (typeof options.method !== 'string' || !isToken(options.method)) {
    return fail('malformed', `invalid method ${JSON.stringify(options.method)}`);
  }
  const allowed = options.algorithms ?? DIGEST_ALGORITHMS;
  if (!allowed.includes(c.algorithm)) {
    return fail('unsupported-algorithm', `digest algorithm ${c.algorithm} is not allowed`);
  }
  if (options.requireQop && c.qop === undefined) {
    return fail('unsupported-qop', 'credentials without qop are not accepted');
  }
  if (options.realm !== undefined && c.realm !== options.realm) {
    return fail('realm-mismatch', `realm "${c.realm}" does not match "${options.realm}"`);
  }
  if (options.username !== undefined && c.username !== options.username) {
    return fail('username-mismatch', `username "${c.username}" does not match`);
  }
  if (options.uri !== undefined && c.uri !== options.uri) {
    return fail('uri-mismatch', `digest uri "${c.uri}" does not match request URI "${options.uri}"`);
  }
  if (options.opaque !== undefined && c.opaque !== options.opaque) {
    return fail('opaque-mismatch', 'opaque does not match');
  }
  if (options.nonce !== undefined) {
    const nc = c.nc === undefined ? undefined : parseNonceCount(c.nc);
    const nonceOk =
      typeof options.nonce === 'string' ? c.nonce === options.nonce : options.nonce(c.nonce, nc);
    if (!nonceOk) return fail('nonce-mismatch', 'nonce is unknown, stale or replayed');
  }
  const password =
    typeof options.password === 'string' ? options.password : options.password(c.username, c.realm);
  if (password === undefined) return fail('unknown-user', `unknown user "${c.username}"`);

  const expected = computeDigestResponse({
    algorithm: c.algorithm,
    username: c.username,
    realm: c.realm,
    password,
    method: options.method,
    uri: c.uri,
    nonce: c.nonce,
    ...(c.qop !== undefined ? { qop: c.qop, nc: c.nc, cnonce: c.cnonce } : {}),
    ...(options.body !== undefined ? { body: options.body } : {}),
  });
  const given = Buffer.from(c.response.toLowerCase(), 'utf8');
  const want = Buffer.from(expected, 'utf8');
  if (given.length !== want.length || !timingSafeEqual(given, want)) {
    return fail('bad-response', 'digest response does not match');
  }
  return parsed;
}

export interface ChallengeParams {
  readonly realm: string;
  readonly nonce: string;
  /** Default MD5; always emitted. */
  readonly algorithm?: DigestAlgorithm;
  /** qop options to offer; omitted => RFC 2069 style challenge. */
  readonly qop?: readonly DigestQop[];
  readonly opaque?: string;
  readonly stale?: boolean;
  readonly domain?: readonly string[];
}

/**
 * Formats a `WWW-Authenticate` / `Proxy-Authenticate` value (server side):
 * realm, domain, nonce, opaque and qop quoted; algorithm and stale unquoted.
 */
export function formatChallenge(p: ChallengeParams): string {
  assertHeaderSafe('realm', p.realm);
  assertHeaderSafe('nonce', p.nonce);
  if (p.opaque !== undefined) assertHeaderSafe('opaque', p.opaque);
  const parts = [`realm=${quote(p.realm)}`];
  if (p.domain && p.domain.length > 0) {
    for (const d of p.domain) assertHeaderSafe('domain', d);
    parts.push(`domain=${quote(p.domain.join(' '))}`);
  }
  parts.push(`nonce=${quote(p.nonce)}`);
  if (p.opaque !== undefined) parts.push(`opaque=${quote(p.opaque)}`);
  if (p.stale) parts.push('stale=true');
  parts.push(`algorithm=${p.algorithm ?? 'MD5'}`);
  if (p.qop && p.qop.length > 0) parts.push(`qop=${quote(p.qop.join(','))}`);
  return `Digest ${parts.join(', ')}`;
}
