/**
 * RFC 3261 message parser.
 *
 * Policy (see test/sip/parser.test.ts for the RFC 4475 cases it implies):
 * - SIP/2.0 only; CRLF and bare LF line endings; leading CRLFs ignored (§7.5).
 * - The header section is decoded as UTF-8 (RFC 3261 text is UTF-8); invalid
 *   sequences become U+FFFD. The body is never decoded.
 * - Header folding is joined with a single SP; names are case-insensitive and
 *   compact forms are expanded; LWS around the colon is allowed.
 * - Validated eagerly, because routing or answering depends on them: the
 *   start line, Via/From/To/Call-ID/CSeq presence and syntax (top Via only),
 *   single occurrence of Call-ID/From/To/CSeq/Max-Forwards/Content-Length,
 *   CSeq method = request method, Max-Forwards and Content-Length numbers.
 *   Every other header is kept as raw text and checked only by whoever
 *   parses it (e.g. a malformed Contact is the registrar's 400 to send).
 * - Rejected outright: NUL or bare CR in the header section (even inside a
 *   quoted-pair, which RFC 3261 would allow: no legitimate peer needs it and
 *   NULs break logs and databases downstream), more than MAX_MESSAGE_SIZE
 *   octets, extra or missing SP in the request line, `<...>` or `?headers`
 *   in a SIP Request-URI.
 * - Body: the octets after the empty line, truncated to Content-Length; a
 *   Content-Length beyond the data is an error; without Content-Length the
 *   body is the rest of the input (UDP, RFC 3261 §18.3). Stream transports
 *   frame messages first (framing.ts), so the same rule applies there.
 *
 * Parsing never throws for any input; failures are returned as values.
 */
import { canonicalHeaderName, createRequest, SIP_VERSION, SipHeaders, type SipMessage, type SipRequest } from './message.ts';
import { isToken, trimLws } from './lexical.ts';
import { parseNameAddr } from './parse-address.ts';
import { parseContentLength, parseCSeq, parseMaxForwards, splitHeaderList } from './parse-header.ts';
import { parseVia } from './parse-via.ts';
import { uriScheme } from './uri.ts';
import { failed, ok, type Result } from './result.ts';

/** Largest message accepted, in octets (UDP datagrams and framed stream messages alike). */
export const MAX_MESSAGE_SIZE = 64 * 1024;

/** Why a message did not parse, and whether it can still be answered. */
export interface ParseError {
  /** Short description of the first problem found; constant text, safe to log. */
  readonly reason: string;
  /**
   * Present when the input was a request other than ACK whose Via, From, To,
   * Call-ID and CSeq were all present, so `buildResponse(reply.request,
   * reply.status)` can answer it: 505 for an unsupported SIP version, 400
   * otherwise. The request has no body and its other headers may be invalid.
   */
  readonly reply?: { readonly request: SipRequest; readonly status: 400 | 505 };
}

export type ParseResult = Result<SipMessage, ParseError>;

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;

function failure(reason: string): ParseResult {
  return failed({ reason });
}

/** `SIP/<digits>.<digits>`, case-insensitively: a SIP version, supported or not. */
function isSipVersion(text: string): boolean {
  if (text.length < 7 || text.slice(0, 4).toUpperCase() !== 'SIP/') return false;
  const dot = text.indexOf('.', 4);
  if (dot <= 4 || dot === text.length - 1) return false;
  for (let i = 4; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (i !== dot && (code < 0x30 || code > 0x39)) return false;
  }
  return true;
}

function isSupportedVersion(text: string): boolean {
  return text.length === 7 && text.toUpperCase() === SIP_VERSION;
}

/**
 * Request-URI check: an absolute URI without whitespace, quotes or angle
 * brackets; for sip/sips, no `?headers` part (RFC 3261 §19.1.5 forbids them
 * in a Request-URI; RFC 4475 §3.1.2.11). A '?' before the '@' belongs to the
 * user part and is fine.
 */
function isValidRequestUri(uri: string): boolean {
  const scheme = uriScheme(uri);
  if (scheme === null) return false;
  for (let i = scheme.length + 1; i < uri.length; i++) {
    const code = uri.charCodeAt(i);
    if (code <= SP || code >= 0x7f || code === 0x22 || code === 0x3c || code === 0x3e) return false;
  }
  if (scheme === 'sip' || scheme === 'sips') {
    const at = uri.indexOf('@');
    if (uri.indexOf('?', at === -1 ? scheme.length : at) !== -1) return false;
  }
  return true;
}

/**
 * Per-parse bookkeeping: the first error found, plus the values of the
 * headers validated eagerly, captured while the header section is read so
 * validation needs no lookups afterwards.
 */
