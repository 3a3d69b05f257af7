/**
 * The server side of SIP digest authentication, for the registrars and carriers played by tests:
 * parses and verifies `Authorization` / `Proxy-Authorization` credentials and formats
 * `WWW-Authenticate` / `Proxy-Authenticate` challenges (RFC 8760, RFC 7616, RFC 2617). Credentials
 * with `userhash=true` (RFC 7616 §3.4.4) are refused.
 */
import { timingSafeEqual } from 'node:crypto';
import {
  DIGEST_ALGORITHMS,
  assertHeaderSafe,
  digestFailure,
  hasControlChars,
  isSessionAlgorithm,
  paramsRecord,
  parseAuthItems,
  parseDigestAlgorithm,
  parseNonceCount,
  quote,
  type DigestAlgorithm,
  type DigestCredentialsHeader,
  type DigestQop,
  type DigestResult,
} from '../../src/sip/digest-header.ts';
import { computeDigestResponse } from '../../src/sip/digest-hash.ts';
import { isToken } from '../../src/sip/lexical.ts';
import { ok } from '../../src/sip/result.ts';

/**
 * Parses an `Authorization` / `Proxy-Authorization` value (one Digest
 * credentials item). Never throws.
 */
export function parseAuthorization(headerValue: string): DigestResult<DigestCredentialsHeader> {
  const items = parseAuthItems(headerValue);
  if (!items.ok) return items;
  if (items.value.length === 0) return digestFailure('missing-parameter', 'empty credentials');
  if (items.value.length > 1) return digestFailure('malformed', 'more than one credentials item');
  const item = items.value[0];
  if (item.scheme.toLowerCase() !== 'digest') {
    return digestFailure('not-digest', `unsupported auth scheme "${item.scheme}"`);
  }
  if (item.token68 !== undefined) return digestFailure('malformed', 'Digest credentials must use auth-params');
  const p = item.params;
  const bad = hasControlChars(p);
  if (bad) return digestFailure('malformed', `parameter "${bad}" contains control characters`);

  for (const name of ['username', 'realm', 'nonce', 'uri', 'response'] as const) {
    if (p.get(name) === undefined) return digestFailure('missing-parameter', `credentials without ${name}`);
  }
  if ((p.get('userhash') ?? '').toLowerCase() === 'true') {
    return digestFailure('malformed', 'userhash is not supported');
  }
  const algName = p.get('algorithm');
  const algorithm = algName === undefined ? 'MD5' : parseDigestAlgorithm(algName);
  if (!algorithm) return digestFailure('unsupported-algorithm', `unsupported digest algorithm "${algName}"`);

  const qopRaw = p.get('qop');
  let qop: DigestQop | undefined;
  const cnonce = p.get('cnonce');
  const nc = p.get('nc');
  if (qopRaw !== undefined) {
    const q = qopRaw.trim().toLowerCase();
    if (q !== 'auth' && q !== 'auth-int') return digestFailure('unsupported-qop', `unsupported qop "${qopRaw}"`);
    qop = q;
    if (cnonce === undefined) return digestFailure('missing-parameter', 'qop without cnonce');
    if (nc === undefined) return digestFailure('missing-parameter', 'qop without nc');
    if (parseNonceCount(nc) === null) return digestFailure('malformed', `invalid nc "${nc}"`);
  } else if (isSessionAlgorithm(algorithm)) {
    return digestFailure('unsupported-qop', `${algorithm} requires qop`);
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
export function verifyAuthorization(headerValue: string, options: VerifyAuthorizationOptions): DigestResult<DigestCredentialsHeader> {
  const parsed = parseAuthorization(headerValue);
  if (!parsed.ok) return parsed;
  const c = parsed.value;
  if (typeof options.method !== 'string' || !isToken(options.method)) {
    return digestFailure('malformed', `invalid method ${JSON.stringify(options.method)}`);
  }
  const allowed = options.algorithms ?? DIGEST_ALGORITHMS;
  if (!allowed.includes(c.algorithm)) {
    return digestFailure('unsupported-algorithm', `digest algorithm ${c.algorithm} is not allowed`);
  }
  if (options.requireQop && c.qop === undefined) {
    return digestFailure('unsupported-qop', 'credentials without qop are not accepted');
  }
  if (options.realm !== undefined && c.realm !== options.realm) {
    return digestFailure('realm-mismatch', `realm "${c.realm}" does not match "${options.realm}"`);
  }
  if (options.username !== undefined && c.username !== options.username) {
    return digestFailure('username-mismatch', `username "${c.username}" does not match`);
  }
  if (options.uri !== undefined && c.uri !== options.uri) {
    return digestFailure('uri-mismatch', `digest uri "${c.uri}" does not match request URI "${options.uri}"`);
  }
  if (options.opaque !== undefined && c.opaque !== options.opaque) {
    return digestFailure('opaque-mismatch', 'opaque does not match');
  }
  if (options.nonce !== undefined) {
    // parseAuthorization has checked that nc, when present, is 8 hex digits.
    const nc = c.nc === undefined ? undefined : parseNonceCount(c.nc)!;
    const nonceOk = typeof options.nonce === 'string' ? c.nonce === options.nonce : options.nonce(c.nonce, nc);
    if (!nonceOk) return digestFailure('nonce-mismatch', 'nonce is unknown, stale or replayed');
  }
  const password = typeof options.password === 'string' ? options.password : options.password(c.username, c.realm);
  if (password === undefined) return digestFailure('unknown-user', `unknown user "${c.username}"`);

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
    return digestFailure('bad-response', 'digest response does not match');
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
