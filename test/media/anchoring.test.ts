import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import { ProtectionProfileAes128CmHmacSha1_80, RtpHeader, SrtpSession } from 'werift-rtp';
import { OperatorError } from '../../src/common/errors.ts';
import { NgClient } from '../../src/media/ng-client.ts';
import type { SipMessage, SipRequest, SipResponse } from '../../src/sip/message.ts';
import { clientFor, eventually, type Client } from '../support/api.ts';
import { rtpengineAvailable, startRtpengine, type Rtpengine } from '../support/rtpengine.ts';
import { RtpPeer } from '../support/rtp-peer.ts';
import { dtlsIdentity, dtlsSrtpHandshake } from '../support/dtls-srtp.ts';
import { freePort } from '../support/sipp.ts';
import {
  cancelText,
  inDialogText,
  inviteText,
  newCall,
  replyText,
  request,
  response,
  UdpPeer,
  ackText,
  calleeRequestText,
  type Call,
} from '../support/sip-peers.ts';
import { freshDatabase, startTestServer, type TestServer } from '../support/server.ts';
import { testBackends } from '../support/backends.ts';

const available = rtpengineAvailable();
const postgres = (await testBackends()).includes('postgres');

/** An SDP offering PCMU on `port` at `address`. */
const sdp = (address: string, port: number, extra: string[] = [], profile = 'RTP/AVP') =>
  [
    'v=0',
    `o=- 1 1 IN IP4 ${address}`,
    's=-',
    `c=IN IP4 ${address}`,
    't=0 0',
    `m=audio ${port} ${profile} 0`,
    'a=rtpmap:0 PCMU/8000',
    ...extra,
    '',
  ].join('\r\n');

