import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { buildResponse, createRequest, SipHeaders, type SipMessage, type SipRequest } from '../../src/sip/message.ts';
import { parseNameAddr } from '../../src/sip/parse-address.ts';
import { parseVia, topVia } from '../../src/sip/parse-via.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { serializeMessage } from '../../src/sip/serializer.ts';
import { SipTransportLayer, type MessageSource, type SipTransportOptions } from '../../src/sip/transport.ts';
import { TlsCredentials } from '../../src/tls/tls-credentials.ts';
import { makeTestPki } from '../support/tls-certs.ts';

interface Received {
  message: SipMessage;
  source: MessageSource;
}

/** A transport layer plus a queue of what it received. */
class Endpoint {
  readonly layer: SipTransportLayer;
  readonly errors: Error[] = [];
  readonly #queue: Received[] = [];
  readonly #waiters: Array<(received: Received) => void> = [];
  port = 0;

  constructor(host: string, options: Partial<SipTransportOptions> = {}) {
    this.layer = new SipTransportLayer({
      host,
      port: 0,
      onMessage: (message, source) => {
        const waiter = this.#waiters.shift();
        if (waiter) waiter({ message, source });
        else this.#queue.push({ message, source });
      },
      onError: (error) => this.errors.push(error),
      ...options,
    });
  }

  static async start(host: string, options: Partial<SipTransportOptions> = {}): Promise<Endpoint> {
    const endpoint = new Endpoint(host, options);
    const ports = await endpoint.layer.listen();
    assert.equal(ports.udpPort, ports.tcpPort, 'UDP and TCP share the port');
    assert.ok(ports.udpPort > 0);
    endpoint.port = ports.udpPort;
    return endpoint;
  }

  next(timeoutMs = 2000): Promise<Received> {
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for a message')), timeoutMs);
      this.#waiters.push((received) => {
        clearTimeout(timer);
        resolve(received);
      });
    });
  }

  get pending(): number {
    return this.#queue.length;
  }
}

let sequence = 0;

function request(method: string, via: string): SipRequest {
  sequence++;
  return createRequest({
    method,
    uri: 'sip:agent@example.com',
    headers: new SipHeaders([
      ['Via', via],
      ['Max-Forwards', '70'],
      ['To', '<sip:agent@example.com>'],
      ['From', `<sip:caller@example.com>;tag=from${sequence}`],
      ['Call-ID', `call-${sequence}@transport.test`],
      ['CSeq', `${sequence} ${method}`],
    ]),
  });
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await delay(10);
  }
}

async function udpClient(type: 'udp4' | 'udp6', host: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket(type);
  await new Promise<void>((resolve) => socket.bind(0, host, resolve));
  return socket;
}

function nextDatagram(socket: dgram.Socket): Promise<Buffer> {
  return once(socket, 'message').then(([data]) => data as Buffer);
}

async function tcpClient(host: string, port: number): Promise<net.Socket> {
  const socket = net.connect({ host, port });
  await once(socket, 'connect');
  return socket;
}

/** Reads from a raw TCP socket until the accumulated data satisfies `done`. */
function readUntil(socket: net.Socket, done: (data: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const timer = setTimeout(() => reject(new Error(`timed out; got ${JSON.stringify(data)}`)), 2000);
    const onData = (chunk: Buffer) => {
      data += chunk.toString();
      if (done(data)) {
        clearTimeout(timer);
        socket.off('data', onData);
        resolve(data);
      }
    };
    socket.on('data', onData);
  });
}

