/**
 * Stateful, record-routing SIP proxy core (RFC 3261 §16). It knows nothing
 * about numbers or agents: out-of-dialog requests are handed to a router
 * callback that either rejects them or names a target; everything else
 * (in-dialog requests, ACK, CANCEL, responses) is handled here.
 *
 * Policy choices:
 * - Every out-of-dialog request goes to the router, except OPTIONS addressed
 *   to the proxy itself (answered 200). The router sees Route headers left
 *   after ours are popped, but a forward decision replaces them: the target
 *   is authoritative, so a pre-loaded Route cannot steer a call past the
 *   router (toll fraud). The router may answer 405 for methods it refuses.
 * - Admission, before any state is kept: in-dialog requests (To tag), ACKs
 *   and strict-routed requests are forwarded only when the Route naming us
 *   carries a signature that verifies for them (dialog-signer.ts: we sign
 *   every Record-Route we write); otherwise 403, statelessly (ACK: dropped).
 *   Out-of-dialog requests go on only from trusted sources (`sources`: trunks
 *   and runtimes); anyone else gets one stateless answer sent to the packet's
 *   source (403; 200 for an OPTIONS to us), or nothing once its token bucket
 *   is empty. No server transaction, no 100 Trying, no retransmission.
 * - `privateHeaders` never cross the proxy in either direction (the router may
 *   add them back on an initial request), and P-Asserted-Identity and
 *   Remote-Party-ID from an untrusted source are removed (RFC 3325 §5).
 * - A response is relayed only when its top Via is a branch we made: it
 *   matches a client transaction, or (stray 2xx) its branch carries our MAC.
 * - A branch that times out gets 408 upstream; one the transport cannot
 *   reach gets 503; either becomes 487 when the caller had cancelled.
 * - One target per request: no forking, so the first final response is the
 *   best one (§16.7 step 6 reduces to forwarding it).
 * - Loop detection (§16.3 item 4) hashes the fields §16.6 step 8 lists except
 *   the top Via, which differs at every hop and would defeat the check; the
 *   branch is that hash plus a counter, so forwarded requests still get
 *   unique branches. Only the hash part is compared.
 * - No DNS SRV/NAPTR (RFC 3263): the next hop is the URI's host, port
 *   (default 5060) and transport parameter (udp or tcp; default udp). `maddr`
 *   is ignored: a sender must not pick our next hop with it.
 *
 * Rewritten dialogs (a forward decision with `from` or `credentials`, e.g.
 * outbound calls through a carrier trunk), without per-dialog state:
 * - `from` replaces From's URI and display name on the way downstream (tag and
 *   other parameters kept); every response relayed upstream carries the
 *   caller's From and CSeq again (copied from the request as received).
 * - `credentials` answer a 401/407 to the forwarded INVITE with a digest
 *   re-send (new branch, CSeq + 1; at most two rounds), and the final response
 *   goes upstream with the caller's CSeq. A null password answers nothing: the
 *   challenge is relayed as it is.
 * - Our Record-Route URI carries `dpr` (a hash of the caller's From tag: marks
 *   which side of the dialog is the caller's) and, after a digest re-send,
 *   `dpcs` (the CSeq offset), both covered by its signature. In-dialog
 *   requests whose From tag matches `dpr` come from the caller's side: they
 *   get CSeq + dpcs on the way to the callee (ACK for 2xx included), and their
 *   responses get the caller's CSeq back. Requests from the callee's side pass
 *   untouched. In-dialog From/To URIs are not rewritten: dialogs are
 *   identified by tags (RFC 3261 §12), which are kept.
 * - Header names in `removeHeaders` / `dialogRemoveHeaders` may end in `*`
 *   (prefix match, e.g. `X-Dialplane-*`).
 */
import { createHash } from 'node:crypto';
import { DigestClient } from './digest.ts';
import { CSEQ_OFFSET_PARAM, DialogSigner, SIDE_PARAM } from './dialog-signer.ts';
import net from 'node:net';
import { buildResponse, cloneMessage, type SipMessage, type SipRequest, type SipResponse } from './message.ts';
import { UNSAFE_TEXT } from './lexical.ts';
import { formatNameAddr, parseNameAddr } from './parse-address.ts';
import { parseCSeq, parseMaxForwards } from './parse-header.ts';
import { parseVia } from './parse-via.ts';
import {
  BRANCH_MAGIC_COOKIE,
  createCancel,
  createTag,
  TransactionLayer,
  type ClientTransaction,
  type ClientTransactionHandler,
  type ServerTransaction,
  type SipSender,
  type TransactionTimers,
} from './transaction.ts';
import type { Destination, MessageSource, TransportProtocol } from './transport.ts';
import { formatHost, parseSipUri, parseUri, uriScheme, type SipUri } from './uri.ts';

