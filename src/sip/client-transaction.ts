/** The client transactions of RFC 3261 §17.1 (INVITE with RFC 6026's Accepted state, and non-INVITE). */
import type { SipRequest, SipResponse } from './message.ts';
import {
  createAckForFailure,
  Transaction,
  toError,
  type InviteClientState,
  type LayerServices,
  type NonInviteClientState,
} from './transaction-base.ts';
import type { Destination } from './transport.ts';

/** Receives the events of one client transaction. */
export interface ClientTransactionHandler {
  /** Every response the TU must see: provisional, final, and for INVITE each 2xx (retransmissions and forks included). */
  onResponse(response: SipResponse, transaction: ClientTransaction): void;
  /** Timer B or F fired without a final response. */
  onTimeout(transaction: ClientTransaction): void;
  /** The transport could not send the request (or a retransmission); the transaction is terminated. */
  onTransportError(transaction: ClientTransaction, error: Error): void;
}

/** A client transaction (§17.1): created by `TransactionLayer.sendRequest`. */
export abstract class ClientTransaction extends Transaction {
  /** The request as sent; its top Via carries the branch. */
  readonly request: SipRequest;
  readonly destination: Destination;
  readonly branch: string;
  protected readonly handler: ClientTransactionHandler;

  constructor(
    services: LayerServices,
    key: string,
    branch: string,
    request: SipRequest,
    destination: Destination,
    handler: ClientTransactionHandler,
  ) {
    super(services, key, destination.transport !== 'udp');
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
