/**
 * One TCP or TLS connection carrying SIP: its socket, its framer, and the state the transport
 * layer keeps for its limits (the message deadline, the write-buffer cap).
 */
import type net from 'node:net';
import { SipStreamFramer } from './framing.ts';
import { MAX_MESSAGE_SIZE } from './parser.ts';

export type StreamTransport = 'tcp' | 'tls';

/** A TCP or TLS connection carrying SIP, as exposed to upper layers. */
export interface SipConnection {
  /** Unique within one transport layer. */
  readonly id: number;
  readonly transport: StreamTransport;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** Whether messages can still be written to it. */
  readonly open: boolean;
}

export class StreamConnection implements SipConnection {
  readonly id: number;
  readonly transport: StreamTransport;
  /** The socket SIP is read from and written to: for TLS, the TLS socket. */
  readonly socket: net.Socket;
  readonly key: string;
  readonly framer = new SipStreamFramer({ maxMessageSize: MAX_MESSAGE_SIZE });
  remoteAddress: string;
  remotePort: number;
  /** Settles when the connection is usable (immediately for accepted TCP ones). */
  ready: Promise<void> = Promise.resolve();
  /**
   * False until the connection is usable: while an outbound connect (and handshake) is pending,
   * its failure goes to the senders; while an inbound TLS handshake is, to a counter. Neither
   * goes to onError.
   */
  connected: boolean;
  /** Set while a message is due: from acceptance until the first one, and from a message's first octet until its last. */
  deadline: NodeJS.Timeout | null = null;
  /** Octets queued for the peer past which the connection closes. */
  maxWriteBuffer = Infinity;
  /** Closed because the peer did not read. */
  overflowed = false;

  constructor(
    id: number,
    transport: StreamTransport,
    socket: net.Socket,
    key: string,
    remote: { address: string; port: number },
    connected: boolean,
  ) {
    this.id = id;
    this.transport = transport;
    this.connected = connected;
    this.socket = socket;
    this.key = key;
    this.remoteAddress = remote.address;
    this.remotePort = remote.port;
  }

  get open(): boolean {
    return !this.socket.destroyed;
  }

  write(data: Buffer): Promise<void> {
    if (!this.open)
      return Promise.reject(new Error(`${this.transport.toUpperCase()} connection to ${this.remoteAddress}:${this.remotePort} is closed`));
    return new Promise((resolve, reject) => {
      this.socket.write(data, (error) => (error ? reject(error) : resolve()));
      if (this.socket.writableLength > this.maxWriteBuffer) {
        this.overflowed = true;
        this.socket.destroy();
      }
    });
  }
}
