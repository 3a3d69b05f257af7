/**
 * Header-value syntax shared by many headers (RFC 3261 §7.3, §25.1): comma-separated lists,
 * `;name=value` parameters, and the scalar headers (CSeq, Max-Forwards, Content-Length,
 * Expires). Parsers return null for what is malformed.
 */
import { Char, isLws, isTokenCode, readQuotedString, quoteString, skipLws, tokenEnd, trimLws } from './lexical.ts';

/** Header parameters keyed by lowercase name; `null` marks a flag parameter such as `lr` or `rport`. */
export type HeaderParams = Map<string, string | null>;

/**
 * Splits a comma-separated header value into elements, ignoring commas inside
 * quoted strings and `<...>`. Returns null when an element is empty
 * (`a,,b`), which the RFC 3261 list grammar does not allow.
 */
export function splitHeaderList(value: string): string[] | null {
  if (value.indexOf(',') === -1) return [value];
  const parts: string[] = [];
  let start = 0;
  let inQuotes = false;
  let inAngles = false;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (inQuotes) {
      if (code === Char.Backslash) i++;
      else if (code === Char.DoubleQuote) inQuotes = false;
    } else if (code === Char.DoubleQuote) {
      inQuotes = true;
    } else if (code === Char.LessThan) {
      inAngles = true;
    } else if (code === Char.GreaterThan) {
      inAngles = false;
    } else if (code === Char.Comma && !inAngles) {
      const part = trimLws(value.slice(start, i));
      if (part.length === 0) return null;
      parts.push(part);
      start = i + 1;
    }
  }
  const last = trimLws(value.slice(start));
  if (last.length === 0) return null;
  parts.push(last);
  return parts;
}

/** Characters allowed in an unquoted parameter value: token, host and IPv6 literal characters. */
function isBareParamValueCode(code: number): boolean {
  return isTokenCode(code) || code === Char.Colon || code === Char.OpenBracket || code === Char.CloseBracket;
}

/**
 * Parses `*(SEMI name[EQUAL value])` from text[pos] to the end into params,
 * tolerating LWS around `;` and `=`. Unquoted values are taken leniently (any
 * non-whitespace other than `;`, `,` and `"`); quoted values are unescaped.
 * The first occurrence of a repeated name wins. Returns false on syntax errors
 * such as an empty name (`;;`) or trailing garbage.
 */
export function parseParamsInto(text: string, pos: number, params: HeaderParams): boolean {
  const length = text.length;
  for (;;) {
    pos = skipLws(text, pos);
    if (pos >= length) return true;
    if (text.charCodeAt(pos) !== Char.Semicolon) return false;
    pos = skipLws(text, pos + 1);
    const nameStart = pos;
    pos = tokenEnd(text, pos);
    if (pos === nameStart) return false;
    const name = text.slice(nameStart, pos).toLowerCase();
    pos = skipLws(text, pos);
    let value: string | null = null;
    if (pos < length && text.charCodeAt(pos) === Char.Equals) {
      pos = skipLws(text, pos + 1);
      if (pos < length && text.charCodeAt(pos) === Char.DoubleQuote) {
        const quoted = readQuotedString(text, pos);
        if (quoted === null) return false;
        value = quoted.value;
        pos = quoted.end;
      } else {
        const valueStart = pos;
        while (pos < length) {
          const code = text.charCodeAt(pos);
          if (code <= Char.Space || code === Char.Semicolon || code === Char.Comma || code === Char.DoubleQuote || code === 0x7f) break;
          pos++;
        }
        value = text.slice(valueStart, pos);
      }
    }
    if (!params.has(name)) params.set(name, value);
  }
}

/** Parses a generic parameter list such as `;tag=abc;lr;q="0.5"`. Returns null on syntax errors. */
export function parseHeaderParams(text: string): HeaderParams | null {
  const params: HeaderParams = new Map();
  return parseParamsInto(text, 0, params) ? params : null;
}

/** Formats parameters as `;name=value;flag`, quoting values that are not token or host characters. */
export function formatHeaderParams(params: HeaderParams): string {
  let out = '';
  for (const [name, value] of params) {
    out += ';' + name;
    if (value === null) continue;
    let bare = value.length > 0;
    for (let i = 0; bare && i < value.length; i++) bare = isBareParamValueCode(value.charCodeAt(i));
    out += '=' + (bare ? value : quoteString(value));
  }
  return out;
}

/**
 * Parses an unsigned decimal in text[start, end) (digits only, leading zeros
 * allowed). Returns -1 when empty, non-numeric, or greater than max.
 */
function parseDecimal(text: string, start: number, end: number, max: number): number {
  if (end <= start) return -1;
  let value = 0;
  for (let i = start; i < end; i++) {
    const code = text.charCodeAt(i);
    if (code < Char.Zero || code > Char.Nine) return -1;
    value = value * 10 + (code - Char.Zero);
    if (value > max) return -1;
  }
  return value;
}

const UINT32_MAX = 0xffffffff;

export interface CSeq {
  seq: number;
  method: string;
}

/** Parses `CSeq: <number> <method>`; the number must fit in 32 bits (RFC 3261 §8.1.1.5). */
export function parseCSeq(value: string): CSeq | null {
  const start = skipLws(value, 0);
  let end = start;
  while (end < value.length && !isLws(value.charCodeAt(end))) end++;
  const seq = parseDecimal(value, start, end, UINT32_MAX);
  if (seq < 0) return null;
  const methodStart = skipLws(value, end);
  if (methodStart === end) return null;
  const methodEnd = tokenEnd(value, methodStart);
  if (methodEnd === methodStart || skipLws(value, methodEnd) !== value.length) return null;
  return { seq, method: value.slice(methodStart, methodEnd) };
}

export function formatCSeq(cseq: CSeq): string {
  return `${cseq.seq} ${cseq.method}`;
}

function parseTrimmedDecimal(value: string, max: number): number {
  const start = skipLws(value, 0);
  let end = value.length;
  while (end > start && isLws(value.charCodeAt(end - 1))) end--;
  return parseDecimal(value, start, end, max);
}

/** Parses Max-Forwards (0-255, RFC 3261 §20.22), or null when invalid. */
export function parseMaxForwards(value: string): number | null {
  const hops = parseTrimmedDecimal(value, 255);
  return hops < 0 ? null : hops;
}

/** Parses Content-Length (a 32-bit unsigned octet count), or null when invalid. */
export function parseContentLength(value: string): number | null {
  const length = parseTrimmedDecimal(value, UINT32_MAX);
  return length < 0 ? null : length;
}

/**
 * Parses an Expires header or `expires` parameter value in seconds. Values
 * beyond 2^32-1, the range RFC 3261 §20.19 defines, are clamped to it rather
 * than rejected, so an absurd registration interval still yields a number the
 * registrar can cap with its own maximum.
 */
export function parseExpires(value: string): number | null {
  const start = skipLws(value, 0);
  let end = value.length;
  while (end > start && isLws(value.charCodeAt(end - 1))) end--;
  if (end <= start) return null;
  for (let i = start; i < end; i++) {
    const code = value.charCodeAt(i);
    if (code < Char.Zero || code > Char.Nine) return null;
  }
  const seconds = parseDecimal(value, start, end, UINT32_MAX);
  return seconds < 0 ? UINT32_MAX : seconds;
}