class ParseState {
  error: string | null = null;
  replyStatus: 400 | 505 = 400;
  readonly headers = new SipHeaders();
  topVia: string | undefined;
  from: string | undefined;
  to: string | undefined;
  callId: string | undefined;
  cseq: string | undefined;
  maxForwards: string | undefined;
  contentLength: string | undefined;

  reject(message: string, status: 400 | 505 = 400): void {
    if (this.error === null) {
      this.error = message;
      this.replyStatus = status;
    }
  }

  addHeader(name: string, value: string): void {
    const key = canonicalHeaderName(name);
    switch (key) {
      case 'via':
      case 'route':
      case 'record-route':
      case 'contact': {
        const elements = splitHeaderList(value);
        if (elements === null) {
          // Keep the raw value so the header still counts as present for a 400.
          this.reject(`empty element in ${key} header`);
          this.headers.append(name, value);
          if (key === 'via') this.topVia ??= value;
          return;
        }
        if (key === 'via') this.topVia ??= elements[0];
        for (const element of elements) this.headers.append(name, element);
        return;
      }
      case 'from':
        this.from = this.#single(key, this.from, value);
        break;
      case 'to':
        this.to = this.#single(key, this.to, value);
        break;
      case 'call-id':
        this.callId = this.#single(key, this.callId, value);
        break;
      case 'cseq':
        this.cseq = this.#single(key, this.cseq, value);
        break;
      case 'max-forwards':
        this.maxForwards = this.#single(key, this.maxForwards, value);
        break;
      case 'content-length':
        this.contentLength = this.#single(key, this.contentLength, value);
        break;
    }
    this.headers.append(name, value);
  }

  /** True when every header a response must copy is present. */
  get canBeAnswered(): boolean {
    return this.topVia !== undefined && this.from !== undefined && this.to !== undefined && this.callId !== undefined && this.cseq !== undefined;
  }

  #single(key: string, current: string | undefined, value: string): string {
    if (current === undefined) return value;
    this.reject(`multiple ${key} headers`);
    return current;
  }
}

