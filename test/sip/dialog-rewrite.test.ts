import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { shiftCSeqReferences } from '../../src/sip/dialog-rewrite.ts';
import { SipHeaders, type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.ts';
import { parseMessage } from '../../src/sip/parser.ts';
import { SipProxy, type ProxyTransport } from '../../src/sip/proxy.ts';
import type { Destination, MessageSource } from '../../src/sip/transport.ts';

/**
 * The rewritten dialog of an outbound call, over a fake transport: a runtime calls out through
 * the proxy, the carrier challenges, the proxy answers with CSeq + 1, and from then on every
 * CSeq reference of the runtime's requests (CSeq, and a PRACK's RAck) is one higher towards the
 * carrier and back to what the runtime sent in the responses it gets. The carrier's own requests
 * pass as they are.
 */

const RUNTIME: MessageSource = { transport: 'udp', address: '192.0.2.10', port: 5070, connection: null };
const CARRIER: MessageSource = { transport: 'udp', address: '198.51.100.20', port: 5060, connection: null };
const PROXY = '192.0.2.1:5060';

class FakeTransport implements ProxyTransport {
  readonly sent: Array<{ message: SipMessage; to: Destination | null }> = [];

  send(message: SipMessage, destination: Destination): Promise<void> {
    this.sent.push({ message, to: destination });
    return Promise.resolve();
  }

  sendResponse(response: SipResponse): Promise<void> {
    this.sent.push({ message: response, to: null });
    return Promise.resolve();
  }

  sendToSource(message: SipMessage): Promise<void> {
    this.sent.push({ message, to: null });
    return Promise.resolve();
  }

  /** The messages sent since the last call, oldest first. */
  take(): SipMessage[] {
    return this.sent.splice(0).map((sent) => sent.message);
  }
}

function parse(lines: string[]): SipMessage {
  const result = parseMessage([...lines, 'Content-Length: 0', '', ''].join('\r\n'));
  assert.ok(result.ok, result.ok ? '' : result.error.reason);
  return result.value;
}

function proxyFor(t: TestContext): { proxy: SipProxy; transport: FakeTransport } {
  const transport = new FakeTransport();
  const proxy = new SipProxy({
    transport,
    host: '192.0.2.1',
    port: 5060,
    timers: { t1: 10_000 },
    route: () => ({
      action: 'forward',
      target: 'sip:+15557770001@198.51.100.20:5060',
      from: { uri: 'sip:+15550100000@carrier.example', displayName: 'Acme' },
      credentials: { username: 'trunk', password: 'secret' },
    }),
  });
  t.after(() => proxy.close());
  return { proxy, transport };
}

const request = (message: SipMessage | undefined, method: string): SipRequest => {
  assert.ok(
    message?.kind === 'request' && message.method === method,
    `a ${method}, got ${message?.kind === 'request' ? message.method : message?.kind}`,
  );
  return message;
};
const response = (message: SipMessage | undefined, status: number): SipResponse => {
  assert.ok(message?.kind === 'response' && message.status === status, `a ${status}`);
  return message;
};

/** A carrier's response to what the proxy sent: Via, From, To, Call-ID, CSeq copied. */
function answer(to: SipRequest, status: number, reason: string, extra: string[] = []): SipMessage {
  const toHeader = to.headers.get('to')!;
  return parse([
    `SIP/2.0 ${status} ${reason}`,
    ...to.headers.getAll('via').map((via) => `Via: ${via}`),
    `From: ${to.headers.get('from')}`,
    `To: ${toHeader.includes('tag=') ? toHeader : `${toHeader};tag=carrier`}`,
    `Call-ID: ${to.headers.get('call-id')}`,
    `CSeq: ${to.headers.get('cseq')}`,
    ...extra,
  ]);
}

test('CSeq references move for every method the caller sends in the dialog, RAck included', () => {
  const table: Array<[method: string, extra: Array<[string, string]>, cseq: string, rack: string | undefined]> = [
    ['ACK', [], '2 ACK', undefined],
    ['BYE', [], '3 BYE', undefined],
    ['INVITE', [], '3 INVITE', undefined],
    ['UPDATE', [], '3 UPDATE', undefined],
    ['INFO', [], '3 INFO', undefined],
    ['PRACK', [['RAck', '1 1 INVITE']], '3 PRACK', '1 2 INVITE'],
    ['PRACK', [['RAck', 'garbage']], '3 PRACK', 'garbage'],
  ];
  for (const [method, extra, cseq, rack] of table) {
    const headers = new SipHeaders([['CSeq', `${method === 'ACK' ? 1 : 2} ${method}`], ...extra]);
    shiftCSeqReferences(headers, 1);
    assert.equal(headers.get('cseq'), cseq, method);
    assert.equal(headers.get('rack'), rack, `${method} RAck`);
  }
  const untouched = new SipHeaders([['CSeq', '4294967295 BYE']]);
  shiftCSeqReferences(untouched, 1);
  assert.equal(untouched.get('cseq'), '4294967295 BYE', 'no wrap past 2^32 - 1');
});

test('after a digest re-send, the runtime’s PRACK, UPDATE, INFO, re-INVITE, ACK and BYE are shifted, their answers restored', (t) => {
  const { proxy, transport } = proxyFor(t);
  const tag = 'runtime-tag';
  const dialogLines = (method: string, cseq: number, routes: string[], extra: string[] = []) => [
    `${method} sip:+15557770001@198.51.100.20:5060 SIP/2.0`,
    `Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK-${method}-${cseq}`,
    'Max-Forwards: 70',
    ...routes.map((route) => `Route: ${route}`),
    `From: "Agent" <sip:agent@192.0.2.10>;tag=${tag}`,
    'To: <sip:+15557770001@192.0.2.1>;tag=carrier',
    'Call-ID: rewrite-test@runtime',
    `CSeq: ${cseq} ${method}`,
    ...extra,
  ];

  proxy.receive(
    parse([
      `INVITE sip:+15557770001@${PROXY} SIP/2.0`,
      'Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK-invite',
      'Max-Forwards: 70',
      `From: "Agent" <sip:agent@192.0.2.10>;tag=${tag}`,
      `To: <sip:+15557770001@${PROXY}>`,
      'Call-ID: rewrite-test@runtime',
      'CSeq: 1 INVITE',
      'Contact: <sip:agent@192.0.2.10:5070>',
      'Supported: 100rel',
    ]),
    RUNTIME,
  );
  const sent = transport.take();
  response(
    sent.find((m) => m.kind === 'response'),
    100,
  );
  const first = request(
    sent.find((m) => m.kind === 'request'),
    'INVITE',
  );
  assert.equal(first.headers.get('cseq'), '1 INVITE');
  assert.match(first.headers.get('from')!, /^"Acme" <sip:\+15550100000@carrier\.example>;tag=runtime-tag$/);

  proxy.receive(
    answer(first, 407, 'Proxy Authentication Required', ['Proxy-Authenticate: Digest realm="carrier", nonce="n1", qop="auth", algorithm=MD5']),
    CARRIER,
  );
  const resend = request(
    transport.take().find((m) => m.kind === 'request' && m.method === 'INVITE'),
    'INVITE',
  );
  assert.equal(resend.headers.get('cseq'), '2 INVITE', 'the re-send: CSeq + 1');
  assert.match(resend.headers.get('proxy-authorization')!, /^Digest username="trunk"/);
  const recordRoute = resend.headers.get('record-route')!;
  assert.match(recordRoute, /;dpr=[\w-]+;dpcs=1;dpt=[0-9a-z]+;dps=[\w-]+>$/, 'the offset in the signed Record-Route');

  // A reliable 183 comes back with the caller's CSeq.
  proxy.receive(
    answer(resend, 183, 'Session Progress', [
      'Require: 100rel',
      'RSeq: 1',
      `Record-Route: ${recordRoute}`,
      'Contact: <sip:carrier@198.51.100.20:5060>',
    ]),
    CARRIER,
  );
  const progress = response(transport.take()[0], 183);
  assert.equal(progress.headers.get('cseq'), '1 INVITE');
  assert.match(progress.headers.get('from')!, /sip:agent@192\.0\.2\.10/, 'the runtime sees its own From');

  const routes = [recordRoute];
  const cases: Array<{ method: string; cseq: number; extra?: string[]; shifted: string; rack?: string }> = [
    { method: 'PRACK', cseq: 2, extra: ['RAck: 1 1 INVITE'], shifted: '3 PRACK', rack: '1 2 INVITE' },
    { method: 'UPDATE', cseq: 3, shifted: '4 UPDATE' },
    { method: 'INFO', cseq: 4, shifted: '5 INFO' },
  ];
  for (const c of cases) {
    proxy.receive(parse(dialogLines(c.method, c.cseq, routes, c.extra)), RUNTIME);
    const forwarded = request(
      transport.take().find((m) => m.kind === 'request'),
      c.method,
    );
    assert.equal(forwarded.headers.get('cseq'), c.shifted, c.method);
    if (c.rack) assert.equal(forwarded.headers.get('rack'), c.rack, 'RAck names the INVITE as the carrier numbered it');
    proxy.receive(answer(forwarded, 200, 'OK'), CARRIER);
    assert.equal(response(transport.take()[0], 200).headers.get('cseq'), `${c.cseq} ${c.method}`, `${c.method}: the answer restored`);
  }

  proxy.receive(answer(resend, 200, 'OK', [`Record-Route: ${recordRoute}`, 'Contact: <sip:carrier@198.51.100.20:5060>']), CARRIER);
  assert.equal(response(transport.take()[0], 200).headers.get('cseq'), '1 INVITE');
  proxy.receive(parse(dialogLines('ACK', 1, routes)), RUNTIME);
  assert.equal(request(transport.take()[0], 'ACK').headers.get('cseq'), '2 ACK', 'the ACK for the 2xx names the re-sent INVITE');

  proxy.receive(parse(dialogLines('INVITE', 5, routes)), RUNTIME);
  const reinvite = request(
    transport.take().find((m) => m.kind === 'request'),
    'INVITE',
  );
  assert.equal(reinvite.headers.get('cseq'), '6 INVITE');
  proxy.receive(answer(reinvite, 200, 'OK'), CARRIER);
  assert.equal(response(transport.take()[0], 200).headers.get('cseq'), '5 INVITE');

  // The carrier's requests keep the carrier's own numbers.
  proxy.receive(
    parse([
      'INFO sip:agent@192.0.2.10:5070 SIP/2.0',
      'Via: SIP/2.0/UDP 198.51.100.20:5060;branch=z9hG4bK-carrier-info',
      'Max-Forwards: 70',
      `Route: ${recordRoute}`,
      'From: <sip:+15557770001@192.0.2.1>;tag=carrier',
      `To: "Agent" <sip:agent@192.0.2.10>;tag=${tag}`,
      'Call-ID: rewrite-test@runtime',
      'CSeq: 7 INFO',
    ]),
    CARRIER,
  );
  assert.equal(
    request(
      transport.take().find((m) => m.kind === 'request'),
      'INFO',
    ).headers.get('cseq'),
    '7 INFO',
  );

  proxy.receive(parse(dialogLines('BYE', 6, routes)), RUNTIME);
  const bye = request(
    transport.take().find((m) => m.kind === 'request'),
    'BYE',
  );
  assert.equal(bye.headers.get('cseq'), '7 BYE');
  proxy.receive(answer(bye, 200, 'OK'), CARRIER);
  assert.equal(response(transport.take()[0], 200).headers.get('cseq'), '6 BYE');
});

test('without a digest re-send, nothing is shifted: only From is the caller ID, and restored upstream', (t) => {
  const { proxy, transport } = proxyFor(t);
  proxy.receive(
    parse([
      `INVITE sip:+15557770001@${PROXY} SIP/2.0`,
      'Via: SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK-plain',
      'Max-Forwards: 70',
      'From: <sip:agent@192.0.2.10>;tag=plain',
      `To: <sip:+15557770001@${PROXY}>`,
      'Call-ID: plain@runtime',
      'CSeq: 10 INVITE',
    ]),
    RUNTIME,
  );
  const invite = request(
    transport.take().find((m) => m.kind === 'request'),
    'INVITE',
  );
  assert.equal(invite.headers.get('cseq'), '10 INVITE');
  assert.doesNotMatch(invite.headers.get('record-route')!, /dpcs/);
  proxy.receive(answer(invite, 486, 'Busy Here'), CARRIER);
  const busy = response(
    transport.take().find((m) => m.kind === 'response'),
    486,
  );
  assert.equal(busy.headers.get('from'), '<sip:agent@192.0.2.10>;tag=plain');
});
