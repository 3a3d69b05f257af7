import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decode, encode, type BencodeValue } from '../../src/media/bencode.ts';

/** decode() makes dictionaries without a prototype (a `__proto__` key stays a key); compare them as plain objects. */
function plain(value: BencodeValue): unknown {
  if (Array.isArray(value)) return value.map(plain);
  if (typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, plain(item)]));
  return value;
}

function decoded(bytes: Buffer | string): unknown {
  const result = decode(Buffer.from(bytes));
  assert.ok(result.ok, `decode refused ${JSON.stringify(String(bytes))}: ${result.ok ? '' : result.error}`);
  return plain(result.value);
}

describe('bencode', () => {
  // [value, its encoding]: each is encoded to exactly these bytes and decoded back.
  const cases: [string, BencodeValue, string][] = [
    ['empty string', '', '0:'],
    ['string', 'spam', '4:spam'],
    ['string holding a colon and digits', '3:ab', '4:3:ab'],
    ['string with CRLF (SDP)', 'v=0\r\n', '5:v=0\r\n'],
    ['two-byte UTF-8', 'é', '2:é'],
    ['three-byte UTF-8', '大', '3:大'],
    ['four-byte UTF-8 (a surrogate pair in JS)', '😀', '4:😀'],
    ['zero', 0, 'i0e'],
    ['positive integer', 42, 'i42e'],
    ['negative integer', -7, 'i-7e'],
    ['largest safe integer', Number.MAX_SAFE_INTEGER, 'i9007199254740991e'],
    ['smallest safe integer', Number.MIN_SAFE_INTEGER, 'i-9007199254740991e'],
    ['empty list', [], 'le'],
    ['list', ['spam', 42, -1], 'l4:spami42ei-1ee'],
    ['empty dictionary', {}, 'de'],
    ['dictionary, keys sorted', { b: 1, a: 2 }, 'd1:ai2e1:bi1ee'],
    ['keys sorted by bytes, not by case', { z: 1, Z: 2, a: 3 }, 'd1:Zi2e1:ai3e1:zi1ee'],
    // U+FF5E is EF BD 9E in UTF-8, 😀 is F0 9F 98 80; in UTF-16 😀 (D83D…) would sort first.
    ['keys sorted by UTF-8 bytes, not UTF-16 units', { '😀': 1, '～': 2 }, 'd3:～i2e4:😀i1ee'],
    [
      'nested ng command',
      { command: 'offer', 'call-id': 'c1', flags: ['trust-address'], replace: ['origin'], ICE: 'remove', extra: { n: [1, [2, { x: '' }]] } },
      'd3:ICE6:remove7:call-id2:c17:command5:offer5:extrad1:nli1eli2ed1:x0:eeee5:flagsl13:trust-addresse7:replacel6:originee',
    ],
  ];
  for (const [name, value, encoding] of cases) {
    test(`encodes and decodes: ${name}`, () => {
      assert.equal(encode(value).toString('utf8'), encoding);
      assert.deepEqual(decoded(encoding), plain(value));
    });
  }

  test('a string’s length counts UTF-8 bytes, not characters', () => {
    const bytes = encode('aé😀');
    assert.equal(bytes.toString('latin1', 0, 2), '7:');
    assert.equal(bytes.length, 2 + 7);
  });

  test('encode refuses numbers bencode cannot carry', () => {
    for (const value of [1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) assert.throws(() => encode(value), RangeError, String(value));
  });

  test('decodes keys in any order, as rtpengine writes them (its replies are not sorted)', () => {
    assert.deepEqual(decoded('d3:sdp3:v=06:result2:oke'), { sdp: 'v=0', result: 'ok' });
  });

  test('a `__proto__` key is an ordinary key, not the prototype', () => {
    const result = decode(Buffer.from('d9:__proto__d8:pollutedi1eee'));
    assert.ok(result.ok);
    assert.deepEqual(Object.keys(result.value), ['__proto__']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('bytes that are not UTF-8 decode to U+FFFD rather than fail', () => {
    assert.deepEqual(decoded(Buffer.from([0x32, 0x3a, 0xff, 0xfe])), '\ufffd\ufffd');
  });

  test('32 nested lists or dictionaries are accepted', () => {
    assert.ok(decode(Buffer.from(`${'l'.repeat(32)}${'e'.repeat(32)}`)).ok);
    assert.ok(decode(Buffer.from(`${'d1:a'.repeat(31)}d1:ai1e${'e'.repeat(32)}`)).ok);
  });

  // [input, the error]: refused with a message naming the problem and where, never a throw.
  const malformed: [string, string | Buffer, string][] = [
    ['nothing', '', 'unexpected end at byte 0'],
    ['a string cut short', '4:spa', 'string runs past the end at byte 2'],
    ['a length without its colon', '4spam', 'unterminated number at byte 0'],
    ['a huge length', '9999999999999999:x', 'number out of range "9999999999999999" at byte 0'],
    ['a length with a leading zero', '04:spam', 'bad number "04" at byte 0'],
    ['a negative length', '-1:a', 'unexpected byte 0x2d at byte 0'],
    ['an integer without its end', 'i42', 'unterminated number at byte 1'],
    ['an empty integer', 'ie', 'bad number "" at byte 1'],
    ['minus zero', 'i-0e', 'bad number "-0" at byte 1'],
    ['an integer with a leading zero', 'i042e', 'bad number "042" at byte 1'],
    ['a fraction', 'i1.5e', 'bad number "1.5" at byte 1'],
    ['a lone minus', 'i-e', 'bad number "-" at byte 1'],
    ['an integer beyond 2^53', 'i9007199254740992e', 'number out of range "9007199254740992" at byte 1'],
    ['a list without its end', 'l4:spam', 'unexpected end at byte 7'],
    ['a dictionary key without its value', 'd4:spam', 'unexpected end at byte 7'],
    ['a dictionary without its end', 'd4:spami1e', 'unterminated dictionary at byte 10'],
    ['an integer as dictionary key', 'di1ei2ee', 'dictionary key is not a string at byte 4'],
    ['a second value', 'i1ei2e', 'bytes after the value at byte 3'],
    ['trailing garbage', '4:spamX', 'bytes after the value at byte 6'],
    ['an unknown marker', 'x', 'unexpected byte 0x78 at byte 0'],
    ['33 nested lists', `${'l'.repeat(33)}${'e'.repeat(33)}`, 'nesting too deep at byte 32'],
    ['33 nested dictionaries', `${'d1:a'.repeat(33)}i1e${'e'.repeat(33)}`, 'nesting too deep at byte 128'],
    ['100,000 nested lists (a stack overflow, were depth not bounded)', 'l'.repeat(100_000), 'nesting too deep at byte 32'],
  ];
  for (const [name, input, error] of malformed) {
    test(`refuses ${name}`, () => {
      assert.deepEqual(decode(Buffer.from(input)), { ok: false, error });
    });
  }

  const value: fc.Arbitrary<BencodeValue> = fc.letrec<{ value: BencodeValue }>((tie) => ({
    value: fc.oneof(
      { maxDepth: 4 },
      fc.string({ unit: 'binary', maxLength: 20 }),
      fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
      fc.array(tie('value'), { maxLength: 5 }),
      fc.dictionary(fc.string({ unit: 'binary', maxLength: 8 }), tie('value'), { maxKeys: 5 }),
    ),
  })).value;

  test('property: decode(encode(x)) is x', () => {
    fc.assert(
      fc.property(value, (x) => {
        assert.deepEqual(decoded(encode(x)), plain(x));
      }),
      { numRuns: 2_000 },
    );
  });

  const neverThrows = (bytes: Uint8Array) => {
    const result = decode(Buffer.from(bytes));
    assert.equal(typeof result.ok, 'boolean');
    if (!result.ok) assert.match(result.error, / at byte \d+$/);
  };

  test('property: decode never throws on arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), neverThrows), { numRuns: 5_000 });
  });

  test('property: decode never throws on bencode-like fragments', () => {
    const fragment = fc.constantFrom('i', 'l', 'd', 'e', ':', '-', '0', '1', '4', '9', '4:spam', 'i-1e', '99999999999999999', '\xff');
    fc.assert(
      fc.property(fc.array(fragment, { maxLength: 40 }), (parts) => neverThrows(Buffer.from(parts.join(''), 'latin1'))),
      {
        numRuns: 5_000,
      },
    );
  });

  test('property: decode never throws on valid encodings cut short or with a byte changed', () => {
    fc.assert(
      fc.property(value, fc.nat(), fc.integer({ min: 0, max: 255 }), (x, at, byte) => {
        const bytes = encode(x);
        neverThrows(bytes.subarray(0, at % (bytes.length + 1)));
        const changed = Buffer.from(bytes);
        changed[at % changed.length] = byte;
        neverThrows(changed);
      }),
      { numRuns: 2_000 },
    );
  });
});