for (const { family, host, udpType } of [
  { family: 'IPv4', host: '127.0.0.1', udpType: 'udp4' as const },
  { family: 'IPv6', host: '::1', udpType: 'udp6' as const },
]) {
  const bracketed = host.includes(':') ? `[${host}]` : host;

  test(`UDP over ${family}: request in with received/rport, response back to rport`, async () => {
    const client = await Endpoint.start(host);
    const server = await Endpoint.start(host);
    try {
      const invite = request('INVITE', `SIP/2.0/UDP client.invalid:5999;branch=z9hG4bKudp${family};rport`);
      await client.layer.send(invite, { transport: 'udp', host: bracketed, port: server.port });
      const { message, source } = await server.next();
      assert.equal(message.kind, 'request');
      assert.deepEqual({ ...source }, { transport: 'udp', address: host, port: client.port, connection: null });
      const via = topVia(message);
      assert.equal(via?.params.get('received'), host);
      assert.equal(via?.params.get('rport'), String(client.port));
      assert.equal(via?.params.get('branch'), `z9hG4bKudp${family}`);

      // The sent-by (client.invalid:5999) is unreachable; §18.2.2 + RFC 3581 route by received/rport.
      await server.layer.sendResponse(buildResponse(message, 200, { toTag: 'srv' }), source);
      const reply = await client.next();
      assert.equal(reply.message.kind === 'response' && reply.message.status, 200);
      assert.equal(parseNameAddr(reply.message.headers.get('to') ?? '')?.params.get('tag'), 'srv');
      assert.deepEqual(client.errors, []);
      assert.deepEqual(server.errors, []);
    } finally {
      await client.layer.close();
      await server.layer.close();
    }
  });

  test(`TCP over ${family}: connection reuse and responses on the same connection`, async () => {
    const client = await Endpoint.start(host);
    const server = await Endpoint.start(host);
    try {
      const first = request('OPTIONS', `SIP/2.0/TCP ${bracketed}:${client.port};branch=z9hG4bKtcp1`);
      const second = request('MESSAGE', `SIP/2.0/TCP ${bracketed}:${client.port};branch=z9hG4bKtcp2`);
      await Promise.all([
        client.layer.send(first, { transport: 'tcp', host: bracketed, port: server.port }),
        client.layer.send(second, { transport: 'tcp', host, port: server.port }),
      ]);
      const a = await server.next();
      const b = await server.next();
      assert.equal(a.source.transport, 'tcp');
      assert.equal(a.source.address, host);
      assert.ok(a.source.connection);
      assert.equal(a.source.connection?.id, b.source.connection?.id, 'both requests on one connection');
      assert.equal(client.layer.connectionCount, 1);
      assert.equal(server.layer.connectionCount, 1);
      // sent-by matches the source address and there is no rport: Via untouched.
      assert.equal(topVia(a.message)?.params.has('received'), false);

      await server.layer.sendResponse(buildResponse(a.message as SipRequest, 200, { toTag: 't' }), a.source);
      const reply = await client.next();
      assert.equal(reply.message.kind, 'response');
      assert.equal(reply.source.transport, 'tcp');
      assert.equal(reply.source.port, server.port, 'response came over the client-initiated connection');
      assert.equal(client.layer.connectionCount, 1);
      assert.equal(server.layer.connectionCount, 1);
    } finally {
      await client.layer.close();
      await server.layer.close();
    }
  });

  test(`malformed UDP request over ${family} is answered with 400; garbage is dropped`, async () => {
    const server = await Endpoint.start(host);
    const raw = await udpClient(udpType, host);
    try {
      const rawPort = raw.address().port;
      const keepAlive = Buffer.from('\r\n\r\n');
      raw.send(keepAlive, server.port, host);
      raw.send(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff, 0x00]), server.port, host);
      raw.send(Buffer.from('\0\0\0garbage'), server.port, host);
      await waitFor(() => server.layer.stats.droppedDatagrams === 2, 'garbage to be counted');

      const malformed = serializeMessage(request('INVITE', `SIP/2.0/UDP ${bracketed}:${rawPort};branch=z9hG4bKbad`))
        .toString()
        .replace('Max-Forwards: 70', 'Max-Forwards: seventy');
      const answer = nextDatagram(raw);
      raw.send(Buffer.from(malformed), server.port, host);
      const parsed = parseMessage(await answer);
      assert.ok(parsed.ok);
      assert.equal(parsed.value.kind === 'response' && parsed.value.status, 400);
      assert.ok(parseNameAddr(parsed.value.headers.get('to') ?? '')?.params.get('tag'), 'To tag added');
      assert.equal(parsed.value.headers.get('cseq'), `${sequence} INVITE`);
      assert.deepEqual(server.layer.stats, {
        droppedDatagrams: 2,
        droppedStreamMessages: 0,
        rejectedRequests: 1,
        framingErrors: 0,
        refusedConnections: 0,
        timedOutConnections: 0,
        overflowedConnections: 0,
        refusedDestinations: 0,
        failedTlsHandshakes: 0,
        refusedHandshakes: 0,
      });

      // Still healthy: a valid request is delivered.
      raw.send(serializeMessage(request('OPTIONS', `SIP/2.0/UDP ${bracketed}:${rawPort};branch=z9hG4bKok`)), server.port, host);
      const { message } = await server.next();
      assert.equal(message.kind === 'request' && message.method, 'OPTIONS');
      assert.equal(server.pending, 0);
    } finally {
      raw.close();
      await server.layer.close();
    }
  });
}

