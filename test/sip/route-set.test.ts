import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequest, SipHeaders } from '../../src/sip/message.ts';
import { OwnAddresses, prepareNextHop } from '../../src/sip/route-set.ts';
import { parseSipUri } from '../../src/sip/uri.ts';

const addresses = new OwnAddresses('192.0.2.1', 5070, ['edge.example'], 5071);

test('Record-Route per transport: UDP plain, TCP and TLS with their transport and port (RFC 5658, RFC 5630)', () => {
  assert.equal(addresses.recordRoute('udp', ';dps=x'), '<sip:192.0.2.1:5070;lr;dps=x>');
  assert.equal(addresses.recordRoute('tcp'), '<sip:192.0.2.1:5070;transport=tcp;lr>');
  assert.equal(addresses.recordRoute('tls'), '<sip:192.0.2.1:5071;transport=tls;lr>');
  assert.equal(addresses.hostPort('tls'), '192.0.2.1:5071');
  assert.equal(addresses.hostPort('udp'), '192.0.2.1:5070');
});

const ours: Array<[uri: string, us: boolean]> = [
  ['sip:192.0.2.1:5070;lr', true],
  ['sip:192.0.2.1:5071;transport=tls;lr', true],
  ['sip:edge.example:5071;transport=tls', true],
  ['sip:edge.example:5070', true],
  ['sip:192.0.2.1;transport=tls', false],
  ['sips:192.0.2.1', false],
  ['sip:192.0.2.1:5072', false],
];
for (const [uri, us] of ours) {
  test(`OwnAddresses: ${uri} is ${us ? '' : 'not '}us`, () => {
    assert.equal(addresses.isOwnUri(parseSipUri(uri)), us);
  });
}

const hops: Array<[uri: string, destination: ReturnType<typeof prepareNextHop>]> = [
  ['sip:bob@198.51.100.7', { transport: 'udp', host: '198.51.100.7', port: 5060 }],
  ['sip:bob@198.51.100.7;transport=tcp', { transport: 'tcp', host: '198.51.100.7', port: 5060 }],
  ['sip:bob@198.51.100.7;transport=tls', { transport: 'tls', host: '198.51.100.7', port: 5061 }],
  ['sip:bob@198.51.100.7:5080;transport=TLS', { transport: 'tls', host: '198.51.100.7', port: 5080 }],
  ['sips:bob@198.51.100.7', { transport: 'tls', host: '198.51.100.7', port: 5061 }],
  ['sips:bob@198.51.100.7;transport=tcp', { transport: 'tls', host: '198.51.100.7', port: 5061 }],
  ['sip:bob@198.51.100.7;transport=sctp', 503],
];
for (const [uri, destination] of hops) {
  test(`next hop of ${uri}`, () => {
    const request = createRequest({ method: 'INVITE', uri, headers: new SipHeaders() });
    assert.deepEqual(prepareNextHop(request), destination);
  });
}
