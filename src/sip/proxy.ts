/**
 * Stateful, record-routing SIP proxy core (RFC 3261 §16). It knows nothing
 * about numbers or agents: out-of-dialog requests are handed to a router
 * callback that either rejects them or names a target; everything else
 * (in-dialog requests, ACK, CANCEL, responses) is handled here.
 *
 * Policy choices:
 * - Admission (admission.ts) decides, before any state is kept, which
 *   requests go on: trusted sources' out-of-dialog requests, and in-dialog
 *   requests on a Route we signed; strangers get one stateless answer.
 * - Every admitted out-of-dialog request goes to the router, except OPTIONS
 *   addressed to the proxy itself (answered 200). The router sees Route
 *   headers left after ours are popped, but a forward decision replaces them:
 *   the target is authoritative, so a pre-loaded Route cannot steer a call
 *   past the router (toll fraud). The router may answer 405 for methods it refuses.
 * - `privateHeaders` never cross the proxy in either direction (the router may
 *   add them back on an initial request), and P-Asserted-Identity and
 *   Remote-Party-ID from an untrusted source are removed (RFC 3325 §5).
 * - A response is relayed only when its top Via is a branch we made: it
 *   matches a client transaction, or (stray 2xx) its branch carries our MAC.
 * - A branch that times out gets 408 upstream; one the transport cannot
 *   reach gets 503; either becomes 487 when the caller had cancelled.
 * - One target per request: no forking, so the first final response is the
 *   best one (§16.7 step 6 reduces to forwarding it).
 * - Loop detection (loop-detection.ts, §16.3 item 4): our branches start with
 *   a hash of the request without its top Via.
 * - Route handling and the next hop are in route-set.ts (no DNS SRV/NAPTR:
 *   the URI's host, port and transport parameter; never `maddr`).
 * - A forward decision with `from` or `credentials` makes a rewritten dialog
 *   (dialog-rewrite.ts): the caller ID replaced, digest challenges answered,
 *   CSeq references kept consistent across the two legs without per-dialog state.
 * - Header names in `removeHeaders` and `privateHeaders` may end in `*`
 *   (prefix match, e.g. `X-Dialplane-*`).
 * - A forward decision with `media` anchors the call's media (media-relay.ts): every SDP of the
 *   dialog goes through the relay before it is relayed, in order per transaction; the relay and
 *   the profile travel in our signed Record-Route, so any instance handles the later requests.
 */
import { Admission, TRUST_EVERYONE, type RejectionReason, type SourcePolicy } from './admission.ts';
import type { ClientTransactionHandler } from './client-transaction.ts';
import { CSEQ_OFFSET_PARAM, DialogSigner, MEDIA_PROFILE_PARAM, MEDIA_RELAY_PARAM, mediaSessionOf, SIDE_PARAM } from './dialog-signer.ts';
import { carriesSdp, isRefusal, type MediaRelay, type MediaSession } from './media-relay.ts';
import { ackSdpStep, dialogOf, reasonHeader, requestSdpStep, responseSdpStep } from './offer-answer.ts';
import { adjustCallerSide, restoreUpstream, RewrittenRequest } from './dialog-rewrite.ts';
import { UNSAFE_TEXT } from './lexical.ts';
import { buildResponse, cloneMessage, type SipMessage, type SipRequest, type SipResponse } from './message.ts';
import { parseNameAddr } from './parse-address.ts';
import { parseMaxForwards } from './parse-header.ts';
import { parseVia } from './parse-via.ts';
import { OwnAddresses, prepareNextHop } from './route-set.ts';
import type { ServerTransaction } from './server-transaction.ts';
import { BRANCH_MAGIC_COOKIE, createCancel, createTag, toError, type SipSender, type TransactionTimers } from './transaction-base.ts';
import { TransactionLayer } from './transaction.ts';
import { responseHop, type Destination, type MessageSource, type TransportProtocol } from './transport.ts';
import { parseSipUri, parseUri, uriScheme } from './uri.ts';
import { ASSERTED_IDENTITY_HEADERS, removeHeaderPatterns } from './header-policy.ts';
import { isLoop, requestHash } from './loop-detection.ts';
import { ResponseContext } from './response-context.ts';
import type { InitialRequestRecord, RouteDecision, Router } from './router.ts';

