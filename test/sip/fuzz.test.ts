/**
 * Property-based fuzzing of the parser, serializer and stream framer.
 *
 * Run counts (about 103,000 generated inputs in total) are sized to keep this
 * file around 10-20 s on a 2-core machine. Every parse must return (never
 * throw) in under 50 ms; anything it accepts must survive a serialize/parse
 * round trip unchanged, and anything it can answer must yield a response
 * that serializes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { buildResponse, createRequest, createResponse, SipHeaders, type SipMessage } from '../../src/sip/message.ts';
import { MAX_MESSAGE_SIZE, parseMessage, type ParseResult } from '../../src/sip/parser.ts';
import { serializeMessage } from '../../src/sip/serializer.ts';
import { SipStreamFramer, type FramerEvent } from '../../src/sip/framing.ts';
import { formatUri } from '../../src/sip/uri.ts';

const PARSE_BUDGET_MS = 50;

const RUNS = {
  mutatedMessages: 60_000,
  generatedRoundTrip: 15_000,
  syntaxSoup: 15_000,
  randomBytes: 5_000,
  framerMutated: 5_000,
  framerValidStreams: 3_000,
};

function comparable(message: SipMessage) {
  return {
    start: message.kind === 'request' ? [message.method, message.uri, message.version] : [message.status, message.reason, message.version],
    headers: [...message.headers].filter((field) => field.key !== 'content-length').map((field) => [field.key, field.name, [...field.values]]),
    body: message.body.toString('hex'),
  };
}

let slowestParseMs = 0;

function timeParse(input: Buffer): { result: ParseResult; elapsed: number } {
  const started = performance.now();
  const result = parseMessage(input);
  return { result, elapsed: performance.now() - started };
}

/** Parses within the time budget and checks the invariants every result must satisfy. */
function checkedParse(input: Buffer): ParseResult {
  const { result, elapsed: firstElapsed } = timeParse(input);
  let elapsed = firstElapsed;
  // A GC pause, a JIT deoptimization or a busy neighbour process can stall
  // any single call; an input that is really slow to parse stays slow when
  // measured again, so only the best of a few attempts must meet the budget.
  for (let attempt = 0; attempt < 3 && elapsed >= PARSE_BUDGET_MS; attempt++) {
    elapsed = Math.min(elapsed, timeParse(input).elapsed);
  }
  slowestParseMs = Math.max(slowestParseMs, elapsed);
  assert.ok(elapsed < PARSE_BUDGET_MS, `parse took ${elapsed.toFixed(1)} ms`);

  if (result.ok) {
    const wire = serializeMessage(result.value);
    const again = parseMessage(wire);
    if (!again.ok) assert.fail(`re-parse of serialized message failed: ${again.error.reason}\n${wire.toString('latin1')}`);
    assert.deepEqual(comparable(again.value), comparable(result.value));
  } else {
    assert.equal(typeof result.error.reason, 'string');
    const { reply } = result.error;
    if (reply !== undefined) {
      assert.equal(reply.request.kind, 'request');
      assert.notEqual(reply.request.method, 'ACK');
      serializeMessage(buildResponse(reply.request, reply.status, { toTag: 'fuzz' }));
    }
  }
  return result;
}

// ---------------------------------------------------------------------------
// Seed corpus for mutation

const SDP = 'v=0\r\no=- 20518 0 IN IP4 203.0.113.1\r\ns=-\r\nc=IN IP4 203.0.113.1\r\nt=0 0\r\nm=audio 54400 RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n';

function sip(lines: string[], body = ''): Buffer {
  return Buffer.from(`${lines.join('\r\n').replace('{LEN}', String(Buffer.byteLength(body)))}\r\n\r\n${body}`);
}

