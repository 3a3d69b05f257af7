/**
 * SIP transport layer (RFC 3261 §18) over UDP, TCP and TLS (RFC 5630), IPv4 and IPv6.
 *
 * Messages in, messages out: inbound requests get their top Via stamped
 * with `received`/`rport` (§18.2.1, RFC 3581) and are handed to `onMessage`
 * with their source; responses are routed back per §18.2.2. There is no
 * transaction logic here: retransmissions, the §18.1.1 switch to TCP for
 * large requests, and the §18.1.2 check that a response's top Via is ours
 * belong to the layers above.
 *
 * UDP and TCP listen on one address and one port, TLS (when given a listening
 * port) on a port of its own. Binding to `::` gives a dual-stack listener;
 * IPv4-mapped peer addresses (`::ffff:a.b.c.d`) are reported as plain IPv4
 * and mapped back when sending. Certificates and trust are not this layer's:
 * it asks `TlsSockets` (src/tls/) for the TLS side of a connection.
 */
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import type tls from 'node:tls';
import { guardedLookup, RefusedDestinationError } from './guarded-lookup.ts';
import { buildResponse, type SipMessage, type SipRequest, type SipResponse } from './message.ts';
import { formatVia, parseVia, topVia, type Via } from './parse-via.ts';
import { parseMessage } from './parser.ts';
import { serializeMessage } from './serializer.ts';
import { StreamConnection, type SipConnection, type StreamTransport } from './stream-connection.ts';
import { hostKind } from './uri.ts';

const UDP_SOCKET_BUFFER_BYTES = 4 * 1024 * 1024;

export type { SipConnection } from './stream-connection.ts';
export type TransportProtocol = 'udp' | StreamTransport;

/**
 * The TLS side of connections, with the certificates and the trust that go with it (src/tls/).
 * Each call uses what is current, so a reloaded certificate serves the next connection.
 */
export interface TlsSockets {
  /** Whether `server` may be called: the edge has a certificate to present. */
  readonly canServe: boolean;
  /** The server side of TLS over an accepted TCP connection. */
  server(socket: net.Socket): tls.TLSSocket;
  /** A client connection whose server certificate is verified for `servername` (or the IP address `host`). */
  client(options: { host: string; port: number; servername: string | undefined; lookup: net.LookupFunction | undefined }): tls.TLSSocket;
}

/** Where an inbound message came from. */
export interface MessageSource {
  readonly transport: TransportProtocol;
  readonly address: string;
  readonly port: number;
  /** The TCP or TLS connection it arrived on; null for UDP. */
  readonly connection: SipConnection | null;
}

export interface Destination {
  transport: TransportProtocol;
  /** IP address or hostname; IPv6 may be bracketed. */
  host: string;
  port: number;
  /** TLS: the name the server's certificate must carry (and SNI), when `host` is an address found for it. */
  serverName?: string;
}

export interface SipTransportOptions {
  /** IP address to bind, e.g. `0.0.0.0`, `::`, `127.0.0.1`, `::1`. */
  host: string;
  /** Port for both UDP and TCP; 0 picks a free port (the same for both). */
  port: number;
  /** TLS: the sockets, and the port to listen on (0 picks a free one; null: no listener, sending only). */
  tls?: { sockets: TlsSockets; listenPort: number | null };
  /** Called for every parsed inbound message. Exceptions are caught and passed to onError. */
  onMessage: (message: SipMessage, source: MessageSource) => void;
  /** Socket errors and handler exceptions; defaults to process.emitWarning. */
  onError?: (error: Error) => void;
  /** Close TCP connections idle for this long (default 5 minutes; CRLF keep-alives count as traffic). */
  tcpIdleTimeoutMs?: number;
  /** Give up on an outbound TCP connect after this long (default 5 s). */
  tcpConnectTimeoutMs?: number;
  /** Inbound TCP connections beyond this are refused (default 10,000). */
  maxTcpConnections?: number;
  /** Inbound TCP connections from one address beyond this are refused (default 64). */
  maxTcpConnectionsPerSource?: number;
  /** Outbound TCP connections beyond this are not opened; the send fails (default 1,000). */
  maxOutboundTcpConnections?: number;
  /** Outbound TCP connections to one host beyond this are not opened (default 16). */
  maxOutboundTcpConnectionsPerHost?: number;
  /**
   * A TCP message must arrive whole within this long of its first octet, and an accepted
   * connection must bring its first message within this long (default 10 s): slow senders
   * cannot hold connections and buffers open.
   */
  tcpMessageTimeoutMs?: number;
  /** Octets queued for a TCP peer that does not read; past this the connection is closed (default 1 MiB). */
  maxTcpWriteBufferBytes?: number;
  /** Whether a malformed request from this source is answered (400/505); false drops it. Default: always. */
  mayAnswer?: (source: MessageSource) => boolean;
  /**
   * Whether a TLS handshake from this address may start now; false closes the connection at
   * once (counted in refusedHandshakes). A handshake costs the edge far more CPU than the sender:
   * the caller rate-limits untrusted sources with it. Default: always.
   */
  mayHandshake?: (address: string) => boolean;
  /**
   * Why no request may be sent to this IP address, or null when it may. Checked for requests to
   * IP addresses and for every address a name resolves to; responses go back to their sources.
   */
  destinationRefusal?: (address: string) => string | null;
}

