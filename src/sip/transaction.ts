/**
 * SIP transaction layer (RFC 3261 §17) with the RFC 6026 corrections
 * (the Accepted state and Timers L and M for INVITE transactions).
 *
 * The layer sits between the transport and a transaction user (TU): feed it
 * every inbound message with `receive`; it absorbs retransmissions, creates
 * server transactions for new requests and hands them to `onRequest`, and
 * routes responses to the client transaction that sent the request. Client
 * transactions are created with `sendRequest` and report to a handler given
 * per transaction, so several TUs (a proxy core, a registration client) can
 * share one layer.
 *
 * Matching: requests per §17.2.3 (top Via branch with the magic cookie +
 * sent-by + method, ACK matching its INVITE), responses per §17.1.3 (top Via
 * branch + CSeq method). For requests whose branch lacks the magic cookie
 * (RFC 2543 peers) the key is Call-ID + From tag + CSeq number + sent-by +
 * method: a simplification of the §17.2.3 rule that still absorbs
 * retransmissions and matches ACK to its INVITE.
 *
 * Timers are plain `setTimeout`s (at most two per transaction), unref'd so
 * they never keep the process alive, and cleared when the transaction ends.
 */
import { randomBytes } from 'node:crypto';
import { buildResponse, createRequest, SipHeaders, type SipMessage, type SipRequest, type SipResponse } from './message.ts';
import { parseNameAddr } from './parse-address.ts';
import { parseCSeq } from './parse-header.ts';
import { parseVia, type Via } from './parse-via.ts';
import type { Destination, MessageSource } from './transport.ts';

/** Prefix of every RFC 3261 branch parameter (§8.1.1.7). */
export const BRANCH_MAGIC_COOKIE = 'z9hG4bK';

export interface TransactionTimers {
  /** RTT estimate (default 500 ms). */
  t1: number;
  /** Maximum retransmission interval for non-INVITE requests and INVITE responses (default 4 s). */
  t2: number;
  /** Maximum time a message stays in the network (default 5 s). */
  t4: number;
  /** Timer D: how long an INVITE client transaction absorbs final-response retransmissions on UDP (default 32 s). */
  timerD: number;
}

export const DEFAULT_TRANSACTION_TIMERS: Readonly<TransactionTimers> = Object.freeze({ t1: 500, t2: 4000, t4: 5000, timerD: 32_000 });

/** The part of SipTransportLayer the transaction layer uses; tests may substitute it. */
export interface SipSender {
  send(message: SipMessage, destination: Destination): Promise<void>;
  sendResponse(response: SipResponse, requestSource?: MessageSource): Promise<void>;
}

export type InviteClientState = 'calling' | 'proceeding' | 'completed' | 'accepted' | 'terminated';
export type NonInviteClientState = 'trying' | 'proceeding' | 'completed' | 'terminated';
export type InviteServerState = 'proceeding' | 'completed' | 'confirmed' | 'accepted' | 'terminated';
export type NonInviteServerState = 'trying' | 'proceeding' | 'completed' | 'terminated';

/** Receives the events of one client transaction. */
export interface ClientTransactionHandler {
  /** Every response the TU must see: provisional, final, and for INVITE each 2xx (retransmissions and forks included). */
  onResponse(response: SipResponse, transaction: ClientTransaction): void;
  /** Timer B or F fired without a final response. */
  onTimeout(transaction: ClientTransaction): void;
  /** The transport could not send the request (or a retransmission); the transaction is terminated. */
  onTransportError(transaction: ClientTransaction, error: Error): void;
}