/** The transport as the proxy uses it: the transaction layer's, plus answers that go only to the sender. */
export interface ProxyTransport extends SipSender {
  sendToSource(message: SipMessage, source: MessageSource): Promise<void>;
}

export interface SipProxyOptions {
  transport: ProxyTransport;
  /** Public address (IP or hostname) written in Via and Record-Route. */
  host: string;
  /** Public port written in Via and Record-Route. */
  port: number;
  /** Public port for TLS legs (default 5061). */
  tlsPort?: number;
  /** Other addresses that also mean this proxy: `host` (with `port`) or `host:port` (e.g. other instances behind one name). */
  aliases?: readonly string[];
  /** Signs our Record-Route entries and branches; default: a random key, valid for this process only. */
  signer?: DialogSigner;
  /** Who is trusted; default: every source. */
  sources?: SourcePolicy;
  /** Headers (a trailing `*` matches a prefix) removed from every request forwarded and response relayed. */
  privateHeaders?: readonly string[];
  /** Called for every message refused at admission. */
  onRejected?: (reason: RejectionReason, source: MessageSource) => void;
  timers?: Partial<TransactionTimers>;
  /** Timer C (§16.6 step 11): how long an INVITE may go without a final response after its last provisional (default 181 s). */
  timerC?: number;
  route: Router;
  /** Called once per routed or rejected out-of-dialog INVITE, when its final response has gone upstream. */
  onInitialRequestDone?: (record: InitialRequestRecord) => void;
  /** Called for each in-dialog request the proxy forwards (a BYE ends a call). */
  onInDialogRequest?: (request: SipRequest) => void;
  /** Anchors the media of calls whose decision asks for it. */
  media?: MediaRelay;
  /** Router failures, unsendable stateless messages, callback exceptions; defaults to process.emitWarning. */
  onError?: (error: Error) => void;
}

export interface ProxyStats {
  activeServerTransactions: number;
  activeClientTransactions: number;
  /** Requests sent downstream, statefully or (ACK) statelessly. */
  requestsForwarded: number;
  /** Responses relayed upstream, through a server transaction or statelessly. */
  responsesForwarded: number;
  /** Final responses the proxy generated itself (rejections, validation failures, timeouts). */
  localResponses: number;
}

/** §16.6 step 11: Timer C MUST be greater than 3 minutes. */
const DEFAULT_TIMER_C = 181_000;
const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK, REFER, SUBSCRIBE, NOTIFY, MESSAGE';
/** Out-of-dialog methods that create dialogs, so the proxy stays on the path (§16.6 step 4). */
const DIALOG_CREATING_METHODS = new Set(['INVITE', 'SUBSCRIBE', 'REFER', 'NOTIFY']);

/** Responses to a CANCEL we send need no action: the INVITE's own response settles the call. */
const IGNORE_CANCEL_OUTCOME: ClientTransactionHandler = {
  onResponse: () => undefined,
  onTimeout: () => undefined,
  onTransportError: () => undefined,
};

function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown }).then === 'function';
}

export class SipProxy {
  readonly transactions: TransactionLayer;
  readonly #options: SipProxyOptions;
  readonly #addresses: OwnAddresses;
  readonly #signer: DialogSigner;
  readonly #sources: SourcePolicy;
  readonly #admission: Admission;
  readonly #privateHeaders: readonly string[];
  readonly #timerC: number;
  /** Forwarded or routing INVITEs by server transaction, for CANCEL. */
  readonly #invites = new Map<ServerTransaction, ResponseContext>();
  /** While draining: the Retry-After of the 503 that new out-of-dialog requests get. */
  #drainRetryAfter: number | null = null;
  /** Called once no INVITE awaits its final response. */
  #whenIdle: Array<() => void> = [];
  #branchCounter = 0;
  #requestsForwarded = 0;
  #responsesForwarded = 0;
  #localResponses = 0;
  #closed = false;

