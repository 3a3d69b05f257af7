/**
 * What the SIP transactions (RFC 3261 §17, with RFC 6026's Accepted state) have in common: their
 * timers, how requests and responses find their transaction (§17.1.3, §17.2.3), the requests a
 * transaction builds itself (CANCEL, the ACK for a failure), and the timer bookkeeping of the
 * four state machines. The machines are in client-transaction.ts and server-transaction.ts; the
 * layer that owns them in transaction.ts.
 */
import { randomBytes } from 'node:crypto';
import { createRequest, SipHeaders, type SipMessage, type SipRequest, type SipResponse } from './message.ts';
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

/** What a transaction needs from its layer. */
export interface LayerServices {
  readonly sender: SipSender;
  readonly timers: TransactionTimers;
  /** Timer H fired: the ACK for a non-2xx final response never came. */
  serverTimedOut(transaction: Transaction): void;
  /** A server transaction could not send a response and ended. */
  serverTransportFailed(transaction: Transaction, error: Error): void;
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

export function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

export function hasMagicCookie(branch: string | null | undefined): branch is string {
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
export function serverKey(request: SipRequest, via: Via, method: string): string | null {
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
export function createAckForFailure(invite: SipRequest, response: SipResponse): SipRequest {
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
export abstract class Transaction {
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
