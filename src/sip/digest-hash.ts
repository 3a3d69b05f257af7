/**
 * Digest hashing (RFC 7616 §3.4.1–§3.4.3, RFC 8760 for SIP, RFC 2617): H, HA1, HA2 and the
 * `response` value for MD5, SHA-256 and SHA-512-256 and their `-sess` variants, and the client
 * nonce. Strings are hashed as UTF-8; qop `auth-int` hashes the request body (empty by default).
 */
import { createHash, randomBytes } from 'node:crypto';
import { formatNonceCount, isSessionAlgorithm, type DigestAlgorithm, type DigestQop } from './digest-header.ts';

const NODE_HASH: Readonly<Record<string, string>> = {
  MD5: 'md5',
  'SHA-256': 'sha256',
  // SHA-512/256 (FIPS 180-4), not a truncated SHA-512.
  'SHA-512-256': 'sha512-256',
};

/** The hash family of an algorithm, without the `-sess` suffix. */
export function baseAlgorithm(algorithm: DigestAlgorithm): 'MD5' | 'SHA-256' | 'SHA-512-256' {
  return algorithm.replace(/-sess$/, '') as 'MD5' | 'SHA-256' | 'SHA-512-256';
}

/** H(data) as lower-case hex, using the algorithm's hash function (UTF-8 for strings). */
export function digestHash(algorithm: DigestAlgorithm, data: string | Uint8Array): string {
  const hash = createHash(NODE_HASH[baseAlgorithm(algorithm)]);
  if (typeof data === 'string') hash.update(data, 'utf8');
  else hash.update(data);
  return hash.digest('hex');
}

/** A fresh random client nonce (128 bits, hex). */
export function generateCnonce(): string {
  return randomBytes(16).toString('hex');
}

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
  return digestHash(input.algorithm, `${ha1}:${input.nonce}:${nc}:${input.cnonce}:${input.qop}:${ha2}`);
}
