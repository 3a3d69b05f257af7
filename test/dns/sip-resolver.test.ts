import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type dns from 'node:dns';
import { orderSrv, ResolutionError, SipResolver } from '../../src/dns/sip-resolver.ts';
import { dnsmasqAvailable, startDnsmasq, type Dnsmasq } from '../support/dnsmasq.ts';

const hasDnsmasq = dnsmasqAvailable();

test('RFC 2782: lower priority first; within a priority, weights decide the draw', () => {
  const records: dns.SrvRecord[] = [
    { name: 'backup', port: 1, priority: 20, weight: 0 },
    { name: 'heavy', port: 1, priority: 10, weight: 90 },
    { name: 'light', port: 1, priority: 10, weight: 10 },
  ];
  assert.deepEqual(
    orderSrv(records, () => 0).map((r) => r.name),
    ['light', 'heavy', 'backup'],
    'a draw of 0 takes the first with weight',
  );
  assert.deepEqual(
    orderSrv(records, () => 0.99).map((r) => r.name),
    ['heavy', 'light', 'backup'],
  );
  let heavyFirst = 0;
  let seed = 1;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let i = 0; i < 1000; i++) if (orderSrv(records, random)[0].name === 'heavy') heavyFirst++;
  assert.ok(heavyFirst > 820 && heavyFirst < 960, `heavy first ${heavyFirst} times in 1000 (about 890)`);
});

describe('RFC 3263 against a real DNS server (dnsmasq)', { skip: !hasDnsmasq && 'dnsmasq not installed' }, () => {
  let dnsmasq: Dnsmasq;
  let resolver: SipResolver;
  before(async () => {
    dnsmasq = await startDnsmasq([
      // Authoritative for .test: what is not listed is NXDOMAIN or no data, not REFUSED.
      '--local=/test/',
      // NAPTR → SRV → A for UDP and TLS; TCP only by SRV; plain.test only by A.
      '--naptr-record=carrier.test,10,50,s,SIP+D2U,,_sip._udp.carrier.test',
      '--naptr-record=carrier.test,20,50,s,SIPS+D2T,,_sips._tls-srv.carrier.test',
      '--srv-host=_sip._udp.carrier.test,a.carrier.test,5070,10,0',
      '--srv-host=_sip._udp.carrier.test,b.carrier.test,5071,20,0',
      '--srv-host=_sips._tls-srv.carrier.test,a.carrier.test,5081,10,0',
      '--srv-host=_sip._tcp.carrier.test,b.carrier.test,5072,10,0',
      '--host-record=a.carrier.test,127.0.0.21',
      '--host-record=b.carrier.test,127.0.0.22,::1',
      '--host-record=plain.test,127.0.0.23',
    ]);
    resolver = new SipResolver({ servers: [dnsmasq.server] });
  });
  after(() => dnsmasq?.stop());

  const cases: Array<[host: string, port: number | null, transport: 'udp' | 'tcp' | 'tls', expected: string[]]> = [
    ['carrier.test', null, 'udp', ['udp 127.0.0.21:5070 carrier.test', 'udp 127.0.0.22:5071 carrier.test', 'udp ::1:5071 carrier.test']],
    ['carrier.test', null, 'tls', ['tls 127.0.0.21:5081 carrier.test']],
    ['carrier.test', null, 'tcp', ['tcp 127.0.0.22:5072 carrier.test', 'tcp ::1:5072 carrier.test']],
    ['a.carrier.test', 5090, 'udp', ['udp 127.0.0.21:5090 a.carrier.test']],
    ['plain.test', null, 'tls', ['tls 127.0.0.23:5061 plain.test']],
    ['plain.test', null, 'udp', ['udp 127.0.0.23:5060 plain.test']],
    ['192.0.2.9', null, 'tls', ['tls 192.0.2.9:5061 192.0.2.9']],
  ];
  for (const [host, port, transport, expected] of cases) {
    test(`${host}${port === null ? '' : `:${port}`} over ${transport}`, async () => {
      const targets = await resolver.resolve(host, port, transport);
      assert.deepEqual(
        targets.map((t) => `${t.transport} ${t.address}:${t.port} ${t.host}`),
        expected,
      );
    });
  }

  test('a name that does not resolve is a ResolutionError, not a hang', async () => {
    await assert.rejects(resolver.resolve('missing.test', null, 'udp'), ResolutionError);
  });
});
