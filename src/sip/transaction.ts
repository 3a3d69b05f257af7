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
import { buildResponse, type SipMessage, type SipRequest, type SipResponse } from './message.ts';
import { parseVia } from './parse-via.ts';
import { InviteClientTransaction, NonInviteClientTransaction, type ClientTransaction, type ClientTransactionHandler } from './client-transaction.ts';
import { InviteServerTransaction, NonInviteServerTransaction, ServerTransaction } from './server-transaction.ts';
import {
  createTag,
  DEFAULT_TRANSACTION_TIMERS,
  hasMagicCookie,
  requestTransactionKey,
  responseTransactionKey,
  serverKey,
  toError,
  type LayerServices,
  type SipSender,
  type TransactionTimers,
} from './transaction-base.ts';
import type { Destination, MessageSource } from './transport.ts';

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
  onError?: (error: Error) => void;
}

export interface TransactionStats {
  activeServerTransactions: number;
  activeClientTransactions: number;
  /** Requests and responses this layer retransmitted on its timers or for a retransmitted request. */
  retransmissionsSent: number;
  /** Retransmitted requests and responses absorbed without reaching the TU. */
  retransmissionsAbsorbed: number;
}

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
      serverTimedOut: (transaction) => options.onServerTimeout?.(transaction as ServerTransaction),
      serverTransportFailed: (transaction, error) => options.onServerTransportError?.(transaction as ServerTransaction, error),
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
      if (transaction.lastResponse === null || transaction.lastResponse.status < 200)
        transaction.respond(buildResponse(request, 500, { toTag: createTag() }));
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
