import { isDict, type BencodeDict, type BencodeValue } from './bencode.ts';

/** RTP one party sent through the relay. */
export interface MediaFlow {
  packets: number;
  bytes: number;
  /** Packets rtpengine could not relay (malformed, or failing SRTP authentication). */
  errors: number;
}

/** What flowed through the relay during a call, per party it came from. */
export interface MediaTotals {
  fromCaller: MediaFlow | null;
  fromCallee: MediaFlow | null;
}

const count = (value: BencodeValue | undefined) => (typeof value === 'number' && value >= 0 ? value : 0);
const list = (value: BencodeValue | undefined) => (Array.isArray(value) ? value : []);

/**
 * The figures of a `delete` reply: under `tags`, each party (by its SIP tag) has its media and
 * their streams, each stream with the `stats` of what rtpengine received on it. RTCP streams are
 * left out: the figures are the call's audio. The caller is the party with `callerTag`; the callee
 * is the other one.
 */
export function mediaTotals(reply: BencodeDict, callerTag: string): MediaTotals {
  const totals: MediaTotals = { fromCaller: null, fromCallee: null };
  const tags = isDict(reply.tags) ? reply.tags : {};
  for (const [tag, party] of Object.entries(tags)) {
    if (!isDict(party)) continue;
    const flow: MediaFlow = { packets: 0, bytes: 0, errors: 0 };
    for (const media of list(party.medias)) {
      if (!isDict(media)) continue;
      for (const stream of list(media.streams)) {
        if (!isDict(stream) || list(stream.flags).includes('RTCP') || !isDict(stream.stats)) continue;
        flow.packets += count(stream.stats.packets);
        flow.bytes += count(stream.stats.bytes);
        flow.errors += count(stream.stats.errors);
      }
    }
    if (tag === callerTag) totals.fromCaller = flow;
    else totals.fromCallee ??= flow;
  }
  return totals;
}
