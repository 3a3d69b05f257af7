/**
 * Message framing for stream transports (TCP, and later TLS/WebSocket-less
 * streams). RFC 3261 §18.3: on a stream the Content-Length header is
 * mandatory and is the only way to find where a message ends.
 *
 * Between messages, CR and LF octets are skipped (§7.5); each double CRLF is
 * an RFC 5626 keep-alive ping, which the transport answers with a single
 * CRLF pong. A missing, repeated or invalid Content-Length, or a message
 * larger than the limit, is unrecoverable: the stream can no longer be
 * delimited, so the framer reports an error and the connection must close.
 */
import { MAX_MESSAGE_SIZE } from './parser.ts';
import { failed, ok, type Result } from './result.ts';

export type FramerEvent =
  { readonly type: 'message'; readonly data: Buffer } | { readonly type: 'ping' } | { readonly type: 'error'; readonly error: string };

export interface StreamFramerOptions {
  /** Largest message (headers plus body) in octets; defaults to MAX_MESSAGE_SIZE. */
  maxMessageSize?: number;
}

const CR = 0x0d;
const LF = 0x0a;
const EMPTY = Buffer.alloc(0);
const MIN_BUFFER_CAPACITY = 4096;
const PING: FramerEvent = Object.freeze({ type: 'ping' });
/** Digits surrounded by LWS; CRs remain from CRLF line ends inside the decoded text. */
const CONTENT_LENGTH_VALUE = /^[ \t\r]*([0-9]{1,10})[ \t\r]*$/;

const enum State {
  /** Between messages: skipping CR/LF keep-alives. */
  Idle,
  /** Looking for the empty line that ends the header section. */
  Headers,
  /** Headers complete; waiting for the rest of the body. */
  Body,
}

function isLws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/**
 * Finds the Content-Length of a complete header section (start line
 * excluded), honouring the compact form `l` and folded values. Decoding as
 * Latin-1 keeps offsets equal to octet offsets and never fails.
 */
function readContentLength(data: Buffer, start: number, end: number): Result<number, string> {
  const text = data.toString('latin1', start, end);
  let length = -1;
  let pos = text.indexOf('\n') + 1;
  while (pos > 0 && pos < text.length) {
    let eol = text.indexOf('\n', pos);
    if (eol === -1) eol = text.length;
    const first = text.charCodeAt(pos) | 0x20;
    // Only lines starting with 'c' or 'l' can be Content-Length.
    if (first === 0x63 || first === 0x6c) {
      const colon = text.indexOf(':', pos);
      if (colon !== -1 && colon < eol) {
        let nameEnd = colon;
        while (nameEnd > pos && isLws(text.charCodeAt(nameEnd - 1))) nameEnd--;
        const name = text.slice(pos, nameEnd).toLowerCase();
        if (name === 'content-length' || name === 'l') {
          let value = text.slice(colon + 1, eol);
          while (eol + 1 < text.length && isLws(text.charCodeAt(eol + 1))) {
            const next = text.indexOf('\n', eol + 1);
            const continuationEnd = next === -1 ? text.length : next;
            value += ' ' + text.slice(eol + 1, continuationEnd);
            eol = continuationEnd;
          }
          if (length !== -1) return failed('multiple Content-Length headers');
          const digits = CONTENT_LENGTH_VALUE.exec(value);
          if (digits === null) return failed('invalid Content-Length');
          length = Number(digits[1]);
        }
      }
    }
    pos = eol + 1;
  }
  return length === -1 ? failed('missing Content-Length') : ok(length);
}

/**
 * Incremental framer for one stream. Feed it chunks as they arrive; it
 * returns the events each chunk completes. Message buffers are copies, so
 * they stay valid after later pushes. After an error event the framer is
 * spent and ignores further input.
 */
export class SipStreamFramer {
  readonly #maxMessageSize: number;
  /** Holds unconsumed octets in [#start, #end) between pushes. */
  #buffer: Buffer = EMPTY;
  #start = 0;
  #end = 0;
  #state = State.Idle;
  /** Consecutive LFs seen while idle; two make a ping. */
  #lineFeeds = 0;
  /** Where the header-terminator search resumes, relative to the message start. */
  #scanOffset = 0;
  /** Total octets of the current message once its headers are complete. */
  #messageLength = 0;
  #failed = false;

  constructor(options: StreamFramerOptions = {}) {
    this.#maxMessageSize = options.maxMessageSize ?? MAX_MESSAGE_SIZE;
  }