export interface TransactionLayerOptions {
  transport: SipSender;
  timers?: Partial<TransactionTimers>;
  /**
   * A request that is not a retransmission. `transaction` is the new server
   * transaction, or null for an ACK that no transaction absorbed (the ACK for
   * a 2xx, or a stray one): ACK never gets a response.
   */
  onRequest(request: SipRequest, source: MessageSource, transaction: ServerTransaction | null): void;
  /**
   * Screens a request before any state is kept for it: a new request (not a retransmission) or
   * an ACK no transaction absorbed. False drops it here, with no server transaction; the TU may
   * have answered it statelessly. Absent: every request is admitted.
   */
  admit?(request: SipRequest, source: MessageSource): boolean;
  /** A response matching no client transaction (e.g. a 2xx retransmission after Timer M); dropped when absent. */
  onStrayResponse?(response: SipResponse, source: MessageSource): void;
  /** Timer H fired: the ACK for a non-2xx final response never came. */
  onServerTimeout?(transaction: ServerTransaction): void;
  /** A response could not be sent; the server transaction is terminated. */
  onServerTransportError?(transaction: ServerTransaction, error: Error): void;
  /** Exceptions thrown by handlers called from timers; defaults to process.emitWarning. */
  onError?(error: Error): void;
}

export interface TransactionStats {
  activeServerTransactions: number;
  activeClientTransactions: number;
  /** Requests and responses this layer retransmitted on its timers or for a retransmitted request. */
  retransmissionsSent: number;
  /** Retransmitted requests and responses absorbed without reaching the TU. */
  retransmissionsAbsorbed: number;
}

/** What a transaction needs from its layer. */
interface LayerServices {
  readonly sender: SipSender;
  readonly timers: TransactionTimers;
  readonly options: TransactionLayerOptions;
  remove(transaction: Transaction): void;
  reportError(error: unknown): void;
  retransmitted(): void;
  absorbed(): void;
}

const TAG_PREFIX = randomBytes(6).toString('hex');
let tagCounter = 0;