  constructor(options: SipProxyOptions) {
    this.#options = options;
    this.#addresses = new OwnAddresses(options.host, options.port, options.aliases, options.tlsPort);
    this.#signer = options.signer ?? new DialogSigner();
    this.#sources = options.sources ?? TRUST_EVERYONE;
    this.#privateHeaders = options.privateHeaders ?? [];
    this.#timerC = options.timerC ?? DEFAULT_TIMER_C;
    this.#admission = new Admission({
      addresses: this.#addresses,
      signer: this.#signer,
      sources: this.#sources,
      // The CANCEL must come from where its INVITE came from: knowing a branch is not enough.
      hasInviteFor: (cancel, source) => this.transactions.findInviteServerTransaction(cancel)?.source.address === source.address,
      answer: (response, source) => {
        this.#localResponses++;
        options.transport.sendToSource(response, source).catch((error: unknown) => this.#reportError(error));
      },
      rejected: (reason, source) => this.#rejected(reason, source),
    });
    this.transactions = new TransactionLayer({
      transport: options.transport,
      timers: options.timers,
      admit: (request, source) => this.#admission.admit(request, source),
      onRequest: (request, source, transaction) => this.#onRequest(request, source, transaction),
      onStrayResponse: (response, source) => this.#onStrayResponse(response, source),
      onServerTransportError: (_transaction, error) => this.#reportError(error),
      onError: (error) => this.#reportError(error),
    });
  }

  get stats(): ProxyStats {
    return {
      activeServerTransactions: this.transactions.serverTransactionCount,
      activeClientTransactions: this.transactions.clientTransactionCount,
      requestsForwarded: this.#requestsForwarded,
      responsesForwarded: this.#responsesForwarded,
      localResponses: this.#localResponses,
    };
  }

  /** Entry point for every inbound message (wire SipTransportLayer's onMessage here). */
  receive(message: SipMessage, source: MessageSource): void {
    this.transactions.receive(message, source);
  }

  /**
   * Stops taking new calls: out-of-dialog requests get 503 with Retry-After from now on, while
   * in-dialog requests and the INVITEs already under way go on. Resolves when no INVITE awaits
   * its final response any more, or after `timeoutMs`.
   */
  drain(timeoutMs: number, retryAfterSeconds: number): Promise<void> {
    this.#drainRetryAfter = retryAfterSeconds;
    if (this.#invites.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#whenIdle.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Stops all timers and forgets every transaction. The transport is the caller's to close. */
  close(): void {
    this.#closed = true;
    for (const context of this.#invites.values()) context.clearTimer();
    this.#invites.clear();
    this.transactions.close();
  }

  #rejected(reason: RejectionReason, source: MessageSource): void {
    try {
      this.#options.onRejected?.(reason, source);
    } catch (error) {
      this.#reportError(error);
    }
  }

  // -------------------------------------------------------------------------
  // Requests

  #onRequest(request: SipRequest, source: MessageSource, transaction: ServerTransaction | null): void {
    if (transaction === null) {
      this.#forwardAck(request, source);
      return;
    }
    if (request.method === 'CANCEL') {
      this.#onCancel(request, transaction);
      return;
    }

    // §16.3 validation.
    if (parseUri(request.uri) === null) {
      const scheme = uriScheme(request.uri);
      this.#reply(transaction, scheme === 'sip' || scheme === 'sips' || scheme === 'tel' ? 400 : 416);
      return;
    }
    const maxForwards = request.headers.get('max-forwards');
    if (maxForwards !== undefined && parseMaxForwards(maxForwards) === 0) {
      if (request.method === 'OPTIONS') this.#replyOptions(transaction);
      else this.#reply(transaction, 483);
      return;
    }
    const hash = requestHash(request);
    if (isLoop(request, hash, this.#addresses)) {
      this.#reply(transaction, 482);
      return;
    }
    const proxyRequire = request.headers.getAll('proxy-require');
    if (proxyRequire.length > 0) {
      this.#reply(transaction, 420, [['Unsupported', proxyRequire.join(', ')]]);
      return;
    }

    const forwarded = cloneMessage(request);
    const route = this.#addresses.processRoute(forwarded);
    if (route === null) {
      this.#reply(transaction, 400);
      return;
    }
    const to = request.headers.get('to');
    const inDialog = to !== undefined && parseNameAddr(to)?.params.has('tag') === true;

    if (route.addressedToUs && !forwarded.headers.has('route') && request.method === 'OPTIONS') {
      this.#replyOptions(transaction);
      return;
    }

    const context = new ResponseContext(request, source, transaction, hash, !inDialog && request.method === 'INVITE' ? new Date() : null);
    if (context.isInvite) {
      this.#invites.set(transaction, context);
      // §16.2: answer at once so the caller stops retransmitting while we route and forward.
      transaction.respond(buildResponse(request, 100));
    }
    if (inDialog) {
      if (adjustCallerSide(forwarded, route.ours)) context.restoreUpstream = true;
      this.#removeUntrustedHeaders(forwarded, source.address);
      const media = route.ours === null || this.#options.media === undefined ? null : mediaSessionOf(route.ours);
      if (media === null) this.#forward(context, forwarded, false);
      else this.#forwardAnchored(context, forwarded, media, this.#signer.callerTagHeader(route.ours!, request) === 'from');
      this.#options.onInDialogRequest?.(request);
    } else {
      this.#routeInitial(context, forwarded);
    }
  }

  #routeInitial(context: ResponseContext, forwarded: SipRequest): void {
    if (this.#drainRetryAfter !== null) {
      this.#applyDecision(context, forwarded, { action: 'reject', status: 503, headers: [['Retry-After', String(this.#drainRetryAfter)]] });
      return;
    }
    let result: RouteDecision | Promise<RouteDecision>;
    try {
      result = this.#options.route(forwarded, context.source);
    } catch (error) {
      this.#routerFailed(context, forwarded, error);
      return;
    }
    if (isPromiseLike(result)) {
      result.then(
        (decision) => this.#applyDecision(context, forwarded, decision),
        (error: unknown) => this.#routerFailed(context, forwarded, error),
      );
    } else {
      this.#applyDecision(context, forwarded, result);
    }
  }

  #routerFailed(context: ResponseContext, forwarded: SipRequest, error: unknown): void {
    this.#reportError(error);
    this.#applyDecision(context, forwarded, { action: 'reject', status: 500 });
  }

  #applyDecision(context: ResponseContext, forwarded: SipRequest, decision: RouteDecision): void {
    if (this.#closed) return;
    context.decision = decision;
    if (context.finalStatus !== 0) {
      // Cancelled (487 sent) or the proxy closed while the router was working.
      this.#record(context);
      return;
    }
    if (decision.action === 'reject') {
      const status = Number.isInteger(decision.status) && decision.status >= 300 && decision.status <= 699 ? decision.status : 500;
      if (status !== decision.status) this.#reportError(new Error(`router rejected with invalid status ${decision.status}`));
      // A reason phrase that cannot be serialized would lose the response; the standard one is used instead.
      const reason = decision.reason !== undefined && !UNSAFE_TEXT.test(decision.reason) ? decision.reason : undefined;
      this.#finalUpstream(context, status, reason, decision.headers);
      return;
    }
    if (parseSipUri(decision.target) === null) {
      this.#reportError(new Error(`router target is not a SIP URI: ${decision.target}`));
      this.#finalUpstream(context, 500);
      return;
    }
    try {
      forwarded.uri = decision.target;
      forwarded.headers.delete('route');
      removeHeaderPatterns(forwarded.headers, this.#privateHeaders);
      removeHeaderPatterns(forwarded.headers, decision.removeHeaders ?? []);
      for (const [name, value] of decision.addHeaders ?? []) forwarded.headers.append(name, value);
      if (decision.from !== undefined || decision.credentials !== undefined) {
        context.rewrite = new RewrittenRequest(forwarded, decision);
        context.restoreUpstream = true;
      }
    } catch (error) {
      this.#reportError(error);
      this.#finalUpstream(context, 500);
      return;
    }
    context.untried = [...(decision.destinations ?? [])];
    const relay = this.#options.media;
    if (decision.media === undefined || relay === undefined || !context.isInvite) {
      this.#forward(context, forwarded, DIALOG_CREATING_METHODS.has(forwarded.method));
      return;
    }
    relay.startCall(forwarded, decision.media).then(
      (started) => {
        if (this.#closed || context.finalStatus !== 0) {
          // Cancelled while the relay was asked: its session goes too.
          if (started !== null && !isRefusal(started)) relay.endCall(started, dialogOf(forwarded, true), false);
          return;
        }
        if (isRefusal(started)) {
          this.#finalUpstream(context, started.status, undefined, [reasonHeader(started)]);
          return;
        }
        context.media = started;
        this.#forward(context, forwarded, true);
      },
      (error: unknown) => {
        this.#reportError(error);
        this.#finalUpstream(context, 500);
      },
    );
  }

  /**
   * An in-dialog request of an anchored dialog: a BYE frees the media (and goes on at once);
   * an offer (or a PRACK's answer) is rewritten through the relay first, or refused with its status.
   */
  #forwardAnchored(context: ResponseContext, forwarded: SipRequest, media: MediaSession, fromCaller: boolean): void {
    const relay = this.#options.media!;
    context.media = media;
    context.fromCaller = fromCaller;
    if (forwarded.method === 'BYE') relay.endCall(media, dialogOf(forwarded, fromCaller), true);
    const step = requestSdpStep(forwarded, fromCaller);
    if (step === null) {
      this.#forward(context, forwarded, false);
      return;
    }
    relay.rewrite(forwarded, media, step).then(
      (refusal) => {
        if (refusal === null) this.#forward(context, forwarded, false);
        else this.#finalUpstream(context, refusal.status, undefined, [reasonHeader(refusal)]);
      },
      (error: unknown) => {
        this.#reportError(error);
        this.#finalUpstream(context, 500);
      },
    );
  }

  /** What crosses in no direction, and what an untrusted source may not assert. */
  #removeUntrustedHeaders(message: SipMessage, sourceAddress: string | null): void {
    removeHeaderPatterns(message.headers, this.#privateHeaders);
    if (sourceAddress === null || !this.#sources.isTrusted(sourceAddress)) removeHeaderPatterns(message.headers, ASSERTED_IDENTITY_HEADERS);
  }

  /** §16.6: forward the prepared copy through a new client transaction. */
  #forward(context: ResponseContext, request: SipRequest, recordRoute: boolean): void {
    const nextHop = prepareNextHop(request);
    if (typeof nextHop === 'number') {
      this.#finalUpstream(context, nextHop);
      return;
    }
    const destination = context.untried.shift() ?? nextHop;
    if (recordRoute) this.#addRecordRoute(context, request, destination.transport);
    this.#sendBranch(context, request, destination);
  }

  #addRecordRoute(context: ResponseContext, request: SipRequest, transport: TransportProtocol): void {
    const params = this.#recordRouteParams(context);
    context.recordRouted = 1;
    // RFC 5658: when the legs differ in transport, one entry per leg; the downstream-facing one on top.
    if (context.source.transport !== transport) {
      request.headers.prepend('record-route', this.#addresses.recordRoute(context.source.transport, params));
      context.recordRouted = 2;
    }
    request.headers.prepend('record-route', this.#addresses.recordRoute(transport, params));
  }

  /** Our Record-Route parameters for the context's dialog: `dpr` and `dpcs` when rewritten, and the signature over them. */
  #recordRouteParams(context: ResponseContext): string {
    const { request } = context;
    const side = context.rewrite?.side ?? null;
    const cseqOffset = context.rewrite?.cseqOffset;
    const callerTag = parseNameAddr(request.headers.get('from') ?? '')?.params.get('tag') ?? '';
    const media = context.media ?? undefined;
    const signature = this.#signer.recordRouteParams(request.headers.get('call-id') ?? '', callerTag, { side: side ?? undefined, cseqOffset, media });
    const mediaParams = media === undefined ? '' : `;${MEDIA_RELAY_PARAM}=${media.relay};${MEDIA_PROFILE_PARAM}=${media.profile}`;
    return `${side === null ? '' : `;${SIDE_PARAM}=${side}`}${cseqOffset === undefined ? '' : `;${CSEQ_OFFSET_PARAM}=${cseqOffset}`}${mediaParams}${signature}`;
  }

  /** Sends `request` (Via added here) on a new client transaction for the context. */
  #sendBranch(context: ResponseContext, request: SipRequest, destination: Destination): void {
    const branch = this.#signer.branch(`${BRANCH_MAGIC_COOKIE}${context.hash}.${(this.#branchCounter++).toString(36)}`, responseHop(request));
    request.headers.prepend(
      'via',
      `SIP/2.0/${destination.transport.toUpperCase()} ${this.#addresses.hostPort(destination.transport)};branch=${branch};rport`,
    );
    context.forwarded = request;
    try {
      context.client = this.transactions.sendRequest(request, destination, {
        onResponse: (response) => this.#onBranchResponse(context, response),
        onTimeout: () => this.#onBranchFailure(context, 408),
        onTransportError: () => this.#onBranchFailure(context, 503),
      });
    } catch (error) {
      this.#reportError(error);
      this.#finalUpstream(context, 500);
      return;
    }
    this.#requestsForwarded++;
    if (context.isInvite) context.timer = this.#timer(this.#timerC, () => this.#onTimerC(context));
  }

  /** ACK for a 2xx (admitted: it carried our signed Route): forwarded statelessly along the route set (§16.11). */
  #forwardAck(request: SipRequest, source: MessageSource): void {
    const forwarded = cloneMessage(request);
    const route = this.#addresses.processRoute(forwarded);
    if (route === null || !route.routedViaUs) return;
    const maxForwards = forwarded.headers.get('max-forwards');
    if (maxForwards !== undefined && parseMaxForwards(maxForwards) === 0) return;
    adjustCallerSide(forwarded, route.ours);
    this.#removeUntrustedHeaders(forwarded, source.address);
    const destination = prepareNextHop(forwarded);
    if (typeof destination === 'number') return;
    const media = route.ours === null || this.#options.media === undefined ? null : mediaSessionOf(route.ours);
    // Only an ACK with SDP (a late offer's answer) waits for the relay; only then is its side worked out.
    const step =
      media === null || !carriesSdp(forwarded) ? null : ackSdpStep(forwarded, this.#signer.callerTagHeader(route.ours!, request) === 'from');
    if (media !== null && step !== null) {
      this.#options.media!.rewrite(forwarded, media, step).then(
        (refusal) => {
          if (refusal !== null) this.#reportError(new Error(`media relay refused an ACK's answer: ${refusal.reason}`));
          this.#sendAck(request, forwarded, destination);
        },
        (error: unknown) => this.#reportError(error),
      );
      return;
    }
    this.#sendAck(request, forwarded, destination);
  }

  #sendAck(request: SipRequest, forwarded: SipRequest, destination: Destination): void {
    // Deterministic branch, so a retransmitted ACK gets the same one (§16.11).
    const incomingBranch = parseVia(request.headers.get('via') ?? '')?.params.get('branch') ?? '';
    const branch = this.#signer.branch(`${BRANCH_MAGIC_COOKIE}${requestHash(request, incomingBranch)}`, responseHop(forwarded));
    forwarded.headers.prepend(
      'via',
      `SIP/2.0/${destination.transport.toUpperCase()} ${this.#addresses.hostPort(destination.transport)};branch=${branch};rport`,
    );
    this.#requestsForwarded++;
    this.#options.transport.send(forwarded, destination).catch((error: unknown) => this.#reportError(error));
  }

  /** §16.10: answer the CANCEL, then cancel the branch of the INVITE it names. */
  #onCancel(cancel: SipRequest, transaction: ServerTransaction): void {
    const invite = this.transactions.findInviteServerTransaction(cancel);
    if (invite === null) {
      this.#reply(transaction, 481);
      return;
    }
    this.#reply(transaction, 200);
    const context = this.#invites.get(invite);
    if (context === undefined || context.finalStatus !== 0 || context.cancelled) return;
    context.cancelled = true;
    if (context.client === null) {
      // Still routing: nothing went downstream, so end the call here.
      this.#finalUpstream(context, 487);
      return;
    }
    // §9.1: a CANCEL may only follow a provisional response; otherwise it goes when one arrives.
    if (context.provisionalReceived) this.#cancelBranch(context);
  }

  #cancelBranch(context: ResponseContext): void {
    const { client, forwarded } = context;
    if (client === null || forwarded === null || context.cancelSent) return;
    context.cancelSent = true;
    try {
      this.transactions.sendRequest(createCancel(forwarded), client.destination, IGNORE_CANCEL_OUTCOME);
    } catch (error) {
      this.#reportError(error);
    }
    // §9.1: without a final response within 64*T1 the INVITE is given up.
    context.clearTimer();
    context.timer = this.#timer(64 * this.transactions.timers.t1, () => {
      context.timer = null;
      client.terminate();
      this.#onBranchFailure(context, 408);
    });
  }

  #onTimerC(context: ResponseContext): void {
    context.timer = null;
    if (context.provisionalReceived) {
      this.#cancelBranch(context);
    } else {
      context.client?.terminate();
      this.#onBranchFailure(context, 408);
    }
  }

  // -------------------------------------------------------------------------
  // Responses

  /** §16.7 for the response to our branch; in an anchored dialog, after its SDP went through the relay, in the order they came. */
  #onBranchResponse(context: ResponseContext, response: SipResponse): void {
    const { media } = context;
    if (media === null) {
      this.#relayBranchResponse(context, response);
      return;
    }
    const step = context.forwarded === null ? null : responseSdpStep(context.forwarded, response, context.fromCaller);
    context.mediaQueue = context.mediaQueue
      .then(async () => {
        const refusal = step === null ? null : await this.#options.media!.rewrite(response, media, step);
        // The call goes on without the relay (it refused this SDP or is gone); the response is relayed as it came.
        if (refusal !== null) this.#reportError(new Error(`media relay refused a ${response.status}'s SDP: ${refusal.reason}`));
        this.#relayBranchResponse(context, response);
      })
      .catch((error: unknown) => this.#reportError(error));
  }

  #relayBranchResponse(context: ResponseContext, response: SipResponse): void {
    const { status } = response;
    if (status < 200) {
      context.provisionalReceived = true;
      if (status > 100) context.ringing = true;
      if (context.cancelled) this.#cancelBranch(context);
      if (status === 100) return;
      // Timer C restarts on every provisional but 100 (§16.7 step 2), until a CANCEL is under way.
      if (!context.cancelSent) context.timer?.refresh();
    } else {
      if ((status === 401 || status === 407) && this.#answerChallenge(context, response)) return;
      if (status === 503 && this.#failOver(context)) return;
      context.clearTimer();
    }
    response.headers.removeFirst('via');
    // Back to where the request came from, whatever the next hop wrote below our Via.
    const upstreamVia = context.request.headers.get('via');
    if (upstreamVia !== undefined && response.headers.has('via')) response.headers.replaceFirst('via', upstreamVia);
    this.#removeUntrustedHeaders(response, context.client?.destination.host ?? null);
    if (context.restoreUpstream) restoreUpstream(response, context.request);
    // With no Via left (a broken next hop dropped the caller's) there is nobody to relay to.
    if (response.headers.has('via')) {
      if (context.server.respond(response)) {
        this.#responsesForwarded++;
      } else if (context.isInvite && status >= 200 && status < 300) {
        // A 2xx after the server transaction ended still belongs to the caller (§16.7 step 10).
        this.#sendStateless(response);
      }
    }
    if (status >= 200) this.#finish(context, status);
  }

  /**
   * RFC 3263 §4.3: the branch's destination failed (transport error, timeout, 503) before anyone
   * rang: the same request goes to the router's next destination on a new branch. False when
   * there is none, or the caller cancelled, or a callee already rang (never ring twice).
   */
  #failOver(context: ResponseContext): boolean {
    const { forwarded, client } = context;
    if (context.untried.length === 0 || forwarded === null || client === null || context.cancelled || context.ringing) return false;
    if (context.decision?.action === 'forward') context.decision.destinationFailed?.(client.destination);
    const retry = cloneMessage(forwarded);
    retry.headers.removeFirst('via');
    this.#resend(context, retry, context.untried.shift()!);
    return true;
  }

  /** Sends a new version of the forwarded request on a new branch: our Record-Route written again for its transport. */
  #resend(context: ResponseContext, retry: SipRequest, destination: Destination): void {
    if (context.recordRouted > 0) {
      for (let i = 0; i < context.recordRouted; i++) retry.headers.removeFirst('record-route');
      this.#addRecordRoute(context, retry, destination.transport);
    }
    context.clearTimer();
    context.provisionalReceived = false;
    this.#sendBranch(context, retry, destination);
  }

  /**
   * A 401/407 to a forwarded INVITE with credentials: re-sends it with digest answers on a new
   * branch (dialog-rewrite.ts; our Record-Route re-signed with the new dpcs). False when the
   * challenge goes upstream.
   */
  #answerChallenge(context: ResponseContext, response: SipResponse): boolean {
    const { rewrite, forwarded, client } = context;
    if (rewrite === null || forwarded === null || client === null || context.cancelled) return false;
    let retry: SipRequest | null;
    try {
      retry = rewrite.retry(response, forwarded);
    } catch (error) {
      this.#reportError(error);
      return false;
    }
    if (retry === null) return false;
    this.#resend(context, retry, client.destination);
    return true;
  }

  /** The branch failed without a final response: timeout (408) or unreachable (503); 487 once cancelled. */
  #onBranchFailure(context: ResponseContext, status: number): void {
    if (this.#failOver(context)) return;
    context.clearTimer();
    this.#finalUpstream(context, context.cancelled ? 487 : status);
  }

  /** Responses matching no transaction: relayed statelessly only when the top Via is a branch we made (§16.7, §18.1.2). */
  #onStrayResponse(response: SipResponse, source: MessageSource): void {
    const via = parseVia(response.headers.get('via') ?? '');
    const branch = via?.params.get('branch');
    if (via === null || typeof branch !== 'string' || !this.#addresses.isUs(via.host, via.port)) {
      this.#rejected('forged_response', source);
      return;
    }
    response.headers.removeFirst('via');
    // The branch's MAC covers where the response goes next: a rewritten second Via fails it.
    if (!this.#signer.isOwnBranch(branch, responseHop(response))) {
      this.#rejected('forged_response', source);
      return;
    }
    if (!response.headers.has('via')) return;
    // An anchored dialog's 2xx retransmitted after its transaction ended (the caller never
    // acknowledged it): relaying its SDP as it came would bypass the relay.
    if (carriesSdp(response) && response.headers.getAll('record-route').some((value) => value.includes(`;${MEDIA_RELAY_PARAM}=`))) return;
    this.#removeUntrustedHeaders(response, source.address);
    this.#sendStateless(response);
  }

  #sendStateless(response: SipResponse): void {
    this.#responsesForwarded++;
    this.#options.transport.sendResponse(response).catch((error: unknown) => this.#reportError(error));
  }

  // -------------------------------------------------------------------------
  // Helpers

  /** Sends a final response generated here upstream and settles the context. */
  #finalUpstream(context: ResponseContext, status: number, reason?: string, headers?: Array<[string, string]>): void {
    if (context.finalStatus !== 0) return;
    try {
      const response = buildResponse(context.request, status, { reason, toTag: createTag() });
      for (const [name, value] of headers ?? []) response.headers.append(name, value);
      context.server.respond(response);
      this.#localResponses++;
    } catch (error) {
      this.#reportError(error);
      context.server.respond(buildResponse(context.request, 500, { toTag: createTag() }));
      status = 500;
    }
    this.#finish(context, status);
  }

  #finish(context: ResponseContext, status: number): void {
    if (context.finalStatus !== 0) return;
    context.finalStatus = status;
    context.clearTimer();
    // A call that failed (declined, cancelled, timed out) frees its media.
    if (context.media !== null && context.startedAt !== null && status >= 300)
      this.#options.media?.endCall(context.media, dialogOf(context.request, true), false);
    this.#invites.delete(context.server);
    if (this.#invites.size === 0) for (const resolve of this.#whenIdle.splice(0)) resolve();
    if (context.decision !== null) this.#record(context);
  }

  #record(context: ResponseContext): void {
    const { startedAt, decision } = context;
    const callback = this.#options.onInitialRequestDone;
    if (startedAt === null || decision === null || callback === undefined) return;
    try {
      callback({
        request: context.request,
        source: context.source,
        decision,
        finalStatus: context.finalStatus,
        startedAt,
        endedAt: new Date(),
        context: decision.context,
      });
    } catch (error) {
      this.#reportError(error);
    }
  }

  /** Answers a request locally (validation failures, CANCEL, OPTIONS to us). */
  #reply(transaction: ServerTransaction, status: number, headers?: Array<[string, string]>): void {
    const response = buildResponse(transaction.request, status, { toTag: createTag() });
    for (const [name, value] of headers ?? []) response.headers.append(name, value);
    transaction.respond(response);
    this.#localResponses++;
  }

  #replyOptions(transaction: ServerTransaction): void {
    this.#reply(transaction, 200, [['Allow', ALLOW]]);
  }

  #timer(ms: number, callback: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      try {
        callback();
      } catch (error) {
        this.#reportError(error);
      }
    }, ms);
    timer.unref();
    return timer;
  }

  #reportError(error: unknown): void {
    try {
      (this.#options.onError ?? ((e: Error) => process.emitWarning(e)))(toError(error));
    } catch {
      // A throwing error handler must not break message processing.
    }
  }
}