test('Via handling: received only when sent-by differs, rport filled only when requested', async () => {
  const server = await Endpoint.start('127.0.0.1');
  const raw = await udpClient('udp4', '127.0.0.1');
  try {
    const rawPort = raw.address().port;
    const cases = [
      { via: `SIP/2.0/UDP 127.0.0.1:${rawPort};branch=z9hG4bK1`, received: undefined, rport: undefined },
      { via: `SIP/2.0/UDP 192.0.2.1:${rawPort};branch=z9hG4bK2`, received: '127.0.0.1', rport: undefined },
      { via: `SIP/2.0/UDP agent.example.com;branch=z9hG4bK3`, received: '127.0.0.1', rport: undefined },
      { via: `SIP/2.0/UDP 127.0.0.1:${rawPort};rport;branch=z9hG4bK4`, received: '127.0.0.1', rport: String(rawPort) },
    ];
    for (const { via, received, rport } of cases) {
      raw.send(serializeMessage(request('OPTIONS', via)), server.port, '127.0.0.1');
      const { message } = await server.next();
      const stamped = parseVia(message.headers.get('via') ?? '');
      assert.equal(stamped?.params.get('received'), received, via);
      assert.equal(stamped?.params.get('rport') ?? undefined, rport, via);
      if (received === undefined) assert.equal(message.headers.get('via'), via, 'untouched when nothing to add');
    }
  } finally {
    raw.close();
    await server.layer.close();
  }
});

test('TCP: message split across writes, keep-alive ping answered with pong', async () => {
  const server = await Endpoint.start('127.0.0.1');
  const socket = await tcpClient('127.0.0.1', server.port);
  try {
    const wire = serializeMessage(
      createRequest({
        ...request('MESSAGE', `SIP/2.0/TCP 127.0.0.1:${socket.localPort};branch=z9hG4bKsplit`),
        body: Buffer.from('hello over a slow link'),
      }),
    );
    for (const [start, end] of [
      [0, 7],
      [7, 80],
      [80, wire.length - 3],
      [wire.length - 3, wire.length],
    ]) {
      socket.write(wire.subarray(start, end));
      await delay(15);
    }
    const { message, source } = await server.next();
    assert.equal(message.body.toString(), 'hello over a slow link');
    assert.equal(source.port, socket.localPort);

    const pong = readUntil(socket, (data) => data.length >= 2);
    socket.write('\r\n\r\n');
    assert.equal(await pong, '\r\n');
  } finally {
    socket.destroy();
    await server.layer.close();
  }
});

test('TCP: response uses the open connection even when the Via points elsewhere', async () => {
  const server = await Endpoint.start('127.0.0.1');
  const socket = await tcpClient('127.0.0.1', server.port);
  try {
    socket.write(serializeMessage(request('INVITE', 'SIP/2.0/TCP unreachable.invalid:9;branch=z9hG4bKconn')));
    const { message, source } = await server.next();
    const reply = readUntil(socket, (data) => data.includes('\r\n\r\n'));
    await server.layer.sendResponse(buildResponse(message as SipRequest, 180, { toTag: 'r' }), source);
    assert.match(await reply, /^SIP\/2\.0 180 Ringing\r\n/);
  } finally {
    socket.destroy();
    await server.layer.close();
  }
});