export type RouteDecision =
  | {
      action: 'reject';
      /** 300-699. */
      status: number;
      reason?: string;
      /** Extra headers for the response, e.g. Retry-After. */
      headers?: Array<[name: string, value: string]>;
      /** Handed back in the completion record. */
      context?: unknown;
    }
  | {
      action: 'forward';
      /** SIP URI: becomes the Request-URI; its host, port and transport parameter say where to send. */
      target: string;
      addHeaders?: Array<[name: string, value: string]>;
      /** Removed before addHeaders are applied, so a header can be replaced. A trailing `*` matches a prefix. */
      removeHeaders?: string[];
      /** Replaces From's URI and display name (tag kept); responses relayed upstream carry the original From. */
      from?: { uri: string; displayName: string | null };
      /** Answers a 401/407 to the forwarded INVITE with digest authentication; a null password answers nothing. */
      credentials?: { username: string; password: string | null };
      context?: unknown;
    };

/**
 * Decides what to do with an out-of-dialog request. The request is the copy
 * about to be forwarded (our Route popped); treat it as read-only and
 * express changes in the decision.
 */
export type Router = (request: SipRequest, source: MessageSource) => RouteDecision | Promise<RouteDecision>;

/** Who the proxy trusts, by source address. */
export interface SourcePolicy {
  /** A trunk or an agent runtime: its out-of-dialog requests are routed and its asserted identity believed. */
  isTrusted(address: string): boolean;
  /** Whether a request from an untrusted source may be answered; false drops it unanswered (a flood). */
  mayAnswer(address: string): boolean;
}

/** Why a message was refused at admission (see the module comment). */
export type RejectionReason = 'unauthenticated' | 'bad_signature' | 'flood' | 'forged_response';

/** The transport as the proxy uses it: the transaction layer's, plus answers that go only to the sender. */
export interface ProxyTransport extends SipSender {
  sendToSource(message: SipMessage, source: MessageSource): Promise<void>;
}

/** Outcome of an out-of-dialog INVITE the router decided on, for call records. */
export interface InitialRequestRecord {
  /** The INVITE as received. */
  request: SipRequest;
  source: MessageSource;
  decision: RouteDecision;
  /** Final status sent upstream. */
  finalStatus: number;
  startedAt: Date;
  endedAt: Date;
  context: unknown;
}

