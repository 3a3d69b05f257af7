/** The server transactions of RFC 3261 §17.2 (INVITE with RFC 6026's Accepted state, and non-INVITE). */
import type { SipRequest, SipResponse } from './message.ts';
import { Transaction, toError, type InviteServerState, type LayerServices, type NonInviteServerState } from './transaction-base.ts';
import type { MessageSource } from './transport.ts';

/** A server transaction (§17.2): created by the layer for each new request other than ACK. */
export abstract class ServerTransaction extends Transaction {
  readonly request: SipRequest;
  readonly source: MessageSource;
  #lastResponse: SipResponse | null = null;

  constructor(services: LayerServices, key: string, request: SipRequest, source: MessageSource) {
    super(services, key, source.transport !== 'udp');
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
    this.services.serverTransportFailed(this, error);
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
            this.services.serverTimedOut(this);
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
