import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createRequest, SipHeaders } from '../../src/sip/message.ts';
import { sessionDescription } from '../../src/sip/sdp-body.ts';

const SDP = 'v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
/** An ISUP IAM as SIP-I carriers attach it: binary, with bytes that are not UTF-8. */
const ISUP = Buffer.from([0x01, 0x00, 0x49, 0xff, 0x0d, 0x0a, 0x2d, 0x2d, 0x80, 0x00]);

const messageWith = (contentType: string | null, body: Buffer | string) =>
  createRequest({
    method: 'INVITE',
    uri: 'sip:b@example.com',
    headers: new SipHeaders(contentType === null ? [] : [['Content-Type', contentType]]),
    body: Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1'),
  });

const multipart = (boundary: string, parts: [headers: string, content: Buffer | string][], preamble = '') =>
  Buffer.concat([
    Buffer.from(preamble === '' ? '' : `${preamble}\r\n`, 'latin1'),
    ...parts.flatMap(([headers, content]) => [
      Buffer.from(`--${boundary}\r\n${headers}\r\n\r\n`, 'latin1'),
      Buffer.isBuffer(content) ? content : Buffer.from(content, 'latin1'),
      Buffer.from('\r\n', 'latin1'),
    ]),
    Buffer.from(`--${boundary}--\r\n`, 'latin1'),
  ]);

const SIP_I = multipart('unique-boundary-1', [
  ['Content-Type: application/sdp', SDP],
  ['Content-Type: application/ISUP;version=itu-t92+\r\nContent-Disposition: signal;handling=optional', ISUP],
]);

const cases: { name: string; contentType: string | null; body: Buffer | string; sdp: string | null }[] = [
  { name: 'an SDP body', contentType: 'application/sdp', body: SDP, sdp: SDP },
  { name: 'an SDP body, type in capitals with a parameter', contentType: 'Application/SDP; charset=utf-8', body: SDP, sdp: SDP },
  { name: 'an empty SDP body', contentType: 'application/sdp', body: '', sdp: null },
  { name: 'no Content-Type', contentType: null, body: SDP, sdp: null },
  { name: 'another type', contentType: 'application/isup', body: SDP, sdp: null },
  { name: 'SIP-I: SDP then ISUP', contentType: 'multipart/mixed;boundary=unique-boundary-1', body: SIP_I, sdp: SDP },
  {
    name: 'ISUP first, quoted boundary, a preamble',
    contentType: 'multipart/mixed; boundary="b 1"',
    body: multipart(
      'b 1',
      [
        ['Content-Type: application/ISUP;version=itu-t92+', ISUP],
        ['content-type:application/sdp', SDP],
      ],
      'This is a multipart message.',
    ),
    sdp: SDP,
  },
  {
    name: 'multipart/related',
    contentType: 'multipart/related;type="application/sdp";boundary=x',
    body: multipart('x', [['Content-Type: application/sdp', SDP]]),
    sdp: SDP,
  },
  {
    name: 'a multipart body without SDP',
    contentType: 'multipart/mixed;boundary=x',
    body: multipart('x', [['Content-Type: application/ISUP', ISUP]]),
    sdp: null,
  },
  { name: 'a multipart type without boundary', contentType: 'multipart/mixed', body: SIP_I, sdp: null },
  { name: 'a boundary the body does not use', contentType: 'multipart/mixed;boundary=other', body: SIP_I, sdp: null },
  {
    name: 'an SDP part that is never closed',
    contentType: 'multipart/mixed;boundary=x',
    body: `--x\r\nContent-Type: application/sdp\r\n\r\n${SDP}`,
    sdp: null,
  },
  {
    name: 'a boundary that only starts a longer line is not a delimiter',
    contentType: 'multipart/mixed;boundary=x',
    body: `--xy\r\nContent-Type: application/sdp\r\n\r\n${SDP}\r\n--x--\r\n`,
    sdp: null,
  },
  {
    name: 'alternative parts are not chosen among',
    contentType: 'multipart/alternative;boundary=x',
    body: multipart('x', [['Content-Type: application/sdp', SDP]]),
    sdp: null,
  },
];

for (const { name, contentType, body, sdp } of cases) {
  test(`sessionDescription: ${name}`, () => {
    const found = sessionDescription(messageWith(contentType, body));
    assert.equal(found?.sdp.toString('latin1') ?? null, sdp);
  });
}

test('replacing the SDP part keeps every other byte of a SIP-I body', () => {
  const found = sessionDescription(messageWith('multipart/mixed;boundary=unique-boundary-1', SIP_I))!;
  const rewritten = found.replacedBy(Buffer.from(SDP.replaceAll('192.0.2.1', '203.0.113.9')));
  assert.deepEqual(rewritten, Buffer.from(SIP_I.toString('latin1').replaceAll('192.0.2.1', '203.0.113.9'), 'latin1'));
  const again = sessionDescription(messageWith('multipart/mixed;boundary=unique-boundary-1', rewritten))!;
  assert.match(again.sdp.toString(), /c=IN IP4 203\.0\.113\.9/);
  assert.ok(rewritten.includes(ISUP), 'the binary ISUP part is untouched');
});

test('sessionDescription never throws, whatever the body and boundary', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 20 }), fc.uint8Array({ maxLength: 300 }), (boundary, bytes) => {
      const found = sessionDescription(messageWith(`multipart/mixed;boundary="${boundary.replaceAll('"', '')}"`, Buffer.from(bytes)));
      if (found !== null) assert.ok(found.sdp.length > 0);
    }),
  );
});
