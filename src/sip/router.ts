/**
 * The narrow interface between the proxy core and the decisions above it (as livekit/sip's
 * Handler is between its signaling and its service): for each new out-of-dialog request the
 * router answers reject or forward, and hears back how each INVITE it decided on ended.
 */
import type { Rewrite } from './dialog-rewrite.ts';
import type { SipRequest } from './message.ts';
import type { Destination, MessageSource } from './transport.ts';

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
  | ({
      action: 'forward';
      /** SIP URI: becomes the Request-URI; its host, port and transport parameter say where to send, unless `destinations` do. */
      target: string;
      /**
       * Where to send, best first (RFC 3263 §4.3): the next is tried, on a new branch, when one
       * fails with a transport error, a timeout or a 503 before anything but 100 came back.
       */
      destinations?: readonly Destination[];
      /** Told of each destination that failed so (to skip it for a while). */
      destinationFailed?: (destination: Destination) => void;
      addHeaders?: Array<[name: string, value: string]>;
      /** Removed before addHeaders are applied, so a header can be replaced. A trailing `*` matches a prefix. */
      removeHeaders?: string[];
      /** An INVITE whose media the proxy's relay anchors, with this profile (media-relay.ts). */
      media?: string;
      context?: unknown;
    } & Rewrite);

/**
 * Decides what to do with an out-of-dialog request. The request is the copy
 * about to be forwarded (our Route popped); treat it as read-only and
 * express changes in the decision.
 */
export type Router = (request: SipRequest, source: MessageSource) => RouteDecision | Promise<RouteDecision>;

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
