import crypto from 'node:crypto';
import tls from 'node:tls';
import { SipStreamFramer } from '../src/sip/framing.ts';
import { parseMessage } from '../src/sip/parser.ts';
import type { SipResponse } from '../src/sip/message.ts';
import { parseNameAddr } from '../src/sip/parse-address.ts';
import { sleep } from './processes.ts';
import type { SippStats } from './sipp-run.ts';

/**
 * The carrier side of bench:sip's TLS rows, since sipp speaks no TLS: full calls (INVITE, then
 * ACK and BYE along the 200's route set, until the BYE's 200) placed at a fixed rate over a pool
 * of TLS connections to the proxy, each call to the next number of the table. Reports like
 * sipp, so both callers are judged alike; TLS never retransmits, so a late answer shows as a call
 * that did not finish in time.
 */
export interface TlsCallerOptions {
  port: number;
  /** PEM of the CA the proxy's certificate chains to. */
  ca: Buffer;
  connections: number;
  calls: number;
  rate: number;
  /** Dialled as carriers send them; call n dials number n (wrapping around). */
  numbers: string[];
  /** A call not over within this long counts as failed. */
  callTimeoutMs: number;
}

const SDP = 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';

interface Call {
  id: string;
  digits: string;
  connection: Connection;
  timer: NodeJS.Timeout;
  done: (ok: boolean) => void;
}

interface Connection {
  socket: tls.TLSSocket;
  local: string;
}

function request(lines: string[], body = ''): string {
  return [...lines, `Content-Length: ${Buffer.byteLength(body)}`, '', body].join('\r\n');
}

function connect(port: number, ca: Buffer): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca }, () => {
      socket.setNoDelay(true);
      resolve({ socket, local: `127.0.0.1:${socket.localPort}` });
    });
    socket.once('error', reject);
  });
}

export async function runTlsCaller(options: TlsCallerOptions): Promise<SippStats> {
  const connections = await Promise.all(Array.from({ length: options.connections }, () => connect(options.port, options.ca)));
  const calls = new Map<string, Call>();
  let successful = 0;
  let failed = 0;

  const invite = (call: Call) => {
    const { local } = call.connection;
    const uri = `sip:${call.digits}@127.0.0.1:${options.port};transport=tls`;
    call.connection.socket.write(
      request(
        [
          `INVITE ${uri} SIP/2.0`,
          `Via: SIP/2.0/TLS ${local};branch=z9hG4bK${call.id}i;rport`,
          'Max-Forwards: 70',
          `From: <sip:caller@127.0.0.1>;tag=${call.id}`,
          `To: <sip:${call.digits}@127.0.0.1>`,
          `Call-ID: ${call.id}`,
          'CSeq: 1 INVITE',
          `Contact: <sip:caller@${local};transport=tls>`,
          'Content-Type: application/sdp',
        ],
        SDP,
      ),
    );
  };

  /** ACK and BYE of the dialog the 200 set up: to its Contact, along its Record-Route reversed (RFC 3261 §12.1.2). */
  const endDialog = (call: Call, ok: SipResponse) => {
    const contact = parseNameAddr(ok.headers.get('contact') ?? '')?.uri;
    if (!contact) return call.done(false);
    const routes = ok.headers
      .getAll('record-route')
      .flatMap((value) => value.split(/,(?=\s*<)/))
      .reverse();
    const common = (method: string, cseq: number, branch: string) => [
      `${method} ${contact} SIP/2.0`,
      `Via: SIP/2.0/TLS ${call.connection.local};branch=z9hG4bK${call.id}${branch};rport`,
      'Max-Forwards: 70',
      ...routes.map((route) => `Route: ${route.trim()}`),
      `From: <sip:caller@127.0.0.1>;tag=${call.id}`,
      `To: ${ok.headers.get('to')}`,
      `Call-ID: ${call.id}`,
      `CSeq: ${cseq} ${method}`,
    ];
    call.connection.socket.write(request(common('ACK', 1, 'a')) + request(common('BYE', 2, 'b')));
  };

  const onResponse = (response: SipResponse) => {
    const call = calls.get(response.headers.get('call-id') ?? '');
    if (!call || response.status < 200) return;
    const method = response.headers.get('cseq')?.split(' ')[1];
    if (response.status >= 300) return call.done(false);
    if (method === 'INVITE') endDialog(call, response);
    else if (method === 'BYE') call.done(true);
  };

  for (const connection of connections) {
    const framer = new SipStreamFramer();
    connection.socket.on('data', (chunk: Buffer) => {
      for (const event of framer.push(chunk)) {
        if (event.type !== 'message') continue;
        const parsed = parseMessage(event.data);
        if (parsed.ok && parsed.value.kind === 'response') onResponse(parsed.value);
      }
    });
    connection.socket.on('error', () => undefined);
  }

  const finished: Promise<void>[] = [];
  const place = (n: number) => {
    const id = crypto.randomBytes(8).toString('hex');
    finished.push(
      new Promise<void>((resolve) => {
        const call: Call = {
          id,
          digits: options.numbers[n % options.numbers.length],
          connection: connections[n % connections.length],
          timer: setTimeout(() => call.done(false), options.callTimeoutMs),
          done: (ok) => {
            if (!calls.delete(id)) return;
            clearTimeout(call.timer);
            if (ok) successful++;
            else failed++;
            resolve();
          },
        };
        calls.set(id, call);
        invite(call);
      }),
    );
  };

  // Calls go out on a 5 ms tick, as many as the rate says are due by then.
  const start = performance.now();
  let placed = 0;
  while (placed < options.calls) {
    const due = Math.min(options.calls, Math.floor(((performance.now() - start) / 1000) * options.rate) + 1);
    for (; placed < due; placed++) place(placed);
    await sleep(5);
  }
  const placingSeconds = (performance.now() - start) / 1000;
  await Promise.all(finished);
  for (const connection of connections) connection.socket.destroy();
  return {
    code: failed === 0 ? 0 : 1,
    successful,
    failed,
    retransmissions: 0,
    rate: options.calls / Math.max(placingSeconds, options.calls / options.rate),
  };
}

/**
 * Opens `count` TLS connections that each send one OPTIONS, read its answer and then stay idle
 * (an edge closes a connection whose first message does not come), a few at a time; resolves
 * with a function that closes them all.
 */
export async function openIdleConnections(port: number, ca: Buffer, count: number): Promise<() => void> {
  const open: tls.TLSSocket[] = [];
  const one = async () => {
    const { socket, local } = await connect(port, ca);
    open.push(socket);
    const answered = new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.write(
      request([
        `OPTIONS sip:127.0.0.1:${port};transport=tls SIP/2.0`,
        `Via: SIP/2.0/TLS ${local};branch=z9hG4bK${crypto.randomBytes(6).toString('hex')};rport`,
        'Max-Forwards: 70',
        `From: <sip:idle@127.0.0.1>;tag=${crypto.randomBytes(4).toString('hex')}`,
        `To: <sip:127.0.0.1:${port}>`,
        `Call-ID: ${crypto.randomBytes(8).toString('hex')}`,
        'CSeq: 1 OPTIONS',
      ]),
    );
    await Promise.race([answered, sleep(5000)]);
  };
  for (let started = 0; started < count; started += 50) {
    await Promise.all(Array.from({ length: Math.min(50, count - started) }, one));
  }
  return () => {
    for (const socket of open) socket.destroy();
  };
}
