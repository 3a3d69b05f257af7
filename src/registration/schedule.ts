/**
 * When to refresh a registration and when to retry a failed one: pure functions, so the
 * schedule can be tested as a table (test/registration/schedule.test.ts).
 */
import { parseNameAddr } from '../sip/parse-address.ts';
import { parseExpires } from '../sip/parse-header.ts';
import { parseSipUri } from '../sip/uri.ts';

export interface RetryPolicy {
  /** Delay after the first failure. */
  baseMs: number;
  /** No delay exceeds this. */
  capMs: number;
  /** Fraction of the delay taken off at random (0.2: between 80% and 100% of it). */
  jitter: number;
}

/**
 * Delay before the next attempt after `failures` consecutive failures (1 = the first): the base
 * doubled per further failure, capped, then shortened by up to `jitter` of itself so that many
 * registrations failing together (a registrar outage) do not come back in one burst. A
 * registrar's Retry-After, when longer, wins (still within the cap).
 */
export function retryDelayMs(failures: number, policy: RetryPolicy, random: number, retryAfterSeconds: number | null = null): number {
  const doublings = Math.min(Math.max(failures, 1) - 1, 40);
  const exponential = Math.min(policy.capMs, policy.baseMs * 2 ** doublings);
  const jittered = Math.round(exponential * (1 - policy.jitter * clamp01(random)));
  if (retryAfterSeconds !== null && retryAfterSeconds * 1000 > jittered) return Math.min(policy.capMs, retryAfterSeconds * 1000);
  return jittered;
}

/** Share of the granted expiry after which a registration is refreshed: 45% to 50%, at random. */
export const REFRESH_SHARE = { max: 0.5, spread: 0.05 } as const;

/**
 * Delay from the moment a REGISTER was sent until its refresh is due: about half of what the
 * registrar granted (between 45% and 50%, so that thousands of registrations granted at once
 * spread out instead of refreshing in one burst), never under half a second.
 */
export function refreshDelayMs(grantedSeconds: number, random: number): number {
  const share = REFRESH_SHARE.max - REFRESH_SHARE.spread * clamp01(random);
  return Math.max(500, Math.round(grantedSeconds * 1000 * share));
}

/**
 * The expiry the registrar granted our binding (RFC 3261 §10.2.4): the `expires` parameter of
 * the response's Contact that is ours (or of its only Contact), else the Expires header, else
 * what we asked for.
 */
export function grantedExpiresSeconds(
  contacts: readonly string[],
  expiresHeader: string | undefined,
  ourContactUri: string,
  requestedSeconds: number,
): number {
  const ours = parseSipUri(ourContactUri);
  let onlyOne: number | null = null;
  for (const value of contacts) {
    const address = parseNameAddr(value);
    const raw = address?.params.get('expires');
    const expires = raw === undefined || raw === null ? null : parseExpires(raw);
    if (address === null || expires === null) continue;
    const uri = parseSipUri(address.uri);
    if (ours !== null && uri !== null && sameBinding(ours, uri)) return expires;
    if (contacts.length === 1) onlyOne = expires;
  }
  if (onlyOne !== null) return onlyOne;
  const header = expiresHeader === undefined ? null : parseExpires(expiresHeader);
  return header ?? requestedSeconds;
}

function sameBinding(a: NonNullable<ReturnType<typeof parseSipUri>>, b: NonNullable<ReturnType<typeof parseSipUri>>): boolean {
  return a.user === b.user && a.host.toLowerCase() === b.host.toLowerCase() && (a.port ?? 5060) === (b.port ?? 5060);
}

function clamp01(value: number): number {
  return Number.isFinite(value) ? Math.min(1, Math.max(0, value)) : 0;
}
