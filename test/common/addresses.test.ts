import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import net from 'node:net';
import { AddressSet, sourceOwner, TargetPolicy } from '../../src/common/addresses.ts';

const set = AddressSet.of(['192.0.2.0/24', '192.0.2.7', '10.0.0.0/8', '2001:db8::/32', '2001:db8::1', '::ffff:198.51.100.0/120']);

const longest: Array<[address: string, prefix: number]> = [
  ['192.0.2.7', 32],
  ['192.0.2.8', 24],
  ['::ffff:192.0.2.7', 32],
  ['::ffff:c000:207', 32],
  ['0:0:0:0:0:ffff:c000:208', 24],
  ['10.255.255.255', 8],
  ['11.0.0.0', -1],
  ['198.51.100.9', 24],
  ['2001:db8::1', 128],
  ['2001:db8:ffff::9', 32],
  ['2001:db9::1', -1],
  ['not an address', -1],
];
for (const [address, prefix] of longest) {
  test(`AddressSet: the most specific block holding ${address} is /${prefix}`, () => {
    assert.equal(set.longestMatch(address), prefix);
    assert.equal(set.has(address), prefix >= 0);
  });
}

test('AddressSet agrees with node’s BlockList on random IPv4 addresses and blocks', () => {
  fc.assert(
    fc.property(fc.ipV4(), fc.integer({ min: 0, max: 32 }), fc.ipV4(), (network, prefix, address) => {
      const ours = AddressSet.of([`${network}/${prefix}`]);
      const theirs = new net.BlockList();
      theirs.addSubnet(network, prefix, 'ipv4');
      return ours.has(address) === theirs.check(address, 'ipv4');
    }),
  );
});

test('AddressSet agrees with node’s BlockList on random IPv6 addresses and blocks', () => {
  fc.assert(
    fc.property(fc.ipV6(), fc.integer({ min: 0, max: 128 }), fc.ipV6(), (network, prefix, address) => {
      const ours = AddressSet.of([`${network}/${prefix}`]);
      const theirs = new net.BlockList();
      theirs.addSubnet(network, prefix, 'ipv6');
      return ours.has(address) === theirs.check(address, 'ipv6');
    }),
  );
});

const targets: Array<[address: string, allow: string | null, deny: string | null]> = [
  ['203.0.113.5', null, null],
  ['2001:db8::5', null, null],
  ['169.254.169.254', 'a link-local address', 'a link-local address'],
  ['100.100.100.200', 'a cloud metadata address', 'a cloud metadata address'],
  ['fd00:ec2::254', 'a cloud metadata address', 'a cloud metadata address'],
  ['fe80::1', 'a link-local address', 'a link-local address'],
  ['0.0.0.0', 'an unspecified address', 'an unspecified address'],
  ['239.1.1.1', 'a multicast address', 'a multicast address'],
  ['127.0.0.1', null, 'private'],
  ['10.1.2.3', null, 'private'],
  ['172.16.0.1', null, 'private'],
  ['192.168.0.1', null, 'private'],
  ['100.64.0.1', null, 'private'],
  ['::1', null, 'private'],
  ['fd12::1', null, 'private'],
  ['::ffff:127.0.0.1', null, 'private'],
  ['::ffff:7f00:1', null, 'private'],
  ['::ffff:a9fe:a9fe', 'a link-local address', 'a link-local address'],
  ['fe80::1%eth0', 'a scoped IPv6 address (with a zone ID)', 'a scoped IPv6 address (with a zone ID)'],
  ['::%x', 'a scoped IPv6 address (with a zone ID)', 'a scoped IPv6 address (with a zone ID)'],
  ['sip.example.com', null, null],
];
for (const [address, allow, deny] of targets) {
  test(`TargetPolicy: ${address}`, () => {
    const refusal = (policy: TargetPolicy) => policy.refusal(address);
    const matches = (actual: string | null, expected: string | null) =>
      expected === null ? actual === null : expected === 'private' ? /private or loopback/.test(actual ?? '') : actual === expected;
    assert.ok(matches(refusal(new TargetPolicy('allow')), allow), `allow: ${refusal(new TargetPolicy('allow'))}`);
    assert.ok(matches(refusal(new TargetPolicy('deny')), deny), `deny: ${refusal(new TargetPolicy('deny'))}`);
  });
}

test('TargetPolicy: a list allows the private blocks it names, and no more', () => {
  const policy = new TargetPolicy(['10.1.0.0/16', '::1']);
  assert.equal(policy.refusal('10.1.9.9'), null);
  assert.equal(policy.refusal('::1'), null);
  assert.match(policy.refusal('10.2.0.1') ?? '', /private/);
  assert.match(policy.refusal('127.0.0.1') ?? '', /private/);
  assert.equal(policy.refusal('169.254.169.254'), 'a link-local address', 'never, whatever the list says');
});

test('sourceOwner: an IPv4 address is its own, an IPv6 address belongs to its /64', () => {
  assert.equal(sourceOwner('192.0.2.7'), '192.0.2.7');
  assert.equal(sourceOwner('::ffff:192.0.2.7'), '192.0.2.7');
  assert.equal(sourceOwner('2001:db8:1:2::1'), sourceOwner('2001:db8:1:2:ffff:ffff:ffff:ffff'));
  assert.notEqual(sourceOwner('2001:db8:1:2::1'), sourceOwner('2001:db8:1:3::1'));
});