const SEEDS: Buffer[] = [
  sip(
    [
      'INVITE sip:+15551234567@agents.example.com;user=phone SIP/2.0',
      'Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK776asdhds;rport',
      'Max-Forwards: 70',
      'To: "Support Line" <sip:+15551234567@agents.example.com>',
      'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774',
      'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
      'CSeq: 314159 INVITE',
      'Contact: <sip:alice@203.0.113.1:5060;transport=udp>;expires=60',
      'Route: <sip:edge1.example.com;lr>, <sip:edge2.example.com;lr>',
      'Content-Type: application/sdp',
      'Content-Length: {LEN}',
    ],
    SDP,
  ),
  sip([
    'REGISTER sip:registrar.example.com SIP/2.0',
    'v: SIP/2.0/TCP [2001:db8::5]:5060;branch=z9hG4bKreg1',
    'f: <sip:agent7@example.com>;tag=a73kszlfl',
    't: <sip:agent7@example.com>',
    'i: 1j9FpLxk3uxtm8tn@[2001:db8::5]',
    'CSeq: 2 REGISTER',
    'm: <sip:agent7@[2001:db8::5]>;q=0.7;expires=3600, "Backup, Agent" <sip:agent7@192.0.2.9>;q=0.1',
    'Authorization: Digest username="agent7", realm="example.com", nonce="ea9c8e88df84f1cec4341ae6cbe5a359", uri="sip:registrar.example.com", response="dfe56131d1958046689d83306477ecc"',
    'l: 0',
  ]),
  sip(
    [
      'SIP/2.0 200 OK',
      'Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3',
      'Via: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK776asdhds;rport=5060;received=203.0.113.1',
      'Record-Route: <sip:proxy.example.com;lr>',
      'To: <sip:+15551234567@agents.example.com>;tag=a6c85cf',
      'From: "Alice" <sip:alice@atlanta.example.com>;tag=1928301774',
      'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
      'CSeq: 314159 INVITE',
      'Contact: <sip:agent@192.0.2.4>',
      'Content-Type: application/sdp',
      'Content-Length: {LEN}',
    ],
    SDP,
  ),
  sip([
    'OPTIONS sip:user@example.com SIP/2.0',
    'TO :',
    ' sip:user@example.com ;   tag    = 1918181833n',
    'from   : "J \\"R\\"" <sip:j@example.com>',
    '  ;',
    '  tag = 98asjd8',
    'MaX-fOrWaRdS: 0068',
    'Call-ID: wsinv.ndaksdj@192.0.2.1',
    'cseq: 0009',
    '  OPTIONS',
    'Via  : SIP  /   2.0',
    ' /UDP',
    '    192.0.2.2;branch=390skdjuw',
    's :',
    'Content-Length   : 0',
  ]),
  sip([
    'SIP/2.0 401 Unauthorized',
    'Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKnashds7;received=192.0.2.4',
    'From: <sip:bob@example.com>;tag=a73kszlfl',
    'To: <sip:bob@example.com>;tag=1410948204',
    'Call-ID: 1j9FpLxk3uxtm8tn@example.com',
    'CSeq: 1 REGISTER',
    'WWW-Authenticate: Digest realm="example.com", qop="auth", nonce="ea9c8e88df84f1cec4341ae6cbe5a359", opaque="", stale=FALSE, algorithm=MD5',
    'Content-Length: 0',
  ]),
  sip(
    [
      'BYE sip:agent@192.0.2.4 SIP/2.0',
      'Via: SIP/2.0/TCP 203.0.113.1;branch=z9hG4bKbye1',
      'Max-Forwards: 69',
      'From: <sip:alice@atlanta.example.com>;tag=1928301774',
      'To: <sip:+15551234567@agents.example.com>;tag=a6c85cf',
      'Call-ID: a84b4c76e66710@pc33.atlanta.example.com',
      'CSeq: 314160 BYE',
      'Content-Type: multipart/mixed;boundary=x',
      'Content-Length: {LEN}',
    ],
    '--x\r\nContent-Type: text/plain\r\n\r\n\u0000\u00ff binary \u0001\r\n--x--\r\n',
  ),
];

// ---------------------------------------------------------------------------
// Mutations

const SPECIAL_INSERTS = [
  '\r',
  '\n',
  '\r\n',
  '\0',
  ':',
  '"',
  '<',
  '>',
  ',',
  ';',
  '\\',
  '\r\n ',
  '\r\n\t',
  '\r\n\r\n',
  ' ',
  '\t',
  '%',
  '=',
  '[',
  ']',
  '@',
  '?',
  '&',
  '/',
  '99999999999999999999',
  '4294967296',
  '-1',
  '0',
  'SIP/2.0',
  'sip:',
  '<sip:a@b>',
  'z9hG4bK',
  ';rport',
  ';received=',
  ';tag=',
  '\u00ff',
  'é',
  '\ud83d\ude00',
  '\x7f',
  '\x01',
];

