import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatHost, formatUri, hostKind, parseSipUri, parseUri, uriScheme, type Uri } from '../../src/sip/uri.ts';

interface UriCase {
  input: string;
  /** Expected parse (params and headers as arrays for readability). */
  expected: Record<string, unknown>;
  /** Expected formatting when it differs from the input (escaping normalized). */
  formatted?: string;
}

function plain(uri: Uri): Record<string, unknown> {
  return uri.scheme === 'tel'
    ? { scheme: uri.scheme, number: uri.number, params: [...uri.params] }
    : { ...uri, params: [...uri.params], headers: uri.headers };
}

const sip = (fields: Record<string, unknown>) => ({
  scheme: 'sip',
  user: null,
  password: null,
  port: null,
  params: [],
  headers: [],
  ...fields,
});

const valid: UriCase[] = [
  { input: 'sip:example.com', expected: sip({ host: 'example.com' }) },
  { input: 'sip:alice@atlanta.example.com', expected: sip({ user: 'alice', host: 'atlanta.example.com' }) },
  {
    input: 'SIP:alice@atlanta.example.com',
    expected: sip({ user: 'alice', host: 'atlanta.example.com' }),
    formatted: 'sip:alice@atlanta.example.com',
  },
  { input: 'sips:alice@atlanta.example.com:5061', expected: sip({ scheme: 'sips', user: 'alice', host: 'atlanta.example.com', port: 5061 }) },
  {
    input: 'sip:alice:secretword@atlanta.example.com;transport=tcp',
    expected: sip({ user: 'alice', password: 'secretword', host: 'atlanta.example.com', params: [['transport', 'tcp']] }),
  },
  { input: 'sip:alice:@atlanta.example.com', expected: sip({ user: 'alice', password: '', host: 'atlanta.example.com' }) },
  {
    input: 'sip:+1-212-555-1212:1234@gateway.example.com;user=phone',
    expected: sip({ user: '+1-212-555-1212', password: '1234', host: 'gateway.example.com', params: [['user', 'phone']] }),
  },
  { input: 'sip:192.0.2.4', expected: sip({ host: '192.0.2.4' }) },
  { input: 'sip:bob@192.0.2.4:5080', expected: sip({ user: 'bob', host: '192.0.2.4', port: 5080 }) },
  { input: 'sip:[2001:db8::10]', expected: sip({ host: '2001:db8::10' }) },
  {
    input: 'sip:bob@[2001:db8::10]:5070;transport=udp',
    expected: sip({ user: 'bob', host: '2001:db8::10', port: 5070, params: [['transport', 'udp']] }),
  },
  { input: 'sip:[::ffff:192.0.2.1]:5060', expected: sip({ host: '::ffff:192.0.2.1', port: 5060 }) },
  { input: 'sip:proxy.example.com;lr', expected: sip({ host: 'proxy.example.com', params: [['lr', null]] }) },
  {
    input: 'sip:proxy.example.com;LR;Transport=TCP',
    expected: sip({
      host: 'proxy.example.com',
      params: [
        ['lr', null],
        ['transport', 'TCP'],
      ],
    }),
    formatted: 'sip:proxy.example.com;lr;transport=TCP',
  },
  {
    input: 'sip:atlanta.example.com;method=REGISTER?to=alice%40atlanta.example.com',
    expected: sip({ host: 'atlanta.example.com', params: [['method', 'REGISTER']], headers: [['to', 'alice@atlanta.example.com']] }),
  },
  {
    input: 'sip:alice@atlanta.example.com?subject=project%20x&priority=urgent',
    expected: sip({
      user: 'alice',
      host: 'atlanta.example.com',
      headers: [
        ['subject', 'project x'],
        ['priority', 'urgent'],
      ],
    }),
  },
  {
    input: 'sip:alice@atlanta.example.com?Replaces=abc%40def%3Bto-tag%3D1%3Bfrom-tag%3D2',
    expected: sip({ user: 'alice', host: 'atlanta.example.com', headers: [['Replaces', 'abc@def;to-tag=1;from-tag=2']] }),
  },
  { input: 'sip:alice;day=tuesday@atlanta.example.com', expected: sip({ user: 'alice;day=tuesday', host: 'atlanta.example.com' }) },
  { input: 'sip:user;par=u%40example.net@example.com', expected: sip({ user: 'user;par=u@example.net', host: 'example.com' }) },
  { input: 'sip:sips%3Auser%40example.com@example.net', expected: sip({ user: 'sips:user@example.com', host: 'example.net' }) },
  { input: 'sip:%75se%72@example.com', expected: sip({ user: 'user', host: 'example.com' }), formatted: 'sip:user@example.com' },
  { input: 'sip:I%20have%20spaces@example.net', expected: sip({ user: 'I have spaces', host: 'example.net' }) },
  { input: 'sip:null-%00-null@example.com', expected: sip({ user: 'null-\0-null', host: 'example.com' }) },
  { input: 'sip:%E5%A4%A7@example.com', expected: sip({ user: '大', host: 'example.com' }) },
  { input: 'sip:%FF@example.com', expected: sip({ user: '\u00ff', host: 'example.com' }), formatted: 'sip:%C3%BF@example.com' },
  {
    input: 'sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31',
    expected: sip({
      user: 'caller',
      host: 'host5.example.net',
      params: [
        ['lr', null],
        ['name', 'value%41'],
      ],
    }),
    formatted: 'sip:caller@host5.example.net;lr;name=value%2541',
  },
  {
    input: "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
    expected: sip({
      user: "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*",
      password: "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)",
      host: 'example.com',
    }),
  },
  { input: 'sip:*67#5551234@example.com', expected: sip({ user: '*67#5551234', host: 'example.com' }), formatted: 'sip:*67%235551234@example.com' },
  { input: 'sip:alice@my_host.example.com', expected: sip({ user: 'alice', host: 'my_host.example.com' }) },
  { input: 'sip:alice@example.com.', expected: sip({ user: 'alice', host: 'example.com.' }) },
  {
    input: 'sip:alice@example.com;maddr=239.255.255.1;ttl=15',
    expected: sip({
      user: 'alice',
      host: 'example.com',
      params: [
        ['maddr', '239.255.255.1'],
        ['ttl', '15'],
      ],
    }),
  },
  {
    input: 'sip:alice@example.com;x=1;x=2',
    expected: sip({ user: 'alice', host: 'example.com', params: [['x', '1']] }),
    formatted: 'sip:alice@example.com;x=1',
  },
  { input: 'sip:alice@example.com;empty=', expected: sip({ user: 'alice', host: 'example.com', params: [['empty', '']] }) },
  { input: 'sip:[2001:db8::1];maddr=[2001:db8::2]', expected: sip({ host: '2001:db8::1', params: [['maddr', '[2001:db8::2]']] }) },
  { input: 'tel:+1-201-555-0123', expected: { scheme: 'tel', number: '+1-201-555-0123', params: [] } },
  {
    input: 'TEL:+12015550123;ext=42',
    expected: { scheme: 'tel', number: '+12015550123', params: [['ext', '42']] },
    formatted: 'tel:+12015550123;ext=42',
  },
  { input: 'tel:7042;phone-context=example.com', expected: { scheme: 'tel', number: '7042', params: [['phone-context', 'example.com']] } },
  { input: 'tel:*67#;phone-context=+1', expected: { scheme: 'tel', number: '*67#', params: [['phone-context', '+1']] } },
];

