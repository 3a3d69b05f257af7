import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BencodeDict } from '../../src/media/bencode.ts';
import { mediaTotals, type MediaTotals } from '../../src/media/media-totals.ts';

/** A party as rtpengine 10.5 lists it under `tags`: an RTP stream (with the SSRC it sent) and an RTCP stream. */
const party = (ssrc: number | null, packets: number, rtcpPackets = 2): BencodeDict => ({
  medias: [
    {
      streams: [
        { flags: ['RTP', 'filled'], ...(ssrc === null ? {} : { SSRC: ssrc }), stats: { packets, bytes: packets * 172, errors: 0 } },
        { flags: ['RTCP', 'filled'], stats: { packets: rtcpPackets, bytes: rtcpPackets * 68, errors: 0 } },
      ],
    },
  ],
});

const flow = (packets: number, lost: number | null) => ({ packets, bytes: packets * 172, errors: 0, lost });

const cases: { name: string; reply: BencodeDict; expected: MediaTotals }[] = [
  {
    name: 'no receiver reports kept: packets without losses',
    reply: { tags: { caller: party(4660, 27), callee: party(5660, 19) }, SSRC: {} },
    expected: { fromCaller: flow(27, null), fromCallee: flow(19, null) },
  },
  {
    name: 'each party’s reported loss is filed under its own SSRC and belongs to what it received',
    reply: {
      tags: { caller: party(4660, 27), callee: party(5660, 19) },
      SSRC: { '4660': { 'cumulative loss': 1 }, '5660': { 'cumulative loss': 3 } },
    },
    expected: { fromCaller: flow(27, 3), fromCallee: flow(19, 1) },
  },
  {
    name: 'only the callee’s reports kept',
    reply: { tags: { caller: party(4660, 27), callee: party(5660, 19) }, SSRC: { '5660': { 'cumulative loss': 0 } } },
    expected: { fromCaller: flow(27, 0), fromCallee: flow(19, null) },
  },
  {
    name: 'an SSRC without a cumulative loss, or with one that is not a count, says nothing',
    reply: {
      tags: { caller: party(4660, 27), callee: party(5660, 19) },
      SSRC: { '4660': { 'average MOS': { MOS: 43 } }, '5660': { 'cumulative loss': -2 } },
    },
    expected: { fromCaller: flow(27, null), fromCallee: flow(19, null) },
  },
  {
    name: 'a party that never sent RTP has no SSRC to look up',
    reply: { tags: { caller: party(4660, 27), callee: party(null, 0) }, SSRC: { '4660': { 'cumulative loss': 5 } } },
    expected: { fromCaller: flow(27, null), fromCallee: flow(0, 5) },
  },
  {
    name: 'the caller’s tag is absent: only the callee’s figures',
    reply: { tags: { callee: party(5660, 19) } },
    expected: { fromCaller: null, fromCallee: flow(19, null) },
  },
  {
    name: 'a reply without tags',
    reply: { result: 'ok' },
    expected: { fromCaller: null, fromCallee: null },
  },
];

for (const { name, reply, expected } of cases) {
  test(`mediaTotals: ${name}`, () => {
    assert.deepEqual(mediaTotals(reply, 'caller'), expected);
  });
}