const HEADER_NAMES = [
  'Via',
  'v',
  'From',
  'f',
  'To',
  't',
  'Call-ID',
  'i',
  'CSeq',
  'Max-Forwards',
  'Content-Length',
  'l',
  'Contact',
  'm',
  'Route',
  'Record-Route',
  'Expires',
  'X-Custom',
  'Bad Name',
  '',
  ':',
  'Content-Type',
];

type Mutation =
  | { kind: 'flip'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'delete'; at: number; length: number }
  | { kind: 'duplicateLine'; line: number }
  | { kind: 'swapLines'; a: number; b: number }
  | { kind: 'replaceValue'; line: number; value: string }
  | { kind: 'insertHeader'; line: number; name: string; value: string }
  | { kind: 'hugeNumber'; at: number; digits: string };

const headerValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.constantFrom('', ' ', '"unterminated', '<sip:a@b', 'SIP/2.0/UDP', '1 INVITE', '-5', '99999999999', ';;,,;;', '*'),
);

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.constantFrom(...SPECIAL_INSERTS) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 30 }) }),
  fc.record({ kind: fc.constant('duplicateLine' as const), line: fc.nat() }),
  fc.record({ kind: fc.constant('swapLines' as const), a: fc.nat(), b: fc.nat() }),
  fc.record({ kind: fc.constant('replaceValue' as const), line: fc.nat(), value: headerValue }),
  fc.record({
    kind: fc.constant('insertHeader' as const),
    line: fc.nat(),
    name: fc.oneof(fc.constantFrom(...HEADER_NAMES), fc.string({ maxLength: 12 })),
    value: headerValue,
  }),
  fc.record({ kind: fc.constant('hugeNumber' as const), at: fc.nat(), digits: fc.stringMatching(/^[0-9]{10,40}$/) }),
);

function applyMutation(input: Buffer, mutation: Mutation): Buffer {
  const length = input.length;
  const pick = (n: number, max: number) => (max <= 0 ? 0 : n % max);
  switch (mutation.kind) {
    case 'flip': {
      if (length === 0) return input;
      const copy = Buffer.from(input);
      copy[pick(mutation.at, length)] = mutation.value;
      return copy;
    }
    case 'truncate':
      return input.subarray(0, pick(mutation.at, length + 1));
    case 'insert': {
      const at = pick(mutation.at, length + 1);
      return Buffer.concat([input.subarray(0, at), Buffer.from(mutation.text), input.subarray(at)]);
    }
    case 'delete': {
      const at = pick(mutation.at, length + 1);
      return Buffer.concat([input.subarray(0, at), input.subarray(at + mutation.length)]);
    }
    case 'hugeNumber': {
      // Replace the digit run nearest to the chosen offset.
      const text = input.toString('latin1');
      const digits = /[0-9]+/g;
      digits.lastIndex = pick(mutation.at, length + 1);
      const match = digits.exec(text) ?? /[0-9]+/.exec(text);
      if (match === null) return input;
      return Buffer.from(text.slice(0, match.index) + mutation.digits + text.slice(match.index + match[0].length), 'latin1');
    }
    default: {
      // Line-level edits on the header section; the body is kept as is.
      const text = input.toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      const headerText = split === -1 ? text : text.slice(0, split);
      const rest = split === -1 ? '' : text.slice(split);
      const lines = headerText.split('\r\n');
      const line = (n: number) => 1 + pick(n, lines.length - 1);
      if (lines.length < 2) return input;
      if (mutation.kind === 'duplicateLine') {
        const at = line(mutation.line);
        lines.splice(at, 0, lines[at]);
      } else if (mutation.kind === 'swapLines') {
        const a = line(mutation.a);
        const b = line(mutation.b);
        [lines[a], lines[b]] = [lines[b], lines[a]];
      } else if (mutation.kind === 'replaceValue') {
        const at = line(mutation.line);
        const colon = lines[at].indexOf(':');
        lines[at] = colon === -1 ? mutation.value : `${lines[at].slice(0, colon + 1)} ${mutation.value}`;
      } else {
        lines.splice(line(mutation.line), 0, `${mutation.name}: ${mutation.value}`);
      }
      // Re-encode edited text as UTF-8 so inserted non-Latin-1 text stays valid.
      return Buffer.concat([Buffer.from(lines.join('\r\n'), 'utf8'), Buffer.from(rest, 'latin1')]);
    }
  }
}

