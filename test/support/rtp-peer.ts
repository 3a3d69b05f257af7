import crypto from 'node:crypto';
import dgram from 'node:dgram';

export interface MediaAddress {
  address: string;
  port: number;
}

/** RFC 3550 §4: NTP time, seconds since 1900 as 32.32 fixed point. */
function ntpNow(): { seconds: number; fraction: number } {
  const unixMs = Date.now();
  const seconds = Math.floor(unixMs / 1000) + 2_208_988_800;
  return { seconds: seconds >>> 0, fraction: Math.floor(((unixMs % 1000) / 1000) * 2 ** 32) >>> 0 };
}

/** What arrived from one source (one SSRC): RFC 3550 appendix A.3's counters, without wrap-around (tests send few packets). */
interface Source {
  received: number;
  firstSequence: number;
  highestSequence: number;
}

/** The last sender report heard: its middle 32 bits of NTP time (LSR) and when it arrived. */
interface HeardReport {
  ssrc: number;
  middle: number;
  arrivedAt: bigint;
}

async function bind(socket: dgram.Socket, host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const onError = () => resolve(false);
    socket.once('error', onError);
    socket.bind(port, host, () => {
      socket.off('error', onError);
      resolve(true);
    });
  });
}

/**
 * A party's media end for the tests: RTP on an even port and RTCP on the next one (RFC 3550
 * §11, what an SDP without `a=rtcp` means). It sends PCMU packets, counts what arrives per
 * source, and sends RTCP sender reports whose report block says what it received and lost.
 */
export class RtpPeer {
  readonly ssrc = crypto.randomInt(1, 2 ** 32 - 1);
  readonly #rtp: dgram.Socket;
  readonly #rtcp: dgram.Socket;
  readonly #sources = new Map<number, Source>();
  #heard: HeardReport | null = null;
  #sequence = 0;
  #sentPackets = 0;
  #sentBytes = 0;
  /** Every RTP packet that arrived, as it arrived. */
  readonly packets: Buffer[] = [];
  /** Sender reports that arrived. */
  reportsReceived = 0;
  /** Where datagrams on the RTP port that are not RTP go (DTLS records, RFC 5764 §5.1.2), when set. */
  #diverted: ((datagram: Buffer) => void) | null = null;
  /** Those that came before anyone took them (a DTLS hello sent as soon as the relay had the answer). */
  readonly #undiverted: Buffer[] = [];

  private constructor(rtp: dgram.Socket, rtcp: dgram.Socket) {
    this.#rtp = rtp;
    this.#rtcp = rtcp;
    rtp.on('message', (packet) => this.#onRtp(packet));
    rtcp.on('message', (packet) => this.#onRtcp(packet));
  }

  static async start(host: string): Promise<RtpPeer> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = 2 * crypto.randomInt(20_000, 30_000);
      const rtp = dgram.createSocket('udp4');
      const rtcp = dgram.createSocket('udp4');
      if ((await bind(rtp, host, port)) && (await bind(rtcp, host, port + 1))) return new RtpPeer(rtp, rtcp);
      rtp.close();
      rtcp.close();
    }
    throw new Error(`no free RTP/RTCP port pair on ${host}`);
  }

  get port(): number {
    return this.#rtp.address().port;
  }

  /** The RTP packets that arrived, in sequence-number order: rtpengine's threads may relay a stream's first packet after the next ones. */
  inSequence(): Buffer[] {
    return [...this.packets].sort((a, b) => a.readUInt16BE(2) - b.readUInt16BE(2));
  }