export interface SipProxyOptions {
  transport: ProxyTransport;
  /** Public address (IP or hostname) written in Via and Record-Route. */
  host: string;
  /** Public port written in Via and Record-Route. */
  port: number;
  /** Other addresses that also mean this proxy: `host` (with `port`) or `host:port` (e.g. other instances behind one name). */
  aliases?: readonly string[];
  /** Signs our Record-Route entries and branches; default: a random key, valid for this process only. */
  signer?: DialogSigner;
  /** Who is trusted; default: every source. */
  sources?: SourcePolicy;
  /** Headers (a trailing `*` matches a prefix) removed from every request forwarded and response relayed. */
  privateHeaders?: readonly string[];
  /** Called for every message refused at admission. */
  onRejected?(reason: RejectionReason, source: MessageSource): void;
  timers?: Partial<TransactionTimers>;
  /** Timer C (§16.6 step 11): how long an INVITE may go without a final response after its last provisional (default 181 s). */
  timerC?: number;
  route: Router;
  /** Called once per routed or rejected out-of-dialog INVITE, when its final response has gone upstream. */
  onInitialRequestDone?(record: InitialRequestRecord): void;
  /** Router failures, unsendable stateless messages, callback exceptions; defaults to process.emitWarning. */
  onError?(error: Error): void;
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
const DEFAULT_SIP_PORT = 5060;
const DEFAULT_SIPS_PORT = 5061;
const DEFAULT_MAX_FORWARDS = 70;
const ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, PRACK, REFER, SUBSCRIBE, NOTIFY, MESSAGE';
/** Out-of-dialog methods that create dialogs, so the proxy stays on the path (§16.6 step 4). */
const DIALOG_CREATING_METHODS = new Set(['INVITE', 'SUBSCRIBE', 'REFER', 'NOTIFY']);
/** Length of the hash part of our branch (base64url characters, 96 bits). */
const BRANCH_HASH_LENGTH = 16;
/** Digest re-sends per INVITE (a 401 then a 407 from a second proxy is the most a trunk needs). */
const MAX_AUTH_ROUNDS = 2;
/** Identity assertions believed only from trusted sources (RFC 3325 §5). */
const ASSERTED_IDENTITY_HEADERS = ['P-Asserted-Identity', 'Remote-Party-ID'];
const TRUST_EVERYONE: SourcePolicy = { isTrusted: () => true, mayAnswer: () => true };

/** The `dpr` marker of a From tag: short, URI-safe, not the tag itself. */
function sideMarker(tag: string): string {
  return createHash('sha1').update(tag).digest('base64url').slice(0, 12);
}

/** Removes the headers named (or, with a trailing `*`, prefixed) by `patterns`. */
export function removeHeaderPatterns(headers: SipRequest['headers'], patterns: readonly string[]): void {
  for (const pattern of patterns) {
    if (!pattern.endsWith('*')) {
      headers.delete(pattern);
      continue;
    }
    const prefix = pattern.slice(0, -1).toLowerCase();
    const keys: string[] = [];
    for (const field of headers) if (field.key.startsWith(prefix)) keys.push(field.key);
    for (const key of keys) headers.delete(key);
  }
}

/** CSeq with its number moved by `delta`; unchanged when unparsable. */
function shiftCSeq(headers: SipRequest['headers'], delta: number): void {
  if (delta === 0) return;
  const cseq = parseCSeq(headers.get('cseq') ?? '');
  if (cseq === null) return;
  headers.set('cseq', `${Math.min(cseq.seq + delta, 0xffffffff)} ${cseq.method}`);
}

/** Responses to a CANCEL we send need no action: the INVITE's own response settles the call. */
const IGNORE_CANCEL_OUTCOME: ClientTransactionHandler = {
  onResponse: () => undefined,
  onTimeout: () => undefined,
  onTransportError: () => undefined,
};

/** The key `#us` holds for a host and port. */
function hostPortKey(host: string, port: number): string {
  return `${normalizeHost(host)}|${port}`;
}

/** `host`, `host:port`, `[v6]` or `[v6]:port` (a bare IPv6 address has no port). */
function parseHostPort(text: string, defaultPort: number): { host: string; port: number } {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2] ? Number(bracketed[2]) : defaultPort };
  const colon = text.indexOf(':');
  if (colon === -1 || colon !== text.lastIndexOf(':')) return { host: text, port: defaultPort };
  return { host: text.slice(0, colon), port: Number(text.slice(colon + 1)) };
}

/** A To tag for a stateless answer: the same for every retransmission of a request (§8.2.6.2). */
function statelessTag(request: SipRequest): string {
  return createHash('sha1').update(`${request.headers.get('call-id')}\n${request.headers.get('from')}`).digest('base64url').slice(0, 10);
}

/** Brackets stripped, lowercase, IPv6 in canonical form: a comparable host. */
function normalizeHost(host: string): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const lower = bare.toLowerCase();
  if (!net.isIPv6(lower)) return lower;
  return new net.SocketAddress({ address: lower, family: 'ipv6' }).address;
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function isPromiseLike<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown }).then === 'function';
}

