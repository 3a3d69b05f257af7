/** What the proxy keeps about one request it proxies, until its final response (§16's response context). */
import type { ClientTransaction } from './client-transaction.ts';
import type { RewrittenRequest } from './dialog-rewrite.ts';
import type { SipRequest } from './message.ts';
import type { MediaSession } from './media-relay.ts';
import type { RouteDecision } from './router.ts';
import type { ServerTransaction } from './server-transaction.ts';
import type { Destination, MessageSource } from './transport.ts';

/** State of one proxied request: its server transaction and the single branch it was forwarded on (§16's response context). */
export class ResponseContext {
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
  /** A rewritten initial request's state (dialog-rewrite.ts); null otherwise. */
  rewrite: RewrittenRequest | null = null;
  /** How many Record-Route values we put on top of the forwarded request. */
  recordRouted = 0;
  /** Destinations not tried yet (the router's, RFC 3263 failover). */
  untried: Destination[] = [];
  /** A provisional response other than 100 came: from then on a failure is final, never another target. */
  ringing = false;
  /** The anchored dialog's media session; null when its media is not anchored. */
  media: MediaSession | null = null;
  /** Whether the request came from the dialog's caller (in-dialog requests may come from either side). */
  fromCaller = true;
  /** Responses of an anchored dialog wait here for their SDP's rewrite, so they go upstream in the order they came. */
  mediaQueue: Promise<void> = Promise.resolve();

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
