/**
 * SIP peers for tests: raw sockets that play UAC, UAS, carrier, agent or attacker, and the
 * hand-written SIP they send. Nothing here uses the code under test to build messages, except
 * the parser (to read what arrives) and the stream framer (to cut a TCP stream into messages).
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { SipStreamFramer } from '../../src/sip/framing.ts';
import { type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.ts';
import { parseNameAddr } from '../../src/sip/parse-address.ts';
import { parseVia } from '../../src/sip/parse-via.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { formatHost } from '../../src/sip/uri.ts';

// ---------------------------------------------------------------------------
// Peers: raw sockets that play UAC and UAS

/** A queue of parsed inbound messages that tests pick from. */
export abstract class Peer {
  readonly received: SipMessage[] = [];
  readonly #waiters = new Set<() => void>();
  abstract readonly host: string;
  abstract readonly port: number;
  abstract readonly transport: 'UDP' | 'TCP' | 'TLS';

  abstract send(text: string): void;
  abstract close(): Promise<void>;

  get hostPort(): string {
    return `${formatHost(this.host)}:${this.port}`;
  }

  /** Sizes of the messages received, in order (a datagram or a framed TCP message each). */
  readonly sizes: number[] = [];

  protected deliver(data: Buffer): void {
    this.sizes.push(data.length);
    const result = parseMessage(data);
    if (!result.ok) return;
    this.received.push(result.value);
    for (const waiter of this.#waiters) waiter();
  }

  /** Removes and returns the first message matching `predicate`, waiting for it if needed. */
  next<T extends SipMessage>(predicate: (message: SipMessage) => message is T, what: string, timeoutMs = 3000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const index = this.received.findIndex(predicate);
        if (index === -1) return false;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve(this.received.splice(index, 1)[0] as T);
        return true;
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; have ${this.received.map(describe).join(', ') || 'nothing'}`));
      }, timeoutMs);
      if (!check()) this.#waiters.add(check);
    });
  }

  /** Asserts that nothing matching arrives within `ms`. */
  async none(predicate: (message: SipMessage) => boolean, what: string, ms: number): Promise<void> {
    await delay(ms);
    assert.equal(this.received.filter(predicate).length, 0, `unexpected ${what}`);
  }
}

function describe(message: SipMessage): string {
  return message.kind === 'request' ? message.method : `${message.status} (${message.headers.get('cseq')})`;
}

export class UdpPeer extends Peer {
  readonly transport = 'UDP';
  readonly host: string;
  port = 0;
  readonly #socket: dgram.Socket;
  readonly #proxy: { host: string; port: number };

  constructor(host: string, proxy: { host: string; port: number }) {
    super();
    this.host = host;
    this.#proxy = proxy;
    this.#socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    this.#socket.on('message', (data) => this.deliver(data));
  }

  /** Binds a socket; `proxy` is where `send` goes (filled in once the proxy listens). */
  static async start(host: string, proxy: { host: string; port: number }): Promise<UdpPeer> {
    const peer = new UdpPeer(host, proxy);
    await new Promise<void>((resolve) => peer.#socket.bind(0, host, resolve));
    peer.port = peer.#socket.address().port;
    return peer;
  }

  send(text: string): void {
    this.#socket.send(Buffer.from(text), this.#proxy.port, this.#proxy.host);
  }

  /** Sends bytes as they are (a message whose body is not text). */
  sendBytes(data: Buffer): void {
    this.#socket.send(data, this.#proxy.port, this.#proxy.host);
  }

  /** Sends to another address than the one the peer was made for (another instance, say). */
  sendTo(text: string, host: string, port: number): void {
    this.#socket.send(Buffer.from(text), port, host);
  }

  /** Sends a response where RFC 3261 §18.2.2 says: the top Via's sent-by (not necessarily where `send` goes). */
  respond(request: SipRequest, text: string): void {
    const via = parseVia(request.headers.get('via')!)!;
    this.sendTo(text, via.host, via.port ?? 5060);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.#socket.close(() => resolve()));
  }
}

/** Frames a TCP stream into messages. */
function attachFramer(socket: net.Socket, deliver: (data: Buffer) => void): void {
  const framer = new SipStreamFramer();
  socket.on('data', (chunk: Buffer) => {
    for (const event of framer.push(chunk)) if (event.type === 'message') deliver(event.data);
  });
}

/** A UAC connected to the proxy over TCP. */
export class TcpClientPeer extends Peer {
  readonly transport = 'TCP';
  readonly host: string;
  readonly port: number;
  readonly #socket: net.Socket;

  constructor(socket: net.Socket) {
    super();
    this.#socket = socket;
    this.host = socket.localAddress!;
    this.port = socket.localPort!;
    attachFramer(socket, (data) => this.deliver(data));
  }

  static async connect(host: string, port: number): Promise<TcpClientPeer> {
    const socket = net.connect({ host, port });
    await once(socket, 'connect');
    return new TcpClientPeer(socket);
  }

  send(text: string): void {
    this.#socket.write(text);
  }

  async close(): Promise<void> {
    const closed = once(this.#socket, 'close');
    this.#socket.destroy();
    await closed;
  }
}

/** A UAS listening on TCP, or on TLS with `tlsOptions`; it answers on the connection the proxy opened. */
export class TcpServerPeer extends Peer {
  readonly transport: 'TCP' | 'TLS';
  readonly host: string;
  port = 0;
  readonly #server: net.Server;
  readonly #connections = new Set<net.Socket>();
  #last: net.Socket | null = null;
  /** Connections accepted so far. */
  accepted = 0;

  constructor(host: string, tlsOptions?: tls.TlsOptions) {
    super();
    this.host = host;
    this.transport = tlsOptions ? 'TLS' : 'TCP';
    const accept = (socket: net.Socket) => {
      this.accepted++;
      this.#connections.add(socket);
      socket.on('close', () => this.#connections.delete(socket));
      this.#last = socket;
      attachFramer(socket, (data) => this.deliver(data));
    };
    this.#server = tlsOptions ? tls.createServer(tlsOptions, accept) : net.createServer(accept);
  }

  static async start(host: string, tlsOptions?: tls.TlsOptions): Promise<TcpServerPeer> {
    const peer = new TcpServerPeer(host, tlsOptions);
    await new Promise<void>((resolve) => peer.#server.listen(0, host, resolve));
    peer.port = (peer.#server.address() as net.AddressInfo).port;
    return peer;
  }

  send(text: string): void {
    assert.ok(this.#last !== null, 'the proxy has connected');
    this.#last.write(text);
  }

  async close(): Promise<void> {
    for (const socket of this.#connections) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------
// Hand-written SIP

let counter = 0;

export function unique(prefix: string): string {
  counter++;
  return `${prefix}${counter}`;
}

export function sip(lines: string[], body = ''): string {
  return [...lines, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n');
}

export const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';

export interface Call {
  callId: string;
  fromTag: string;
  inviteBranch: string;
  requestUri: string;
}

export function newCall(proxyAddress: string, user = '+15550001'): Call {
  return {
    callId: unique('call-') + '@proxy.test',
    fromTag: unique('from'),
    inviteBranch: unique('z9hG4bK-inv'),
    requestUri: `sip:${user}@${proxyAddress}`,
  };
}

export function inviteText(call: Call, uac: Peer, extra: string[] = []): string {
  return sip(
    [
      `INVITE ${call.requestUri} SIP/2.0`,
      `Via: SIP/2.0/${uac.transport} ${uac.hostPort};branch=${call.inviteBranch};rport`,
      'Max-Forwards: 70',
      `From: "Alice" <sip:alice@${uac.hostPort}>;tag=${call.fromTag}`,
      `To: <${call.requestUri}>`,
      `Call-ID: ${call.callId}`,
      'CSeq: 1 INVITE',
      `Contact: <sip:alice@${uac.hostPort}${uac.transport === 'UDP' ? '' : `;transport=${uac.transport.toLowerCase()}`}>`,
      'X-Evil: spoofed',
      ...extra,
      'Content-Type: application/sdp',
    ],
    SDP,
  );
}

/** A response as a UAS writes it: Via, Record-Route, From, To, Call-ID, CSeq copied (§8.2.6.2, §12.1.1). */
export function replyText(request: SipRequest, status: number, reason: string, toTag: string | null, extra: string[] = []): string {
  const lines = [`SIP/2.0 ${status} ${reason}`];
  for (const via of request.headers.getAll('via')) lines.push(`Via: ${via}`);
  for (const route of request.headers.getAll('record-route')) lines.push(`Record-Route: ${route}`);
  lines.push(`From: ${request.headers.get('from')}`);
  const to = request.headers.get('to')!;
  lines.push(`To: ${toTag === null || parseNameAddr(to)!.params.has('tag') ? to : `${to};tag=${toTag}`}`);
  lines.push(`Call-ID: ${request.headers.get('call-id')}`, `CSeq: ${request.headers.get('cseq')}`, ...extra);
  return sip(lines);
}

/** An in-dialog request from the UAC: To with the UAS tag, Route set from the 2xx's Record-Route, reversed (§12.1.2). */
export function inDialogText(
  method: string,
  cseq: number,
  call: Call,
  uac: Peer,
  ok: SipResponse,
  branch = unique('z9hG4bK-dlg'),
  extra: string[] = [],
): string {
  const target = parseNameAddr(ok.headers.get('contact')!)!.uri;
  const routes = [...ok.headers.getAll('record-route')].reverse();
  return sip([
    `${method} ${target} SIP/2.0`,
    `Via: SIP/2.0/${uac.transport} ${uac.hostPort};branch=${branch};rport`,
    'Max-Forwards: 70',
    ...routes.map((route) => `Route: ${route}`),
    `From: "Alice" <sip:alice@${uac.hostPort}>;tag=${call.fromTag}`,
    `To: ${ok.headers.get('to')}`,
    `Call-ID: ${call.callId}`,
    `CSeq: ${cseq} ${method}`,
    ...extra,
  ]);
}

/**
 * An in-dialog request from the UAS (the callee) towards the caller: the INVITE's Contact as
 * target, its Record-Route in order as the Route set (§12.1.1), From and To swapped.
 */
export function calleeRequestText(method: string, cseq: number, invite: SipRequest, uas: Peer, uasTag: string, extra: string[] = []): string {
  const target = parseNameAddr(invite.headers.get('contact')!)!.uri;
  return sip([
    `${method} ${target} SIP/2.0`,
    `Via: SIP/2.0/${uas.transport} ${uas.hostPort};branch=${unique('z9hG4bK-callee')};rport`,
    'Max-Forwards: 70',
    ...invite.headers.getAll('record-route').map((route) => `Route: ${route}`),
    `From: ${invite.headers.get('to')};tag=${uasTag}`,
    `To: ${invite.headers.get('from')}`,
    `Call-ID: ${invite.headers.get('call-id')}`,
    `CSeq: ${cseq} ${method}`,
    `Contact: <sip:agent@${uas.hostPort}>`,
    ...extra,
  ]);
}

export function ackText(call: Call, uac: Peer, failure: SipResponse): string {
  return sip([
    `ACK ${call.requestUri} SIP/2.0`,
    `Via: SIP/2.0/${uac.transport} ${uac.hostPort};branch=${call.inviteBranch};rport`,
    'Max-Forwards: 70',
    `From: "Alice" <sip:alice@${uac.hostPort}>;tag=${call.fromTag}`,
    `To: ${failure.headers.get('to')}`,
    `Call-ID: ${call.callId}`,
    'CSeq: 1 ACK',
  ]);
}

export function cancelText(call: Call, uac: Peer): string {
  return sip([
    `CANCEL ${call.requestUri} SIP/2.0`,
    `Via: SIP/2.0/${uac.transport} ${uac.hostPort};branch=${call.inviteBranch};rport`,
    'Max-Forwards: 70',
    `From: "Alice" <sip:alice@${uac.hostPort}>;tag=${call.fromTag}`,
    `To: <${call.requestUri}>`,
    `Call-ID: ${call.callId}`,
    'CSeq: 1 CANCEL',
  ]);
}

export function optionsText(uri: string, uac: Peer, extra: string[] = []): string {
  return sip([
    `OPTIONS ${uri} SIP/2.0`,
    `Via: SIP/2.0/${uac.transport} ${uac.hostPort};branch=${unique('z9hG4bK-opt')};rport`,
    ...extra,
    `From: <sip:alice@${uac.hostPort}>;tag=${unique('o')}`,
    `To: <${uri}>`,
    `Call-ID: ${unique('opt-')}@proxy.test`,
    'CSeq: 1 OPTIONS',
  ]);
}

// Message predicates.
export const request =
  (method: string) =>
  (message: SipMessage): message is SipRequest =>
    message.kind === 'request' && message.method === method;
export const response =
  (status: number, method = 'INVITE') =>
  (message: SipMessage): message is SipResponse =>
    message.kind === 'response' && message.status === status && message.headers.get('cseq')?.endsWith(` ${method}`) === true;