/** State of one proxied request: its server transaction and the single branch it was forwarded on (§16's response context). */
class ResponseContext {
  readonly request: SipRequest;
  readonly source: MessageSource;
  readonly server: ServerTransaction;
  /** Loop-detection hash of the request as received; our branch starts with it. */
  readonly hash: string;
  /** Set when the router is consulted and the request is an INVITE: it gets a completion record. */
  readonly startedAt: Date | null;
  decision: RouteDecision | null = null;
  /** The request as forwarded, once it is. */
  forwarded: SipRequest | null = null;
  client: ClientTransaction | null = null;
  provisionalReceived = false;
  /** The caller sent CANCEL. */
  cancelled = false;
  cancelSent = false;
  /** Final status sent upstream; 0 until then. */
  finalStatus = 0;
  /** Timer C, or after a CANCEL the 64*T1 wait for the INVITE's final response. */
  timer: NodeJS.Timeout | null = null;
  /** Responses relayed upstream get the request's From and CSeq back (rewritten dialogs). */
  restoreUpstream = false;
  /** Answers challenges to the forwarded INVITE; null when there are no credentials. */
  digest: DigestClient | null = null;
  authRounds = 0;
  /** The `dpr` marker of a rewritten dialog's caller; null for ordinary dialogs. */
  side: string | null = null;
  /** How many Record-Route values we put on top of the forwarded request. */
  recordRouted = 0;

  constructor(request: SipRequest, source: MessageSource, server: ServerTransaction, hash: string, startedAt: Date | null) {
    this.request = request;
    this.source = source;
    this.server = server;
    this.hash = hash;
    this.startedAt = startedAt;
  }

  get isInvite(): boolean {
    return this.request.method === 'INVITE';
  }

