/**
 * Keyed signatures that let a stateless proxy recognise what it set up itself, on any instance
 * that holds the same key and after a restart:
 *
 * - Record-Route: every entry the proxy writes carries `dpt` (when it was signed, seconds since
 *   the epoch in base 36) and `dps`, an HMAC over the dialog's Call-ID, the caller's From tag,
 *   `dpt` and the other parameters the proxy relies on later (`dpr`, `dpcs`, and `dpm`/`dpmp`
 *   for an anchored dialog's media relay and profile). An in-dialog
 *   request names that entry in its Route; the caller's tag is its From tag (caller → callee) or
 *   its To tag (callee → caller), so both are tried. The To tag the callee adds later is not
 *   covered: it does not exist when the Record-Route is written.
 * - Branches: the proxy's Via branches end in a MAC of the rest and of where the response goes
 *   next (the previous hop, from the Via below ours), so a response whose top Via claims to be
 *   ours can be checked without a transaction (a stray 2xx retransmission), and one whose
 *   second Via was rewritten to aim elsewhere fails.
 *
 * HMAC-SHA256, truncated: 96 bits for routes, 64 for branches. Domain-separated inputs keep a
 * signature of one kind from passing as the other.
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { type SipRequest } from './message.ts';
import { parseNameAddr } from './parse-address.ts';
import type { SipUri } from './uri.ts';
import type { MediaSession } from './media-relay.ts';

/** Record-Route parameters: the signature, its time, and the two the proxy reads back. */
export const SIGNATURE_PARAM = 'dps';
export const SIGNED_AT_PARAM = 'dpt';
export const SIDE_PARAM = 'dpr';
export const CSEQ_OFFSET_PARAM = 'dpcs';
export const MEDIA_RELAY_PARAM = 'dpm';
export const MEDIA_PROFILE_PARAM = 'dpmp';

const ROUTE_MAC_BYTES = 12;
const BRANCH_MAC_BYTES = 8;
/** A signature made by an instance whose clock is ahead of ours by up to this much still verifies. */
const CLOCK_SKEW_SECONDS = 300;

/** The signing key for a shared secret: its own key, so a signature never reveals anything about the secret's other uses. */
export function deriveSigningKey(secret: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'dialplane sip dialog signatures', 32));
}

export interface DialogSignerOptions {
  /** How long a dialog's Record-Route stays valid (seconds): the longest call the edge relays. */
  maxDialogSeconds: number;
  /** Seconds since the epoch; tests may substitute it. */
  now?: () => number;
}

export class DialogSigner {
  readonly #key: Buffer;
  readonly #maxDialogSeconds: number;
  readonly #now: () => number;

  /** `key` is shared by every instance; without one, a random key valid for this process. */
  constructor(key: Buffer = randomBytes(32), options: DialogSignerOptions = { maxDialogSeconds: 86_400 }) {
    this.#key = key;
    this.#maxDialogSeconds = options.maxDialogSeconds;
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
  }

  /**
   * The `;dpt=…;dps=…` to append to a Record-Route URI that already carries `params` (e.g.
   * `;dpr=…;dpcs=1`, or empty), for a dialog identified by its Call-ID and the caller's From tag.
   */
  recordRouteParams(callId: string, callerTag: string, params: { side?: string; cseqOffset?: number; media?: MediaSession }): string {
    const signedAt = this.#now().toString(36);
    const offset = params.cseqOffset === undefined ? '' : String(params.cseqOffset);
    const mac = this.#routeMac(callId, callerTag, params.side ?? '', offset, params.media ?? null, signedAt);
    return `;${SIGNED_AT_PARAM}=${signedAt};${SIGNATURE_PARAM}=${mac}`;
  }

  /** Whether `uri` (our Route entry, or a strict-routed Request-URI) was signed for `request`'s dialog and has not expired. */
  verifyRoute(uri: SipUri, request: SipRequest): boolean {
    return this.callerTagHeader(uri, request) !== null;
  }

  /**
   * Which of `request`'s headers carries the tag the route was signed for, the caller's:
   * `from` when the caller sent it, `to` when the callee did; null when the route is not ours
   * for this dialog or has expired.
   */
  callerTagHeader(uri: SipUri, request: SipRequest): 'from' | 'to' | null {
    const mac = uri.params.get(SIGNATURE_PARAM);
    const signedAt = uri.params.get(SIGNED_AT_PARAM);
    const callId = request.headers.get('call-id');
    if (typeof mac !== 'string' || typeof signedAt !== 'string' || callId === undefined) return null;
    const signedSeconds = parseInt(signedAt, 36);
    const now = this.#now();
    if (!/^[0-9a-z]{1,10}$/.test(signedAt) || signedSeconds > now + CLOCK_SKEW_SECONDS || now - signedSeconds > this.#maxDialogSeconds) return null;
    const side = uri.params.get(SIDE_PARAM) ?? '';
    const offset = uri.params.get(CSEQ_OFFSET_PARAM) ?? '';
    const media = mediaSessionOf(uri);
    for (const name of ['from', 'to'] as const) {
      const tag = parseNameAddr(request.headers.get(name) ?? '')?.params.get('tag');
      if (typeof tag === 'string' && tag !== '' && sameText(mac, this.#routeMac(callId, tag, side, offset, media, signedAt))) return name;
    }
    return null;
  }

  /** `base` with our MAC appended: a branch `isOwnBranch` recognises for responses going to `previousHop`. */
  branch(base: string, previousHop: string): string {
    return `${base}.${this.#branchMac(base, previousHop)}`;
  }

  /** Whether a branch was made by `branch` with this key, for a response going to `previousHop`. */
  isOwnBranch(branch: string, previousHop: string): boolean {
    const dot = branch.lastIndexOf('.');
    return dot > 0 && sameText(branch.slice(dot + 1), this.#branchMac(branch.slice(0, dot), previousHop));
  }

  #routeMac(callId: string, callerTag: string, side: string, offset: string, media: MediaSession | null, signedAt: string): string {
    // The media fields are appended only when present, so routes signed before anchoring existed still verify.
    const mediaInput = media === null ? '' : `\nmedia\n${media.relay}\n${media.profile}`;
    return this.#mac(`route\n${callId}\n${callerTag}\n${side}\n${offset}\n${signedAt}${mediaInput}`, ROUTE_MAC_BYTES);
  }

  #branchMac(base: string, previousHop: string): string {
    return this.#mac(`branch\n${base}\n${previousHop}`, BRANCH_MAC_BYTES);
  }

  #mac(input: string, bytes: number): string {
    return createHmac('sha256', this.#key).update(input).digest().subarray(0, bytes).toString('base64url');
  }
}

/** The anchored dialog's media relay and profile named in one of our Record-Route URIs; null when it has none. */
export function mediaSessionOf(uri: SipUri): MediaSession | null {
  const relay = uri.params.get(MEDIA_RELAY_PARAM);
  const profile = uri.params.get(MEDIA_PROFILE_PARAM);
  return typeof relay === 'string' && relay !== '' && typeof profile === 'string' ? { relay, profile } : null;
}

function sameText(a: string, b: string): boolean {
  // Compared as bytes: a sender's non-ASCII MAC has as many characters but more bytes.
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}