  /** Whether a fatal framing error occurred. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Octets received but not yet part of a complete message. */
  get bufferedLength(): number {
    return this.#end - this.#start;
  }

  push(chunk: Buffer): FramerEvent[] {
    const events: FramerEvent[] = [];
    if (this.#failed || chunk.length === 0) return events;

    if (this.#start === this.#end) {
      // Common case: nothing pending, so frame straight from the chunk and
      // copy only an incomplete tail.
      const consumed = this.#process(chunk, 0, chunk.length, events);
      if (consumed < chunk.length && !this.#failed) this.#keep(chunk, consumed);
      return events;
    }

    this.#append(chunk);
    const data = this.#buffer.subarray(0, this.#end);
    this.#start = this.#process(data, this.#start, this.#end, events);
    if (this.#start === this.#end || this.#failed) this.#release();
    return events;
  }

  #process(data: Buffer, start: number, end: number, events: FramerEvent[]): number {
    while (start < end) {
      if (this.#state === State.Idle) {
        const code = data[start];
        if (code === CR) {
          start++;
          continue;
        }
        if (code === LF) {
          start++;
          if (++this.#lineFeeds === 2) {
            this.#lineFeeds = 0;
            events.push(PING);
          }
          continue;
        }
        this.#lineFeeds = 0;
        this.#scanOffset = 0;
        this.#state = State.Headers;
      }

      if (this.#state === State.Headers) {
        const headerLength = this.#findHeaderEnd(data, start, end);
        if (headerLength === -1) {
          if (end - start > this.#maxMessageSize) this.#fail(events, 'header section too large');
          break;
        }
        const contentLength = readContentLength(data, start, start + headerLength);
        if (!contentLength.ok) {
          this.#fail(events, contentLength.error);
          break;
        }
        this.#messageLength = headerLength + contentLength.value;
        if (this.#messageLength > this.#maxMessageSize) {
          this.#fail(events, 'message too large');
          break;
        }
        this.#state = State.Body;
      }

      if (end - start < this.#messageLength) break;
      events.push({ type: 'message', data: Buffer.from(data.subarray(start, start + this.#messageLength)) });
      start += this.#messageLength;
      this.#state = State.Idle;
    }
    return start;
  }

  /** Returns the header section length including the empty line, or -1 when more data is needed. */
  #findHeaderEnd(data: Buffer, start: number, end: number): number {
    let pos = start + this.#scanOffset;
    for (;;) {
      const lf = data.indexOf(LF, pos);
      if (lf === -1 || lf >= end) {
        this.#scanOffset = end - start;
        return -1;
      }
      // The octets after the LF decide; if they have not arrived, resume here.
      if (lf + 1 >= end || (data[lf + 1] === CR && lf + 2 >= end)) {
        this.#scanOffset = lf - start;
        return -1;
      }
      if (data[lf + 1] === LF) return lf + 2 - start;
      if (data[lf + 1] === CR && data[lf + 2] === LF) return lf + 3 - start;
      pos = lf + 1;
    }
  }

  #fail(events: FramerEvent[], error: string): void {
    this.#failed = true;
    events.push({ type: 'error', error });
  }

  /** Stores chunk[from..] as the pending data. */
  #keep(chunk: Buffer, from: number): void {
    const length = chunk.length - from;
    this.#buffer = Buffer.allocUnsafe(Math.max(MIN_BUFFER_CAPACITY, length * 2));
    chunk.copy(this.#buffer, 0, from);
    this.#start = 0;
    this.#end = length;
  }

  #append(chunk: Buffer): void {
    const pending = this.#end - this.#start;
    const required = pending + chunk.length;
    if (this.#end + chunk.length > this.#buffer.length) {
      if (required <= this.#buffer.length) {
        this.#buffer.copyWithin(0, this.#start, this.#end);
      } else {
        const grown = Buffer.allocUnsafe(Math.max(required, this.#buffer.length * 2));
        this.#buffer.copy(grown, 0, this.#start, this.#end);
        this.#buffer = grown;
      }
      this.#start = 0;
      this.#end = pending;
    }
    chunk.copy(this.#buffer, this.#end);
    this.#end += chunk.length;
  }

  /** Drops the buffer once nothing is pending, so idle connections hold no memory. */
  #release(): void {
    this.#buffer = EMPTY;
    this.#start = 0;
    this.#end = 0;
  }
}