const mutatedMessage = fc
  .tuple(fc.constantFrom(...SEEDS), fc.array(mutationArb, { minLength: 1, maxLength: 6 }))
  .map(([seed, mutations]) => mutations.reduce(applyMutation, seed));

// ---------------------------------------------------------------------------
// Generators of valid messages

const token = fc.stringMatching(/^[A-Za-z0-9\-.!%*_+`'~]{1,16}$/);
const hostname = fc.oneof(
  fc.stringMatching(/^[a-z][a-z0-9-]{0,12}(\.[a-z][a-z0-9-]{0,8}){0,2}\.(com|net|org)$/),
  fc.ipV4(),
  fc.constantFrom('::1', '2001:db8::1', 'fe80::1:2'),
);
const port = fc.option(fc.integer({ min: 1, max: 65535 }), { nil: null });
/** Printable text without CR, LF or NUL and without leading/trailing LWS (the parser trims those). */
const safeText = (maxLength: number) =>
  fc
    .string({
      unit: fc.oneof(fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }), fc.constantFrom('é', 'ж', '大', '😀', '\t')),
      maxLength,
    })
    .map((text) => text.replace(/[\r\n\0]/g, '').replace(/^[ \t]+|[ \t]+$/g, ''));

const sipUri = fc
  .record({
    scheme: fc.constantFrom('sip' as const, 'sips' as const),
    user: fc.option(fc.oneof(token, fc.stringMatching(/^\+?[0-9]{3,15}$/), safeText(10)), { nil: null }),
    password: fc.constant(null),
    host: hostname,
    port,
    params: fc.array(fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), fc.option(token, { nil: null }))).map((entries) => new Map(entries)),
    headers: fc.constant([] as Array<[string, string]>),
  })
  .map((uri) => formatUri({ ...uri, user: uri.user === '' ? null : uri.user }));

const telUri = fc.stringMatching(/^\+[0-9]{4,15}$/).map((number) => `tel:${number}`);
const quotedName = safeText(20).map((name) => `"${name.replace(/["\\]/g, '\\$&')}"`);
const params = fc
  .array(fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,8}$/), fc.option(fc.oneof(token, quotedName), { nil: null })), { maxLength: 3 })
  .map((entries) => entries.map(([name, value]) => (value === null ? `;${name}` : `;${name}=${value}`)).join(''));
const nameAddr = fc
  .tuple(fc.option(fc.oneof(quotedName, token), { nil: null }), fc.oneof(sipUri, telUri), params)
  .map(([display, uri, extra]) => `${display === null ? '' : `${display} `}<${uri}>${extra}`);
const via = fc
  .tuple(fc.constantFrom('UDP', 'TCP', 'TLS', 'SCTP'), hostname, port, token, fc.boolean())
  .map(
    ([transport, host, viaPort, branch, rport]) =>
      `SIP/2.0/${transport} ${host.includes(':') ? `[${host}]` : host}${viaPort === null ? '' : `:${viaPort}`};branch=z9hG4bK${branch}${rport ? ';rport' : ''}`,
  );
const extensionHeader = fc.tuple(
  token.map((name) => `X-${name}`),
  safeText(60),
);