export interface TransportStats {
  /** UDP datagrams that were not SIP or were malformed beyond answering. */
  droppedDatagrams: number;
  /** Framed TCP messages that were malformed beyond answering. */
  droppedStreamMessages: number;
  /** Malformed requests answered with 400 or 505. */
  rejectedRequests: number;
  /** TCP connections closed because the stream could not be framed. */
  framingErrors: number;
  /** Inbound TCP connections refused: too many from one address. */
  refusedConnections: number;
  /** TCP connections closed because a message did not arrive whole in time. */
  timedOutConnections: number;
  /** TCP connections closed because the peer did not read what we wrote. */
  overflowedConnections: number;
  /** Requests not sent: the destination was refused, or the outbound connection caps were reached. */
  refusedDestinations: number;
  /** Inbound TLS connections that closed before their handshake completed. */
  failedTlsHandshakes: number;
  /** Inbound TLS connections closed before any handshake: their source was over its handshake rate. */
  refusedHandshakes: number;
}

export interface ListeningPorts {
  udpPort: number;
  tcpPort: number;
  /** Null when TLS is not listened on. */
  tlsPort: number | null;
}

const DEFAULT_SIP_PORT = 5060;
const DEFAULT_SIPS_PORT = 5061;
const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_MAX_TCP_CONNECTIONS = 10_000;
const DEFAULT_MAX_TCP_CONNECTIONS_PER_SOURCE = 64;
const DEFAULT_MAX_OUTBOUND_TCP_CONNECTIONS = 1_000;
const DEFAULT_MAX_OUTBOUND_TCP_CONNECTIONS_PER_HOST = 16;
const DEFAULT_TCP_MESSAGE_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_TCP_WRITE_BUFFER_BYTES = 1024 * 1024;
/** Attempts to find a port free for both UDP and TCP when the port is 0. */
const EPHEMERAL_PORT_ATTEMPTS = 10;
const PONG = Buffer.from('\r\n');
/** RFC 5626 §3.5.1: the client's keep-alive ping on a stream. */
const PING = Buffer.from('\r\n\r\n');

/** Strips the IPv4-mapped prefix so a dual-stack socket reports IPv4 peers as IPv4. */
function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function sameAddress(a: string, b: string): boolean {
  if (a === b) return true;
  if (!net.isIPv6(a) || !net.isIPv6(b)) return false;
  return new net.SocketAddress({ address: a, family: 'ipv6' }).address === new net.SocketAddress({ address: b, family: 'ipv6' }).address;
}

function connectionKey(transport: StreamTransport, host: string, port: number): string {
  return `${transport}|${host.toLowerCase()}|${port}`;
}

/**
 * RFC 3261 §18.2.1 and RFC 3581 §4: record the packet source in the top Via
 * when it differs from sent-by, and always when the client asked for rport.
 * A `received` the sender wrote itself is replaced: it would aim our responses elsewhere.
 */
function stampReceived(request: SipRequest, address: string, port: number): void {
  const value = request.headers.get('via');
  const via = value === undefined ? null : parseVia(value);
  if (via === null) return;
  const wantsRport = via.params.has('rport');
  if (!wantsRport && !via.params.has('received') && hostKind(via.host) !== 'hostname' && sameAddress(via.host, address)) return;
  via.params.set('received', address);
  if (wantsRport) via.params.set('rport', String(port));
  request.headers.replaceFirst('via', formatVia(via));
}