test('TCP: after the connection closes, a response is routed by Via to a new connection', async () => {
  const client = await Endpoint.start('127.0.0.1');
  const server = await Endpoint.start('127.0.0.1');
  const socket = await tcpClient('127.0.0.1', server.port);
  try {
    socket.write(serializeMessage(request('OPTIONS', `SIP/2.0/TCP 127.0.0.1:${client.port};branch=z9hG4bKgone`)));
    const { message, source } = await server.next();
    socket.destroy();
    await waitFor(() => source.connection?.open === false, 'server to notice the close');
    await server.layer.sendResponse(buildResponse(message as SipRequest, 200, { toTag: 'late' }), source);
    const reply = await client.next();
    assert.equal(reply.message.kind === 'response' && reply.message.status, 200);
    assert.equal(reply.source.transport, 'tcp');
  } finally {
    await client.layer.close();
    await server.layer.close();
  }
});

test('TCP: malformed request gets 400 on the connection; a framing error closes it', async () => {
  const server = await Endpoint.start('127.0.0.1');
  const socket = await tcpClient('127.0.0.1', server.port);
  try {
    const bad = serializeMessage(request('OPTIONS', `SIP/2.0/TCP 127.0.0.1:${socket.localPort};branch=z9hG4bKbadtcp`))
      .toString()
      .replace('CSeq: ', 'CSeq: x');
    const reply = readUntil(socket, (data) => data.includes('\r\n\r\n'));
    socket.write(bad);
    assert.match(await reply, /^SIP\/2\.0 400 Bad Request\r\n/);
    assert.equal(server.layer.stats.rejectedRequests, 1);

    const closed = once(socket, 'close');
    socket.write('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n');
    await closed;
    await waitFor(() => server.layer.connectionCount === 0, 'server to drop the connection');
    assert.equal(server.layer.stats.framingErrors, 1);
    assert.match(server.errors[0]?.message ?? '', /missing Content-Length/);
  } finally {
    socket.destroy();
    await server.layer.close();
  }
});

test('TCP: idle connections are closed after the idle timeout', async () => {
  const client = await Endpoint.start('127.0.0.1');
  const server = await Endpoint.start('127.0.0.1', { tcpIdleTimeoutMs: 150 });
  try {
    await client.layer.send(request('OPTIONS', `SIP/2.0/TCP 127.0.0.1:${client.port};branch=z9hG4bKidle`), {
      transport: 'tcp',
      host: '127.0.0.1',
      port: server.port,
    });
    await server.next();
    assert.equal(client.layer.connectionCount, 1);
    await waitFor(() => server.layer.connectionCount === 0 && client.layer.connectionCount === 0, 'idle close');
  } finally {
    await client.layer.close();
    await server.layer.close();
  }
});

test('TCP: connection refused rejects the send and leaves no connection behind', async () => {
  const client = await Endpoint.start('127.0.0.1');
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  try {
    await assert.rejects(
      client.layer.send(request('OPTIONS', 'SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKrefused'), { transport: 'tcp', host: '127.0.0.1', port }),
      /ECONNREFUSED/,
    );
    await waitFor(() => client.layer.connectionCount === 0, 'failed connection cleanup');
    assert.deepEqual(client.errors, [], 'connect failures go to the sender, not onError');
  } finally {
    await client.layer.close();
  }
});

test('dual-stack listener reports IPv4 peers as IPv4 and can answer them', async () => {
  const server = await Endpoint.start('::');
  const client = await Endpoint.start('127.0.0.1');
  try {
    await client.layer.send(request('OPTIONS', `SIP/2.0/UDP 127.0.0.1:${client.port};branch=z9hG4bKdual`), {
      transport: 'udp',
      host: '127.0.0.1',
      port: server.port,
    });
    const { message, source } = await server.next();
    assert.equal(source.address, '127.0.0.1');
    assert.equal(topVia(message)?.params.has('received'), false);
    await server.layer.sendResponse(buildResponse(message as SipRequest, 200), source);
    const reply = await client.next();
    assert.equal(reply.message.kind === 'response' && reply.message.status, 200);
  } finally {
    await client.layer.close();
    await server.layer.close();
  }
});

