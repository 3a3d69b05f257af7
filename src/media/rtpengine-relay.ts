/**
 * Media anchoring over rtpengine (docs/media.md): the proxy's MediaRelay, speaking ng. Each SDP
 * of an anchored dialog becomes an `offer` or `answer` whose reply carries the SDP to relay
 * instead (rtpengine's addresses and ports in place of the party's); `delete` frees the call and
 * reports what flowed. The direction of each offer (the sender's interface, then the
 * receiver's) and the carrier leg's encryption come from the call's profile.
 */
import type { MediaConfig } from '../config.ts';
import type { SipMessage, SipRequest } from '../sip/message.ts';
import { tagOf } from '../sip/offer-answer.ts';
import { carriesSdp, type MediaRefusal, type MediaRelay, type MediaSession, type SdpStep } from '../sip/media-relay.ts';
import { sessionDescription } from '../sip/sdp-body.ts';
import type { BencodeDict } from './bencode.ts';
import { decodeProfile, otherParty, type CarrierEncryption, type MediaProfile, type PartyKind } from './media-profile.ts';
import { mediaTotals, type MediaTotals } from './media-totals.ts';
import { formatAddress, NgError, type NgAddress, type NgClient, type NgFailure } from './ng-client.ts';
import { parseRelay, RtpengineSet } from './rtpengine-set.ts';

export interface MediaObserver {
  ngCommand(command: string, outcome: 'ok' | NgFailure): void;
  /**
   * A call's media was freed: what flowed, or null when its rtpengine could not be asked (the
   * figures are lost). `answered`: the call was hung up, rather than its INVITE failing.
   */
  callMediaEnded(callId: string, totals: MediaTotals | null, answered: boolean): void;
}

const NO_RELAY: MediaRefusal = { status: 503, reason: 'No media relay available' };
const REFUSED_SDP: MediaRefusal = { status: 488, reason: 'Session description not acceptable to the media relay' };

/** The SDP profile offered to a party whose media is encrypted so. */
const TRANSPORT_PROTOCOLS: Record<CarrierEncryption, string> = {
  none: 'RTP/AVP',
  'sdes-srtp': 'RTP/SAVP',
  'dtls-srtp': 'UDP/TLS/RTP/SAVP',
};

/** rtpengine's `error-reason` for an SDP it cannot use, as opposed to a fault of its own (ports run out, say), when another rtpengine may do. */
const SDP_FAULT = /sdp|parse|media|codec|protocol/i;

export class RtpengineRelay implements MediaRelay {
  readonly #config: MediaConfig;
  readonly #client: NgClient;
  readonly #set: RtpengineSet;
  readonly #observer: MediaObserver | undefined;

  constructor(config: MediaConfig, client: NgClient, observer?: MediaObserver) {
    this.#config = config;
    this.#client = client;
    this.#set = new RtpengineSet(config.rtpengines);
    this.#observer = observer;
  }

  async startCall(invite: SipRequest, profileText: string): Promise<MediaSession | MediaRefusal | null> {
    const profile = decodeProfile(profileText);
    if (profile === null) throw new Error(`not a media profile: "${profileText}"`);
    const offererTag = tagOf(invite, 'from');
    for (const address of this.#set.candidates()) {
      try {
        // Without an offer (the 2xx will make it) the rtpengine is only asked whether it is there.
        if (carriesSdp(invite)) await this.#rewrite(invite, address, profile, { kind: 'offer', offererTag, answererTag: '', fromCaller: true });
        else await this.#request(address, { command: 'ping' });
        this.#set.answered(address);
        return { relay: formatAddress(address), profile: profileText };
      } catch (error) {
        if (error instanceof NgError && error.kind === 'error' && SDP_FAULT.test(error.message)) return REFUSED_SDP;
        this.#set.failed(address);
      }
    }
    return this.#config.fallback === 'direct' ? null : NO_RELAY;
  }

  async rewrite(message: SipMessage, session: MediaSession, step: SdpStep): Promise<MediaRefusal | null> {
    const address = parseRelay(session.relay);
    const profile = decodeProfile(session.profile);
    if (address === null || profile === null) return NO_RELAY;
    try {
      await this.#rewrite(message, address, profile, step);
      return null;
    } catch (error) {
      if (error instanceof NgError && error.kind === 'error') return REFUSED_SDP;
      // Gone mid-call: new calls pass it over for a while.
      this.#set.failed(address);
      return NO_RELAY;
    }
  }

  endCall(session: MediaSession, dialog: { callId: string; callerTag: string }, answered: boolean): void {
    const address = parseRelay(session.relay);
    if (address === null || dialog.callId === '') return;
    // Named by the caller's tag, rtpengine answers with the call's figures (by Call-ID alone it does not).
    const command: BencodeDict & { command: string } = { command: 'delete', 'call-id': dialog.callId };
    if (dialog.callerTag !== '') command['from-tag'] = dialog.callerTag;
    this.#request(address, command).then(
      (reply) => this.#observer?.callMediaEnded(dialog.callId, mediaTotals(reply, dialog.callerTag), answered),
      () => this.#observer?.callMediaEnded(dialog.callId, null, answered),
    );
  }

  /** Sends the message's SDP as an offer or answer and puts the SDP of the reply in its place. */
  async #rewrite(message: SipMessage, address: NgAddress, profile: MediaProfile, step: SdpStep): Promise<void> {
    const description = sessionDescription(message);
    if (description === null) return;
    const sender: PartyKind = step.fromCaller ? profile.caller : otherParty(profile.caller);
    const receiver = otherParty(sender);
    const command: BencodeDict & { command: string } = {
      command: step.kind,
      'call-id': message.headers.get('call-id') ?? '',
      'from-tag': step.offererTag,
      sdp: description.sdp.toString('utf8'),
      // The session's origin and connection lines name rtpengine, not the party behind it.
      replace: ['origin', 'session-connection'],
      ICE: 'remove',
    };
    if (step.answererTag !== '') command['to-tag'] = step.answererTag;
    if (step.kind === 'offer') {
      const encryption = receiver === 'carrier' ? profile.carrierEncryption : 'none';
      command['transport-protocol'] = TRANSPORT_PROTOCOLS[encryption];
      // Keys go in the SDP or through the handshake, not both (RFC 5763 §5).
      if (encryption === 'dtls-srtp') command.SDES = ['off'];
      const { carrierInterface, agentInterface } = this.#config;
      if (carrierInterface !== null && agentInterface !== null) {
        const name = (kind: PartyKind) => (kind === 'carrier' ? carrierInterface : agentInterface);
        command.direction = [name(sender), name(receiver)];
      }
    }
    const reply = await this.#request(address, command);
    if (typeof reply.sdp !== 'string') throw new NgError('malformed', `rtpengine ${formatAddress(address)} answered ${step.kind} without an SDP`);
    message.body = description.replacedBy(Buffer.from(reply.sdp, 'utf8'));
  }

  async #request(address: NgAddress, command: BencodeDict & { command: string }): Promise<BencodeDict> {
    try {
      const reply = await this.#client.request(address, command, { timeoutMs: this.#config.timeoutMs });
      this.#observer?.ngCommand(command.command, 'ok');
      return reply;
    } catch (error) {
      this.#observer?.ngCommand(command.command, error instanceof NgError ? error.kind : 'error');
      throw error;
    }
  }
}