  /** RTP packets that arrived, from any source. */
  get received(): number {
    let total = 0;
    for (const source of this.#sources.values()) total += source.received;
    return total;
  }

  /**
   * `count` PCMU packets (20 ms of silence each) to `to`, 10 ms apart. The sequence numbers in
   * `dropped` are skipped, as if the network had lost them on the way.
   */
  async send(to: MediaAddress, count: number, dropped: ReadonlySet<number> = new Set()): Promise<void> {
    for (let i = 0; i < count; i++) {
      const sequence = this.#sequence++;
      if (dropped.has(sequence)) continue;
      const packet = Buffer.alloc(12 + 160, 0xff);
      packet[0] = 0x80;
      packet[1] = 0;
      packet.writeUInt16BE(sequence, 2);
      packet.writeUInt32BE(sequence * 160, 4);
      packet.writeUInt32BE(this.ssrc, 8);
      this.#sentPackets++;
      this.#sentBytes += 160;
      this.#rtp.send(packet, to.port, to.address);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** One packet as it is (an SRTP packet made elsewhere, say) to `to`. */
  sendPacket(packet: Buffer, to: MediaAddress): void {
    this.#rtp.send(packet, to.port, to.address);
  }

  /** Hands the datagrams on the RTP port that are not RTP to `handler`: those that came already, then the next ones. */
  divert(handler: (datagram: Buffer) => void): void {
    this.#diverted = handler;
    for (const datagram of this.#undiverted.splice(0)) handler(datagram);
  }

  /**
   * A compound RTCP packet to the RTCP port beside `to`'s RTP port: a sender report with one
   * report block about the source heard most from, then an SDES CNAME (RFC 3550 §6.4.1, §6.5).
   */
  report(to: MediaAddress): void {
    const now = ntpNow();
    const source = [...this.#sources.entries()].sort(([, a], [, b]) => b.received - a.received)[0];
    const blocks = source === undefined ? 0 : 1;
    const sr = Buffer.alloc(28 + 24 * blocks);
    sr[0] = 0x80 | blocks;
    sr[1] = 200;
    sr.writeUInt16BE(sr.length / 4 - 1, 2);
    sr.writeUInt32BE(this.ssrc, 4);
    sr.writeUInt32BE(now.seconds, 8);
    sr.writeUInt32BE(now.fraction, 12);
    sr.writeUInt32BE((this.#sequence * 160) >>> 0, 16);
    sr.writeUInt32BE(this.#sentPackets, 20);
    sr.writeUInt32BE(this.#sentBytes, 24);
    if (source !== undefined) {
      const [ssrc, counts] = source;
      const expected = counts.highestSequence - counts.firstSequence + 1;
      const lost = Math.max(0, expected - counts.received);
      const fraction = expected === 0 ? 0 : Math.floor((lost * 256) / expected);
      sr.writeUInt32BE(ssrc, 28);
      sr.writeUInt32BE(((fraction << 24) | lost) >>> 0, 32);
      sr.writeUInt32BE(counts.highestSequence, 36);
      sr.writeUInt32BE(0, 40);
      const heard = this.#heard?.ssrc === ssrc ? this.#heard : null;
      // DLSR in 1/65536 s, rounded down so the round trip the relay works out is never negative.
      const delay = heard === null ? 0 : Number(((process.hrtime.bigint() - heard.arrivedAt) * 65_536n) / 1_000_000_000n);
      sr.writeUInt32BE(heard?.middle ?? 0, 44);
      sr.writeUInt32BE(delay >>> 0, 48);
    }
    const cname = Buffer.from(`peer-${this.ssrc}@test`);
    // Chunk: SSRC, CNAME item, a null item, padded to 32 bits.
    const sdes = Buffer.alloc(8 + Math.ceil((2 + cname.length + 1) / 4) * 4);
    sdes[0] = 0x81;
    sdes[1] = 202;
    sdes.writeUInt16BE(sdes.length / 4 - 1, 2);
    sdes.writeUInt32BE(this.ssrc, 4);
    sdes[8] = 1;
    sdes[9] = cname.length;
    cname.copy(sdes, 10);
    this.#rtcp.send(Buffer.concat([sr, sdes]), to.port + 1, to.address);
  }

  #onRtp(packet: Buffer): void {
    if (packet.length < 12 || packet[0] >> 6 !== 2) {
      if (this.#diverted !== null) this.#diverted(packet);
      else if (this.#undiverted.length < 16) this.#undiverted.push(packet);
      return;
    }
    this.packets.push(packet);
    const ssrc = packet.readUInt32BE(8);
    const sequence = packet.readUInt16BE(2);
    const source = this.#sources.get(ssrc);
    if (source === undefined) {
      this.#sources.set(ssrc, { received: 1, firstSequence: sequence, highestSequence: sequence });
      return;
    }
    source.received++;
    // The lowest, not the first to arrive: the relay may pass a stream's first packet on late.
    source.firstSequence = Math.min(source.firstSequence, sequence);
    source.highestSequence = Math.max(source.highestSequence, sequence);
  }

  #onRtcp(packet: Buffer): void {
    if (packet.length < 28 || packet[0] >> 6 !== 2 || packet[1] !== 200) return;
    this.reportsReceived++;
    this.#heard = {
      ssrc: packet.readUInt32BE(4),
      middle: ((packet.readUInt32BE(8) & 0xffff) * 65_536 + (packet.readUInt32BE(12) >>> 16)) >>> 0,
      arrivedAt: process.hrtime.bigint(),
    };
  }

  close(): void {
    this.#rtp.close();
    this.#rtcp.close();
  }
}
