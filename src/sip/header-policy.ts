/**
 * Headers a proxy removes on the way through: names, or prefixes written with a trailing `*`
 * (`X-Dialplane-*`), and the identity assertions that only a trusted source may make.
 */
import type { SipHeaders } from './message.ts';

/** Identity assertions believed only from trusted sources (RFC 3325 §5). */
export const ASSERTED_IDENTITY_HEADERS = ['P-Asserted-Identity', 'Remote-Party-ID'];

/** Removes the headers named (or, with a trailing `*`, prefixed) by `patterns`. */
export function removeHeaderPatterns(headers: SipHeaders, patterns: readonly string[]): void {
  for (const pattern of patterns) {
    if (!pattern.endsWith('*')) {
      headers.delete(pattern);
      continue;
    }
    const prefix = pattern.slice(0, -1).toLowerCase();
    const keys: string[] = [];
    for (const field of headers) if (field.key.startsWith(prefix)) keys.push(field.key);
    for (const key of keys) headers.delete(key);
  }
}
