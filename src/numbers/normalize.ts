/**
 * The one number-normalization rule (docs/api.md, Phone numbers), used by the API, list filters and call
 * routing alike: visual separators are dropped, a leading international prefix `00` becomes
 * `+`, bare digits are E.164 without their `+`, and the result must be `+` and 3..15 digits.
 * Returns null when the input cannot be read as a phone number.
 */
const SEPARATORS = /[\s\-.()]/g;
const E164 = /^\+[0-9]{3,15}$/;

export function normalizePhoneNumber(input: string): string | null {
  let value = input.replace(SEPARATORS, '');
  if (value.startsWith('00')) value = `+${value.slice(2)}`;
  else if (value !== '' && value[0] !== '+') value = `+${value}`;
  return E164.test(value) ? value : null;
}