/** A To/From tag unique to this process (§19.3): a random prefix plus a counter, so no entropy is drawn per call. */
export function createTag(): string {
  tagCounter = (tagCounter + 1) % Number.MAX_SAFE_INTEGER;
  return TAG_PREFIX + tagCounter.toString(36);
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function hasMagicCookie(branch: string | null | undefined): branch is string {
  return typeof branch === 'string' && branch.length > BRANCH_MAGIC_COOKIE.length && branch.startsWith(BRANCH_MAGIC_COOKIE);
}

function sentBy(via: Via): string {
  return `${via.host.toLowerCase()}:${via.port ?? ''}`;
}

/**
 * Server transaction key for a request (§17.2.3) given its parsed top Via,
 * computed as if the method were `method` (ACK and CANCEL look up their INVITE
 * this way). Null when the request lacks what the key needs.
 */
function serverKey(request: SipRequest, via: Via, method: string): string | null {
  const branch = via.params.get('branch');
  if (hasMagicCookie(branch)) return `${branch}\n${sentBy(via)}\n${method}`;
  const callId = request.headers.get('call-id');
  const from = request.headers.get('from');
  const cseq = request.headers.get('cseq');
  if (callId === undefined || from === undefined || cseq === undefined) return null;
  const fromTag = parseNameAddr(from)?.params.get('tag') ?? '';
  const seq = parseCSeq(cseq)?.seq;
  if (seq === undefined) return null;
  return `2543\n${callId}\n${fromTag}\n${seq}\n${sentBy(via)}\n${method}`;
}

/** Key matching a request to its server transaction (§17.2.3); ACK maps to its INVITE. Null when unmatchable. */
export function requestTransactionKey(request: SipRequest): string | null {
  const value = request.headers.get('via');
  const via = value === undefined ? null : parseVia(value);
  if (via === null) return null;
  return serverKey(request, via, request.method === 'ACK' ? 'INVITE' : request.method);
}

/** Key matching a response to its client transaction (§17.1.3): top Via branch + CSeq method. */
export function responseTransactionKey(response: SipResponse): string | null {
  const value = response.headers.get('via');
  const via = value === undefined ? null : parseVia(value);
  const branch = via?.params.get('branch');
  const cseq = response.headers.get('cseq');
  if (!branch || cseq === undefined) return null;
  const method = parseCSeq(cseq)?.method;
  return method === undefined ? null : `${branch}\n${method}`;
}

function copyHeaders(source: SipHeaders, target: SipHeaders, names: readonly string[]): void {
  for (const name of names) {
    const values = source.getAll(name);
    if (values.length > 0) target.set(name, values);
  }
}

/**
 * Builds the CANCEL for a request per RFC 3261 §9.1: same Request-URI,
 * Call-ID, From, To, CSeq number and Route set, and only the top Via, so it
 * carries the branch of the transaction it cancels.
 */
export function createCancel(request: SipRequest): SipRequest {
  const headers = new SipHeaders();
  const via = request.headers.get('via');
  if (via !== undefined) headers.set('via', via);
  copyHeaders(request.headers, headers, ['max-forwards', 'from', 'to', 'call-id', 'route']);
  const seq = parseCSeq(request.headers.get('cseq') ?? '')?.seq ?? 1;
  headers.set('cseq', `${seq} CANCEL`);
  return createRequest({ method: 'CANCEL', uri: request.uri, headers });
}

/** ACK for a non-2xx final response (§17.1.1.3): To from the response, everything else from the INVITE. */
function createAckForFailure(invite: SipRequest, response: SipResponse): SipRequest {
  const headers = new SipHeaders();
  const via = invite.headers.get('via');
  if (via !== undefined) headers.set('via', via);
  copyHeaders(invite.headers, headers, ['max-forwards', 'from']);
  const to = response.headers.get('to');
  if (to !== undefined) headers.set('to', to);
  copyHeaders(invite.headers, headers, ['call-id', 'route']);
  const seq = parseCSeq(invite.headers.get('cseq') ?? '')?.seq ?? 1;
  headers.set('cseq', `${seq} ACK`);
  return createRequest({ method: 'ACK', uri: invite.uri, headers });
}

/** Timer bookkeeping shared by the four state machines: one retransmission timer and one state timer. */
abstract class Transaction {
  readonly key: string;
  /** True on TCP: no retransmissions, and the absorbing timers (D, I, J, K) are zero. */
  readonly reliable: boolean;
  protected readonly services: LayerServices;
  #retransmitTimer: NodeJS.Timeout | null = null;
  #stateTimer: NodeJS.Timeout | null = null;

  constructor(services: LayerServices, key: string, reliable: boolean) {
    this.services = services;
    this.key = key;
    this.reliable = reliable;
  }

  abstract get state(): string;

  /** Ends the transaction at once: clears its timers and forgets it, without telling anyone. */
  terminate(): void {
    if (this.state === 'terminated') return;
    this.clearTimers();
    this.enterTerminated();
    this.services.remove(this);
  }

  protected abstract enterTerminated(): void;

  protected setRetransmitTimer(ms: number, callback: () => void): void {
    if (this.#retransmitTimer !== null) clearTimeout(this.#retransmitTimer);
    this.#retransmitTimer = this.#timer(ms, () => {
      this.#retransmitTimer = null;
      callback();
    });
  }

  protected clearRetransmitTimer(): void {
    if (this.#retransmitTimer === null) return;
    clearTimeout(this.#retransmitTimer);
    this.#retransmitTimer = null;
  }

  protected setStateTimer(ms: number, callback: () => void): void {
    if (this.#stateTimer !== null) clearTimeout(this.#stateTimer);
    this.#stateTimer = this.#timer(ms, () => {
      this.#stateTimer = null;
      callback();
    });
  }

  protected clearTimers(): void {
    this.clearRetransmitTimer();
    if (this.#stateTimer === null) return;
    clearTimeout(this.#stateTimer);
    this.#stateTimer = null;
  }

  /** Terminates after `ms` (at once when zero, as on reliable transports). */
  protected terminateAfter(ms: number): void {
    if (ms <= 0) this.terminate();
    else this.setStateTimer(ms, () => this.terminate());
  }

  #timer(ms: number, callback: () => void): NodeJS.Timeout {
    const timer = setTimeout(() => {
      try {
        callback();
      } catch (error) {
        this.services.reportError(error);
      }
    }, ms);
    timer.unref();
    return timer;
  }
}

// ---------------------------------------------------------------------------
// Client transactions

/** A client transaction (§17.1): created by `TransactionLayer.sendRequest`. */
export abstract class ClientTransaction extends Transaction {
  /** The request as sent; its top Via carries the branch. */
  readonly request: SipRequest;
  readonly destination: Destination;
  readonly branch: string;
  protected readonly handler: ClientTransactionHandler;

  constructor(services: LayerServices, key: string, branch: string, request: SipRequest, destination: Destination, handler: ClientTransactionHandler) {
    super(services, key, destination.transport === 'tcp');
    this.branch = branch;
    this.request = request;
    this.destination = destination;
    this.handler = handler;
  }

  /** Sends the request for the first time and starts the timers. */
  abstract start(): void;

  /** A response matching this transaction arrived. */
  abstract receiveResponse(response: SipResponse): void;

  protected transmit(message: SipRequest): void {
    this.services.sender.send(message, this.destination).catch((error: unknown) => this.#failed(toError(error)));
  }

  #failed(error: Error): void {
    if (this.state === 'terminated') return;
    this.terminate();
    this.handler.onTransportError(this, error);
  }
}

/** INVITE client transaction (§17.1.1, RFC 6026 §8.4). */
export class InviteClientTransaction extends ClientTransaction {
  #state: InviteClientState = 'calling';
  #ack: SipRequest | null = null;

  get state(): InviteClientState {
    return this.#state;
  }

  start(): void {
    const { t1 } = this.services.timers;
    this.transmit(this.request);
    if (!this.reliable) this.#scheduleTimerA(t1);
    this.setStateTimer(64 * t1, () => {
      // Timer B
      this.terminate();
      this.handler.onTimeout(this);
    });
  }

  receiveResponse(response: SipResponse): void {
    const { status } = response;
    switch (this.#state) {
      case 'calling':
      case 'proceeding':
        if (status < 200) {
          if (this.#state === 'calling') {
            // Timer B only guards the Calling state; the TU (a proxy's Timer C) bounds Proceeding.
            this.clearTimers();
            this.#state = 'proceeding';
          }
          this.handler.onResponse(response, this);
        } else if (status < 300) {
          this.clearTimers();
          this.#state = 'accepted';
          // Timer M: keep matching 2xx retransmissions and forks so they reach the TU.
          this.setStateTimer(64 * this.services.timers.t1, () => this.terminate());
          this.handler.onResponse(response, this);
        } else {
          this.clearTimers();
          this.#state = 'completed';
          this.#ack = createAckForFailure(this.request, response);
          this.transmit(this.#ack);
          this.handler.onResponse(response, this);
          if (this.#state === 'completed') this.terminateAfter(this.reliable ? 0 : this.services.timers.timerD);
        }
        return;
      case 'accepted':
        if (status >= 200 && status < 300) this.handler.onResponse(response, this);
        else this.services.absorbed();
        return;
      case 'completed':
        this.services.absorbed();
        if (status >= 300 && this.#ack !== null) {
          this.services.retransmitted();
          this.transmit(this.#ack);
        }
        return;
      case 'terminated':
        return;
    }
  }

  protected enterTerminated(): void {
    this.#state = 'terminated';
  }

  #scheduleTimerA(interval: number): void {
    // Timer A doubles without the T2 cap (§17.1.1.2); Timer B ends it after 64*T1.
    this.setRetransmitTimer(interval, () => {
      if (this.#state !== 'calling') return;
      this.services.retransmitted();
      this.transmit(this.request);
      this.#scheduleTimerA(interval * 2);
    });
  }
}

/** Non-INVITE client transaction (§17.1.2). */
export class NonInviteClientTransaction extends ClientTransaction {
  #state: NonInviteClientState = 'trying';

  get state(): NonInviteClientState {
    return this.#state;
  }

  start(): void {
    const { t1 } = this.services.timers;
    this.transmit(this.request);
    if (!this.reliable) this.#scheduleTimerE(t1);
    this.setStateTimer(64 * t1, () => {
      // Timer F
      this.terminate();
      this.handler.onTimeout(this);
    });
  }

  receiveResponse(response: SipResponse): void {
    if (this.#state === 'completed' || this.#state === 'terminated') {
      this.services.absorbed();
      return;
    }
    if (response.status < 200) {
      this.#state = 'proceeding';
      this.handler.onResponse(response, this);
      return;
    }
    this.clearTimers();
    this.#state = 'completed';
    this.handler.onResponse(response, this);
    // Timer K absorbs response retransmissions.
    if (this.#state === 'completed') this.terminateAfter(this.reliable ? 0 : this.services.timers.t4);
  }

  protected enterTerminated(): void {
    this.#state = 'terminated';
  }

  #scheduleTimerE(interval: number): void {
    this.setRetransmitTimer(interval, () => {
      if (this.#state !== 'trying' && this.#state !== 'proceeding') return;
      this.services.retransmitted();
      this.transmit(this.request);
      const { t2 } = this.services.timers;
      this.#scheduleTimerE(this.#state === 'proceeding' ? t2 : Math.min(interval * 2, t2));
    });
  }
}

// ---------------------------------------------------------------------------
// Server transactions

/** A server transaction (§17.2): created by the layer for each new request other than ACK. */
export abstract class ServerTransaction extends Transaction {
  readonly request: SipRequest;
  readonly source: MessageSource;
  #lastResponse: SipResponse | null = null;

  constructor(services: LayerServices, key: string, request: SipRequest, source: MessageSource) {
    super(services, key, source.transport === 'tcp');
    this.request = request;
    this.source = source;
  }

  /** The response a retransmitted request gets again (none once an INVITE is Accepted). */
  get lastResponse(): SipResponse | null {
    return this.#lastResponse;
  }

  /**
   * Sends a response from the TU. Returns false, sending nothing, when the
   * state does not allow it (a second final response, or the transaction has
   * ended), so the caller can fall back, e.g. to stateless forwarding of a 2xx.
   */
  abstract respond(response: SipResponse): boolean;

  /** The request was received again. */
  abstract receiveRetransmission(request: SipRequest): void;

  /** Sends a response; `keep` makes it the one retransmitted requests get. */
  protected transmit(response: SipResponse, keep = true): void {
    this.#lastResponse = keep ? response : null;
    this.#send(response);
  }

  protected retransmit(): void {
    if (this.#lastResponse !== null) this.#send(this.#lastResponse);
  }

  #send(response: SipResponse): void {
    this.services.sender.sendResponse(response, this.source).catch((error: unknown) => this.#failed(toError(error)));
  }

  #failed(error: Error): void {
    if (this.state === 'terminated') return;
    this.terminate();
    this.services.options.onServerTransportError?.(this, error);
  }
}

/** INVITE server transaction (§17.2.1, RFC 6026 §8.5-8.7). */
export class InviteServerTransaction extends ServerTransaction {
  #state: InviteServerState = 'proceeding';

  get state(): InviteServerState {
    return this.#state;
  }

  respond(response: SipResponse): boolean {
    const { status } = response;
    const { t1, t2 } = this.services.timers;
    switch (this.#state) {
      case 'proceeding':
        if (status < 200) {
          this.transmit(response);
        } else if (status < 300) {
          this.#state = 'accepted';
          // Not kept: Accepted absorbs INVITE retransmissions, and holding every 2xx for 64*T1 costs memory under load.
          this.transmit(response, false);
          // Timer L: stay to absorb INVITE retransmissions and pass 2xx retransmissions from the TU.
          this.setStateTimer(64 * t1, () => this.terminate());
        } else {
          this.#state = 'completed';
          this.transmit(response);
          if (!this.reliable) this.#scheduleTimerG(Math.min(t1, t2));
          this.setStateTimer(64 * t1, () => {
            // Timer H: no ACK came.
            this.terminate();
            this.services.options.onServerTimeout?.(this);
          });
        }
        return true;
      case 'accepted':
        if (status < 200 || status >= 300) return false;
        this.transmit(response, false);
        return true;
      default:
        return false;
    }
  }

  receiveRetransmission(request: SipRequest): void {
    this.services.absorbed();
    if (request.method === 'ACK') {
      if (this.#state !== 'completed') return;
      this.#state = 'confirmed';
      this.clearTimers();
      // Timer I absorbs ACK retransmissions.
      this.terminateAfter(this.reliable ? 0 : this.services.timers.t4);
      return;
    }
    // Proceeding: resend the last provisional; Completed: the final. Accepted and Confirmed absorb silently.
    if (this.#state === 'proceeding' || this.#state === 'completed') {
      if (this.lastResponse === null) return;
      this.services.retransmitted();
      this.retransmit();
    }
  }

  protected enterTerminated(): void {
    this.#state = 'terminated';
  }

  #scheduleTimerG(interval: number): void {
    this.setRetransmitTimer(interval, () => {
      if (this.#state !== 'completed') return;
      this.services.retransmitted();
      this.retransmit();
      this.#scheduleTimerG(Math.min(interval * 2, this.services.timers.t2));
    });
  }
}

/** Non-INVITE server transaction (§17.2.2). */
export class NonInviteServerTransaction extends ServerTransaction {
  #state: NonInviteServerState = 'trying';

  get state(): NonInviteServerState {
    return this.#state;
  }

  respond(response: SipResponse): boolean {
    if (this.#state === 'completed' || this.#state === 'terminated') return false;
    this.transmit(response);
    if (response.status < 200) {
      this.#state = 'proceeding';
    } else {
      this.#state = 'completed';
      // Timer J absorbs request retransmissions.
      this.terminateAfter(this.reliable ? 0 : 64 * this.services.timers.t1);
    }
    return true;
  }

  receiveRetransmission(): void {
    this.services.absorbed();
    if (this.#state === 'trying' || this.lastResponse === null) return;
    this.services.retransmitted();
    this.retransmit();
  }

  protected enterTerminated(): void {
    this.#state = 'terminated';
  }
}

// ---------------------------------------------------------------------------
// The layer

export class TransactionLayer {
  readonly timers: Readonly<TransactionTimers>;
  readonly #options: TransactionLayerOptions;
  readonly #services: LayerServices;
  readonly #serverTransactions = new Map<string, ServerTransaction>();
  readonly #clientTransactions = new Map<string, ClientTransaction>();
  #retransmissionsSent = 0;
  #retransmissionsAbsorbed = 0;
  #closed = false;

  constructor(options: TransactionLayerOptions) {
    this.#options = options;
    this.timers = Object.freeze({ ...DEFAULT_TRANSACTION_TIMERS, ...options.timers });
    const onError = options.onError ?? ((error: Error) => process.emitWarning(error));
    this.#services = {
      sender: options.transport,
      timers: this.timers,
      options,
      remove: (transaction) => {
        const map = transaction instanceof ServerTransaction ? this.#serverTransactions : this.#clientTransactions;
        if (map.get(transaction.key) === transaction) map.delete(transaction.key);
      },
      reportError: (error) => {
        try {
          onError(toError(error));
        } catch {
          // A throwing error handler must not break the timer that called it.
        }
      },
      retransmitted: () => {
        this.#retransmissionsSent++;
      },
      absorbed: () => {
        this.#retransmissionsAbsorbed++;
      },
    };
  }

  get serverTransactionCount(): number {
    return this.#serverTransactions.size;
  }

  get clientTransactionCount(): number {
    return this.#clientTransactions.size;
  }

  get stats(): TransactionStats {
    return {
      activeServerTransactions: this.#serverTransactions.size,
      activeClientTransactions: this.#clientTransactions.size,
      retransmissionsSent: this.#retransmissionsSent,
      retransmissionsAbsorbed: this.#retransmissionsAbsorbed,
    };
  }

  /** Entry point for every inbound message (wire SipTransportLayer's onMessage here). */
  receive(message: SipMessage, source: MessageSource): void {
    if (this.#closed) return;
    if (message.kind === 'response') this.#receiveResponse(message, source);
    else this.#receiveRequest(message, source);
  }

  /**
   * Sends a request through a new client transaction. The request's top Via
   * must carry a unique branch with the magic cookie; the layer does not
   * modify the request. Throws when the branch is missing or already in use.
   */
  sendRequest(request: SipRequest, destination: Destination, handler: ClientTransactionHandler): ClientTransaction {
    if (this.#closed) throw new Error('transaction layer is closed');
    if (request.method === 'ACK') throw new Error('ACK is not sent through a client transaction');
    const value = request.headers.get('via');
    const branch = value === undefined ? undefined : parseVia(value)?.params.get('branch');
    if (!hasMagicCookie(branch)) throw new Error('request needs a top Via with an RFC 3261 branch');
    const key = `${branch}\n${request.method}`;
    if (this.#clientTransactions.has(key)) throw new Error(`client transaction ${branch} ${request.method} already exists`);
    const transaction =
      request.method === 'INVITE'
        ? new InviteClientTransaction(this.#services, key, branch, request, destination, handler)
        : new NonInviteClientTransaction(this.#services, key, branch, request, destination, handler);
    this.#clientTransactions.set(key, transaction);
    transaction.start();
    return transaction;
  }

  /** The INVITE server transaction a CANCEL refers to (§9.2), if it still exists. */
  findInviteServerTransaction(cancel: SipRequest): InviteServerTransaction | null {
    const value = cancel.headers.get('via');
    const via = value === undefined ? null : parseVia(value);
    const key = via === null ? null : serverKey(cancel, via, 'INVITE');
    const transaction = key === null ? undefined : this.#serverTransactions.get(key);
    return transaction instanceof InviteServerTransaction ? transaction : null;
  }

  /** Ends every transaction and clears all timers; later messages are ignored. */
  close(): void {
    this.#closed = true;
    for (const transaction of [...this.#serverTransactions.values(), ...this.#clientTransactions.values()]) transaction.terminate();
    this.#serverTransactions.clear();
    this.#clientTransactions.clear();
  }

  #receiveRequest(request: SipRequest, source: MessageSource): void {
    const key = requestTransactionKey(request);
    // The parser guarantees a valid top Via, so a null key only comes from hand-built requests.
    if (key === null) return;
    const existing = this.#serverTransactions.get(key);
    if (request.method === 'ACK') {
      // An ACK for a non-2xx ends at its INVITE server transaction; any other ACK goes to the TU.
      if (existing !== undefined && existing.state !== 'accepted') existing.receiveRetransmission(request);
      else if (this.#options.admit?.(request, source) !== false) this.#options.onRequest(request, source, null);
      return;
    }
    if (existing !== undefined) {
      existing.receiveRetransmission(request);
      return;
    }
    if (this.#options.admit?.(request, source) === false) return;
    const transaction =
      request.method === 'INVITE'
        ? new InviteServerTransaction(this.#services, key, request, source)
        : new NonInviteServerTransaction(this.#services, key, request, source);
    this.#serverTransactions.set(key, transaction);
    try {
      this.#options.onRequest(request, source, transaction);
    } catch (error) {
      // A TU failure must not leave the transaction (and the caller) waiting forever.
      if (transaction.lastResponse === null || transaction.lastResponse.status < 200) transaction.respond(buildResponse(request, 500, { toTag: createTag() }));
      throw error;
    }
  }

  #receiveResponse(response: SipResponse, source: MessageSource): void {
    const key = responseTransactionKey(response);
    const transaction = key === null ? undefined : this.#clientTransactions.get(key);
    if (transaction !== undefined) transaction.receiveResponse(response);
    else this.#options.onStrayResponse?.(response, source);
  }
}
