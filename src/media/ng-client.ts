/**
 * A client of rtpengine's "ng" control protocol: `<cookie> <bencoded dictionary>` in one UDP
 * datagram each way. The cookie pairs a reply with its request; a request not answered in time is
 * sent again with the same cookie (rtpengine answers a repeated cookie from its cache instead of
 * acting twice), until the deadline. Replies are taken only from the address asked.
 */
import crypto from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import { decode, encode, isDict, type BencodeDict } from './bencode.ts';

export interface NgAddress {
  /** An IP address, not a name: replies are matched against it. */
  host: string;
  port: number;
}

export type NgFailure = 'timeout' | 'error' | 'malformed' | 'overloaded' | 'closed';

/**
 * Why an ng request failed: no answer in time, rtpengine's `result: error` (with its reason), a reply that is not ng,
 * too many requests waiting, or the client closed.
 */
export class NgError extends Error {
  constructor(
    readonly kind: NgFailure,
    message: string,
  ) {
    super(message);
    this.name = 'NgError';
  }
}

export interface NgClientOptions {
  /** How long a request may take, retransmissions included. */
  timeoutMs: number;
  /** The first wait before sending again; each later wait doubles. */
  retransmitMs: number;
  /** Requests waiting for replies at most; more fail at once as `overloaded`. */
  maxPending: number;
}

const DEFAULTS: NgClientOptions = { timeoutMs: 1000, retransmitMs: 200, maxPending: 10_000 };

interface Pending {
  target: NgAddress;
  resolve: (reply: BencodeDict) => void;
  reject: (error: NgError) => void;
  timers: NodeJS.Timeout[];
}

export class NgClient {
  readonly #sockets = new Map<'udp4' | 'udp6', dgram.Socket>();
  readonly #pending = new Map<string, Pending>();
  readonly #options: NgClientOptions;
  // A random prefix per client: cookies stay unique across restarts, so rtpengine's reply cache
  // never answers a new request with an old reply.
  readonly #cookiePrefix = crypto.randomBytes(6).toString('hex');
  #sequence = 0;
  #closed = false;

  constructor(options: Partial<NgClientOptions> = {}) {
    this.#options = { ...DEFAULTS, ...options };
    // A zero wait would schedule retransmissions without end.
    if (!(this.#options.retransmitMs > 0)) throw new RangeError(`retransmitMs must be positive: ${this.#options.retransmitMs}`);
  }

  /**
   * Sends `command` to the rtpengine at `target` and resolves with its reply (`result` is `ok` or another non-error value).
   * Async, so that a command encode() refuses is a rejection like any other failure, not a throw.
   */
  async request(to: NgAddress, command: BencodeDict, options: { timeoutMs?: number } = {}): Promise<BencodeDict> {
    if (this.#closed) throw new NgError('closed', 'the ng client is closed');
    const family = net.isIP(to.host);
    if (family === 0) throw new TypeError(`an ng target is an IP address, not "${to.host}"`);
    if (this.#pending.size >= this.#options.maxPending) {
      throw new NgError('overloaded', `${this.#pending.size} ng requests are already waiting`);
    }
    // Spelled as the kernel spells a reply's source (`::1`, not `0:0::1`), for sameAddress().
    const target = { host: new net.SocketAddress({ address: to.host, family: family === 6 ? 'ipv6' : 'ipv4' }).address, port: to.port };
    const cookie = `${this.#cookiePrefix}_${(this.#sequence++).toString(36)}`;
    const datagram = Buffer.concat([Buffer.from(`${cookie} `), encode(command)]);
    const socket = this.#socketFor(family === 6 ? 'udp6' : 'udp4');
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs;
    const what = typeof command.command === 'string' ? command.command : 'a command';
    return new Promise<BencodeDict>((resolve, reject) => {
      const pending: Pending = { target, resolve, reject, timers: [] };
      this.#pending.set(cookie, pending);
      const send = () => socket.send(datagram, target.port, target.host, () => {});
      send();
      for (let wait = this.#options.retransmitMs, at = wait; at < timeoutMs; wait *= 2, at += wait) pending.timers.push(setTimeout(send, at));
      pending.timers.push(
        setTimeout(
          () =>
            this.#settle(cookie)?.reject(new NgError('timeout', `rtpengine ${formatAddress(target)} did not answer ${what} within ${timeoutMs} ms`)),
          timeoutMs,
        ),
      );
    });
  }

  /** Fails every waiting request and closes the sockets. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const cookie of [...this.#pending.keys()]) this.#settle(cookie)?.reject(new NgError('closed', 'the ng client was closed'));
    await Promise.all([...this.#sockets.values()].map((socket) => new Promise<void>((resolve) => socket.close(() => resolve()))));
    this.#sockets.clear();
  }

  #socketFor(family: 'udp4' | 'udp6'): dgram.Socket {
    let socket = this.#sockets.get(family);
    if (!socket) {
      socket = dgram.createSocket(family);
      socket.on('message', (data, from) => this.#receive(data, from));
      // A send error (an unreachable address) shows as the request's timeout.
      socket.on('error', () => {});
      this.#sockets.set(family, socket);
    }
    return socket;
  }

  #receive(data: Buffer, from: dgram.RemoteInfo): void {
    const space = data.indexOf(0x20);
    if (space <= 0) return;
    const cookie = data.toString('latin1', 0, space);
    const pending = this.#pending.get(cookie);
    if (!pending || !sameAddress(pending.target, from)) return;
    this.#settle(cookie);
    const decoded = decode(data.subarray(space + 1));
    const reply = decoded.ok && isDict(decoded.value) ? decoded.value : undefined;
    if (typeof reply?.result !== 'string') {
      const why = !decoded.ok ? decoded.error : reply ? 'no result' : 'not a dictionary';
      pending.reject(new NgError('malformed', `rtpengine ${formatAddress(pending.target)} sent a reply that is not ng: ${why}`));
      return;
    }
    if (reply.result === 'error') {
      const reason = typeof reply['error-reason'] === 'string' ? reply['error-reason'] : 'no reason given';
      pending.reject(new NgError('error', `rtpengine ${formatAddress(pending.target)}: ${reason}`));
      return;
    }
    pending.resolve(reply);
  }

  /** Removes a waiting request and stops its timers; undefined when it was settled already. */
  #settle(cookie: string): Pending | undefined {
    const pending = this.#pending.get(cookie);
    if (!pending) return undefined;
    this.#pending.delete(cookie);
    for (const timer of pending.timers) clearTimeout(timer);
    return pending;
  }
}

function sameAddress(target: NgAddress, from: dgram.RemoteInfo): boolean {
  return from.port === target.port && from.address === target.host;
}

export const formatAddress = (address: NgAddress) =>
  net.isIPv6(address.host) ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
