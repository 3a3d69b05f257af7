/**
 * SIP message serialization: CRLF line endings, one header line per value,
 * and a Content-Length that always matches the body (written where the
 * message had one, else last), as RFC 3261 §18.3 requires on streams.
 */
import { isToken, UNSAFE_TEXT } from './lexical.ts';
import type { SipMessage } from './message.ts';

function assertSafe(text: string, what: string): void {
  // A CR or LF would let a header value inject extra headers or end the
  // header section early; parsed values never contain them, so this only
  // trips on values set by application code.
  if (UNSAFE_TEXT.test(text)) throw new TypeError(`${what} contains CR, LF or NUL: ${JSON.stringify(text)}`);
}

/** Serializes a message to wire format. Throws TypeError on values that cannot be serialized safely. */
export function serializeMessage(message: SipMessage): Buffer {
  assertSafe(message.version, 'SIP version');
  let head: string;
  if (message.kind === 'request') {
    if (!isToken(message.method)) throw new TypeError(`invalid SIP method: ${JSON.stringify(message.method)}`);
    if (message.uri.length === 0 || /[\s\0]/.test(message.uri)) {
      throw new TypeError(`invalid Request-URI: ${JSON.stringify(message.uri)}`);
    }
    head = `${message.method} ${message.uri} ${message.version}\r\n`;
  } else {
    if (!Number.isInteger(message.status) || message.status < 100 || message.status > 699) {
      throw new TypeError(`invalid SIP status code: ${message.status}`);
    }
    assertSafe(message.reason, 'reason phrase');
    head = `${message.version} ${message.status} ${message.reason}\r\n`;
  }

  const body = message.body;
  let wroteContentLength = false;
  for (const field of message.headers) {
    if (field.key === 'content-length') {
      head += `Content-Length: ${body.length}\r\n`;
      wroteContentLength = true;
      continue;
    }
    for (const value of field.values) {
      assertSafe(value, `${field.name} header`);
      head += `${field.name}: ${value}\r\n`;
    }
  }
  if (!wroteContentLength) head += `Content-Length: ${body.length}\r\n`;
  head += '\r\n';

  const headLength = Buffer.byteLength(head, 'utf8');
  const wire = Buffer.allocUnsafe(headLength + body.length);
  wire.write(head, 0, 'utf8');
  body.copy(wire, headLength);
  return wire;
}
