/**
 * Which SDP step a message of an anchored dialog is (RFC 3264's offer/answer carried by SIP, as
 * RFC 6337 describes it): the proxy asks, the media relay acts. Pure functions, so the rules are
 * in one place and table-tested.
 */
import type { MediaRefusal, SdpStep } from './media-relay.ts';
import { carriesSdp } from './media-relay.ts';
import type { SipMessage, SipRequest, SipResponse } from './message.ts';
import { parseNameAddr } from './parse-address.ts';

/** Methods whose SDP the relay rewrites: INVITE and UPDATE offer (or, without SDP, ask for an offer); PRACK answers. */
const SDP_METHODS = new Set(['INVITE', 'UPDATE', 'PRACK']);

export function tagOf(message: SipMessage, header: 'from' | 'to'): string {
  const tag = parseNameAddr(message.headers.get(header) ?? '')?.params.get('tag');
  return typeof tag === 'string' ? tag : '';
}

/** A request's SDP: an INVITE's or UPDATE's offer, a PRACK's answer (to a reliable 18x's offer); null for the rest. */
export function requestSdpStep(request: SipRequest, fromCaller: boolean): SdpStep | null {
  if (!SDP_METHODS.has(request.method) || !carriesSdp(request)) return null;
  return request.method === 'PRACK'
    ? { kind: 'answer', offererTag: tagOf(request, 'to'), answererTag: tagOf(request, 'from'), fromCaller }
    : { kind: 'offer', offererTag: tagOf(request, 'from'), answererTag: tagOf(request, 'to'), fromCaller };
}

/** An ACK's SDP: the answer to the offer its INVITE's 2xx made (late offer). */
export function ackSdpStep(ack: SipRequest, fromCaller: boolean): SdpStep | null {
  if (!carriesSdp(ack)) return null;
  return { kind: 'answer', offererTag: tagOf(ack, 'to'), answererTag: tagOf(ack, 'from'), fromCaller };
}

/**
 * A 1xx/2xx's SDP answers its request's offer or, when the request had none, is the offer
 * (answered in the ACK or PRACK). `requestFromCaller`: who sent the request; the response comes
 * from the other side.
 */
export function responseSdpStep(request: SipRequest, response: SipResponse, requestFromCaller: boolean): SdpStep | null {
  if (response.status >= 300 || !SDP_METHODS.has(request.method) || !carriesSdp(response)) return null;
  const fromCaller = !requestFromCaller;
  return carriesSdp(request)
    ? { kind: 'answer', offererTag: tagOf(response, 'from'), answererTag: tagOf(response, 'to'), fromCaller }
    : { kind: 'offer', offererTag: tagOf(response, 'to'), answererTag: tagOf(response, 'from'), fromCaller };
}

/** The dialog of a request, as the relay names calls: its Call-ID and the caller's tag. */
export function dialogOf(request: SipRequest, fromCaller: boolean): { callId: string; callerTag: string } {
  return { callId: request.headers.get('call-id') ?? '', callerTag: tagOf(request, fromCaller ? 'from' : 'to') };
}

/** RFC 3326: why the proxy answered as it did instead of forwarding. */
export function reasonHeader(refusal: MediaRefusal): [string, string] {
  return ['Reason', `SIP;cause=${refusal.status};text="${refusal.reason}"`];
}