for (const { input, expected, formatted } of valid) {
  test(`parses ${JSON.stringify(input)}`, () => {
    const uri = parseUri(input);
    assert.ok(uri, 'should parse');
    assert.deepEqual(plain(uri), expected);
    const text = formatUri(uri);
    assert.equal(text, formatted ?? input.replace(/^(sips?|tel):/i, (scheme) => scheme.toLowerCase()));
    const reparsed = parseUri(text);
    assert.ok(reparsed, 'formatted URI should parse');
    assert.deepEqual(plain(reparsed), plain(uri), 'round trip');
  });
}

const invalid = [
  '',
  'sip',
  'sip:',
  'sip:@example.com',
  'sip:alice@',
  'sip:alice@example.com:',
  'sip:alice@example.com:65536',
  'sip:alice@example.com:123456',
  'sip:alice@example.com:50a',
  'sip:alice@exa mple.com',
  'sip:alice@<example.com>',
  'sip:alice@"example.com"',
  'sip:alice@example..com',
  'sip:alice@-bad!.com',
  'sip:alice@300.1.1.1',
  'sip:alice@1.2.3',
  'sip:alice@[2001:db8::1',
  'sip:alice@[not-ipv6]',
  'sip:alice@[2001:db8::1]x',
  'sip:alice@2001:db8::1',
  'sip:al%ZZice@example.com',
  'sip:alice%4@example.com',
  'sip:alice@example.com;=value',
  'sip:alice@example.com;;lr',
  'sip:alice@example.com?',
  'sip:alice@example.com?noequals',
  'sip:alice@example.com?=x',
  'sip:alice@exämple.com',
  'http://example.com',
  'mailto:alice@example.com',
  '<sip:alice@example.com>',
  'tel:',
  'tel:abc-xyz',
  'tel:---',
  'tel:+1 555',
];

for (const input of invalid) {
  test(`rejects ${JSON.stringify(input)}`, () => {
    assert.equal(parseUri(input), null);
  });
}

test('parseSipUri only accepts sip and sips', () => {
  assert.equal(parseSipUri('tel:+15551234567'), null);
  assert.equal(parseSipUri('sips:a@b.example')?.scheme, 'sips');
});

test('formatUri escapes what the grammar requires', () => {
  assert.equal(
    formatUri({
      scheme: 'sip',
      user: 'a@b:c d%',
      password: 'p@ss:w',
      host: '2001:db8::1',
      port: 5060,
      params: new Map<string, string | null>([
        ['x y', 'v;w'],
        ['lr', null],
      ]),
      headers: [['Subject', 'hello world&more?']],
    }),
    'sip:a%40b%3Ac%20d%25:p%40ss%3Aw@[2001:db8::1]:5060;x%20y=v%3Bw;lr?Subject=hello%20world%26more?',
  );
});

test('uriScheme, hostKind and formatHost', () => {
  assert.equal(uriScheme('SIPS:x'), 'sips');
  assert.equal(uriScheme('soap.beep://192.0.2.103:3002'), 'soap.beep');
  assert.equal(uriScheme('1sip:x'), null);
  assert.equal(uriScheme('<sip:x>'), null);
  assert.equal(uriScheme('nocolon'), null);
  assert.equal(hostKind('example.com'), 'hostname');
  assert.equal(hostKind('192.0.2.1'), 'ipv4');
  assert.equal(hostKind('::1'), 'ipv6');
  assert.equal(hostKind('999.0.0.1'), null);
  assert.equal(hostKind(''), null);
  assert.equal(formatHost('::1'), '[::1]');
  assert.equal(formatHost('example.com'), 'example.com');
});