const generatedMessage: fc.Arbitrary<SipMessage> = fc
  .record({
    isRequest: fc.boolean(),
    method: fc.oneof(fc.constantFrom('INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'REGISTER', 'MESSAGE', 'NOTIFY'), token),
    requestUri: fc.oneof(sipUri, telUri),
    status: fc.integer({ min: 100, max: 699 }),
    reason: safeText(30),
    vias: fc.array(via, { minLength: 1, maxLength: 4 }),
    from: nameAddr,
    to: nameAddr,
    callId: fc.tuple(token, fc.option(hostname, { nil: null })).map(([id, host]) => (host === null ? id : `${id}@${host}`)),
    seq: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
    maxForwards: fc.option(fc.integer({ min: 0, max: 255 }), { nil: null }),
    contacts: fc.array(nameAddr, { maxLength: 3 }),
    routes: fc.array(
      sipUri.map((uri) => `<${uri};lr>`),
      { maxLength: 3 },
    ),
    extensions: fc.array(extensionHeader, { maxLength: 5 }),
    body: fc.uint8Array({ maxLength: 400 }),
  })
  .map((spec) => {
    const headers = new SipHeaders();
    for (const value of spec.vias) headers.append('Via', value);
    if (spec.maxForwards !== null) headers.append('Max-Forwards', String(spec.maxForwards));
    headers.append('From', spec.from);
    headers.append('To', spec.to);
    headers.append('Call-ID', spec.callId);
    headers.append('CSeq', `${spec.seq} ${spec.method}`);
    for (const value of spec.contacts) headers.append('Contact', value);
    for (const value of spec.routes) headers.append(spec.isRequest ? 'Route' : 'Record-Route', value);
    for (const [name, value] of spec.extensions) headers.append(name, value);
    const body = Buffer.from(spec.body);
    if (body.length > 0) headers.append('Content-Type', 'application/octet-stream');
    return spec.isRequest
      ? createRequest({ method: spec.method, uri: spec.requestUri, headers, body })
      : createResponse({ status: spec.status, reason: spec.reason, headers, body });
  });

const SYNTAX_PIECES = [
  'INVITE',
  'ACK',
  'REGISTER',
  ' ',
  '  ',
  'sip:',
  'sips:',
  'tel:+1',
  'user',
  '@',
  'example.com',
  '[::1]',
  ':5060',
  'SIP/2.0',
  'SIP/2.0 200 OK',
  '\r\n',
  '\n',
  '\r',
  '\r\n ',
  '\r\n\r\n',
  ':',
  'Via',
  'v',
  'SIP/2.0/UDP',
  'h',
  ';branch=z9hG4bK1',
  ';rport',
  'To',
  'From',
  'f',
  't',
  'Call-ID',
  'i',
  'CSeq',
  '1 INVITE',
  'Content-Length',
  'l',
  '0',
  '5',
  '99999999999',
  'Max-Forwards',
  '70',
  '<',
  '>',
  '"',
  '\\',
  ',',
  ';',
  '=',
  'tag',
  '\0',
  '\t',
  'é',
  '*',
  'Contact',
  'Route',
  'Record-Route',
  '?',
  '&',
  '%41',
  '%',
];
const syntaxSoup = fc.array(fc.constantFrom(...SYNTAX_PIECES), { maxLength: 120 }).map((pieces) => Buffer.from(pieces.join('')));

// ---------------------------------------------------------------------------
// Properties

test(`parser survives ${RUNS.mutatedMessages} mutated real messages`, () => {
  // Sanity: every seed is valid before mutation.
  for (const seed of SEEDS) assert.ok(parseMessage(seed).ok);
  let accepted = 0;
  let answerable = 0;
  fc.assert(
    fc.property(mutatedMessage, (input) => {
      const result = checkedParse(input);
      if (result.ok) accepted++;
      else if (result.error.reply) answerable++;
    }),
    { numRuns: RUNS.mutatedMessages },
  );
  // Mutations should exercise all three outcomes, not just one.
  assert.ok(accepted > RUNS.mutatedMessages / 50, `accepted ${accepted}`);
  assert.ok(answerable > RUNS.mutatedMessages / 50, `answerable ${answerable}`);
});

test(`serialize/parse round trip holds for ${RUNS.generatedRoundTrip} generated valid messages`, () => {
  fc.assert(
    fc.property(generatedMessage, (message) => {
      const wire = serializeMessage(message);
      const result = checkedParse(wire);
      if (!result.ok) assert.fail(`generated message rejected: ${result.error.reason}\n${wire.toString()}`);
      assert.deepEqual(comparable(result.value), comparable(message));
      assert.deepEqual(serializeMessage(result.value), wire);
    }),
    { numRuns: RUNS.generatedRoundTrip },
  );
});

test(`parser survives ${RUNS.syntaxSoup} random arrangements of SIP syntax`, () => {
  fc.assert(
    fc.property(syntaxSoup, (input) => void checkedParse(input)),
    { numRuns: RUNS.syntaxSoup },
  );
});

test(`parser survives ${RUNS.randomBytes} random byte strings`, () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 3000 }), (bytes) => void checkedParse(Buffer.from(bytes))),
    { numRuns: RUNS.randomBytes },
  );
});