test('handler exceptions are reported, not fatal; send after close is refused', async () => {
  let calls = 0;
  const server = await Endpoint.start('127.0.0.1', {
    onMessage: () => {
      calls++;
      throw new Error('handler bug');
    },
  });
  const client = await Endpoint.start('127.0.0.1');
  try {
    for (const branch of ['z9hG4bKh1', 'z9hG4bKh2']) {
      await client.layer.send(request('OPTIONS', `SIP/2.0/UDP 127.0.0.1:${client.port};branch=${branch}`), {
        transport: 'udp',
        host: '127.0.0.1',
        port: server.port,
      });
    }
    await waitFor(() => calls === 2, 'both messages handled');
    assert.equal(server.errors.length, 2);
    assert.match(server.errors[0].message, /handler bug/);
  } finally {
    await client.layer.close();
    await server.layer.close();
    await server.layer.close();
  }
  await assert.rejects(
    client.layer.send(request('OPTIONS', 'SIP/2.0/UDP h;branch=z9hG4bKx'), { transport: 'udp', host: '127.0.0.1', port: 9 }),
    /closed/,
  );
  await assert.rejects(client.layer.listen(), /closed/);
});

test('listen() twice is refused; close() during listen() releases the sockets', async () => {
  assert.throws(() => new SipTransportLayer({ host: 'localhost', port: 0, onMessage: () => undefined }), TypeError);
  const layer = new SipTransportLayer({ host: '127.0.0.1', port: 0, onMessage: () => undefined });
  const listening = layer.listen();
  await assert.rejects(layer.listen(), /already started/);
  const closing = layer.close();
  await assert.rejects(listening, /closed while starting/);
  await closing;
});

test('close() leaves no sockets, servers or timers behind', async () => {
  const a = await Endpoint.start('127.0.0.1');
  const b = await Endpoint.start('::1');
  await a.layer.send(request('OPTIONS', `SIP/2.0/TCP 127.0.0.1:${a.port};branch=z9hG4bKclose`), { transport: 'tcp', host: '::1', port: b.port });
  await b.next();
  assert.equal(a.layer.connectionCount, 1);
  assert.equal(b.layer.connectionCount, 1);
  await Promise.all([a.layer.close(), b.layer.close()]);
  assert.equal(a.layer.connectionCount, 0);
  assert.equal(b.layer.connectionCount, 0);
  await delay(20);
  const leftovers = process.getActiveResourcesInfo().filter((name) => /TCP|UDP|Timeout/.test(name));
  assert.deepEqual(leftovers, []);
});

// ---------------------------------------------------------------------------
// Limits: what a sender, honest or not, can make the transport hold or open

/** Resolves when the socket is closed by the other end (or errors). */
function closedByPeer(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    socket.once('close', () => resolve());
    socket.on('error', () => undefined);
  });
}

test('inbound TCP: connections beyond the per-source cap are closed at once; other sources are unaffected', async () => {
  const server = await Endpoint.start('127.0.0.1', { maxTcpConnectionsPerSource: 3 });
  const sockets: net.Socket[] = [];
  try {
    for (let i = 0; i < 5; i++) sockets.push(await tcpClient('127.0.0.1', server.port));
    await Promise.all(sockets.slice(3).map(closedByPeer));
    await delay(50);
    assert.deepEqual(
      sockets.map((s) => s.destroyed),
      [false, false, false, true, true],
    );
    assert.equal(server.layer.stats.refusedConnections, 2);
    const other = net.connect({ host: '127.0.0.1', port: server.port, localAddress: '127.0.0.2' });
    await once(other, 'connect');
    sockets.push(other);
    other.write(serializeMessage(request('OPTIONS', 'SIP/2.0/TCP 127.0.0.2:5060;branch=z9hG4bKother')));
    assert.equal((await server.next()).source.address, '127.0.0.2');
    // A closed connection frees its place.
    sockets[0].destroy();
    await waitFor(() => server.layer.connectionCount === 3, 'the closed connection gone');
    sockets.push(await tcpClient('127.0.0.1', server.port));
    await delay(50);
    assert.equal(sockets.at(-1)!.destroyed, false);
  } finally {
    for (const socket of sockets) socket.destroy();
    await server.layer.close();
  }
});