/** `text` (a SIP message without body) with `body` as its SDP. */
function withSdp(text: string, body: string): string {
  const head = text.slice(0, text.indexOf('\r\n\r\n')).replace(/\r\nContent-Length: \d+/i, '');
  return `${head}\r\nContent-Type: application/sdp\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** `text` without its body. */
function withoutBody(text: string): string {
  const head = text
    .slice(0, text.indexOf('\r\n\r\n'))
    .replace(/\r\nContent-Length: \d+/i, '')
    .replace(/\r\nContent-Type: [^\r]+/i, '');
  return `${head}\r\nContent-Length: 0\r\n\r\n`;
}

/** The connection address and port of a message's audio. */
function audioOf(message: SipMessage): { address: string; port: number; profile: string } {
  const text = message.body.toString();
  const address = /^c=IN IP4 (\S+)/m.exec(text)?.[1];
  const media = /^m=audio (\d+) (\S+)/m.exec(text);
  assert.ok(address && media, `no audio in:\n${text}`);
  return { address, port: Number(media[1]), profile: media[2] };
}

/**
 * A server anchoring media through `rtpengines`, a trunk at a carrier peer (127.0.0.2) and
 * `phoneNumber` linked to an agent peer (127.0.0.3). `call()` has the carrier offer audio on
 * `rtpPort`.
 */
async function anchoredEdge(rtpengines: string, phoneNumber: string, env: Record<string, string> = {}) {
  const port = await freePort();
  const edge = { host: '127.0.0.1', port };
  const carrier = await UdpPeer.start('127.0.0.2', edge);
  const agent = await UdpPeer.start('127.0.0.3', edge);
  const server = await startTestServer('sqlite', {
    env: { DIALPLANE_SIP_PORT: String(port), DIALPLANE_SIP_T1_MS: '50', DIALPLANE_RTPENGINE: rtpengines, ...env },
  });
  const org = await clientFor(server, 'default');
  const creds = await org.createCredentials({ server: `127.0.0.2:${carrier.port}`, allowedAddresses: ['127.0.0.2'] });
  const linked = await org.createAgent({ sipUri: `sip:agent@${agent.hostPort}` });
  const number = await org.createNumber({ phoneNumber, credentialsId: creds.id });
  await org.link(number.id, linked.agentId);
  const call = (rtpPort = 30000) => {
    const next = newCall(`127.0.0.1:${port}`, phoneNumber);
    carrier.send(withSdp(inviteText(next, carrier), sdp('127.0.0.2', rtpPort)));
    return next;
  };
  return {
    port,
    server,
    org,
    carrier,
    agent,
    call,
    async close() {
      await server.close();
      await carrier.close();
      await agent.close();
    },
  };
}

describe('media anchored through rtpengine', { skip: !available }, () => {
  let rtpengine: Rtpengine;
  let ng: NgClient;
  let server: TestServer;
  let org: Client;
  let carrier: UdpPeer;
  let agent: UdpPeer;
  let port: number;
  let edge: Awaited<ReturnType<typeof anchoredEdge>>;
  const dialled = '+15550170100';

  const calls = async () => (await ng.request(rtpengine.ng, { command: 'list' })).calls as string[];
  const noSessionLeft = () => eventually('no rtpengine session left', async () => (await calls()).length === 0, 5000);

  before(async () => {
    rtpengine = await startRtpengine();
    ng = new NgClient();
    edge = await anchoredEdge(`${rtpengine.ng.host}:${rtpengine.ng.port}`, dialled);
    ({ port, server, org, carrier, agent } = edge);
  });

  after(async () => {
    await edge?.close();
    await ng?.close();
    await rtpengine?.stop();
  });

  // Each test starts with empty queues: an earlier one may leave retransmissions behind. A test
  // that failed may also leave an rtpengine call (every test checks its own end for leftovers):
  // deleted here, so that one failure does not fail the tests after it.
  beforeEach(async () => {
    carrier.received.length = 0;
    agent.received.length = 0;
    for (const callId of await calls()) await ng.request(rtpengine.ng, { command: 'delete', 'call-id': callId });
  });

  /** The carrier calls with an offer for `carrierRtp`; the agent gets the INVITE. */
  async function invite(call: Call, carrierRtp: RtpPeer, extra: string[] = [], body?: string): Promise<SipRequest> {
    carrier.send(withSdp(inviteText(call, carrier, extra), body ?? sdp('127.0.0.2', carrierRtp.port)));
    return agent.next(request('INVITE'), 'INVITE');
  }

  /** The agent answers with `body`; the carrier gets the 200 and acknowledges it. */
  async function answer(call: Call, received: SipRequest, body: string): Promise<SipResponse> {
    agent.send(withSdp(replyText(received, 200, 'OK', 'agent-tag', [`Contact: <sip:agent@${agent.hostPort}>`]), body));
    const ok = await carrier.next(response(200), '200');
    carrier.send(inDialogText('ACK', 1, call, carrier, ok));
    await agent.next(request('ACK'), 'ACK');
    return ok;
  }

  /** The media figures on `callId`'s record, once they are written (records and figures go in batches). */
  async function recordedMedia(callId: string): Promise<unknown> {
    let media: unknown = null;
    await eventually(
      'the record’s media figures',
      async () => {
        const records = await server.request('GET', '/api/v1/call-records', { key: org.key, query: { take: 5 } });
        media = records.body.items.find((item: { callId: string }) => item.callId === callId)?.media ?? null;
        return media !== null;
      },
      5000,
    );
    return media;
  }

  async function hangUp(call: Call, ok: SipResponse): Promise<void> {
    carrier.send(inDialogText('BYE', 2, call, carrier, ok));
    const bye = await agent.next(request('BYE'), 'BYE');
    agent.send(replyText(bye, 200, 'OK', null));
    await carrier.next(response(200, 'BYE'), '200 to BYE');
  }

  test('audio flows both ways through rtpengine, neither party sees the other’s address, and the BYE leaves no session', async () => {
    const carrierRtp = await RtpPeer.start('127.0.0.2');
    const agentRtp = await RtpPeer.start('127.0.0.3');
    try {
      const call = newCall(`127.0.0.1:${port}`, dialled);
      const received = await invite(call, carrierRtp);
      const offered = audioOf(received);
      assert.equal(offered.address, rtpengine.media.address);
      assert.ok(offered.port >= rtpengine.media.portMin && offered.port <= rtpengine.media.portMax, `port ${offered.port} is rtpengine's`);
      assert.doesNotMatch(received.body.toString(), /127\.0\.0\.2/, 'the agent never sees the carrier’s media address');
      // The route carries the relay, signed, for whichever instance gets the BYE.
      assert.match(received.headers.get('record-route') ?? '', /;dpm=127\.0\.0\.1:\d+;dpmp=cp;/);

      const ok = await answer(call, received, sdp('127.0.0.3', agentRtp.port));
      const answered = audioOf(ok);
      assert.equal(answered.address, rtpengine.media.address);
      assert.doesNotMatch(ok.body.toString(), /127\.0\.0\.3/, 'the carrier never sees the agent’s media address');
      assert.deepEqual(await calls(), [call.callId]);

      await carrierRtp.send(answered, 5);
      await agentRtp.send(offered, 7);
      await eventually('RTP relayed both ways', async () => agentRtp.received === 5 && carrierRtp.received === 7, 3000);

      await hangUp(call, ok);
      await noSessionLeft();
      await eventually(
        'the record’s media figures',
        async () => {
          const records = await server.request('GET', '/api/v1/call-records', { key: org.key, query: { take: 5 } });
          const record = records.body.items.find((item: { callId: string }) => item.callId === call.callId);
          return record?.media?.statistics === 'collected' && record.media.fromCaller.packets === 5 && record.media.fromCallee.packets === 7;
        },
        5000,
      );
    } finally {
      carrierRtp.close();
      agentRtp.close();
    }
  });

  test('the packets each party reported lost in its RTCP reach the record and the metrics, per direction', async () => {
    const carrierRtp = await RtpPeer.start('127.0.0.2');
    const agentRtp = await RtpPeer.start('127.0.0.3');
    try {
      const call = newCall(`127.0.0.1:${port}`, dialled);
      const received = await invite(call, carrierRtp);
      const ok = await answer(call, received, sdp('127.0.0.3', agentRtp.port));
      const towardAgent = audioOf(ok);
      const towardCarrier = audioOf(received);
      // The network loses 3 of the carrier's 30 packets and 1 of the agent's 20 before the relay.
      await carrierRtp.send(towardAgent, 30, new Set([4, 5, 17]));
      await agentRtp.send(towardCarrier, 20, new Set([9]));
      await eventually('RTP relayed both ways', async () => agentRtp.received === 27 && carrierRtp.received === 19, 3000);

      // RTCP as the parties would send it: each answers the other's sender report, so rtpengine
      // learns the round trip of both legs and keeps their reports; it keeps one per second per party.
      carrierRtp.report(towardAgent);
      await eventually('the carrier’s report at the agent', async () => agentRtp.reportsReceived === 1, 3000);
      agentRtp.report(towardCarrier);
      await eventually('the agent’s report at the carrier', async () => carrierRtp.reportsReceived === 1, 3000);
      carrierRtp.report(towardAgent);
      await eventually('the carrier’s answer at the agent', async () => agentRtp.reportsReceived === 2, 3000);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      agentRtp.report(towardCarrier);
      await eventually('the agent’s answer at the carrier', async () => carrierRtp.reportsReceived === 2, 3000);

      await hangUp(call, ok);
      await noSessionLeft();
      assert.deepEqual(await recordedMedia(call.callId), {
        statistics: 'collected',
        fromCaller: { packets: 27, bytes: 27 * 172, errors: 0, lost: 3 },
        fromCallee: { packets: 19, bytes: 19 * 172, errors: 0, lost: 1 },
      });
      const metrics = (await server.request('GET', '/metrics')).body as string;
      assert.match(metrics, /^dialplane_media_lost_packets_total\{from="caller"\} [1-9]/m);
      assert.match(metrics, /^dialplane_media_lost_packets_total\{from="callee"\} [1-9]/m);
    } finally {
      carrierRtp.close();
      agentRtp.close();
    }
  });

  test('a CANCEL, a 486 and a timeout each leave no session', async () => {
    const carrierRtp = await RtpPeer.start('127.0.0.2');
    try {
      const cancelled = newCall(`127.0.0.1:${port}`, dialled);
      const ringing = await invite(cancelled, carrierRtp);
      agent.send(replyText(ringing, 180, 'Ringing', 'agent-tag'));
      await carrier.next(response(180), '180');
      carrier.send(cancelText(cancelled, carrier));
      const cancel = await agent.next(request('CANCEL'), 'CANCEL');
      agent.send(replyText(cancel, 200, 'OK', 'agent-tag'));
      agent.send(replyText(ringing, 487, 'Request Terminated', 'agent-tag'));
      const terminated = await carrier.next(response(487), '487');
      carrier.send(ackText(cancelled, carrier, terminated));
      await noSessionLeft();

      const busy = newCall(`127.0.0.1:${port}`, dialled);
      const declined = await invite(busy, carrierRtp);
      agent.send(replyText(declined, 486, 'Busy Here', 'agent-tag'));
      carrier.send(ackText(busy, carrier, await carrier.next(response(486), '486')));
      await noSessionLeft();

      // The agent never answers: Timer B (64 × T1 = 3.2 s here) ends the call with 408.
      const unanswered = newCall(`127.0.0.1:${port}`, dialled);
      await invite(unanswered, carrierRtp);
      assert.equal((await calls()).length, 1);
      carrier.send(ackText(unanswered, carrier, await carrier.next(response(408), '408', 8000)));
      await noSessionLeft();
    } finally {
      carrierRtp.close();
    }
  });

  test('a re-INVITE to hold and one to resume keep the session, rewritten both ways', async () => {
    const carrierRtp = await RtpPeer.start('127.0.0.2');
    const agentRtp = await RtpPeer.start('127.0.0.3');
    try {
      const call = newCall(`127.0.0.1:${port}`, dialled);
      const received = await invite(call, carrierRtp);
      const ok = await answer(call, received, sdp('127.0.0.3', agentRtp.port));
      for (const [cseq, direction, reply] of [
        [3, 'sendonly', 'recvonly'],
        [4, 'sendrecv', 'sendrecv'],
      ] as const) {
        carrier.send(withSdp(inDialogText('INVITE', cseq, call, carrier, ok), sdp('127.0.0.2', carrierRtp.port, [`a=${direction}`])));
        const reinvite = await agent.next(request('INVITE'), `re-INVITE ${direction}`);
        assert.equal(audioOf(reinvite).address, rtpengine.media.address);
        assert.match(reinvite.body.toString(), new RegExp(`a=${direction}`));
        agent.send(
          withSdp(replyText(reinvite, 200, 'OK', null, [`Contact: <sip:agent@${agent.hostPort}>`]), sdp('127.0.0.3', agentRtp.port, [`a=${reply}`])),
        );
        const reOk = await carrier.next(response(200), `200 to ${direction}`);
        assert.equal(audioOf(reOk).address, rtpengine.media.address);
        assert.doesNotMatch(reOk.body.toString(), /127\.0\.0\.3/);
        carrier.send(inDialogText('ACK', cseq, call, carrier, ok));
        await agent.next(request('ACK'), 'ACK');
        assert.deepEqual(await calls(), [call.callId]);
      }
      // Audio still flows after resuming.
      await carrierRtp.send(audioOf(ok), 3);
      await eventually('RTP after resuming', async () => agentRtp.received === 3, 3000);
      await hangUp(call, ok);
      await noSessionLeft();
    } finally {
      carrierRtp.close();
      agentRtp.close();
    }
  });

  test('an agent advertising an unreachable private address still gets audio once it sends (symmetric RTP)', async () => {
    const carrierRtp = await RtpPeer.start('127.0.0.2');
    const agentRtp = await RtpPeer.start('127.0.0.3');
    try {
      const call = newCall(`127.0.0.1:${port}`, dialled);
      const received = await invite(call, carrierRtp);
      // What a runtime behind NAT writes: its private address, which nobody can reach.
      const ok = await answer(call, received, sdp('10.255.255.1', 40000));
      await agentRtp.send(audioOf(received), 3);
      await carrierRtp.send(audioOf(ok), 4);
      await eventually('RTP at the agent’s real address', async () => agentRtp.received === 4 && carrierRtp.received === 3, 3000);
      await hangUp(call, ok);
      await noSessionLeft();
    } finally {
      carrierRtp.close();
      agentRtp.close();
    }
  });

  test('a late offer (the 200 offers, the ACK answers) is anchored both ways', async () => {
    const carrierRtp = await RtpPeer.start('127.0.0.2');
    const agentRtp = await RtpPeer.start('127.0.0.3');
    try {
      const call = newCall(`127.0.0.1:${port}`, dialled);
      carrier.send(withoutBody(inviteText(call, carrier)));
      const received = await agent.next(request('INVITE'), 'INVITE');
      assert.equal(received.body.length, 0);
      agent.send(withSdp(replyText(received, 200, 'OK', 'agent-tag', [`Contact: <sip:agent@${agent.hostPort}>`]), sdp('127.0.0.3', agentRtp.port)));
      const ok = await carrier.next(response(200), '200');
      const offered = audioOf(ok);
      assert.equal(offered.address, rtpengine.media.address);
      carrier.send(withSdp(inDialogText('ACK', 1, call, carrier, ok), sdp('127.0.0.2', carrierRtp.port)));
      const ack = await agent.next(request('ACK'), 'ACK');
      const answered = audioOf(ack);
      assert.equal(answered.address, rtpengine.media.address);
      assert.doesNotMatch(ack.body.toString(), /127\.0\.0\.2/);
      await carrierRtp.send(offered, 2);
      await agentRtp.send(answered, 3);
      await eventually('RTP relayed both ways', async () => agentRtp.received === 2 && carrierRtp.received === 3, 3000);
      await hangUp(call, ok);
      await noSessionLeft();
    } finally {
      carrierRtp.close();
      agentRtp.close();
    }
  });

  test('an SRTP carrier and a plain-RTP agent hear each other: rtpengine decrypts, authenticates and encrypts', async () => {
    const carrierRtp = await RtpPeer.start('127.0.0.2');
    const agentRtp = await RtpPeer.start('127.0.0.3');
    try {
      // SDES (RFC 4568): the carrier's master key and salt, for what it sends.
      const carrierKey = crypto.randomBytes(30);
      const call = newCall(`127.0.0.1:${port}`, dialled);
      const crypto80 = `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${carrierKey.toString('base64')}`;
      const received = await invite(call, carrierRtp, [], sdp('127.0.0.2', carrierRtp.port, [crypto80], 'RTP/SAVP'));
      assert.equal(audioOf(received).profile, 'RTP/AVP');
      assert.doesNotMatch(received.body.toString(), /a=crypto/);
      const ok = await answer(call, received, sdp('127.0.0.3', agentRtp.port));
      assert.equal(audioOf(ok).profile, 'RTP/SAVP');
      const relayKey = /^a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:([A-Za-z0-9+/=]+)/m.exec(ok.body.toString())?.[1];
      assert.ok(relayKey, `rtpengine answers the carrier with a key of its own:\n${ok.body.toString()}`);
      const relayKeySalt = Buffer.from(relayKey, 'base64');
      const srtp = new SrtpSession({
        keys: {
          localMasterKey: carrierKey.subarray(0, 16),
          localMasterSalt: carrierKey.subarray(16),
          remoteMasterKey: relayKeySalt.subarray(0, 16),
          remoteMasterSalt: relayKeySalt.subarray(16, 30),
        },
        profile: ProtectionProfileAes128CmHmacSha1_80,
      });
      const voice = (sample: number) => Buffer.alloc(160, sample);
      const srtpPacket = (sequenceNumber: number) =>
        srtp.encrypt(voice(sequenceNumber), new RtpHeader({ sequenceNumber, timestamp: sequenceNumber * 160, ssrc: 0x5e1f, payloadType: 0 }));

      const towardAgent = audioOf(ok);
      for (let sequence = 1; sequence <= 4; sequence++) carrierRtp.sendPacket(srtpPacket(sequence), towardAgent);
      // A packet whose authentication tag does not match is not relayed.
      const forged = srtpPacket(5);
      forged[forged.length - 1] ^= 0xff;
      carrierRtp.sendPacket(forged, towardAgent);
      carrierRtp.sendPacket(srtpPacket(6), towardAgent);
      await eventually('plain RTP at the agent', async () => agentRtp.packets.length === 5, 3000);
      // Time for the forged packet to show up, were it relayed.
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.deepEqual(
        agentRtp.inSequence().map((packet) => packet.subarray(12)),
        [1, 2, 3, 4, 6].map(voice),
        'the agent gets the carrier’s audio decrypted, without the forged packet',
      );

      await agentRtp.send(audioOf(received), 3);
      await eventually('SRTP at the carrier', async () => carrierRtp.packets.length === 3, 3000);
      for (const packet of carrierRtp.packets) {
        assert.equal(packet.length, 12 + 160 + 10, 'each packet carries the 80-bit authentication tag');
        assert.deepEqual(srtp.decrypt(packet).subarray(12), Buffer.alloc(160, 0xff), 'the carrier decrypts the agent’s audio with rtpengine’s key');
      }
      await hangUp(call, ok);
      await noSessionLeft();
      assert.deepEqual(await recordedMedia(call.callId), {
        statistics: 'collected',
        // Counted as rtpengine relayed them: decrypted on the way in, the forged one an error.
        fromCaller: { packets: 5, bytes: 5 * 172, errors: 1, lost: null },
        fromCallee: { packets: 3, bytes: 3 * 172, errors: 0, lost: null },
      });
    } finally {
      carrierRtp.close();
      agentRtp.close();
    }
  });

  test('a DTLS-SRTP offer from the carrier: the agent gets plain RTP, the carrier a DTLS answer, and the handshake keys their audio', async () => {
    const carrierRtp = await RtpPeer.start('127.0.0.2');
    const agentRtp = await RtpPeer.start('127.0.0.3');
    try {
      const identity = await dtlsIdentity();
      const call = newCall(`127.0.0.1:${port}`, dialled);
      const offer = sdp('127.0.0.2', carrierRtp.port, ['a=setup:actpass', `a=fingerprint:${identity.fingerprint}`], 'UDP/TLS/RTP/SAVP');
      const received = await invite(call, carrierRtp, [], offer);
      assert.equal(audioOf(received).profile, 'RTP/AVP');
      assert.doesNotMatch(received.body.toString(), /a=fingerprint|a=setup|a=crypto/);
      const ok = await answer(call, received, sdp('127.0.0.3', agentRtp.port));
      const answered = audioOf(ok);
      const answerText = ok.body.toString();
      assert.equal(answered.profile, 'UDP/TLS/RTP/SAVP');
      assert.match(answerText, /^a=fingerprint:sha-256 [0-9A-F:]{95}\r$/m);
      const setup = /^a=setup:(active|passive)\r$/m.exec(answerText)?.[1];
      assert.ok(setup, `rtpengine takes a side:\n${answerText}`);

      const srtp = await dtlsSrtpHandshake(carrierRtp, identity, answered, setup === 'active' ? 'passive' : 'active');
      // Audio as a stream, a packet every 50 ms: the side that finishes the handshake first may send
      // before rtpengine has taken the last flight in.
      let sequenceNumber = 0;
      await eventually(
        'plain RTP at the agent',
        async () => {
          const header = new RtpHeader({ sequenceNumber: ++sequenceNumber, timestamp: sequenceNumber * 160, ssrc: 0xd7, payloadType: 0 });
          carrierRtp.sendPacket(srtp.encrypt(Buffer.alloc(160, 7), header), answered);
          return agentRtp.packets.length > 0;
        },
        3000,
      );
      assert.deepEqual(agentRtp.packets[0].subarray(12), Buffer.alloc(160, 7));
      await agentRtp.send(audioOf(received), 2);
      await eventually('SRTP at the carrier', async () => carrierRtp.packets.length === 2, 3000);
      for (const packet of carrierRtp.packets) assert.deepEqual(srtp.decrypt(packet).subarray(12), Buffer.alloc(160, 0xff));
      await hangUp(call, ok);
      await noSessionLeft();
    } finally {
      carrierRtp.close();
      agentRtp.close();
    }
  });

  test('a SIP-I INVITE (SDP beside ISUP in a multipart body): its SDP part is anchored, the ISUP part passes untouched', async () => {
    const carrierRtp = await RtpPeer.start('127.0.0.2');
    try {
      const call = newCall(`127.0.0.1:${port}`, dialled);
      const isup = Buffer.from([0x01, 0x00, 0x49, 0xff, 0x0d, 0x0a, 0x2d, 0x2d, 0x80, 0x00]);
      const boundary = 'sip-i-boundary';
      const body = Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Type: application/sdp\r\n\r\n${sdp('127.0.0.2', carrierRtp.port)}\r\n`),
        Buffer.from(`--${boundary}\r\nContent-Type: application/ISUP;version=itu-t92+\r\nContent-Disposition: signal;handling=optional\r\n\r\n`),
        isup,
        Buffer.from(`\r\n--${boundary}--\r\n`),
      ]);
      const head = inviteText(call, carrier);
      const text = head
        .slice(0, head.indexOf('\r\n\r\n'))
        .replace(/\r\nContent-Length: \d+/i, '')
        .replace(/\r\nContent-Type: [^\r]+/i, '');
      carrier.sendBytes(
        Buffer.concat([Buffer.from(`${text}\r\nContent-Type: multipart/mixed;boundary=${boundary}\r\nContent-Length: ${body.length}\r\n\r\n`), body]),
      );
      const received = await agent.next(request('INVITE'), 'INVITE');
      assert.match(received.headers.get('content-type') ?? '', /^multipart\/mixed;boundary=sip-i-boundary$/);
      const forwarded = received.body.toString('latin1');
      assert.match(forwarded, new RegExp(`c=IN IP4 ${rtpengine.media.address.replaceAll('.', '\\.')}\r\n`));
      assert.doesNotMatch(forwarded, /127\.0\.0\.2/, 'the agent never sees the carrier’s media address');
      assert.ok(received.body.includes(Buffer.concat([Buffer.from('handling=optional\r\n\r\n'), isup, Buffer.from(`\r\n--${boundary}--`)])));
      assert.deepEqual(await calls(), [call.callId]);
      agent.send(replyText(received, 486, 'Busy Here', 'agent-tag'));
      carrier.send(ackText(call, carrier, await carrier.next(response(486), '486')));
      await noSessionLeft();
    } finally {
      carrierRtp.close();
    }
  });

  test('an SDP rtpengine cannot use gets 488 and nothing is forwarded', async () => {
    const call = newCall(`127.0.0.1:${port}`, dialled);
    carrier.send(withSdp(inviteText(call, carrier), 'this is not a session description\r\n'));
    const refused = await carrier.next(response(488), '488');
    assert.match(refused.headers.get('reason') ?? '', /^SIP;cause=488;text="/);
    carrier.send(ackText(call, carrier, refused));
    await agent.none((message) => message.headers.get('call-id') === call.callId, 'a message of the refused call', 200);
    await noSessionLeft();
  });
});

describe('media anchoring: outbound calls with an SRTP carrier leg', { skip: !available }, () => {
  let rtpengine: Rtpengine;
  let port: number;
  let carrier: UdpPeer;
  let runtime: UdpPeer;
  let server: TestServer;
  let org: Client;

  before(async () => {
    rtpengine = await startRtpengine();
    port = await freePort();
    const edge = { host: '127.0.0.1', port };
    carrier = await UdpPeer.start('127.0.0.2', edge);
    runtime = await UdpPeer.start('127.0.0.3', edge);
    server = await startTestServer('sqlite', {
      env: {
        DIALPLANE_SIP_PORT: String(port),
        DIALPLANE_SIP_T1_MS: '50',
        DIALPLANE_RTPENGINE: `${rtpengine.ng.host}:${rtpengine.ng.port}`,
        DIALPLANE_RUNTIME_ADDRESSES: '127.0.0.3',
      },
    });
    org = await clientFor(server, 'default');
  });

  after(async () => {
    await server?.close();
    await carrier?.close();
    await runtime?.close();
    await rtpengine?.stop();
  });

  /** An agent whose outbound calls go out on a trunk at the carrier peer with `mediaEncryption`. */
  async function agentOnTrunk(mediaEncryption: 'sdes-srtp' | 'dtls-srtp', phoneNumber: string): Promise<string> {
    const creds = await org.createCredentials({ server: `127.0.0.2:${carrier.port}`, mediaEncryption });
    assert.equal(creds.mediaEncryption, mediaEncryption);
    assert.equal(creds.mediaAnchoring, 'auto');
    const agent = await org.createAgent({});
    const number = await org.createNumber({ phoneNumber, credentialsId: creds.id });
    await org.link(number.id, agent.agentId, 'replaceOutbound');
    return agent.agentId;
  }

  test('an agent’s plain offer reaches a carrier whose credentials say sdes-srtp as RTP/SAVP with keys', async () => {
    const agentId = await agentOnTrunk('sdes-srtp', '+15550170200');
    const call = newCall(`127.0.0.1:${port}`, '15557770001');
    runtime.send(withSdp(inviteText(call, runtime, [`X-Dialplane-Agent-Id: ${agentId}`]), sdp('127.0.0.3', 40000)));
    const received = await carrier.next(request('INVITE'), 'INVITE at the carrier');
    const offered = audioOf(received);
    assert.equal(offered.address, rtpengine.media.address);
    assert.equal(offered.profile, 'RTP/SAVP');
    assert.match(received.body.toString(), /^a=crypto:\d+ AES/m);
    assert.match(received.headers.get('record-route') ?? '', /;dpmp=as;/);
    carrier.send(replyText(received, 503, 'Service Unavailable', 'carrier-tag'));
    runtime.send(ackText(call, runtime, await runtime.next(response(503), '503')));
  });

  test('with dtls-srtp the carrier is offered DTLS-SRTP, keys the call by a handshake with rtpengine, and both hear each other', async () => {
    const agentId = await agentOnTrunk('dtls-srtp', '+15550170201');
    const runtimeRtp = await RtpPeer.start('127.0.0.3');
    const carrierRtp = await RtpPeer.start('127.0.0.2');
    try {
      const call = newCall(`127.0.0.1:${port}`, '15557770002');
      runtime.send(withSdp(inviteText(call, runtime, [`X-Dialplane-Agent-Id: ${agentId}`]), sdp('127.0.0.3', runtimeRtp.port)));
      const received = await carrier.next(request('INVITE'), 'INVITE at the carrier');
      const offered = audioOf(received);
      const offer = received.body.toString();
      assert.equal(offered.profile, 'UDP/TLS/RTP/SAVP');
      assert.match(offer, /^a=fingerprint:sha-256 [0-9A-F:]{95}\r$/m);
      assert.match(offer, /^a=setup:actpass\r$/m);
      assert.doesNotMatch(offer, /a=crypto/, 'no SDES keys beside DTLS (RFC 5763 §5)');
      assert.match(received.headers.get('record-route') ?? '', /;dpmp=ad;/);

      // The carrier answers as the active side, with its own certificate's fingerprint.
      const identity = await dtlsIdentity();
      const answerSdp = sdp('127.0.0.2', carrierRtp.port, ['a=setup:active', `a=fingerprint:${identity.fingerprint}`], 'UDP/TLS/RTP/SAVP');
      carrier.send(withSdp(replyText(received, 200, 'OK', 'carrier-tag', [`Contact: <sip:carrier@${carrier.hostPort}>`]), answerSdp));
      const ok = await runtime.next(response(200), '200 at the runtime');
      const answered = audioOf(ok);
      assert.equal(answered.profile, 'RTP/AVP');
      assert.doesNotMatch(ok.body.toString(), /a=fingerprint|a=setup/);
      runtime.send(inDialogText('ACK', 1, call, runtime, ok));
      await carrier.next(request('ACK'), 'ACK at the carrier');

      const srtp = await dtlsSrtpHandshake(carrierRtp, identity, offered);
      await runtimeRtp.send(answered, 3);
      await eventually('SRTP at the carrier', async () => carrierRtp.packets.length === 3, 3000);
      for (const packet of carrierRtp.packets) {
        assert.deepEqual(srtp.decrypt(packet).subarray(12), Buffer.alloc(160, 0xff), 'the carrier decrypts the agent’s audio');
      }
      for (let sequence = 1; sequence <= 2; sequence++) {
        const header = new RtpHeader({ sequenceNumber: sequence, timestamp: sequence * 160, ssrc: 0xd715, payloadType: 0 });
        carrierRtp.sendPacket(srtp.encrypt(Buffer.alloc(160, sequence), header), offered);
      }
      await eventually('plain RTP at the runtime', async () => runtimeRtp.packets.length === 2, 3000);
      assert.deepEqual(
        runtimeRtp.inSequence().map((packet) => packet.subarray(12)),
        [1, 2].map((sample) => Buffer.alloc(160, sample)),
      );

      runtime.send(inDialogText('BYE', 2, call, runtime, ok));
      const bye = await carrier.next(request('BYE'), 'BYE at the carrier');
      carrier.send(replyText(bye, 200, 'OK', null));
      await runtime.next(response(200, 'BYE'), '200 to BYE');
    } finally {
      runtimeRtp.close();
      carrierRtp.close();
    }
  });
});

const FAILURE_NUMBER = '+15550170300';
/** An rtpengine that does not answer is given up on quickly. */
const FAST_TIMEOUT = { DIALPLANE_RTPENGINE_TIMEOUT_MS: '300' };

describe('media anchoring when rtpengine fails', { skip: !available }, () => {
  let rtpengine: Rtpengine;
  /** An rtpengine that hangs: it takes ng commands and never answers; it counts them. */
  let hung: dgram.Socket;
  let hungCommands = 0;
  let deadPort: number;
  before(async () => {
    rtpengine = await startRtpengine();
    hung = dgram.createSocket('udp4');
    hung.on('message', () => hungCommands++);
    await new Promise<void>((resolve) => hung.bind(0, '127.0.0.1', resolve));
    deadPort = hung.address().port;
  });
  after(async () => {
    hung?.close();
    await rtpengine?.stop();
  });

  test('a dead rtpengine is passed over for the next one, and then skipped', async () => {
    const edge = await anchoredEdge(`127.0.0.1:${deadPort}=999,${rtpengine.ng.host}:${rtpengine.ng.port}=1`, FAILURE_NUMBER, FAST_TIMEOUT);
    const anchoredCall = async () => {
      const call = edge.call();
      const received = await edge.agent.next(request('INVITE'), 'INVITE');
      assert.equal(audioOf(received).address, rtpengine.media.address);
      edge.agent.send(replyText(received, 486, 'Busy Here', 'agent-tag'));
      edge.carrier.send(ackText(call, edge.carrier, await edge.carrier.next(response(486), '486')));
    };
    try {
      // The heavier, dead one is drawn first (almost always at once): the call still goes through.
      const before = hungCommands;
      for (let i = 0; i < 5 && hungCommands === before; i++) await anchoredCall();
      assert.ok(hungCommands > before, 'the dead rtpengine was asked');
      const afterFailure = hungCommands;
      await anchoredCall();
      assert.equal(hungCommands, afterFailure, 'no command to the dead rtpengine while it is passed over');
    } finally {
      await edge.close();
    }
  });

  test('an rtpengine named by DNS is resolved once at start, and the route names its address', async () => {
    const edge = await anchoredEdge(`localhost:${rtpengine.ng.port}`, FAILURE_NUMBER, FAST_TIMEOUT);
    try {
      const call = edge.call();
      const received = await edge.agent.next(request('INVITE'), 'INVITE');
      assert.equal(audioOf(received).address, rtpengine.media.address);
      // localhost may also resolve to ::1, where nothing answers: the call goes to 127.0.0.1 all the same.
      assert.match(received.headers.get('record-route') ?? '', new RegExp(`;dpm=127\\.0\\.0\\.1:${rtpengine.ng.port};`));
      edge.agent.send(replyText(received, 486, 'Busy Here', 'agent-tag'));
      edge.carrier.send(ackText(call, edge.carrier, await edge.carrier.next(response(486), '486')));
    } finally {
      await edge.close();
    }
    await assert.rejects(
      startTestServer('sqlite', { env: { DIALPLANE_RTPENGINE: 'rtpengine.invalid:2223' } }),
      (error: unknown) => error instanceof OperatorError && /DIALPLANE_RTPENGINE: rtpengine\.invalid does not resolve/.test(error.message),
    );
  });

  test('with no rtpengine answering, a new call gets 503 with a Reason and nothing is forwarded', async () => {
    const edge = await anchoredEdge(`127.0.0.1:${deadPort}`, FAILURE_NUMBER, FAST_TIMEOUT);
    try {
      const call = edge.call();
      const refused = await edge.carrier.next(response(503), '503');
      assert.equal(refused.headers.get('reason'), 'SIP;cause=503;text="No media relay available"');
      edge.carrier.send(ackText(call, edge.carrier, refused));
      await edge.agent.none((message) => message.kind === 'request', 'a forwarded request', 200);
    } finally {
      await edge.close();
    }
  });

  test('with DIALPLANE_MEDIA_FALLBACK=direct, it goes on unanchored', async () => {
    const edge = await anchoredEdge(`127.0.0.1:${deadPort}`, FAILURE_NUMBER, { ...FAST_TIMEOUT, DIALPLANE_MEDIA_FALLBACK: 'direct' });
    try {
      const call = edge.call();
      const received = await edge.agent.next(request('INVITE'), 'INVITE');
      assert.deepEqual(audioOf(received), { address: '127.0.0.2', port: 30000, profile: 'RTP/AVP' });
      assert.doesNotMatch(received.headers.get('record-route') ?? '', /;dpm=/);
      edge.agent.send(replyText(received, 486, 'Busy Here', 'agent-tag'));
      edge.carrier.send(ackText(call, edge.carrier, await edge.carrier.next(response(486), '486')));
    } finally {
      await edge.close();
    }
  });

  test('rtpengine lost mid-call: the call goes on and its record says the figures are missing', async () => {
    const doomed = await startRtpengine();
    const edge = await anchoredEdge(`${doomed.ng.host}:${doomed.ng.port}`, FAILURE_NUMBER, FAST_TIMEOUT);
    try {
      const call = edge.call();
      const received = await edge.agent.next(request('INVITE'), 'INVITE');
      edge.agent.send(withSdp(replyText(received, 200, 'OK', 'agent-tag', [`Contact: <sip:agent@${edge.agent.hostPort}>`]), sdp('127.0.0.3', 30002)));
      const ok = await edge.carrier.next(response(200), '200');
      edge.carrier.send(inDialogText('ACK', 1, call, edge.carrier, ok));
      await edge.agent.next(request('ACK'), 'ACK');
      await doomed.kill();
      edge.carrier.send(inDialogText('BYE', 2, call, edge.carrier, ok));
      const bye = await edge.agent.next(request('BYE'), 'BYE');
      edge.agent.send(replyText(bye, 200, 'OK', null));
      await edge.carrier.next(response(200, 'BYE'), '200 to BYE');
      await eventually(
        'the record says the figures are missing',
        async () => {
          const records = await edge.server.request('GET', '/api/v1/call-records', { key: edge.org.key });
          const record = records.body.items.find((item: { callId: string }) => item.callId === call.callId);
          return record?.media?.statistics === 'missing' && record.media.fromCaller === null;
        },
        5000,
      );
    } finally {
      await edge.close();
      await doomed.stop();
    }
  });
});

describe('media anchoring across two instances on PostgreSQL', { skip: (!available || !postgres) && 'rtpengine or PostgreSQL not available' }, () => {
  test('set up through A, the re-INVITE and the BYE through B: B finds the rtpengine in the signed route', async () => {
    const rtpengine = await startRtpengine();
    const ng = new NgClient();
    const database = await freshDatabase('postgres');
    const edgeA = { host: '127.0.0.1', port: await freePort() };
    const edgeB = { host: '127.0.0.1', port: await freePort() };
    const env = (own: number, other: number) => ({
      DIALPLANE_SIP_PORT: String(own),
      DIALPLANE_SIP_ALIASES: `127.0.0.1:${other}`,
      DIALPLANE_SIP_T1_MS: '50',
      DIALPLANE_RTPENGINE: `${rtpengine.ng.host}:${rtpengine.ng.port}`,
    });
    const a = await startTestServer('postgres', { database, env: env(edgeA.port, edgeB.port) });
    const b = await startTestServer('postgres', { database, env: env(edgeB.port, edgeA.port) });
    const carrier = await UdpPeer.start('127.0.0.2', edgeA);
    const agent = await UdpPeer.start('127.0.0.3', edgeA);
    try {
      const org = await clientFor(a, 'default');
      const creds = await org.createCredentials({ server: `127.0.0.2:${carrier.port}`, allowedAddresses: ['127.0.0.2'] });
      const linked = await org.createAgent({ sipUri: `sip:agent@${agent.hostPort}` });
      const number = await org.createNumber({ phoneNumber: '+15550170400', credentialsId: creds.id });
      await org.link(number.id, linked.agentId);

      const call = newCall(`127.0.0.1:${edgeA.port}`, '+15550170400');
      carrier.send(withSdp(inviteText(call, carrier), sdp('127.0.0.2', 30010)));
      const invite = await agent.next(request('INVITE'), 'INVITE through A');
      agent.send(withSdp(replyText(invite, 200, 'OK', 'agent-tag', [`Contact: <sip:agent@${agent.hostPort}>`]), sdp('127.0.0.3', 30012)));
      const ok = await carrier.next(response(200), '200');
      carrier.sendTo(inDialogText('ACK', 1, call, carrier, ok), '127.0.0.1', edgeB.port);
      await agent.next(request('ACK'), 'ACK through B');

      // The agent puts the call on hold through B: B rewrites the offer through the same rtpengine call.
      agent.sendTo(
        withSdp(calleeRequestText('INVITE', 1, invite, agent, 'agent-tag'), sdp('127.0.0.3', 30012, ['a=sendonly'])),
        '127.0.0.1',
        edgeB.port,
      );
      const hold = await carrier.next(request('INVITE'), 'the agent’s re-INVITE through B');
      assert.equal(audioOf(hold).address, rtpengine.media.address);
      assert.doesNotMatch(hold.body.toString(), /127\.0\.0\.3/);
      carrier.respond(
        hold,
        withSdp(replyText(hold, 200, 'OK', null, [`Contact: <sip:alice@${carrier.hostPort}>`]), sdp('127.0.0.2', 30010, ['a=recvonly'])),
      );
      const held = await agent.next(response(200), '200 for the hold');
      assert.equal(audioOf(held).address, rtpengine.media.address);
      assert.deepEqual((await ng.request(rtpengine.ng, { command: 'list' })).calls, [call.callId]);

      agent.sendTo(calleeRequestText('BYE', 2, invite, agent, 'agent-tag'), '127.0.0.1', edgeB.port);
      const bye = await carrier.next(request('BYE'), 'the agent’s BYE through B');
      carrier.respond(bye, replyText(bye, 200, 'OK', null));
      await agent.next(response(200, 'BYE'), '200 for the BYE');
      await eventually(
        'no rtpengine session left',
        async () => ((await ng.request(rtpengine.ng, { command: 'list' })).calls as string[]).length === 0,
        5000,
      );
    } finally {
      await carrier.close();
      await agent.close();
      await a.close();
      await b.close();
      await database.drop();
      await ng.close();
      await rtpengine.stop();
    }
  });
});

describe('media anchoring with a carrier and an agent interface', { skip: !available }, () => {
  test('each side is offered rtpengine’s address on its own interface, and audio crosses between them', async () => {
    // What an operator with a public and a private network sets up: here two loopback addresses.
    const rtpengine = await startRtpengine(['carrier/127.0.0.1', 'agent/127.0.0.4']);
    const edge = await anchoredEdge(`${rtpengine.ng.host}:${rtpengine.ng.port}`, '+15550170500', {
      DIALPLANE_RTPENGINE_CARRIER_INTERFACE: 'carrier',
      DIALPLANE_RTPENGINE_AGENT_INTERFACE: 'agent',
    });
    const { carrier, agent } = edge;
    const carrierRtp = await RtpPeer.start('127.0.0.2');
    const agentRtp = await RtpPeer.start('127.0.0.3');
    try {
      const call = edge.call(carrierRtp.port);
      const invite = await agent.next(request('INVITE'), 'INVITE');
      assert.equal(audioOf(invite).address, '127.0.0.4', 'the agent is offered the agent interface');
      agent.send(withSdp(replyText(invite, 200, 'OK', 'agent-tag', [`Contact: <sip:agent@${agent.hostPort}>`]), sdp('127.0.0.3', agentRtp.port)));
      const ok = await carrier.next(response(200), '200');
      assert.equal(audioOf(ok).address, '127.0.0.1', 'the carrier gets the carrier interface');
      carrier.send(inDialogText('ACK', 1, call, carrier, ok));
      await agent.next(request('ACK'), 'ACK');
      await carrierRtp.send(audioOf(ok), 2);
      await agentRtp.send(audioOf(invite), 2);
      await eventually('RTP across the interfaces', async () => agentRtp.received === 2 && carrierRtp.received === 2, 3000);
      carrier.send(inDialogText('BYE', 2, call, carrier, ok));
      const bye = await agent.next(request('BYE'), 'BYE');
      agent.send(replyText(bye, 200, 'OK', null));
      await carrier.next(response(200, 'BYE'), '200 to BYE');
    } finally {
      carrierRtp.close();
      agentRtp.close();
      await edge.close();
      await rtpengine.stop();
    }
  });
});