  clearTimer(): void {
    if (this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
  }
}

/** Outcome of Route processing (§16.4) on the copy to forward. */
interface RouteInfo {
  /** A Route naming us was removed, or the Request-URI restored from a strict router: the request is on a path we set up. */
  routedViaUs: boolean;
  /** The first of our URIs found (Route or strict-routed Request-URI): its parameters are the ones we record-routed. */
  ours: SipUri | null;
  /** The Request-URI addresses the proxy itself (host and port are ours, no user part). */
  addressedToUs: boolean;
}

export class SipProxy {
  readonly transactions: TransactionLayer;
  readonly #options: SipProxyOptions;
  /** `host|port` keys of every address that means us. */
  readonly #us: Set<string>;
  readonly #signer: DialogSigner;
  readonly #sources: SourcePolicy;
  readonly #privateHeaders: readonly string[];
  readonly #viaHostPort: string;
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
    this.#us = new Set([options.host, ...(options.aliases ?? [])].map((alias) => {
      const { host, port } = parseHostPort(alias, options.port);
      return hostPortKey(host, port);
    }));
    this.#us.add(hostPortKey(options.host, options.port));
    this.#signer = options.signer ?? new DialogSigner();
    this.#sources = options.sources ?? TRUST_EVERYONE;
    this.#privateHeaders = options.privateHeaders ?? [];
    this.#viaHostPort = `${formatHost(options.host)}:${options.port}`;
    this.#timerC = options.timerC ?? DEFAULT_TIMER_C;
    this.transactions = new TransactionLayer({
      transport: options.transport,
      timers: options.timers,
      admit: (request, source) => this.#admit(request, source),
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

  // -------------------------------------------------------------------------
  // Admission

  /** The module comment's admission: true lets the transaction layer go on with the request. */
  #admit(request: SipRequest, source: MessageSource): boolean {
    const trusted = this.#sources.isTrusted(source.address);
    // A CANCEL rides on its INVITE's admission.
    if (request.method === 'CANCEL' && (trusted || this.transactions.findInviteServerTransaction(request) !== null)) return true;
    if (this.#needsSignature(request)) {
      const ours = this.#ourRouteUri(request);
      if (ours !== null && this.#signer.verifyRoute(ours, request)) return true;
      this.#refuse(request, source, trusted, 'bad_signature', 403);
      return false;
    }
    if (trusted) return true;
    this.#refuse(request, source, false, 'unauthenticated', request.method === 'OPTIONS' && this.#isPlainlyForUs(request) ? 200 : 403);
    return false;
  }

  /** In-dialog requests, ACKs and strict-routed requests travel on a Route we signed. */
  #needsSignature(request: SipRequest): boolean {
    if (request.method === 'ACK') return true;
    if (parseNameAddr(request.headers.get('to') ?? '')?.params.has('tag') === true) return true;
    const uri = parseSipUri(request.uri);
    return uri !== null && uri.user === null && this.#isUriUs(uri) && request.headers.has('route');
  }

  /** Our URI that routed the request here: a strict-routed Request-URI, else the top Route if it names us. */
  #ourRouteUri(request: SipRequest): SipUri | null {
    const requestUri = parseSipUri(request.uri);
    if (requestUri !== null && requestUri.user === null && this.#isUriUs(requestUri) && request.headers.has('route')) return requestUri;
    const top = request.headers.get('route');
    const uri = top === undefined ? null : parseSipUri(parseNameAddr(top)?.uri ?? '');
    return uri !== null && this.#isUriUs(uri) ? uri : null;
  }

  /** The Request-URI is us, with no user part and no Route: a request for the proxy itself. */
  #isPlainlyForUs(request: SipRequest): boolean {
    const uri = parseSipUri(request.uri);
    return uri !== null && uri.user === null && this.#isUriUs(uri) && !request.headers.has('route');
  }

  /** Answers a refused request once, statelessly, to its source alone (an ACK gets nothing); untrusted sources only while their bucket lasts. */
  #refuse(request: SipRequest, source: MessageSource, trusted: boolean, reason: RejectionReason, status: number): void {
    if (!trusted && !this.#sources.mayAnswer(source.address)) {
      this.#rejected('flood', source);
      return;
    }
    this.#rejected(reason, source);
    if (request.method === 'ACK') return;
    try {
      const response = buildResponse(request, status, { toTag: statelessTag(request) });
      this.#localResponses++;
      this.#options.transport.sendToSource(response, source).catch((error: unknown) => this.#reportError(error));
    } catch (error) {
      this.#reportError(error);
    }
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
    const requestHash = this.#requestHash(request);
    if (this.#isLoop(request, requestHash)) {
      this.#reply(transaction, 482);
      return;
    }
    const proxyRequire = request.headers.getAll('proxy-require');
    if (proxyRequire.length > 0) {
      this.#reply(transaction, 420, [['Unsupported', proxyRequire.join(', ')]]);
      return;
    }

    const forwarded = cloneMessage(request);
    const route = this.#processRoute(forwarded);
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

    const context = new ResponseContext(request, source, transaction, requestHash, !inDialog && request.method === 'INVITE' ? new Date() : null);
    if (context.isInvite) {
      this.#invites.set(transaction, context);
      // §16.2: answer at once so the caller stops retransmitting while we route and forward.
      transaction.respond(buildResponse(request, 100));
    }
    if (inDialog) {
      if (this.#adjustCallerSide(forwarded, route)) context.restoreUpstream = true;
      this.#removeUntrustedHeaders(forwarded, source.address);
      this.#forward(context, forwarded, false);
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
      if (decision.from !== undefined || decision.credentials !== undefined) this.#rewrite(context, forwarded, decision);
    } catch (error) {
      this.#reportError(error);
      this.#finalUpstream(context, 500);
      return;
    }
    this.#forward(context, forwarded, DIALOG_CREATING_METHODS.has(forwarded.method));
  }

  /** A forward decision with `from` or `credentials`: the module comment's rewritten dialog. */
  #rewrite(context: ResponseContext, forwarded: SipRequest, decision: Extract<RouteDecision, { action: 'forward' }>): void {
    context.restoreUpstream = true;
    const from = parseNameAddr(forwarded.headers.get('from') ?? '');
    if (from === null) throw new Error('From is missing or malformed');
    const tag = from.params.get('tag');
    if (typeof tag === 'string' && tag !== '') context.side = sideMarker(tag);
    if (decision.from !== undefined) {
      if (parseUri(decision.from.uri) === null) throw new Error(`From URI is not a URI: ${decision.from.uri}`);
      forwarded.headers.set('from', formatNameAddr({ displayName: decision.from.displayName, uri: decision.from.uri, params: from.params }));
    }
    const credentials = decision.credentials;
    if (credentials !== undefined && credentials.password !== null && forwarded.method === 'INVITE') {
      context.digest = new DigestClient({ username: credentials.username, password: credentials.password });
    }
  }

  /**
   * An in-dialog request of a rewritten dialog from the caller's side (its From tag matches our
   * Record-Route's `dpr`): CSeq + `dpcs`, the dialog's private headers removed. True when it was.
   */
  #adjustCallerSide(forwarded: SipRequest, route: RouteInfo): boolean {
    const marker = route.ours?.params.get(SIDE_PARAM);
    if (typeof marker !== 'string') return false;
    const tag = parseNameAddr(forwarded.headers.get('from') ?? '')?.params.get('tag');
    if (typeof tag !== 'string' || sideMarker(tag) !== marker) return false;
    const offset = Number(route.ours?.params.get(CSEQ_OFFSET_PARAM) ?? 0);
    if (Number.isInteger(offset) && offset > 0 && offset <= MAX_AUTH_ROUNDS) shiftCSeq(forwarded.headers, offset);
    return true;
  }

  /** What crosses in no direction, and what an untrusted source may not assert. */
  #removeUntrustedHeaders(message: SipMessage, sourceAddress: string | null): void {
    removeHeaderPatterns(message.headers, this.#privateHeaders);
    if (sourceAddress === null || !this.#sources.isTrusted(sourceAddress)) removeHeaderPatterns(message.headers, ASSERTED_IDENTITY_HEADERS);
  }

  /**
   * §16.4 on the copy to forward: restore the Request-URI after a strict
   * router, then pop every Route naming us (two after double record-routing).
   * Null when a Route value is malformed.
   */
  #processRoute(request: SipRequest): RouteInfo | null {
    let routedViaUs = false;
    let ours: SipUri | null = null;
    let requestUri = parseSipUri(request.uri);
    if (requestUri !== null && requestUri.user === null && this.#isUriUs(requestUri)) {
      const routes = request.headers.getAll('route');
      if (routes.length > 0) {
        const last = parseNameAddr(routes[routes.length - 1]);
        if (last === null) return null;
        ours = requestUri;
        request.uri = last.uri;
        request.headers.set('route', routes.slice(0, -1));
        requestUri = parseSipUri(request.uri);
        routedViaUs = true;
      }
    }
    for (let top = request.headers.get('route'); top !== undefined; top = request.headers.get('route')) {
      const address = parseNameAddr(top);
      if (address === null) return null;
      const uri = parseSipUri(address.uri);
      if (uri === null || !this.#isUriUs(uri)) break;
      request.headers.removeFirst('route');
      routedViaUs = true;
      ours ??= uri;
    }
    const addressedToUs = requestUri !== null && requestUri.user === null && this.#isUriUs(requestUri);
    return { routedViaUs, ours, addressedToUs };
  }

  /** §16.6: forward the prepared copy through a new client transaction. */
  #forward(context: ResponseContext, request: SipRequest, recordRoute: boolean): void {
    const destination = this.#prepareNextHop(request);
    if (typeof destination === 'number') {
      this.#finalUpstream(context, destination);
      return;
    }
    if (recordRoute) this.#addRecordRoute(context, request, destination.transport);
    this.#sendBranch(context, request, destination);
  }

  #addRecordRoute(context: ResponseContext, request: SipRequest, transport: TransportProtocol): void {
    const params = this.#recordRouteParams(context);
    context.recordRouted = 1;
    // RFC 5658: when the legs differ in transport, one entry per leg; the downstream-facing one on top.
    if (context.source.transport !== transport) {
      request.headers.prepend('record-route', this.#recordRoute(context.source.transport, params));
      context.recordRouted = 2;
    }
    request.headers.prepend('record-route', this.#recordRoute(transport, params));
  }

  /** Our Record-Route parameters for the context's dialog: `dpr` and `dpcs` when rewritten, and the signature over them. */
  #recordRouteParams(context: ResponseContext): string {
    const { request, side } = context;
    const cseqOffset = context.authRounds > 0 ? context.authRounds : undefined;
    const callerTag = parseNameAddr(request.headers.get('from') ?? '')?.params.get('tag') ?? '';
    const signature = this.#signer.recordRouteParams(request.headers.get('call-id') ?? '', callerTag, { side: side ?? undefined, cseqOffset });
    return `${side === null ? '' : `;${SIDE_PARAM}=${side}`}${cseqOffset === undefined ? '' : `;${CSEQ_OFFSET_PARAM}=${cseqOffset}`}${signature}`;
  }

  /** Sends `request` (Via added here) on a new client transaction for the context. */
  #sendBranch(context: ResponseContext, request: SipRequest, destination: Destination): void {
    const branch = this.#signer.branch(`${BRANCH_MAGIC_COOKIE}${context.hash}.${(this.#branchCounter++).toString(36)}`);
    request.headers.prepend('via', `SIP/2.0/${destination.transport.toUpperCase()} ${this.#viaHostPort};branch=${branch};rport`);
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

  /**
   * Decrements Max-Forwards and resolves the next hop (§16.6 steps 3, 6, 7):
   * the top Route if it is a loose router, else after a strict-router rewrite
   * or with no Route, the Request-URI. Returns a status to answer instead
   * when the next hop cannot be reached.
   */
  #prepareNextHop(request: SipRequest): Destination | number {
    const maxForwards = request.headers.get('max-forwards');
    request.headers.set('max-forwards', String(maxForwards === undefined ? DEFAULT_MAX_FORWARDS : (parseMaxForwards(maxForwards) ?? 1) - 1));
    let nextHop: SipUri | null;
    const topRoute = request.headers.get('route');
    if (topRoute !== undefined) {
      const routeUri = parseNameAddr(topRoute)?.uri;
      nextHop = routeUri === undefined ? null : parseSipUri(routeUri);
      if (nextHop === null || routeUri === undefined) return 400;
      if (!nextHop.params.has('lr')) {
        // Strict router: it receives the route in the Request-URI, the remote target goes last.
        request.headers.append('route', `<${request.uri}>`);
        request.headers.removeFirst('route');
        request.uri = routeUri;
      }
    } else {
      nextHop = parseSipUri(request.uri);
      if (nextHop === null) return 416;
    }
    const transport = nextHop.params.get('transport')?.toLowerCase() ?? (nextHop.scheme === 'sips' ? 'tls' : 'udp');
    if (transport !== 'udp' && transport !== 'tcp') return 503;
    const defaultPort = nextHop.scheme === 'sips' ? DEFAULT_SIPS_PORT : DEFAULT_SIP_PORT;
    return { transport, host: nextHop.host, port: nextHop.port ?? defaultPort };
  }

  #recordRoute(transport: TransportProtocol, params = ''): string {
    return transport === 'tcp' ? `<sip:${this.#viaHostPort};transport=tcp;lr${params}>` : `<sip:${this.#viaHostPort};lr${params}>`;
  }

  /** ACK for a 2xx (admitted: it carried our signed Route): forwarded statelessly along the route set (§16.11). */
  #forwardAck(request: SipRequest, source: MessageSource): void {
    const forwarded = cloneMessage(request);
    const route = this.#processRoute(forwarded);
    if (route === null || !route.routedViaUs) return;
    const maxForwards = forwarded.headers.get('max-forwards');
    if (maxForwards !== undefined && parseMaxForwards(maxForwards) === 0) return;
    this.#adjustCallerSide(forwarded, route);
    this.#removeUntrustedHeaders(forwarded, source.address);
    const destination = this.#prepareNextHop(forwarded);
    if (typeof destination === 'number') return;
    // Deterministic branch, so a retransmitted ACK gets the same one (§16.11).
    const incomingBranch = parseVia(request.headers.get('via') ?? '')?.params.get('branch') ?? '';
    const branch = this.#signer.branch(`${BRANCH_MAGIC_COOKIE}${this.#requestHash(request, incomingBranch)}`);
    forwarded.headers.prepend('via', `SIP/2.0/${destination.transport.toUpperCase()} ${this.#viaHostPort};branch=${branch};rport`);
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

  /** §16.7 for the response to our branch. */
  #onBranchResponse(context: ResponseContext, response: SipResponse): void {
    const { status } = response;
    if (status < 200) {
      context.provisionalReceived = true;
      if (context.cancelled) this.#cancelBranch(context);
      if (status === 100) return;
      // Timer C restarts on every provisional but 100 (§16.7 step 2), until a CANCEL is under way.
      if (!context.cancelSent) context.timer?.refresh();
    } else {
      if ((status === 401 || status === 407) && this.#answerChallenge(context, response)) return;
      context.clearTimer();
    }
    response.headers.removeFirst('via');
    this.#removeUntrustedHeaders(response, context.client?.destination.host ?? null);
    if (context.restoreUpstream) this.#restoreUpstream(context, response);
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
   * A 401/407 to a forwarded INVITE with credentials: re-sends it with digest answers on a new
   * branch (CSeq + 1, our Record-Route's dpcs moved along). False when the challenge goes upstream.
   */
  #answerChallenge(context: ResponseContext, response: SipResponse): boolean {
    const { digest, forwarded, client } = context;
    if (digest === null || forwarded === null || client === null || context.cancelled || context.authRounds >= MAX_AUTH_ROUNDS) return false;
    const status = response.status as 401 | 407;
    let headers;
    try {
      const outcome = digest.handleChallenge(status, response.headers.getAll(status === 407 ? 'proxy-authenticate' : 'www-authenticate'), {
        method: forwarded.method,
        uri: forwarded.uri,
      });
      if (outcome.kind !== 'authorize' || outcome.headers.length === 0) return false;
      headers = outcome.headers;
    } catch (error) {
      this.#reportError(error);
      return false;
    }
    context.authRounds++;
    const retry = cloneMessage(forwarded);
    retry.headers.removeFirst('via');
    shiftCSeq(retry.headers, 1);
    retry.headers.delete('authorization');
    retry.headers.delete('proxy-authorization');
    for (const header of headers) retry.headers.append(header.name, header.value);
    if (context.recordRouted > 0) {
      // Re-signed with the new dpcs.
      for (let i = 0; i < context.recordRouted; i++) retry.headers.removeFirst('record-route');
      this.#addRecordRoute(context, retry, client.destination.transport);
    }
    context.clearTimer();
    context.provisionalReceived = false;
    this.#sendBranch(context, retry, client.destination);
    return true;
  }

  /** A response of a rewritten dialog goes upstream with the From and CSeq its request came with. */
  #restoreUpstream(context: ResponseContext, response: SipResponse): void {
    for (const name of ['from', 'cseq']) {
      const value = context.request.headers.get(name);
      if (value !== undefined) response.headers.set(name, value);
    }
  }

  /** The branch failed without a final response: timeout (408) or unreachable (503); 487 once cancelled. */
  #onBranchFailure(context: ResponseContext, status: number): void {
    context.clearTimer();
    this.#finalUpstream(context, context.cancelled ? 487 : status);
  }

  /** Responses matching no transaction: relayed statelessly only when the top Via is a branch we made (§16.7, §18.1.2). */
  #onStrayResponse(response: SipResponse, source: MessageSource): void {
    const via = parseVia(response.headers.get('via') ?? '');
    const branch = via?.params.get('branch');
    if (via === null || typeof branch !== 'string' || !this.#isUs(via.host, via.port, DEFAULT_SIP_PORT) || !this.#signer.isOwnBranch(branch)) {
      this.#rejected('forged_response', source);
      return;
    }
    response.headers.removeFirst('via');
    if (!response.headers.has('via')) return;
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

  /**
   * Hash of what identifies a request at this hop (§16.6 step 8 minus the top
   * Via; see the module comment), plus `extra` where a branch must differ per
   * incoming transaction (stateless ACK).
   */
  #requestHash(request: SipRequest, extra = ''): string {
    const { headers } = request;
    const key = `${request.method} ${request.uri}\n${headers.get('from')}\n${headers.get('to')}\n${headers.get('call-id')}\n${headers.get('cseq')}\n${headers.getAll('route').join(',')}\n${headers.getAll('proxy-require').join(',')}\n${headers.getAll('proxy-authorization').join(',')}\n${extra}`;
    return createHash('sha1').update(key).digest('base64url').slice(0, BRANCH_HASH_LENGTH);
  }

  /** §16.3 item 4: a Via of ours whose branch carries this request's hash means it came back unchanged. */
  #isLoop(request: SipRequest, requestHash: string): boolean {
    const marker = `${BRANCH_MAGIC_COOKIE}${requestHash}.`;
    for (const value of request.headers.getAll('via')) {
      if (!value.includes(marker)) continue;
      const via = parseVia(value);
      if (via !== null && via.params.get('branch')?.startsWith(marker) === true && this.#isUs(via.host, via.port, DEFAULT_SIP_PORT)) return true;
    }
    return false;
  }

  #isUriUs(uri: SipUri): boolean {
    return this.#isUs(uri.host, uri.port, uri.scheme === 'sips' ? DEFAULT_SIPS_PORT : DEFAULT_SIP_PORT);
  }

  #isUs(host: string, port: number | null, defaultPort: number): boolean {
    return this.#us.has(hostPortKey(host, port ?? defaultPort));
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