test('inbound TCP: a message that does not arrive whole in time, or no message at all, closes the connection', async () => {
  const server = await Endpoint.start('127.0.0.1', { tcpMessageTimeoutMs: 200 });
  const sockets: net.Socket[] = [];
  try {
    const silent = await tcpClient('127.0.0.1', server.port);
    const slow = await tcpClient('127.0.0.1', server.port);
    const prompt = await tcpClient('127.0.0.1', server.port);
    sockets.push(silent, slow, prompt);
    const whole = serializeMessage(request('OPTIONS', 'SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKprompt'));
    prompt.write(whole);
    await server.next();
    // One octet now and then: each keeps the connection busy, none completes the message.
    slow.write(whole.subarray(0, 10));
    const started = Date.now();
    const trickle = setInterval(() => slow.writable && slow.write(whole.subarray(10, 11)), 50);
    await Promise.all([closedByPeer(silent), closedByPeer(slow)]);
    clearInterval(trickle);
    assert.ok(Date.now() - started < 1000, 'closed by the deadline, not by the idle timeout');
    await delay(300);
    assert.equal(prompt.destroyed, false, 'a connection between messages may stay idle');
    assert.equal(server.layer.stats.timedOutConnections, 2);
  } finally {
    for (const socket of sockets) socket.destroy();
    await server.layer.close();
  }
});

