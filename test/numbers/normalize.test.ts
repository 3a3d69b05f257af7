import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePhoneNumber } from '../../src/numbers/normalize.ts';

/**
 * docs/api.md, Phone numbers: spaces, dashes, dots and parentheses are dropped, a leading `00` becomes `+`,
 * bare digits are E.164 without the `+`; the result is `+` and 3..15 digits, or nothing.
 */
const rows: [input: string, expected: string | null][] = [
  // The contract's own example: three spellings of one number.
  ['+1 (555) 010-0000', '+15550100000'],
  ['0015550100000', '+15550100000'],
  ['15550100000', '+15550100000'],
  ['+15550100000', '+15550100000'],
  // Separators anywhere.
  ['+1.555.010.0000', '+15550100000'],
  ['+1\t555\t010\t0000', '+15550100000'],
  [' +1 555 010 0000 ', '+15550100000'],
  ['+1-555-010-0000', '+15550100000'],
  ['(555) 010-0000', '+5550100000'],
  ['00 1 555 010 0000', '+15550100000'],
  ['00-44-20-7183-8750', '+442071838750'],
  ['+442071838750', '+442071838750'],
  // Parentheses are only dropped: the UK "(0)" convention keeps its 0 (the contract's rule, literally).
  ['+44 (0)20 7183 8750', '+4402071838750'],
  // Length bounds: 3 to 15 digits.
  ['+123', '+123'],
  ['123', '+123'],
  ['00123', '+123'],
  ['+123456789012345', '+123456789012345'],
  ['123456789012345', '+123456789012345'],
  ['00123456789012345', '+123456789012345'],
  // Empty or only a sign.
  ['', null],
  ['   ', null],
  ['+', null],
  ['00', null],
  ['()-. ', null],
  // Too short or too long.
  ['+12', null],
  ['12', null],
  ['0012', null],
  ['000', null],
  ['+1234567890123456', null],
  ['1234567890123456', null],
  ['001234567890123456', null],
  // Not digits.
  ['abc', null],
  ['+1555010000a', null],
  ['+1-555-CALL-NOW', null],
  ['tel:+15550100000', null],
  ['sip:+15550100000@example.com', null],
  ['+1 555 010 0000 ext. 12', null],
  ['+1/555/0100000', null],
  ['+1_555_0100000', null],
  ['١٢٣٤٥', null],
  // The sign only in front, once.
  ['++15550100000', null],
  ['+1+5550100000', null],
  ['1555+0100000', null],
  // After a `+`, a leading 00 is just digits (the contract asks for nothing more than + and 3..15 digits).
  ['+0015550100000', '+0015550100000'],
];

describe('normalizePhoneNumber', () => {
  for (const [input, expected] of rows) {
    test(`${JSON.stringify(input)} → ${expected ?? 'null'}`, () => {
      assert.equal(normalizePhoneNumber(input), expected);
    });
  }

  test('normalizing is idempotent', () => {
    for (const [input, expected] of rows) {
      if (expected !== null) assert.equal(normalizePhoneNumber(expected), expected, input);
    }
  });
});