/** RFC 3261 §18.2.2 / RFC 3581 §4: where a response goes when not over the request's connection. */
function responseDestination(via: Via): Destination {
  const host = via.params.get('received') || via.host;
  if (via.transport === 'UDP') {
    const rport = Number(via.params.get('rport') || NaN);
    const port = Number.isInteger(rport) && rport > 0 && rport <= 65535 ? rport : (via.port ?? DEFAULT_SIP_PORT);
    return { transport: 'udp', host, port };
  }
  if (via.transport === 'TCP') return { transport: 'tcp', host, port: via.port ?? DEFAULT_SIP_PORT };
  if (via.transport === 'TLS') return { transport: 'tls', host, port: via.port ?? DEFAULT_SIPS_PORT };
  throw new Error(`unsupported Via transport: ${via.transport}`);
}

/** Where a response to `message` goes by its top Via (§18.2.2), as a comparable key; '' without a usable Via. */
export function responseHop(message: SipMessage): string {
  const via = topVia(message);
  if (via === null || (via.transport !== 'UDP' && via.transport !== 'TCP' && via.transport !== 'TLS')) return '';
  const { transport, host, port } = responseDestination(via);
  return `${transport}|${stripBrackets(host).toLowerCase()}|${port}`;
}

function newTag(): string {
  return randomBytes(8).toString('hex');
}

function decrement(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left > 0) counts.set(key, left);
  else counts.delete(key);
}

