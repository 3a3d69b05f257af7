import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SipStreamFramer, type FramerEvent } from '../../src/sip/framing.ts';
import { parseMessage } from '../../src/sip/parser.ts';

function message(callId: string, body = '', lineEnding = '\r\n'): Buffer {
  const head = [
    'MESSAGE sip:agent@example.com SIP/2.0',
    'Via: SIP/2.0/TCP client.example.com;branch=z9hG4bK' + callId,
    'To: <sip:agent@example.com>',
    'From: <sip:caller@example.com>;tag=1',
    `Call-ID: ${callId}`,
    'CSeq: 1 MESSAGE',
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    '',
  ].join(lineEnding);
  return Buffer.from(head + body);
}

function messages(events: FramerEvent[]): Buffer[] {
  return events.flatMap((event) => (event.type === 'message' ? [event.data] : []));
}

function callIds(events: FramerEvent[]): string[] {
  return messages(events).map((data) => {
    const result = parseMessage(data);
    assert.ok(result.ok, 'framed message should parse');
    return result.value.headers.get('call-id') ?? '';
  });
}

test('frames a single message delivered in one chunk', () => {
  const framer = new SipStreamFramer();
  const wire = message('one', 'hello');
  const events = framer.push(wire);
  assert.equal(events.length, 1);
  assert.deepEqual(messages(events)[0], wire);
  assert.equal(framer.bufferedLength, 0);
});

test('frames several messages in one chunk, including bare-LF ones', () => {
  const framer = new SipStreamFramer();
  const body = 'body\r\n\r\nwith blank line';
  const events = framer.push(Buffer.concat([message('a', 'x'), message('b'), message('c', body, '\n')]));
  assert.deepEqual(callIds(events), ['a', 'b', 'c']);
  assert.equal(messages(events)[2].subarray(-body.length).toString(), body);
  assert.equal(
    messages(events)[2]
      .subarray(-body.length - 2, -body.length)
      .toString(),
    '\n\n',
  );
});

test('frames a message split at every possible point and byte by byte', () => {
  const wire = Buffer.concat([message('split', 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n'), message('next')]);
  for (let cut = 1; cut < wire.length; cut++) {
    const framer = new SipStreamFramer();
    const events = [...framer.push(wire.subarray(0, cut)), ...framer.push(wire.subarray(cut))];
    assert.deepEqual(callIds(events), ['split', 'next'], `cut at ${cut}`);
  }
  const framer = new SipStreamFramer();
  const events: FramerEvent[] = [];
  for (const byte of wire) events.push(...framer.push(Buffer.from([byte])));
  assert.deepEqual(callIds(events), ['split', 'next']);
  assert.equal(framer.bufferedLength, 0);
});

test('message buffers are copies that survive later pushes', () => {
  const framer = new SipStreamFramer();
  const wire = message('copy', 'abc');
  const [first] = messages([...framer.push(wire.subarray(0, 10)), ...framer.push(wire.subarray(10))]);
  framer.push(Buffer.alloc(2000, 0x41).subarray(0, 5));
  assert.deepEqual(first, wire);
});

test('reports double-CRLF keep-alive pings and skips stray CRLFs', () => {
  const framer = new SipStreamFramer();
  assert.deepEqual(framer.push(Buffer.from('\r\n\r\n')), [{ type: 'ping' }]);
  assert.deepEqual(framer.push(Buffer.from('\r\n')), []);
  assert.deepEqual(framer.push(Buffer.from('\r\n')), [{ type: 'ping' }], 'ping split across chunks');
  const events = framer.push(Buffer.concat([Buffer.from('\r\n'), message('after-crlf'), Buffer.from('\r\n\r\n'), message('after-ping')]));
  assert.deepEqual(
    events.map((event) => event.type),
    ['message', 'ping', 'message'],
  );
  assert.deepEqual(callIds(events), ['after-crlf', 'after-ping']);
});

test('missing Content-Length is a fatal framing error', () => {
  const framer = new SipStreamFramer();
  const wire = Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nCall-ID: x\r\n\r\n');
  assert.deepEqual(framer.push(wire), [{ type: 'error', error: 'missing Content-Length' }]);
  assert.equal(framer.failed, true);
  assert.deepEqual(framer.push(message('ignored')), [], 'a failed framer ignores input');
});

test('invalid and repeated Content-Length are fatal; compact and folded forms work', () => {
  const base = 'OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\n';
  for (const [headers, error] of [
    ['Content-Length: -1\r\n', 'invalid Content-Length'],
    ['Content-Length: 12abc\r\n', 'invalid Content-Length'],
    ['Content-Length: 99999999999\r\n', 'invalid Content-Length'],
    ['Content-Length: 1\r\nl: 1\r\n', 'multiple Content-Length headers'],
    ['Content-Length: 70000\r\n', 'message too large'],
  ]) {
    const events = new SipStreamFramer().push(Buffer.from(`${base}${headers}\r\n`));
    assert.deepEqual(events, [{ type: 'error', error }], headers);
  }
  for (const header of ['l: 2', 'content-length : 2', 'Content-Length:\r\n  2', 'CONTENT-LENGTH:2']) {
    const events = new SipStreamFramer().push(Buffer.from(`${base}${header}\r\n\r\nokEXTRA`));
    assert.deepEqual(
      messages(events).map((data) => data.toString().slice(-2)),
      ['ok'],
      header,
    );
  }
});

test('oversized header block without terminator is fatal', () => {
  const framer = new SipStreamFramer({ maxMessageSize: 1024 });
  assert.deepEqual(framer.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\n')), []);
  const events = framer.push(Buffer.from(`X-Filler: ${'a'.repeat(2000)}\r\n`));
  assert.deepEqual(events, [{ type: 'error', error: 'header section too large' }]);
});

test('garbage without line feeds is cut off at the size limit', () => {
  const framer = new SipStreamFramer({ maxMessageSize: 4096 });
  let events: FramerEvent[] = [];
  for (let i = 0; i < 10 && events.length === 0; i++) events = framer.push(Buffer.alloc(1000, 0x41));
  assert.deepEqual(events, [{ type: 'error', error: 'header section too large' }]);
});

test('a body larger than the limit is fatal before it is buffered', () => {
  const framer = new SipStreamFramer({ maxMessageSize: 2048 });
  const events = framer.push(Buffer.from('OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 4096\r\n\r\n'));
  assert.deepEqual(events, [{ type: 'error', error: 'message too large' }]);
});

test('many messages through a long-lived framer keep the buffer bounded', () => {
  const framer = new SipStreamFramer();
  const wire = Buffer.concat(Array.from({ length: 200 }, (_, i) => message(`m${i}`, 'x'.repeat(i))));
  let count = 0;
  for (let offset = 0; offset < wire.length; offset += 1357) {
    count += messages(framer.push(wire.subarray(offset, offset + 1357))).length;
    assert.ok(framer.bufferedLength < 2000);
  }
  assert.equal(count, 200);
  assert.equal(framer.bufferedLength, 0);
});
