/**
 * The client side of SIP digest authentication (RFC 8760, RFC 7616, RFC 3261 §22.2–§22.3): picks
 * the challenge to answer per realm, builds the `Authorization` / `Proxy-Authorization` value, and
 * keeps the state of one credential set in DigestClient (nonce reuse with nc counting, stale=true,
 * rejected credentials).
 */
import {
  DIGEST_ALGORITHMS,
  assertHeaderSafe,
  assertMethod,
  authorizationHeaderName,
  digestFailure,
  formatAuthorization,
  isSessionAlgorithm,
  parseDigestChallenges,
  type AuthorizationHeaderName,
  type ChallengeStatus,
  type DigestAlgorithm,
  type DigestChallenge,
  type DigestError,
  type DigestErrorCode,
  type DigestResult,
} from './digest-header.ts';
import { baseAlgorithm, computeDigestResponse, generateCnonce } from './digest-hash.ts';
import { failed, ok } from './result.ts';

// ---------------------------------------------------------------------------
// Challenge selection (RFC 8760 §2.4)
// ---------------------------------------------------------------------------

export interface SelectChallengeOptions {
  /** Algorithms the caller accepts (default: all supported). */
  readonly algorithms?: readonly DigestAlgorithm[];
  /** Only consider challenges for this realm (exact match). */
  readonly realm?: string;
}

const ERROR_PRIORITY: readonly DigestErrorCode[] = ['unsupported-algorithm', 'unsupported-qop', 'missing-parameter', 'malformed', 'not-digest'];

/** The RFC 8760 §2.4 preference: a `-sess` variant ranks with its hash. */
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
    if (e) return failed(e);
  }
  if (realmSkipped > 0) {
    return digestFailure('realm-mismatch', `no challenge for realm "${options.realm}"`);
  }
  return digestFailure('no-challenge', 'no Digest challenge present');
}

// ---------------------------------------------------------------------------
// Authorization
// ---------------------------------------------------------------------------

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
  readonly #entries = new Map<string, CacheEntry>();
  readonly #algorithms: readonly DigestAlgorithm[];
  readonly #maxStaleRetries: number;
  readonly #makeCnonce: () => string;
  readonly #credentials: DigestCredentials;

  constructor(credentials: DigestCredentials, options: DigestClientOptions = {}) {
    assertHeaderSafe('username', credentials.username);
    if (typeof credentials.password !== 'string') throw new TypeError('password must be a string');
    if (credentials.realm !== undefined) assertHeaderSafe('realm', credentials.realm);
    this.#credentials = { ...credentials };
    this.#algorithms = options.algorithms ?? DIGEST_ALGORITHMS;
    this.#maxStaleRetries = options.maxStaleRetries ?? 3;
    this.#makeCnonce = options.cnonce ?? generateCnonce;
  }

  /** Realms with a remembered challenge. */
  get realms(): string[] {
    return [...new Set([...this.#entries.values()].map((e) => e.challenge.realm))];
  }

  /**
   * Handles a 401 (WWW-Authenticate) or 407 (Proxy-Authenticate) response to
   * `request`. `challengeValues` are the values of all challenge header
   * lines of the response. Throws only on programmer errors (bad status,
   * invalid method/URI).
   */
  handleChallenge(status: ChallengeStatus, challengeValues: string | readonly string[], request: DigestRequest): DigestChallengeOutcome {
    if (status !== 401 && status !== 407) throw new RangeError(`status must be 401 or 407, got ${String(status)}`);
    this.#checkRequest(request);
    const selected = selectDigestChallenges(challengeValues, {
      algorithms: this.#algorithms,
      ...(this.#credentials.realm !== undefined ? { realm: this.#credentials.realm } : {}),
    });
    if (!selected.ok) return { kind: 'error', error: selected.error };

    // Decide for every challenged realm before mutating any state.
    const updates: [string, CacheEntry][] = [];
    let stale = false;
    for (const challenge of selected.value) {
      const key = entryKey(status, challenge.realm);
      const prev = this.#entries.get(key);
      let staleStreak = 0;
      if (prev && prev.uses > 0) {
        const onlyDirectAnswer = prev.uses <= 1;
        if (challenge.stale) {
          staleStreak = onlyDirectAnswer ? prev.staleStreak + 1 : 1;
          if (staleStreak > this.#maxStaleRetries) {
            this.#entries.delete(key);
            return {
              kind: 'rejected',
              reason: 'too-many-stale',
              realm: challenge.realm,
              message: `server sent stale=true ${staleStreak} times in a row for realm "${challenge.realm}"`,
            };
          }
          stale = true;
        } else if (onlyDirectAnswer || challenge.nonce === prev.challenge.nonce) {
          this.#entries.delete(key);
          return {
            kind: 'rejected',
            reason: 'credentials-rejected',
            realm: challenge.realm,
            message: `${status} challenge without stale after answering nonce for realm "${challenge.realm}": credentials rejected`,
          };
        }
      }
      const sessCnonce = isSessionAlgorithm(challenge.algorithm) ? this.#makeCnonce() : undefined;
      updates.push([key, { status, challenge, uses: 0, staleStreak, ...(sessCnonce !== undefined ? { sessCnonce } : {}) }]);
    }
    for (const [key, entry] of updates) this.#entries.set(key, entry);
    return { kind: 'authorize', headers: this.authorize(request), stale };
  }

  /**
   * Credentials headers for all remembered challenges (pre-emptive
   * authorization), each with its nonce count incremented. Returns [] when
   * nothing is remembered. Entries whose nonce count is exhausted are dropped.
   */
  authorize(request: DigestRequest): DigestHeader[] {
    this.#checkRequest(request);
    const headers: DigestHeader[] = [];
    for (const [key, entry] of this.#entries) {
      const { challenge } = entry;
      if (entry.uses >= 0xffffffff) {
        this.#entries.delete(key);
        continue;
      }
      entry.uses++;
      const nc = challenge.qop === undefined ? undefined : entry.uses;
      const value = buildAuthorization({
        challenge,
        username: this.#credentials.username,
        password: this.#credentials.password,
        method: request.method,
        uri: request.uri,
        ...(nc !== undefined ? { nc, cnonce: entry.sessCnonce ?? this.#makeCnonce() } : {}),
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
      this.#entries.clear();
      return;
    }
    for (const [key, entry] of this.#entries) {
      if (entry.challenge.realm === realm) this.#entries.delete(key);
    }
  }

  #checkRequest(request: DigestRequest): void {
    assertMethod(request.method);
    assertHeaderSafe('uri', request.uri);
  }
}

function entryKey(status: ChallengeStatus, realm: string): string {
  return `${status}\u0000${realm}`;
}
