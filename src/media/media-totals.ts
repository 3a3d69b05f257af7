import { isDict, type BencodeDict, type BencodeValue } from './bencode.ts';

/** RTP one party sent through the relay. */
export interface MediaFlow {
  packets: number;
  bytes: number;
  /** Packets rtpengine could not relay (malformed, or failing SRTP authentication). */
  errors: number;
  /**
   * Packets of this flow the receiving party reported lost in its RTCP receiver reports (the
   * cumulative count, RFC 3550 §6.4.1): losses before the relay and after it. Null when that
   * party sent no report rtpengine kept.
   */
  lost: number | null;
}

/** What flowed through the relay during a call, per party it came from. */
export interface MediaTotals {
  fromCaller: MediaFlow | null;
  fromCallee: MediaFlow | null;
}

const count = (value: BencodeValue | undefined) => (typeof value === 'number' && value >= 0 ? value : 0);
const list = (value: BencodeValue | undefined) => (Array.isArray(value) ? value : []);

/** A party's RTP: what its streams received from it, and the SSRCs it sent with. */
interface PartyMedia {
  flow: Omit<MediaFlow, 'lost'>;
  ssrcs: number[];
}

function partyMedia(party: BencodeDict): PartyMedia {
  const flow = { packets: 0, bytes: 0, errors: 0 };
  const ssrcs: number[] = [];
  for (const media of list(party.medias)) {
    if (!isDict(media)) continue;
    for (const stream of list(media.streams)) {
      if (!isDict(stream) || list(stream.flags).includes('RTCP') || !isDict(stream.stats)) continue;
      flow.packets += count(stream.stats.packets);
      flow.bytes += count(stream.stats.bytes);
      flow.errors += count(stream.stats.errors);
      if (typeof stream.SSRC === 'number') ssrcs.push(stream.SSRC);
    }
  }
  return { flow, ssrcs };
}

/**
 * The losses a party reported about what it received. rtpengine files a receiver report's
 * cumulative loss under the reporter's own SSRC, and lists an SSRC only once its reports gave a
 * round-trip time (both parties sent sender reports and answered each other's).
 */
function lossReportedBy(receiver: PartyMedia | undefined, bySsrc: BencodeDict): number | null {
  let lost: number | null = null;
  for (const ssrc of receiver?.ssrcs ?? []) {
    const entry = bySsrc[String(ssrc)];
    const reported = isDict(entry) ? entry['cumulative loss'] : undefined;
    if (typeof reported === 'number' && reported >= 0) lost = (lost ?? 0) + reported;
  }
  return lost;
}

/**
 * The figures of a `delete` reply: under `tags`, each party (by its SIP tag) has its media and
 * their streams, each stream with the `stats` of what rtpengine received on it. RTCP streams are
 * left out: the figures are the call's audio. Under `SSRC`, what each party's receiver reports
 * said. The caller is the party with `callerTag`; the callee is the other one.
 */
export function mediaTotals(reply: BencodeDict, callerTag: string): MediaTotals {
  const tags = isDict(reply.tags) ? reply.tags : {};
  let caller: PartyMedia | undefined;
  let callee: PartyMedia | undefined;
  for (const [tag, party] of Object.entries(tags)) {
    if (!isDict(party)) continue;
    if (tag === callerTag) caller = partyMedia(party);
    else callee ??= partyMedia(party);
  }
  const bySsrc = isDict(reply.SSRC) ? reply.SSRC : {};
  return {
    fromCaller: caller === undefined ? null : { ...caller.flow, lost: lossReportedBy(callee, bySsrc) },
    fromCallee: callee === undefined ? null : { ...callee.flow, lost: lossReportedBy(caller, bySsrc) },
  };
}
