/**
 * Where a message's session description is: the whole body (Content-Type application/sdp), or
 * one part of a multipart/mixed or multipart/related body (RFC 5621), as SIP-I carriers send
 * their SDP beside an ISUP part. Parts are found by their boundary (RFC 2046 §5.1.1) on the raw
 * bytes, so the other parts, binary ones included, are passed on untouched.
 */
import type { SipMessage } from './message.ts';

export interface SessionDescription {
  sdp: Buffer;
  /** The message's whole body with `sdp` in place of this description. */
  replacedBy(sdp: Buffer): Buffer;
}

const SDP_TYPE = /^\s*application\/sdp\s*(;|$)/i;
const MULTIPART_TYPE = /^\s*multipart\/(mixed|related)\s*;/i;
const BOUNDARY = /;\s*boundary\s*=\s*(?:"([^"]{1,70})"|([^\s;"]{1,70}))/i;
const PART_SDP_TYPE = /^content-type[ \t]*:[ \t]*application\/sdp[ \t]*(;|$)/im;

function wholeBody(body: Buffer): SessionDescription {
  return { sdp: body, replacedBy: (sdp) => sdp };
}

/** The first part of a multipart body whose Content-Type is application/sdp; null when there is none or the body is not well formed. */
function sdpPart(body: Buffer, boundary: string): SessionDescription | null {
  // latin1 maps each byte to one character, so offsets in the text are offsets in the body.
  const text = body.toString('latin1');
  const delimiter = `--${boundary}`;
  // The first delimiter opens the body or follows a preamble's line break.
  let at = text.startsWith(delimiter) ? 0 : text.indexOf(`\r\n${delimiter}`) + 2;
  if (at === 1) return null;
  for (;;) {
    const afterDelimiter = at + delimiter.length;
    if (text.startsWith('--', afterDelimiter)) return null;
    const lineEnd = text.indexOf('\r\n', afterDelimiter);
    // A delimiter line holds the boundary and, at most, white space after it.
    if (lineEnd === -1 || !/^[ \t]*$/.test(text.slice(afterDelimiter, lineEnd))) return null;
    const partStart = lineEnd + 2;
    const next = text.indexOf(`\r\n${delimiter}`, partStart);
    if (next === -1) return null;
    const headersEnd = text.startsWith('\r\n', partStart) ? partStart : text.indexOf('\r\n\r\n', partStart);
    if (headersEnd !== -1 && headersEnd < next) {
      const contentStart = headersEnd === partStart ? partStart + 2 : headersEnd + 4;
      if (PART_SDP_TYPE.test(text.slice(partStart, headersEnd)) && contentStart < next) {
        return {
          sdp: body.subarray(contentStart, next),
          replacedBy: (sdp) => Buffer.concat([body.subarray(0, contentStart), sdp, body.subarray(next)]),
        };
      }
    }
    at = next + 2;
  }
}

export function sessionDescription(message: SipMessage): SessionDescription | null {
  if (message.body.length === 0) return null;
  const type = message.headers.get('content-type');
  if (type === undefined) return null;
  if (SDP_TYPE.test(type)) return wholeBody(message.body);
  if (!MULTIPART_TYPE.test(type)) return null;
  const boundary = BOUNDARY.exec(type);
  return boundary === null ? null : sdpPart(message.body, boundary[1] ?? boundary[2]);
}
