/**
 * name-addr and addr-spec (RFC 3261 §20.10, §25.1): From, To, Contact, Route, Record-Route,
 * P-Asserted-Identity and their kin.
 */
import { Char, isLws, isTokenCode, quoteString, readQuotedString, skipLws, trimLws } from './lexical.ts';
import { formatHeaderParams, parseParamsInto, type HeaderParams } from './parse-header.ts';

export interface NameAddr {
  /** Unquoted display name, or null when absent. */
  displayName: string | null;
  /** The URI as written; parse with `parseUri` when its parts are needed. */
  uri: string;
  /** Header parameters after the address (`tag`, `expires`, `q`, ...). URI parameters such as `lr` stay in `uri`. */
  params: HeaderParams;
}

function isValidAddressUri(uri: string, enclosed: boolean): boolean {
  const colon = uri.indexOf(':');
  if (colon <= 0) return false;
  for (let i = 0; i < uri.length; i++) {
    const code = uri.charCodeAt(i);
    if (code <= Char.Space || code === 0x7f || code === Char.DoubleQuote || code === Char.LessThan || code === Char.GreaterThan) return false;
    // RFC 3261 §20.10: a URI containing ',', '?' or ';' must be enclosed in <>;
    // ';' is unambiguous here because it already ended the addr-spec.
    if (!enclosed && (code === Char.Comma || code === 0x3f)) return false;
  }
  for (let i = 0; i < colon; i++) {
    const code = uri.charCodeAt(i);
    const alpha = (code | 0x20) >= 0x61 && (code | 0x20) <= 0x7a;
    if (!alpha && (i === 0 || !((code >= Char.Zero && code <= Char.Nine) || code === 0x2b || code === 0x2d || code === 0x2e))) return false;
  }
  return true;
}

/**
 * Parses `[display-name] <uri> *(;param)` or `addr-spec *(;param)`. In the
 * addr-spec form, parameters after the URI are header parameters
 * (RFC 3261 §20.10). Returns null for malformed input, including unbalanced
 * quotes, unquoted non-token display names, and whitespace inside `<...>`.
 * The Contact wildcard `*` is not a name-addr; check for it separately.
 */
export function parseNameAddr(value: string): NameAddr | null {
  let pos = skipLws(value, 0);
  let displayName: string | null = null;
  let uri: string;

  if (value.charCodeAt(pos) === Char.DoubleQuote) {
    const quoted = readQuotedString(value, pos);
    if (quoted === null) return null;
    displayName = quoted.value;
    pos = skipLws(value, quoted.end);
    if (value.charCodeAt(pos) !== Char.LessThan) return null;
  } else {
    // A display name is tokens separated by LWS; a URI reveals itself by a
    // non-token character (the scheme's ':') before any '<'. Raw non-ASCII
    // text is tolerated because user agents send unquoted UTF-8 names.
    let scan = pos;
    while (scan < value.length) {
      const code = value.charCodeAt(scan);
      if (!isTokenCode(code) && !isLws(code) && code < 0x80) break;
      scan++;
    }
    if (value.charCodeAt(scan) === Char.LessThan) {
      const name = trimLws(value.slice(pos, scan));
      displayName = name.length > 0 ? name : null;
      pos = scan;
    }
  }

  if (value.charCodeAt(pos) === Char.LessThan) {
    const close = value.indexOf('>', pos + 1);
    if (close === -1) return null;
    uri = value.slice(pos + 1, close);
    if (!isValidAddressUri(uri, true)) return null;
    pos = close + 1;
  } else {
    let end = value.indexOf(';', pos);
    if (end === -1) end = value.length;
    uri = trimLws(value.slice(pos, end));
    if (!isValidAddressUri(uri, false)) return null;
    pos = end;
  }

  const params: HeaderParams = new Map();
  if (!parseParamsInto(value, pos, params)) return null;
  return { displayName, uri, params };
}

/** Formats a name-addr, always using `<...>` and a quoted display name so any URI and name are safe. */
export function formatNameAddr(address: NameAddr): string {
  const display = address.displayName === null ? '' : quoteString(address.displayName) + ' ';
  return `${display}<${address.uri}>${formatHeaderParams(address.params)}`;
}
