/**
 * Rewritten dialogs. A forward decision may replace the caller's From (an outbound call's caller
 * ID) and answer the next hop's digest challenge. Answering re-sends the INVITE with CSeq + 1, so
 * from then on the two legs number the caller's requests differently. The proxy keeps no state
 * per dialog: what it needs later travels in its Record-Route, signed (dialog-signer.ts): `dpr`,
 * which side is the caller's, and `dpcs`, the CSeq offset. Every CSeq reference in the caller's
 * in-dialog requests (CSeq, and the CSeq number in a PRACK's RAck, RFC 3262 §7.2) moves by the
 * offset on the way to the callee, and responses go back to the caller with its own From and CSeq.
 * The callee's requests pass as they are: their numbers are the callee's own.
 *
 * The proxy calls in at a few points: `new RewrittenRequest` when it forwards a rewritten
 * initial request, `retry` when a challenge comes back, `cseqOffset` and `side` when it writes
 * its Record-Route, `restoreUpstream` for each response it relays, and `adjustCallerSide` for
 * each in-dialog request. Authentication is a helper above the transaction core (as sipgo's
 * digest retry is), not part of it.
 */
import { createHash } from 'node:crypto';
import { DigestClient } from './digest-client.ts';
import { CSEQ_OFFSET_PARAM, SIDE_PARAM } from './dialog-signer.ts';
import { cloneMessage, type SipHeaders, type SipRequest, type SipResponse } from './message.ts';
import { formatNameAddr, parseNameAddr } from './parse-address.ts';
import { parseCSeq } from './parse-header.ts';
import { parseUri, type SipUri } from './uri.ts';

/** Digest re-sends per INVITE (a 401 then a 407 from a second proxy is the most a trunk needs). */
export const MAX_AUTH_ROUNDS = 2;
const UINT32_MAX = 0xffffffff;

/** What a forward decision asks to rewrite. */
export interface Rewrite {
  /** Replaces From's URI and display name (the tag and other parameters are kept). */
  from?: { uri: string; displayName: string | null };
  /** Answers a 401/407 to the forwarded INVITE; a null password answers nothing. */
  credentials?: { username: string; password: string | null };
}

/** The `dpr` marker of a From tag: short, URI-safe, not the tag itself. */
export function sideMarker(tag: string): string {
  return createHash('sha1').update(tag).digest('base64url').slice(0, 12);
}

/** Moves every CSeq reference of a request by `delta`: its CSeq, and in a PRACK the CSeq number its RAck names. */
export function shiftCSeqReferences(headers: SipHeaders, delta: number): void {
  if (delta === 0) return;
  const cseq = parseCSeq(headers.get('cseq') ?? '');
  if (cseq === null) return;
  headers.set('cseq', `${Math.min(cseq.seq + delta, UINT32_MAX)} ${cseq.method}`);
  if (cseq.method !== 'PRACK') return;
  // RAck: response-num SP CSeq-num SP Method (RFC 3262 §7.2).
  const rack = /^\s*(\d{1,10})\s+(\d{1,10})\s+(\S+)\s*$/.exec(headers.get('rack') ?? '');
  if (rack === null) return;
  headers.set('rack', `${rack[1]} ${Math.min(Number(rack[2]) + delta, UINT32_MAX)} ${rack[3]}`);
}

/** A rewritten initial request, from the forward decision until its final response. */
export class RewrittenRequest {
  /** The caller's `dpr` marker; null when its From has no tag. */
  readonly side: string | null;
  readonly #digest: DigestClient | null;
  /** Challenges answered so far: the CSeq offset between the legs. */
  #authRounds = 0;

  /** Rewrites the copy about to be forwarded. Throws when its From or the new From URI is malformed. */
  constructor(forwarded: SipRequest, rewrite: Rewrite) {
    const from = parseNameAddr(forwarded.headers.get('from') ?? '');
    if (from === null) throw new Error('From is missing or malformed');
    const tag = from.params.get('tag');
    if (rewrite.from !== undefined) {
      if (parseUri(rewrite.from.uri) === null) throw new Error(`From URI is not a URI: ${rewrite.from.uri}`);
      forwarded.headers.set('from', formatNameAddr({ displayName: rewrite.from.displayName, uri: rewrite.from.uri, params: from.params }));
    }
    const { credentials } = rewrite;
    this.side = typeof tag === 'string' && tag !== '' ? sideMarker(tag) : null;
    this.#digest =
      credentials !== undefined && credentials.password !== null && forwarded.method === 'INVITE'
        ? new DigestClient({ username: credentials.username, password: credentials.password })
        : null;
  }

  /** The CSeq offset our Record-Route carries (`dpcs`), once a challenge was answered. */
  get cseqOffset(): number | undefined {
    return this.#authRounds > 0 ? this.#authRounds : undefined;
  }

  /**
   * A 401/407 to `forwarded`: the request to send again with digest answers (without our Via,
   * CSeq + 1, old answers replaced), or null when the challenge goes to the caller as it is (no
   * credentials, rounds used up, or nothing to answer with). May throw on a broken challenge.
   */
  retry(response: SipResponse, forwarded: SipRequest): SipRequest | null {
    if (this.#digest === null || this.#authRounds >= MAX_AUTH_ROUNDS) return null;
    const status = response.status as 401 | 407;
    const outcome = this.#digest.handleChallenge(status, response.headers.getAll(status === 407 ? 'proxy-authenticate' : 'www-authenticate'), {
      method: forwarded.method,
      uri: forwarded.uri,
    });
    if (outcome.kind !== 'authorize' || outcome.headers.length === 0) return null;
    this.#authRounds++;
    const retry = cloneMessage(forwarded);
    retry.headers.removeFirst('via');
    shiftCSeqReferences(retry.headers, 1);
    retry.headers.delete('authorization');
    retry.headers.delete('proxy-authorization');
    for (const header of outcome.headers) retry.headers.append(header.name, header.value);
    return retry;
  }
}

/** A response of a rewritten dialog goes to the caller with the From and CSeq its request came with. */
export function restoreUpstream(response: SipResponse, received: SipRequest): void {
  for (const name of ['from', 'cseq']) {
    const value = received.headers.get(name);
    if (value !== undefined) response.headers.set(name, value);
  }
}

/**
 * An in-dialog request of a rewritten dialog from the caller's side (its From tag matches the
 * `dpr` of the Route that brought it, `ours`): its CSeq references move by `dpcs`. True when it
 * was one, so that its responses get the caller's CSeq back.
 */
export function adjustCallerSide(forwarded: SipRequest, ours: SipUri | null): boolean {
  const marker = ours?.params.get(SIDE_PARAM);
  if (typeof marker !== 'string') return false;
  const tag = parseNameAddr(forwarded.headers.get('from') ?? '')?.params.get('tag');
  if (typeof tag !== 'string' || sideMarker(tag) !== marker) return false;
  const offset = Number(ours?.params.get(CSEQ_OFFSET_PARAM) ?? 0);
  if (Number.isInteger(offset) && offset > 0 && offset <= MAX_AUTH_ROUNDS) shiftCSeqReferences(forwarded.headers, offset);
  return true;
}
