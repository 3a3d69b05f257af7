/**
 * The proxy's side of media anchoring: a narrow interface that src/media/ implements over
 * rtpengine. The proxy decides when a message's SDP is an offer or an answer (RFC 3264's
 * offer/answer over SIP, RFC 6337) and who sent it; the relay rewrites the SDP so that media
 * flows through it, and the proxy relays the message only once that is done.
 */
import type { SipMessage, SipRequest } from './message.ts';
import { sessionDescription } from './sdp-body.ts';

/**
 * An anchored dialog as the proxy carries it, in its signed Record-Route (so any instance can
 * act on the dialog's later requests without a shared lookup): which relay holds the media, and
 * the opaque profile the router chose (who the caller is, how each leg is encrypted).
 */
export interface MediaSession {
  relay: string;
  profile: string;
}

/** One SDP to rewrite: whether it offers or answers, and the tags of the dialog's two parties. */
export interface SdpStep {
  kind: 'offer' | 'answer';
  /** The tag of the party that made the offer this step belongs to. */
  offererTag: string;
  /** The other party's tag; empty in an initial offer, where it does not exist yet. */
  answererTag: string;
  /** Whether the message comes from the dialog's caller (the initial INVITE's sender). */
  fromCaller: boolean;
}

/** A refusal: the SIP status (and the Reason header's text) to answer instead of forwarding. */
export interface MediaRefusal {
  status: number;
  reason: string;
}

export interface MediaRelay {
  /**
   * A new call the router chose to anchor with `profile`: picks a relay and rewrites the
   * INVITE's offer, if it has one, in place. Null when no relay can take it and the operator
   * chose direct media; a refusal when no relay can take it or the offer is refused.
   */
  startCall(invite: SipRequest, profile: string): Promise<MediaSession | MediaRefusal | null>;
  /** Rewrites `message`'s SDP in place through the session's relay; a refusal when the relay refused it or cannot be reached. */
  rewrite(message: SipMessage, session: MediaSession, step: SdpStep): Promise<MediaRefusal | null>;
  /** The call is over: hung up (`answered`), or its INVITE failed. Frees its media. Never throws. */
  endCall(session: MediaSession, dialog: { callId: string; callerTag: string }, answered: boolean): void;
}

export const isRefusal = (value: MediaSession | MediaRefusal | null): value is MediaRefusal => value !== null && 'status' in value;

/** Whether a message carries a session description, as its body or a part of it (the only thing the relay rewrites). */
export const carriesSdp = (message: SipMessage): boolean => sessionDescription(message) !== null;
