/**
 * The lexical rules of SIP (RFC 3261 §25.1) that the parsers and serializers share: the
 * character classes, `token`, linear whitespace and quoted strings. One place, so that what one
 * parser accepts as a token (a method, a header name, a parameter name) is what every other
 * part of the stack accepts too.
 */

/** Character codes the parsers compare against. */
export const Char = {
  Tab: 0x09,
  Space: 0x20,
  DoubleQuote: 0x22,
  Percent: 0x25,
  Comma: 0x2c,
  Slash: 0x2f,
  Zero: 0x30,
  Nine: 0x39,
  Colon: 0x3a,
  Semicolon: 0x3b,
  LessThan: 0x3c,
  Equals: 0x3d,
  GreaterThan: 0x3e,
  Question: 0x3f,
  At: 0x40,
  OpenBracket: 0x5b,
  Backslash: 0x5c,
  CloseBracket: 0x5d,
} as const;

const ALPHANUMERICS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** A lookup table of the ASCII characters in `chars` (and the alphanumerics, unless told not to). */
export function charTable(chars: string, withAlphanumerics = true): Uint8Array {
  const table = new Uint8Array(128);
  const all = withAlphanumerics ? chars + ALPHANUMERICS : chars;
  for (let i = 0; i < all.length; i++) table[all.charCodeAt(i)] = 1;
  return table;
}

/** RFC 3261 `token` characters: alphanumerics and `-.!%*_+`'~`. */
const TOKEN_CHARS = charTable("-.!%*_+`'~");

export function isTokenCode(code: number): boolean {
  return code < 128 && TOKEN_CHARS[code] === 1;
}

/** RFC 3261 `token`: one or more token characters (methods, header and parameter names). */
export function isToken(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    if (!isTokenCode(text.charCodeAt(i))) return false;
  }
  return true;
}

export function isLws(code: number): boolean {
  return code === Char.Space || code === Char.Tab;
}

export function skipLws(text: string, pos: number): number {
  while (pos < text.length && isLws(text.charCodeAt(pos))) pos++;
  return pos;
}

export function tokenEnd(text: string, pos: number): number {
  while (pos < text.length && isTokenCode(text.charCodeAt(pos))) pos++;
  return pos;
}

/**
 * Trims SP and HT only. String.prototype.trim would also strip Unicode
 * spaces such as NBSP, which are data in SIP, not linear whitespace.
 */
export function trimLws(text: string): string {
  let start = 0;
  let end = text.length;
  while (start < end && isLws(text.charCodeAt(start))) start++;
  while (end > start && isLws(text.charCodeAt(end - 1))) end--;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}

/**
 * Reads a quoted string starting at text[pos] (which must be `"`), resolving
 * quoted-pairs. Returns the unescaped content and the index after the closing
 * quote, or null when the string is unterminated.
 */
export function readQuotedString(text: string, pos: number): { value: string; end: number } | null {
  let value = '';
  let chunkStart = pos + 1;
  for (let i = pos + 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === Char.Backslash) {
      if (i + 1 >= text.length) return null;
      value += text.slice(chunkStart, i);
      chunkStart = i + 1;
      i++;
    } else if (code === Char.DoubleQuote) {
      return { value: value + text.slice(chunkStart, i), end: i + 1 };
    }
  }
  return null;
}

/** `text` as a quoted string, escaping `"` and `\\`. */
export function quoteString(text: string): string {
  let needsEscape = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === Char.DoubleQuote || code === Char.Backslash) {
      needsEscape = true;
      break;
    }
  }
  return needsEscape ? `"${text.replace(/["\\]/g, '\\$&')}"` : `"${text}"`;
}

/** CR, LF or NUL: what no header value, reason phrase or start line may hold on the wire. */
export const UNSAFE_TEXT = /[\0\r\n]/;