test('TCP: a peer that does not read is cut off once a bounded amount is queued for it', async () => {
  const server = await Endpoint.start('127.0.0.1', { maxTcpWriteBufferBytes: 256 * 1024 });
  const held: net.Socket[] = [];
  const sink = net.createServer((socket) => {
    socket.pause();
    held.push(socket);
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const port = (sink.address() as net.AddressInfo).port;
  try {
    const big = request('MESSAGE', 'SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKbig');
    big.body = Buffer.alloc(60_000, 0x61);
    big.headers.set('Content-Type', 'text/plain');
    let failed = false;
    for (let i = 0; i < 2000 && !failed; i++) {
      await Promise.race([server.layer.send(big, { transport: 'tcp', host: '127.0.0.1', port }), delay(1)]).catch(() => {
        failed = true;
      });
    }
    await waitFor(() => server.layer.stats.overflowedConnections === 1, 'the connection cut off');
    assert.equal(server.layer.connectionCount, 0);
  } finally {
    await server.layer.close();
    for (const socket of held) socket.destroy();
    await new Promise((resolve) => sink.close(resolve));
  }
});

test('TCP: a flood of keep-alive pings gets one pong per read, not one per ping', async () => {
  const server = await Endpoint.start('127.0.0.1');
  const socket = net.connect(server.port, '127.0.0.1');
  socket.on('error', () => undefined);
  let pongBytes = 0;
  socket.on('data', (chunk: Buffer) => {
    pongBytes += chunk.length;
  });
  try {
    await once(socket, 'connect');
    socket.write('\r\n\r\n');
    await waitFor(() => pongBytes === 2, 'the pong for one ping');
    const pings = Buffer.alloc(4 * 1024 * 1024, '\r\n\r\n');
    await new Promise((resolve) => socket.write(pings, resolve));
    await delay(300);
    // One pong per ping would be 2 MiB.
    assert.ok(pongBytes < 64 * 1024, `${pongBytes} octets of pongs for a million pings`);
    assert.equal(socket.destroyed, false, 'pings are no reason to close');
  } finally {
    socket.destroy();
    await server.layer.close();
  }
});

test('outbound TCP: connections are capped per host and in all', async () => {
  const server = await Endpoint.start('127.0.0.1', { maxOutboundTcpConnectionsPerHost: 2, maxOutboundTcpConnections: 3 });
  const listeners: net.Server[] = [];
  const accepted: net.Socket[] = [];
  const listen = async (host: string) => {
    const listener = net.createServer((socket) => void accepted.push(socket));
    await new Promise<void>((resolve) => listener.listen(0, host, resolve));
    listeners.push(listener);
    return (listener.address() as net.AddressInfo).port;
  };
  const to = (host: string, port: number) =>
    server.layer.send(request('OPTIONS', 'SIP/2.0/TCP 127.0.0.1:5060;branch=z9hG4bKcap'), { transport: 'tcp', host, port });
  try {
    const ports = [await listen('127.0.0.1'), await listen('127.0.0.1'), await listen('127.0.0.1')];
    await to('127.0.0.1', ports[0]);
    await to('127.0.0.1', ports[1]);
    await to('127.0.0.1', ports[0]);
    await assert.rejects(to('127.0.0.1', ports[2]), /too many outbound TCP\/TLS connections/, 'a third to the same host');
    await to('127.0.0.2', await listen('127.0.0.2'));
    await assert.rejects(to('127.0.0.3', await listen('127.0.0.3')), /too many outbound TCP\/TLS connections/, 'a fourth in all');
    assert.equal(server.layer.stats.refusedDestinations, 2);
  } finally {
    await server.layer.close();
    for (const socket of accepted) socket.destroy();
    for (const listener of listeners) await new Promise((resolve) => listener.close(resolve));
  }
});

test('refused destinations: no request goes to a refused address or to a name that resolves only to one; responses still go back', async () => {
  const refused = new Set(['127.0.0.1', '::1']);
  const server = await Endpoint.start('127.0.0.2', { destinationRefusal: (address) => (refused.has(address) ? 'a refused address' : null) });
  const client = await udpClient('udp4', '127.0.0.1');
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  let connections = 0;
  listener.on('connection', (socket) => {
    connections++;
    socket.destroy();
  });
  try {
    const options = request('OPTIONS', 'SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKrefused');
    const port = (listener.address() as net.AddressInfo).port;
    await assert.rejects(
      server.layer.send(options, { transport: 'udp', host: '127.0.0.1', port: client.address().port }),
      /refusing to send a request to 127\.0\.0\.1/,
    );
    await assert.rejects(server.layer.send(options, { transport: 'tcp', host: 'localhost', port }), /localhost resolves to no address/);
    assert.equal(connections, 0);
    // A request from the refused address is still answered.
    const answer = nextDatagram(client);
    client.send(serializeMessage(request('OPTIONS', `SIP/2.0/UDP 127.0.0.1:${client.address().port};branch=z9hG4bKask`)), server.port, '127.0.0.2');
    const { message, source } = await server.next();
    await server.layer.sendResponse(buildResponse(message as SipRequest, 200, { toTag: 'ok' }), source);
    assert.ok(parseMessage(await answer).ok);
  } finally {
    client.close();
    await new Promise((resolve) => listener.close(resolve));
    await server.layer.close();
  }
});

test('TLS: a message arrives over TLS with its source; a failed handshake is counted, not reported; TLS is capped with TCP per source', async () => {
  const pki = makeTestPki();
  const credentials = new TlsCredentials({ certPath: pki.cert, keyPath: pki.key, caPath: pki.caCert });
  const server = new Endpoint('127.0.0.1', { tls: { sockets: credentials, listenPort: 0 }, maxTcpConnectionsPerSource: 2 });
  const ports = await server.layer.listen();
  assert.ok(ports.tlsPort !== null && ports.tlsPort !== ports.udpPort);
  const client = new Endpoint('127.0.0.1', { tls: { sockets: credentials, listenPort: null } });
  await client.layer.listen();
  try {
    const options = request('OPTIONS', `SIP/2.0/TLS 127.0.0.1:${ports.udpPort};branch=z9hG4bKtls`);
    await client.layer.send(options, { transport: 'tls', host: '127.0.0.1', port: ports.tlsPort });
    const { message, source } = await server.next();
    assert.equal(message.kind === 'request' && message.method, 'OPTIONS');
    assert.equal(source.transport, 'tls');
    assert.equal(source.connection?.transport, 'tls');

    const plain = net.connect(ports.tlsPort, '127.0.0.1');
    plain.on('error', () => undefined);
    plain.write(serializeMessage(options));
    await once(plain, 'close');
    await waitFor(() => server.layer.stats.failedTlsHandshakes === 1, 'the failed handshake counted');
    assert.deepEqual(server.errors, [], 'not reported as an error');

    // The TLS connection above and one plain TCP one fill the per-source cap of 2.
    const tcp = net.connect(ports.udpPort, '127.0.0.1');
    await once(tcp, 'connect');
    const third = net.connect(ports.tlsPort, '127.0.0.1');
    third.on('error', () => undefined);
    await once(third, 'close');
    assert.equal(server.layer.stats.refusedConnections, 1);
    tcp.destroy();
  } finally {
    await client.layer.close();
    await server.layer.close();
    pki.remove();
  }
});

test('TLS: a source the caller refuses a handshake is closed before any, and counted', async () => {
  const pki = makeTestPki();
  const credentials = new TlsCredentials({ certPath: pki.cert, keyPath: pki.key, caPath: pki.caCert });
  const asked: string[] = [];
  let allowed = 1;
  const server = new Endpoint('127.0.0.1', {
    tls: { sockets: credentials, listenPort: 0 },
    mayHandshake: (address) => {
      asked.push(address);
      return allowed-- > 0;
    },
  });
  const ports = await server.layer.listen();
  try {
    const handshake = (): Promise<string> =>
      new Promise((resolve) => {
        const socket = tls.connect({ host: '127.0.0.1', port: ports.tlsPort!, ca: fs.readFileSync(pki.caCert) });
        socket.once('secureConnect', () => {
          socket.destroy();
          resolve('secure');
        });
        socket.once('error', () => resolve('refused'));
        socket.once('close', () => resolve('refused'));
      });
    assert.equal(await handshake(), 'secure');
    assert.equal(await handshake(), 'refused');
    assert.deepEqual(asked, ['127.0.0.1', '127.0.0.1']);
    assert.equal(server.layer.stats.refusedHandshakes, 1);
  } finally {
    await server.layer.close();
    pki.remove();
  }
});

test('TLS: a server whose certificate is not trusted is not sent to; a trusted one is, by address or by name', async () => {
  const pki = makeTestPki();
  const credentials = new TlsCredentials({ certPath: null, keyPath: null, caPath: pki.caCert });
  const impostor = new Endpoint('127.0.0.1', {
    tls: { sockets: new TlsCredentials({ certPath: pki.untrustedCert, keyPath: pki.untrustedKey, caPath: null }), listenPort: 0 },
  });
  const trusted = new Endpoint('127.0.0.1', {
    tls: { sockets: new TlsCredentials({ certPath: pki.cert, keyPath: pki.key, caPath: null }), listenPort: 0 },
  });
  const [impostorPorts, trustedPorts] = [await impostor.layer.listen(), await trusted.layer.listen()];
  const client = new Endpoint('127.0.0.1', { tls: { sockets: credentials, listenPort: null } });
  await client.layer.listen();
  try {
    const options = request('OPTIONS', 'SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKtls');
    await assert.rejects(
      client.layer.send(options, { transport: 'tls', host: '127.0.0.1', port: impostorPorts.tlsPort! }),
      /self-signed|certificate/i,
    );
    // The certificate names 127.0.0.1 and localhost: verified for the IP address and for the name (SNI).
    await client.layer.send(options, { transport: 'tls', host: '127.0.0.1', port: trustedPorts.tlsPort! });
    assert.equal((await trusted.next()).source.transport, 'tls');
    await client.layer.send(options, { transport: 'tls', host: 'localhost', port: trustedPorts.tlsPort! });
    assert.equal((await trusted.next()).source.transport, 'tls');
  } finally {
    await client.layer.close();
    await impostor.layer.close();
    await trusted.layer.close();
    pki.remove();
  }
});