/** Parses one SIP message from a datagram or a framed stream message. Never throws. */
export function parseMessage(input: Buffer | string): ParseResult {
  const data = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  if (data.length > MAX_MESSAGE_SIZE) return failure('message too large');

  let start = 0;
  while (start < data.length && (data[start] === CR || data[start] === LF)) start++;
  if (start === data.length) return failure('empty message');

  const state = new ParseState();

  // Find the empty line ending the header section: LF followed by LF or CRLF.
  let headerEnd = data.length;
  let bodyStart = data.length;
  for (let lineStart = start; ;) {
    const lf = data.indexOf(LF, lineStart);
    if (lf === -1) {
      state.reject('header section not terminated by an empty line');
      break;
    }
    const next = data[lf + 1];
    if (next === LF || (next === CR && data[lf + 2] === LF)) {
      headerEnd = lf;
      bodyStart = next === LF ? lf + 2 : lf + 3;
      break;
    }
    lineStart = lf + 1;
  }

  const text = data.toString('utf8', start, headerEnd);
  if (text.indexOf('\0') !== -1) return failure('NUL byte in header section');

  // Start line.
  let lineEnd = text.indexOf('\n');
  if (lineEnd === -1) lineEnd = text.length;
  let pos = lineEnd + 1;
  if (lineEnd > 0 && text.charCodeAt(lineEnd - 1) === CR) lineEnd--;
  const cr = text.indexOf('\r');
  if (cr !== -1 && cr < lineEnd) return failure('bare CR in start line');
  const startLine = text.slice(0, lineEnd);

  let method = '';
  let uri = '';
  let status = 0;
  let reason = '';
  const isResponse = startLine.length >= 4 && startLine.slice(0, 4).toUpperCase() === 'SIP/';
  if (isResponse) {
    // SIP-Version SP Status-Code SP Reason-Phrase; the final SP is optional
    // when the reason phrase is empty (RFC 4475 §3.1.1.13 tolerates both).
    const sp = startLine.indexOf(' ');
    if (sp === -1 || !isSupportedVersion(startLine.slice(0, sp))) return failure('unsupported SIP version');
    const codeEnd = sp + 4;
    if (codeEnd > startLine.length || (codeEnd < startLine.length && startLine.charCodeAt(codeEnd) !== SP)) {
      return failure('invalid status code');
    }
    for (let i = sp + 1; i < codeEnd; i++) {
      const code = startLine.charCodeAt(i);
      if (code < 0x30 || code > 0x39) return failure('invalid status code');
    }
    status = Number(startLine.slice(sp + 1, codeEnd));
    if (status < 100 || status > 699) return failure('invalid status code');
    reason = startLine.slice(Math.min(codeEnd + 1, startLine.length));
  } else {
    // Method SP Request-URI SP SIP-Version, with exactly one SP each.
    let end = startLine.length;
    while (end > 0 && startLine.charCodeAt(end - 1) === SP) end--;
    const firstSp = startLine.indexOf(' ');
    const lastSp = startLine.lastIndexOf(' ', end - 1);
    if (firstSp <= 0 || lastSp <= firstSp) return failure('malformed start line');
    method = startLine.slice(0, firstSp);
    if (!isToken(method)) return failure('malformed start line');
    const version = startLine.slice(lastSp + 1, end);
    if (!isSipVersion(version)) return failure('malformed start line');
    uri = startLine.slice(firstSp + 1, lastSp);
    if (end !== startLine.length) state.reject('whitespace after SIP version');
    else if (uri.indexOf(' ') !== -1 || uri.indexOf('\t') !== -1) state.reject('whitespace in request line');
    else if (!isValidRequestUri(uri)) state.reject('invalid Request-URI');
    if (!isSupportedVersion(version)) state.reject('unsupported SIP version', 505);
  }

  // Header fields, joining folded continuation lines.
  let name: string | null = null;
  let value = '';
  while (pos < text.length) {
    let eol = text.indexOf('\n', pos);
    if (eol === -1) eol = text.length;
    let end = eol;
    if (end > pos && text.charCodeAt(end - 1) === CR) end--;
    const bareCr = text.indexOf('\r', pos);
    if (bareCr !== -1 && bareCr < end) return failure('bare CR in header section');
    const first = text.charCodeAt(pos);
    if (first === SP || first === HT) {
      if (name === null) {
        state.reject('continuation line without a header');
      } else {
        const continuation = trimLws(text.slice(pos, end));
        if (continuation.length > 0) value = value.length > 0 ? `${value} ${continuation}` : continuation;
      }
    } else {
      if (name !== null) state.addHeader(name, value);
      name = null;
      const colon = text.indexOf(':', pos);
      if (colon === -1 || colon >= end) {
        state.reject('header line without a colon');
      } else {
        const fieldName = trimLws(text.slice(pos, colon));
        if (isToken(fieldName)) {
          name = fieldName;
          value = trimLws(text.slice(colon + 1, end));
        } else {
          state.reject('invalid header name');
        }
      }
    }
    pos = eol + 1;
  }
  if (name !== null) state.addHeader(name, value);

  // Semantic checks on the headers every element depends on.
  if (state.topVia === undefined) state.reject('missing via header');
  else if (parseVia(state.topVia) === null) state.reject('invalid via header');
  if (state.from === undefined) state.reject('missing from header');
  else if (parseNameAddr(state.from) === null) state.reject('invalid from header');
  if (state.to === undefined) state.reject('missing to header');
  else if (parseNameAddr(state.to) === null) state.reject('invalid to header');
  if (state.callId === undefined) state.reject('missing call-id header');
  else if (state.callId.length === 0 || state.callId.indexOf(' ') !== -1 || state.callId.indexOf('\t') !== -1) {
    state.reject('invalid call-id header');
  }
  if (state.cseq === undefined) {
    state.reject('missing cseq header');
  } else {
    const cseq = parseCSeq(state.cseq);
    if (cseq === null) state.reject('invalid cseq header');
    else if (!isResponse && cseq.method !== method) state.reject('cseq method does not match request method');
  }
  if (state.maxForwards !== undefined && parseMaxForwards(state.maxForwards) === null) {
    state.reject('invalid max-forwards header');
  }

  let body = data.subarray(bodyStart);
  if (state.contentLength !== undefined) {
    const contentLength = parseContentLength(state.contentLength);
    if (contentLength === null) state.reject('invalid content-length header');
    else if (contentLength > body.length) state.reject('content-length exceeds message size');
    else if (contentLength < body.length) body = body.subarray(0, contentLength);
  }

  const { error, headers } = state;
  if (error !== null) {
    if (isResponse || method === 'ACK' || !state.canBeAnswered) return failure(error);
    return failed({ reason: error, reply: { request: createRequest({ method, uri, headers }), status: state.replyStatus } });
  }

  const message: SipMessage = isResponse
    ? { kind: 'response', status, reason, version: SIP_VERSION, headers, body }
    : { kind: 'request', method, uri, version: SIP_VERSION, headers, body };
  return ok(message);
}
