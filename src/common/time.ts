/** Timestamps are ISO 8601 UTC with millisecond precision, the format stored and returned. */
export function now(): string {
  return new Date().toISOString();
}