test('pathological inputs parse within budget', () => {
  const head = 'INVITE sip:a@b SIP/2.0\r\n';
  const cases = [
    `${head}Via: ${'SIP/2.0/UDP h;branch=z9hG4bK1,'.repeat(1900)}x\r\n\r\n`,
    `${head}Via: SIP/2.0/UDP h${';p=1'.repeat(15000)}\r\n\r\n`,
    `${head}Contact: ${'"'.repeat(60000)}\r\n\r\n`,
    `${head}Contact: ${'<'.repeat(60000)}\r\n\r\n`,
    `${head}Contact: "${'\\"'.repeat(30000)}\r\n\r\n`,
    `${head}X-Folded: a${'\r\n b'.repeat(15000)}\r\n\r\n`,
    `${head}${'X: y\r\n'.repeat(10000)}\r\n`,
    `${head}${'Via: SIP/2.0/UDP h\r\n'.repeat(3000)}\r\n`,
    `${head}CSeq: ${'9'.repeat(60000)} INVITE\r\n\r\n`,
    `${head}${'\n'.repeat(60000)}`,
    `${'\r\n'.repeat(30000)}${head}\r\n`,
    `SIP/2.0 200 ${'x'.repeat(65000)}\r\n\r\n`,
    `${head}From: ${'a '.repeat(30000)}<sip:a@b>\r\n\r\n`,
    `${head}To: <sip:${'a'.repeat(60000)}@b>\r\n\r\n`,
  ];
  for (const text of cases) {
    const input = Buffer.from(text);
    assert.ok(input.length <= MAX_MESSAGE_SIZE + 10, 'case should be near the size limit');
    checkedParse(input);
  }
});

function checkFramerEvents(events: FramerEvent[], failedBefore: boolean): boolean {
  let failed = failedBefore;
  for (const event of events) {
    assert.equal(failed, false, 'no events after a fatal error');
    if (event.type === 'error') failed = true;
    if (event.type === 'message') {
      assert.ok(event.data.length <= MAX_MESSAGE_SIZE);
      checkedParse(event.data);
    }
  }
  return failed;
}

const chunkSizes = fc.array(fc.integer({ min: 1, max: 700 }), { minLength: 1, maxLength: 20 });

test(`stream framer survives ${RUNS.framerMutated} mutated streams in random chunks`, () => {
  fc.assert(
    fc.property(fc.array(mutatedMessage, { minLength: 1, maxLength: 4 }), chunkSizes, (inputs, sizes) => {
      const stream = Buffer.concat(inputs);
      const framer = new SipStreamFramer();
      let failed = false;
      let offset = 0;
      for (let i = 0; offset < stream.length; i++) {
        const size = sizes[i % sizes.length];
        failed = checkFramerEvents(framer.push(stream.subarray(offset, offset + size)), failed);
        offset += size;
      }
      assert.equal(framer.failed, failed);
    }),
    { numRuns: RUNS.framerMutated },
  );
});

test(`stream framer recovers exactly the messages of ${RUNS.framerValidStreams} valid streams`, () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(generatedMessage, fc.constantFrom('', '\r\n', '\r\n\r\n')), { minLength: 1, maxLength: 5 }),
      chunkSizes,
      (items, sizes) => {
        const wires = items.map(([message]) => serializeMessage(message));
        const stream = Buffer.concat(items.flatMap(([, keepAlive], i) => [Buffer.from(keepAlive), wires[i]]));
        const expectedPings = items.filter(([, keepAlive]) => keepAlive === '\r\n\r\n').length;
        const framer = new SipStreamFramer();
        const received: Buffer[] = [];
        let pings = 0;
        let offset = 0;
        for (let i = 0; offset < stream.length; i++) {
          const size = sizes[i % sizes.length];
          for (const event of framer.push(stream.subarray(offset, offset + size))) {
            if (event.type === 'error') assert.fail(event.error);
            if (event.type === 'ping') pings++;
            else received.push(event.data);
          }
          offset += size;
        }
        assert.deepEqual(received, wires);
        assert.equal(pings, expectedPings);
        assert.equal(framer.bufferedLength, 0);
      },
    ),
    { numRuns: RUNS.framerValidStreams },
  );
});

test('parse time summary', () => {
  assert.ok(slowestParseMs < PARSE_BUDGET_MS);
  console.log(`# slowest single parse: ${slowestParseMs.toFixed(2)} ms`);
});
