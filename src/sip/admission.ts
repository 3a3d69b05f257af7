/**
 * Who may use the proxy for what, decided for each new request before any state is kept for it
 * (the transaction layer asks before it creates a server transaction):
 *
 * - In-dialog requests (a To tag), ACKs and strict-routed requests travel on a Route the proxy
 *   signed (dialog-signer.ts); any other gets 403 (an ACK, nothing). The sender's address does not
 *   matter: whoever holds the dialog's signature is a party to it.
 * - Out-of-dialog requests go on only from trusted sources (trunks, agent runtimes). Anyone else
 *   gets one stateless answer, sent to the packet's source and nowhere else: 403, or 200 to an
 *   OPTIONS ping of the proxy itself. No server transaction, no 100 Trying, no retransmission,
 *   and once the source's token bucket is empty, nothing at all.
 * - A CANCEL rides on its INVITE's admission.
 */
import { createHash } from 'node:crypto';
import type { DialogSigner } from './dialog-signer.ts';
import { buildResponse, type SipRequest, type SipResponse } from './message.ts';
import { parseNameAddr } from './parse-address.ts';
import type { OwnAddresses } from './route-set.ts';
import type { MessageSource } from './transport.ts';
import { parseSipUri } from './uri.ts';

/** Who the proxy trusts, by source address. */
export interface SourcePolicy {
  /** A trunk or an agent runtime: its out-of-dialog requests are routed and its asserted identity believed. */
  isTrusted(address: string): boolean;
  /** Whether a request from an untrusted source may be answered; false drops it unanswered (a flood). */
  mayAnswer(address: string): boolean;
}

export const TRUST_EVERYONE: SourcePolicy = { isTrusted: () => true, mayAnswer: () => true };

/** Why a message was refused (a forged response is refused by the proxy itself, not here). */
export type RejectionReason = 'unauthenticated' | 'bad_signature' | 'flood' | 'forged_response';

export interface AdmissionOptions {
  addresses: OwnAddresses;
  signer: DialogSigner;
  sources: SourcePolicy;
  /** Whether a CANCEL names an INVITE server transaction that exists and came from where the CANCEL does. */
  hasInviteFor(cancel: SipRequest, source: MessageSource): boolean;
  /** Sends a stateless answer to `source` alone. */
  answer(response: SipResponse, source: MessageSource): void;
  rejected(reason: RejectionReason, source: MessageSource): void;
}

/** A To tag for a stateless answer: the same for every retransmission of a request (§8.2.6.2). */
function statelessTag(request: SipRequest): string {
  return createHash('sha1')
    .update(`${request.headers.get('call-id')}\n${request.headers.get('from')}`)
    .digest('base64url')
    .slice(0, 10);
}

export class Admission {
  readonly #options: AdmissionOptions;

  constructor(options: AdmissionOptions) {
    this.#options = options;
  }

  /** True lets the request in; false means it was answered statelessly or dropped. */
  admit(request: SipRequest, source: MessageSource): boolean {
    const { sources, signer, addresses } = this.#options;
    const trusted = sources.isTrusted(source.address);
    if (request.method === 'CANCEL' && (trusted || this.#options.hasInviteFor(request, source))) return true;
    if (this.#needsSignature(request)) {
      const ours = addresses.routeThatBroughtIt(request);
      if (ours !== null && signer.verifyRoute(ours, request)) return true;
      this.#refuse(request, source, trusted, 'bad_signature', 403);
      return false;
    }
    if (trusted) return true;
    const ping = request.method === 'OPTIONS' && addresses.isOwnUri(parseSipUri(request.uri)) && !request.headers.has('route');
    this.#refuse(request, source, false, 'unauthenticated', ping ? 200 : 403);
    return false;
  }

  /** In-dialog requests, ACKs and strict-routed requests travel on a Route we signed. */
  #needsSignature(request: SipRequest): boolean {
    if (request.method === 'ACK') return true;
    if (parseNameAddr(request.headers.get('to') ?? '')?.params.has('tag') === true) return true;
    return this.#options.addresses.isOwnUri(parseSipUri(request.uri)) && request.headers.has('route');
  }

  /** Answers a refused request once (an ACK gets nothing); untrusted sources only while their bucket lasts. */
  #refuse(request: SipRequest, source: MessageSource, trusted: boolean, reason: RejectionReason, status: number): void {
    if (!trusted && !this.#options.sources.mayAnswer(source.address)) {
      this.#options.rejected('flood', source);
      return;
    }
    this.#options.rejected(reason, source);
    if (request.method !== 'ACK') this.#options.answer(buildResponse(request, status, { toTag: statelessTag(request), compactVias: true }), source);
  }
}