/** UDP + TCP SIP transport bound to one address and port, and TLS on a port of its own. */
export class SipTransportLayer {
  readonly #options: Required<Omit<SipTransportOptions, 'tls'>>;
  readonly #tls: SipTransportOptions['tls'] | null;
  #udp: dgram.Socket | null = null;
  #server: net.Server | null = null;
  #tlsServer: net.Server | null = null;
  /** Connections by `transport|host|port`: the peer address for accepted ones, the dialled host for outbound. */
  readonly #connections = new Map<string, StreamConnection>();
  readonly #allConnections = new Set<StreamConnection>();
  /** Inbound connections per source address, outbound ones per host: for the caps. */
  readonly #inboundBySource = new Map<string, number>();
  readonly #outboundByHost = new Map<string, number>();
  #outboundCount = 0;
  readonly #lookup: ReturnType<typeof guardedLookup> | undefined;
  #nextConnectionId = 1;
  #started = false;
  #closed = false;
  readonly #stats: TransportStats = {
    droppedDatagrams: 0,
    droppedStreamMessages: 0,
    rejectedRequests: 0,
    framingErrors: 0,
    refusedConnections: 0,
    timedOutConnections: 0,
    overflowedConnections: 0,
    refusedDestinations: 0,
    failedTlsHandshakes: 0,
    refusedHandshakes: 0,
  };

  constructor(options: SipTransportOptions) {
    if (net.isIP(options.host) === 0) throw new TypeError(`listen host must be an IP address: ${options.host}`);
    this.#options = {
      host: options.host,
      port: options.port,
      onMessage: options.onMessage,
      onError: options.onError ?? ((error) => process.emitWarning(error)),
      tcpIdleTimeoutMs: options.tcpIdleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
      tcpConnectTimeoutMs: options.tcpConnectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      maxTcpConnections: options.maxTcpConnections ?? DEFAULT_MAX_TCP_CONNECTIONS,
      maxTcpConnectionsPerSource: options.maxTcpConnectionsPerSource ?? DEFAULT_MAX_TCP_CONNECTIONS_PER_SOURCE,
      maxOutboundTcpConnections: options.maxOutboundTcpConnections ?? DEFAULT_MAX_OUTBOUND_TCP_CONNECTIONS,
      maxOutboundTcpConnectionsPerHost: options.maxOutboundTcpConnectionsPerHost ?? DEFAULT_MAX_OUTBOUND_TCP_CONNECTIONS_PER_HOST,
      tcpMessageTimeoutMs: options.tcpMessageTimeoutMs ?? DEFAULT_TCP_MESSAGE_TIMEOUT_MS,
      maxTcpWriteBufferBytes: options.maxTcpWriteBufferBytes ?? DEFAULT_MAX_TCP_WRITE_BUFFER_BYTES,
      mayAnswer: options.mayAnswer ?? (() => true),
      mayHandshake: options.mayHandshake ?? (() => true),
      destinationRefusal: options.destinationRefusal ?? (() => null),
    };
    this.#lookup = options.destinationRefusal === undefined ? undefined : guardedLookup(options.destinationRefusal);
    this.#tls = options.tls ?? null;
    if (this.#tls?.listenPort != null && !this.#tls.sockets.canServe) throw new TypeError('a TLS listener needs a certificate');
  }

  get stats(): TransportStats {
    return { ...this.#stats };
  }

  /** Open TCP and TLS connections, inbound and outbound. */
  get connectionCount(): number {
    return this.#allConnections.size;
  }

  /** Binds UDP and TCP on the configured host and port, and TLS on its own, and resolves with the ports in use. */
  async listen(): Promise<ListeningPorts> {
    if (this.#closed) throw new Error('transport layer is closed');
    if (this.#started) throw new Error('transport layer already started');
    this.#started = true;
    const { host, port } = this.#options;
    for (let attempt = 1; ; attempt++) {
      const udp = await this.#bindUdp(host, port);
      const udpPort = udp.address().port;
      let server: net.Server;
      try {
        server = await this.#listenStream(host, udpPort, 'tcp');
      } catch (error) {
        await new Promise<void>((resolve) => udp.close(() => resolve()));
        const inUse = (error as NodeJS.ErrnoException).code === 'EADDRINUSE';
        if (port !== 0 || !inUse || attempt >= EPHEMERAL_PORT_ATTEMPTS) throw error;
        continue;
      }
      if (this.#closed) {
        // close() ran while binding; it could not see these sockets.
        await Promise.all([
          new Promise<void>((resolve) => udp.close(() => resolve())),
          new Promise<void>((resolve) => server.close(() => resolve())),
        ]);
        throw new Error('transport layer was closed while starting');
      }
      this.#udp = udp;
      this.#server = server;
      const tlsPort = await this.#listenTls(host);
      return { udpPort, tcpPort: udpPort, tlsPort };
    }
  }

  async #listenTls(host: string): Promise<number | null> {
    const listenPort = this.#tls?.listenPort;
    if (listenPort == null) return null;
    const server = await this.#listenStream(host, listenPort, 'tls');
    if (this.#closed) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw new Error('transport layer was closed while starting');
    }
    this.#tlsServer = server;
    return (server.address() as net.AddressInfo).port;
  }

  /**
   * Sends a message to a destination, reusing an open TCP or TLS connection to
   * that host and port or opening one. Resolves once handed to the kernel.
   */
  async send(message: SipMessage, destination: Destination): Promise<void> {
    if (this.#closed) throw new Error('transport layer is closed');
    const host = stripBrackets(destination.host);
    if (message.kind === 'request') {
      const refusal = this.#options.destinationRefusal(host);
      if (refusal !== null) {
        this.#stats.refusedDestinations++;
        throw new RefusedDestinationError(`refusing to send a request to ${host}: ${refusal}`);
      }
    }
    const wire = serializeMessage(message);
    if (destination.transport === 'udp') return this.#sendDatagram(wire, host, destination.port);
    const { transport, port } = destination;
    const existing = this.#connections.get(connectionKey(transport, host, port));
    const connection = existing !== undefined && existing.open ? existing : this.#connect(transport, host, port, destination.serverName);
    await connection.ready;
    return connection.write(wire);
  }

  /**
   * Sends a keep-alive (a double CRLF, RFC 5626 §3.5.1) over the open TCP or TLS connection to
   * `destination`, so that it stays open for requests the far end sends back over it (RFC 5923).
   * False when no such connection is open; never opens one. UDP has nothing to keep: true.
   */
  async keepAlive(destination: Destination): Promise<boolean> {
    if (this.#closed) return false;
    if (destination.transport === 'udp') return true;
    const connection = this.#connections.get(connectionKey(destination.transport, stripBrackets(destination.host), destination.port));
    if (connection === undefined || !connection.open || !connection.connected) return false;
    try {
      await connection.write(PING);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Sends a message back to where `source` came from and nowhere else: the packet's address and
   * port (UDP) or its connection while open (TCP, TLS; dropped once closed). For answers to senders
   * not yet trusted, whose Via may name somebody else.
   */
  async sendToSource(message: SipMessage, source: MessageSource): Promise<void> {
    if (this.#closed) throw new Error('transport layer is closed');
    if (source.transport === 'udp') return this.#sendDatagram(serializeMessage(message), source.address, source.port);
    const connection = source.connection;
    if (connection instanceof StreamConnection && connection.open) return connection.write(serializeMessage(message));
  }

  /**
   * Sends a response per RFC 3261 §18.2.2: over the request's TCP or TLS connection
   * while it is open, otherwise to the top Via's `received` address (or
   * sent-by host) and its `rport` (UDP) or sent-by port. Without a usable Via,
   * a UDP response goes back to the request's source.
   */
  async sendResponse(response: SipResponse, requestSource?: MessageSource): Promise<void> {
    const connection = requestSource?.connection;
    if (connection instanceof StreamConnection && connection.open) {
      if (this.#closed) throw new Error('transport layer is closed');
      return connection.write(serializeMessage(response));
    }
    const via = topVia(response);
    if (via !== null) return this.send(response, responseDestination(via));
    if (requestSource?.transport === 'udp') {
      return this.send(response, { transport: 'udp', host: requestSource.address, port: requestSource.port });
    }
    throw new Error('response has no usable Via header');
  }

  /** Closes the sockets and every TCP and TLS connection; resolves when all are closed. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // A tracked connection has not emitted 'close' yet (its handler untracks it), so waiting for it is safe.
    const connectionsClosed = [...this.#allConnections].map((connection) => {
      const closed = new Promise<void>((resolve) => connection.socket.once('close', () => resolve()));
      connection.socket.destroy();
      return closed;
    });
    const udp = this.#udp;
    const servers = [this.#server, this.#tlsServer];
    this.#udp = null;
    this.#server = null;
    this.#tlsServer = null;
    await Promise.all([
      ...connectionsClosed,
      udp === null ? undefined : new Promise<void>((resolve) => udp.close(() => resolve())),
      ...servers.map((server) => (server === null ? undefined : new Promise<void>((resolve) => server.close(() => resolve())))),
    ]);
  }

  #bindUdp(host: string, port: number): Promise<dgram.Socket> {
    return new Promise((resolve, reject) => {
      // A large receive buffer rides out a pause of the event loop (a GC, a burst of work)
      // without the kernel dropping datagrams, which would come back as retransmissions.
      // The kernel caps it at net.core.rmem_max / wmem_max.
      const socket = dgram.createSocket({
        type: net.isIPv6(host) ? 'udp6' : 'udp4',
        recvBufferSize: UDP_SOCKET_BUFFER_BYTES,
        sendBufferSize: UDP_SOCKET_BUFFER_BYTES,
        ...(this.#lookup === undefined ? {} : { lookup: this.#lookup as unknown as dgram.SocketOptions['lookup'] }),
      });
      socket.once('error', reject);
      socket.bind(port, host, () => {
        socket.off('error', reject);
        socket.on('error', (error) => this.#reportError(error));
        socket.on('message', (data, remote) => this.#onDatagram(data, remote));
        resolve(socket);
      });
    });
  }

  #listenStream(host: string, port: number, transport: StreamTransport): Promise<net.Server> {
    return new Promise((resolve, reject) => {
      const server = net.createServer((socket) => this.#accept(socket, transport));
      server.maxConnections = this.#options.maxTcpConnections;
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        server.on('error', (error) => this.#reportError(error));
        resolve(server);
      });
    });
  }

  #sendDatagram(wire: Buffer, host: string, port: number): Promise<void> {
    const udp = this.#udp;
    if (udp === null) return Promise.reject(new Error('transport layer is not listening'));
    const ipv6Socket = net.isIPv6(this.#options.host);
    let target = host;
    if (ipv6Socket && net.isIPv4(host)) target = `::ffff:${host}`;
    else if (!ipv6Socket && net.isIPv6(host)) {
      return Promise.reject(new Error(`cannot send to IPv6 address ${host} from an IPv4 socket`));
    }
    return new Promise((resolve, reject) => {
      udp.send(wire, port, target, (error) => (error ? reject(error) : resolve()));
    });
  }

  #onDatagram(data: Buffer, remote: dgram.RemoteInfo): void {
    if (this.#closed) return;
    // CRLF keep-alives are not messages and not garbage either.
    let i = 0;
    while (i < data.length && (data[i] === 0x0d || data[i] === 0x0a)) i++;
    if (i === data.length) return;
    this.#receive(data, { transport: 'udp', address: normalizeAddress(remote.address), port: remote.port, connection: null });
  }

  #accept(socket: net.Socket, transport: StreamTransport): void {
    const address = socket.remoteAddress;
    const port = socket.remotePort;
    if (this.#closed || address === undefined || port === undefined) {
      socket.destroy();
      return;
    }
    const remoteAddress = normalizeAddress(address);
    const fromSource = this.#inboundBySource.get(remoteAddress) ?? 0;
    if (fromSource >= this.#options.maxTcpConnectionsPerSource) {
      this.#stats.refusedConnections++;
      socket.destroy();
      return;
    }
    if (transport === 'tls' && !this.#options.mayHandshake(remoteAddress)) {
      this.#stats.refusedHandshakes++;
      socket.destroy();
      return;
    }
    this.#inboundBySource.set(remoteAddress, fromSource + 1);
    const remote = { address: remoteAddress, port };
    const key = connectionKey(transport, remoteAddress, port);
    let connection: StreamConnection;
    if (transport === 'tcp') {
      connection = new StreamConnection(this.#nextConnectionId++, 'tcp', socket, key, remote, true);
    } else {
      // The TLS socket reports the connection's errors; the plain one beneath it must not throw.
      socket.on('error', () => undefined);
      const secure = this.#tls!.sockets.server(socket);
      connection = new StreamConnection(this.#nextConnectionId++, 'tls', secure, key, remote, false);
      // The handshake runs under the first message's deadline: a peer that never finishes it is
      // closed like one that never sends, and its failure is counted, not reported.
      secure.once('secure', () => {
        connection.connected = true;
      });
      secure.once('close', () => {
        if (!connection.connected) this.#stats.failedTlsHandshakes++;
      });
    }
    connection.socket.once('close', () => decrement(this.#inboundBySource, remoteAddress));
    this.#track(connection);
    this.#armDeadline(connection);
  }

  #connect(transport: StreamTransport, host: string, port: number, serverName: string | undefined): StreamConnection {
    const name = transport.toUpperCase();
    const hostKey = host.toLowerCase();
    const toHost = this.#outboundByHost.get(hostKey) ?? 0;
    if (this.#outboundCount >= this.#options.maxOutboundTcpConnections || toHost >= this.#options.maxOutboundTcpConnectionsPerHost) {
      this.#stats.refusedDestinations++;
      throw new RefusedDestinationError(`too many outbound TCP/TLS connections (to ${host}: ${toHost}, in all: ${this.#outboundCount})`);
    }
    const lookup = this.#lookup as unknown as net.LookupFunction | undefined;
    let socket: net.Socket;
    if (transport === 'tcp') socket = net.connect({ host, port, ...(lookup === undefined ? {} : { lookup }) });
    else if (this.#tls == null) throw new RefusedDestinationError(`cannot send to ${host}:${port} over TLS: TLS is not configured`);
    else socket = this.#tls.sockets.client({ host, port, servername: serverName ?? (net.isIP(host) === 0 ? host : undefined), lookup });
    this.#outboundCount++;
    this.#outboundByHost.set(hostKey, toHost + 1);
    socket.once('close', () => {
      this.#outboundCount--;
      decrement(this.#outboundByHost, hostKey);
    });
    const connection = new StreamConnection(
      this.#nextConnectionId++,
      transport,
      socket,
      connectionKey(transport, host, port),
      { address: host, port },
      false,
    );
    connection.ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.destroy(new Error(`${name} connect to ${host}:${port} timed out`));
      }, this.#options.tcpConnectTimeoutMs);
      const onFailure = (error?: Error): void => {
        clearTimeout(timer);
        reject(error ?? new Error(`${name} connection to ${host}:${port} closed`));
      };
      socket.once('error', onFailure);
      socket.once('close', () => onFailure());
      // For TLS, usable once the handshake has verified the server's certificate.
      socket.once(transport === 'tcp' ? 'connect' : 'secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', onFailure);
        connection.connected = true;
        if (socket.remoteAddress !== undefined) connection.remoteAddress = normalizeAddress(socket.remoteAddress);
        resolve();
      });
    });
    // Every sender awaits `ready`; this only keeps a failure nobody awaits anymore from being unhandled.
    connection.ready.catch(() => undefined);
    this.#track(connection);
    return connection;
  }

  #track(connection: StreamConnection): void {
    const { socket } = connection;
    this.#connections.set(connection.key, connection);
    this.#allConnections.add(connection);
    connection.maxWriteBuffer = this.#options.maxTcpWriteBufferBytes;
    socket.setNoDelay(true);
    socket.setTimeout(this.#options.tcpIdleTimeoutMs);
    socket.on('timeout', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => this.#onStreamData(connection, chunk));
    socket.on('error', (error) => {
      if (connection.connected) this.#reportError(error);
    });
    socket.on('close', () => {
      this.#clearDeadline(connection);
      if (connection.overflowed) this.#stats.overflowedConnections++;
      this.#allConnections.delete(connection);
      if (this.#connections.get(connection.key) === connection) this.#connections.delete(connection.key);
    });
  }

  #onStreamData(connection: StreamConnection, chunk: Buffer): void {
    let ponged = false;
    for (const event of connection.framer.push(chunk)) {
      if (this.#closed || !connection.open) return;
      if (event.type === 'message') {
        this.#clearDeadline(connection);
        this.#receive(event.data, { transport: connection.transport, address: connection.remoteAddress, port: connection.remotePort, connection });
      } else if (event.type === 'ping') {
        // One pong per read, however many pings it held, and under the write cap: a flood of
        // pings costs the edge little and cannot queue unbounded answers.
        if (!ponged) connection.write(PONG).catch(() => undefined);
        ponged = true;
      } else {
        this.#stats.framingErrors++;
        this.#reportError(
          new Error(
            `closing ${connection.transport.toUpperCase()} connection from ${connection.remoteAddress}:${connection.remotePort}: ${event.error}`,
          ),
        );
        connection.socket.destroy();
      }
    }
    // Part of a message is waiting: the rest must follow in time.
    if (connection.framer.bufferedLength > 0) this.#armDeadline(connection);
  }

  #armDeadline(connection: StreamConnection): void {
    if (connection.deadline !== null) return;
    connection.deadline = setTimeout(() => {
      connection.deadline = null;
      this.#stats.timedOutConnections++;
      connection.socket.destroy();
    }, this.#options.tcpMessageTimeoutMs);
    connection.deadline.unref();
  }

  #clearDeadline(connection: StreamConnection): void {
    if (connection.deadline === null) return;
    clearTimeout(connection.deadline);
    connection.deadline = null;
  }

  #receive(data: Buffer, source: MessageSource): void {
    const result = parseMessage(data);
    if (result.ok) {
      const message = result.value;
      if (message.kind === 'request') stampReceived(message, source.address, source.port);
      try {
        this.#options.onMessage(message, source);
      } catch (error) {
        this.#reportError(error instanceof Error ? error : new Error(String(error)));
      }
      return;
    }
    const { reply } = result.error;
    if (reply === undefined) {
      if (source.transport === 'udp') this.#stats.droppedDatagrams++;
      else this.#stats.droppedStreamMessages++;
      return;
    }
    if (!this.#options.mayAnswer(source)) {
      if (source.transport === 'udp') this.#stats.droppedDatagrams++;
      else this.#stats.droppedStreamMessages++;
      return;
    }
    this.#stats.rejectedRequests++;
    const { request, status } = reply;
    stampReceived(request, source.address, source.port);
    const response = buildResponse(request, status, { toTag: newTag(), compactVias: true });
    // To the sender itself: a malformed request's Via is no address to trust.
    this.sendToSource(response, source).catch((error: Error) => this.#reportError(error));
  }

  #reportError(error: Error): void {
    try {
      this.#options.onError(error);
    } catch {
      // An error handler that throws must not take the socket loop down with it.
    }
  }
}
