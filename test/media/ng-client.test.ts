/**
 * The ng client against one real rtpengine (userspace, loopback), and against UDP sockets playing
 * rtpengine where rtpengine cannot be made to misbehave: silence, impostors, garbage.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { decode } from '../../src/media/bencode.ts';
import { NgClient, NgError, type NgAddress, type NgFailure } from '../../src/media/ng-client.ts';
import { rtpengineAvailable, startRtpengine, type Rtpengine } from '../support/rtpengine.ts';

const hasRtpengine = rtpengineAvailable();

/** For assert.rejects: an NgError of `kind` whose message matches `message`. */
const ngError = (kind: NgFailure, message?: RegExp) => (error: unknown) => {
  assert.ok(error instanceof NgError, String(error));
  assert.equal(error.kind, kind, error.message);
  if (message) assert.match(error.message, message);
  return true;
};

interface FakePeer {
  address: NgAddress;
  /** Each datagram received, with when (performance.now()). */
  received: { data: Buffer; at: number }[];
  socket: dgram.Socket;
  close(): Promise<void>;
}

/** A UDP socket standing in for rtpengine: it records what arrives and, given `respond`, answers each request's cookie. */
async function fakePeer(respond?: (cookie: string, from: dgram.RemoteInfo) => void, host = '127.0.0.1', port = 0): Promise<FakePeer> {
  const socket = dgram.createSocket('udp4');
  const received: FakePeer['received'] = [];
  socket.on('message', (data, from) => {
    received.push({ data, at: performance.now() });
    respond?.(data.toString('latin1', 0, data.indexOf(0x20)), from);
  });
  await new Promise<void>((resolve) => socket.bind(port, host, resolve));
  return {
    address: { host, port: socket.address().port },
    received,
    socket,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

const sendFrom = (socket: dgram.Socket, text: string, to: dgram.RemoteInfo) =>
  new Promise<void>((resolve) => socket.send(Buffer.from(text, 'latin1'), to.port, to.address, () => resolve()));

/** An SDP offer or answer for one audio stream with PCMU and PCMA at 127.0.0.1:`port`. */
const sdp = (port: number) =>
  [
    'v=0',
    'o=- 1 1 IN IP4 127.0.0.1',
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=audio ${port} RTP/AVP 0 8`,
    'a=rtpmap:0 PCMU/8000',
    'a=rtpmap:8 PCMA/8000',
    '',
  ].join('\r\n');

describe('ng client', { skip: !hasRtpengine && 'rtpengine not installed' }, () => {
  let rtpengine: Rtpengine;
  let client: NgClient;

  before(async () => {
    // Media on another loopback address than the SDP's, so a rewritten c= line shows.
    rtpengine = await startRtpengine('127.0.0.2');
    client = new NgClient({ timeoutMs: 2000, retransmitMs: 200 });
  });

  after(async () => {
    await client?.close();
    await rtpengine?.stop();
  });

  test('ping is answered with pong', async () => {
    assert.deepEqual({ ...(await client.request(rtpengine.ng, { command: 'ping' })) }, { result: 'pong' });
  });

  test('offer, answer, query and delete a call', async () => {
    const call = { 'call-id': `call-${crypto.randomUUID()}`, 'from-tag': 'caller-tag' };
    const { portMin, portMax } = rtpengine.media;
    /** rtpengine's media address and port in an SDP it returned. */
    const relayed = (body: unknown) => {
      assert.equal(typeof body, 'string');
      const text = body as string;
      assert.match(text, /^c=IN IP4 127\.0\.0\.2\r$/m);
      assert.doesNotMatch(text, /^c=.*127\.0\.0\.1/m, 'no connection line left with the original address');
      const port = Number(/^m=audio (\d+) RTP\/AVP 0 8\r$/m.exec(text)?.[1]);
      assert.ok(port >= portMin && port <= portMax, `port ${port} in ${portMin}-${portMax}`);
      return port;
    };

    const offer = await client.request(rtpengine.ng, { command: 'offer', ...call, sdp: sdp(40000) });
    assert.equal(offer.result, 'ok');
    const offerPort = relayed(offer.sdp);

    const answer = await client.request(rtpengine.ng, { command: 'answer', ...call, 'to-tag': 'callee-tag', sdp: sdp(40002) });
    assert.equal(answer.result, 'ok');
    assert.notEqual(relayed(answer.sdp), offerPort);

    const query: any = await client.request(rtpengine.ng, { command: 'query', 'call-id': call['call-id'] });
    assert.equal(query.result, 'ok');
    assert.deepEqual(Object.keys(query.tags).sort(), ['callee-tag', 'caller-tag']);

    const deleted: any = await client.request(rtpengine.ng, { command: 'delete', ...call });
    assert.equal(deleted.result, 'ok');
    assert.deepEqual({ ...deleted.totals.RTP }, { packets: 0, bytes: 0, errors: 0 });
    assert.ok(deleted.totals.RTCP);

    await assert.rejects(client.request(rtpengine.ng, { command: 'query', 'call-id': call['call-id'] }), ngError('error', /Unknown call-id/));
  });

  test('deleting an unknown call fails with rtpengine’s reason when asked to be fatal; otherwise it is ok with a warning', async () => {
    const unknown = { command: 'delete', 'call-id': `unknown-${crypto.randomUUID()}`, 'from-tag': 'nobody' };
    await assert.rejects(
      client.request(rtpengine.ng, { ...unknown, flags: ['fatal'] }),
      ngError('error', /^rtpengine 127\.0\.0\.1:\d+: Call-ID not found or tags didn't match$/),
    );
    const lenient = await client.request(rtpengine.ng, unknown);
    assert.deepEqual({ ...lenient }, { result: 'ok', warning: "Call-ID not found or tags didn't match" });
  });

  test('concurrent requests each get their own reply', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `concurrent-${i}-${crypto.randomUUID()}`);
    const outcomes = await Promise.allSettled(
      ids.map((id, i) => client.request(rtpengine.ng, i % 2 ? { command: 'ping' } : { command: 'query', 'call-id': id })),
    );
    outcomes.forEach((outcome, i) => {
      if (i % 2) assert.equal(outcome.status === 'fulfilled' ? outcome.value.result : outcome.reason, 'pong');
      else assert.ok(outcome.status === 'rejected' && ngError('error', /Unknown call-id/)(outcome.reason));
    });
  });

  test('no answer: the same datagram is sent again after 50, 100, 200 ms, then a timeout at timeoutMs', async () => {
    const silent = await fakePeer();
    const timing = new NgClient({ retransmitMs: 50, timeoutMs: 400 });
    try {
      const start = performance.now();
      await assert.rejects(timing.request(silent.address, { command: 'ping' }), ngError('timeout', /did not answer ping within 400 ms/));
      const elapsed = performance.now() - start;
      assert.ok(elapsed >= 398 && elapsed < 900, `timed out after ${elapsed} ms`);
      await delay(150); // Nothing is sent after the timeout.
      assert.equal(silent.received.length, 4);
      const [first] = silent.received;
      for (const { data } of silent.received) assert.deepEqual(data, first.data);
      const text = first.data.toString('latin1');
      assert.match(text, /^[0-9a-f]{12}_[0-9a-z]+ d/);
      const decoded = decode(first.data.subarray(text.indexOf(' ') + 1));
      assert.ok(decoded.ok, text);
      assert.deepEqual({ ...(decoded.value as object) }, { command: 'ping' });
      // Timers never fire early: each send is at least its scheduled time after the first.
      silent.received.forEach(({ at }, i) => assert.ok(at - start >= [0, 50, 150, 350][i] - 2, `send ${i} at ${at - start} ms`));
    } finally {
      await timing.close();
      await silent.close();
    }
  });

  test('a reply with the right cookie from another address or port is ignored', async () => {
    let targetAnswers = false;
    let impostorReplies = 0;
    let impostors: FakePeer[] = [];
    // Each impostor answers first; the target answers last, if at all.
    const answer = async (cookie: string, from: dgram.RemoteInfo) => {
      for (const [i, impostor] of impostors.entries()) {
        await sendFrom(impostor.socket, `${cookie} d6:result4:pong3:whoi${i}ee`, from);
        impostorReplies++;
      }
      if (targetAnswers) await sendFrom(target.socket, `${cookie} d6:result4:pong3:who6:targete`, from);
    };
    const target = await fakePeer((cookie, from) => void answer(cookie, from));
    // Another port on the target's address, and the target's port on another loopback address.
    impostors = [await fakePeer(), await fakePeer(undefined, '127.0.0.3', target.address.port)];
    try {
      await assert.rejects(client.request(target.address, { command: 'ping' }, { timeoutMs: 300 }), ngError('timeout'));
      assert.ok(impostorReplies > 0);
      targetAnswers = true;
      const reply = await client.request(target.address, { command: 'ping' }, { timeoutMs: 300 });
      assert.equal(reply.who, 'target');
    } finally {
      for (const peer of [target, ...impostors]) await peer.close();
    }
  });

  for (const [name, body, why] of [
    ['not bencode', 'hello', /not ng: unexpected byte 0x68 at byte 0$/],
    ['bencode cut short', 'd6:result2:o', /not ng: string runs past the end at byte 11$/],
    ['not a dictionary', 'l4:ponge', /not ng: not a dictionary$/],
    ['a dictionary without result', 'd3:sdp3:v=0e', /not ng: no result$/],
  ] as const) {
    test(`a reply that is ${name} fails as malformed`, async () => {
      const peer = await fakePeer((cookie, from) => void sendFrom(peer.socket, `${cookie} ${body}`, from));
      try {
        await assert.rejects(client.request(peer.address, { command: 'ping' }), ngError('malformed', why));
      } finally {
        await peer.close();
      }
    });
  }

  test('an error reply without a reason still fails as error', async () => {
    const peer = await fakePeer((cookie, from) => void sendFrom(peer.socket, `${cookie} d6:result5:errore`, from));
    try {
      await assert.rejects(client.request(peer.address, { command: 'ping' }), ngError('error', /no reason given$/));
    } finally {
      await peer.close();
    }
  });

  test('more than maxPending waiting requests: the next fails at once as overloaded', async () => {
    const silent = await fakePeer();
    const small = new NgClient({ maxPending: 2, timeoutMs: 200, retransmitMs: 100 });
    try {
      const waiting = [small.request(silent.address, { command: 'ping' }), small.request(silent.address, { command: 'ping' })];
      await assert.rejects(small.request(silent.address, { command: 'ping' }), ngError('overloaded', /2 ng requests are already waiting/));
      for (const request of waiting) await assert.rejects(request, ngError('timeout'));
      // Room again once they are settled.
      await assert.rejects(small.request(silent.address, { command: 'ping' }), ngError('timeout'));
    } finally {
      await small.close();
      await silent.close();
    }
  });

  test('close() fails waiting requests as closed, and later ones too', async () => {
    const silent = await fakePeer();
    const closing = new NgClient({ timeoutMs: 5000 });
    const waiting = [closing.request(silent.address, { command: 'ping' }), closing.request(rtpengine.ng, { command: 'ping' }, { timeoutMs: 5000 })];
    const rejected = Promise.all(waiting.map((request) => assert.rejects(request, ngError('closed', /closed/))));
    await closing.close();
    await rejected;
    await assert.rejects(closing.request(silent.address, { command: 'ping' }), ngError('closed'));
    await silent.close();
  });

  test('a command bencode cannot carry, or a target that is not an IP address, is a rejection, not a throw', async () => {
    await assert.rejects(client.request(rtpengine.ng, { command: 'ping', ratio: 1.5 }), RangeError);
    await assert.rejects(client.request({ host: 'localhost', port: rtpengine.ng.port }, { command: 'ping' }), TypeError);
  });

  // Last: it takes the shared rtpengine down.
  test('a killed rtpengine: requests time out', async () => {
    await rtpengine.kill();
    await assert.rejects(client.request(rtpengine.ng, { command: 'ping' }, { timeoutMs: 300 }), ngError('timeout'));
  });
});
