/**
 * What a parser returns when it can say why it failed: the message parser, the stream framer,
 * the digest header parsers. Parsers that only tell valid from invalid (a Via, a URI) return
 * their value or null.
 */
export type Result<T, E> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: E };

export function ok<T>(value: T): { readonly ok: true; readonly value: T } {
  return { ok: true, value };
}

export function failed<E>(error: E): { readonly ok: false; readonly error: E } {
  return { ok: false, error };
}
