import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRelay, RtpengineSet } from '../../src/media/rtpengine-set.ts';
import { decodeProfile, encodeProfile, type CarrierEncryption } from '../../src/media/media-profile.ts';
import { mediaProfileFor } from '../../src/media/media-policy.ts';

const A = { host: '10.0.0.1', port: 2223, weight: 3 };
const B = { host: '10.0.0.2', port: 2223, weight: 1 };

test('new calls are spread over the rtpengines by weight', () => {
  let lot = 0;
  const set = new RtpengineSet([A, B], { random: () => lot });
  // Lots spread evenly over [0, 1): a weight of 3 against 1 wins three times in four.
  const firsts = [0.01, 0.26, 0.51, 0.76].map((drawn) => {
    lot = drawn;
    return set.candidates()[0].host;
  });
  assert.deepEqual(firsts, [A.host, A.host, A.host, B.host]);
  assert.equal(set.candidates().length, 2, 'every rtpengine is a candidate');
});

test('an rtpengine that did not answer is tried last for 10 s, then as before', () => {
  let now = 1_000_000;
  const set = new RtpengineSet([A, B], { random: () => 0, now: () => now });
  assert.equal(set.candidates()[0].host, A.host);
  set.failed(A);
  assert.deepEqual(
    set.candidates().map((c) => c.host),
    [B.host, A.host],
  );
  now += 9_999;
  assert.equal(set.candidates()[0].host, B.host);
  now += 1;
  assert.equal(set.candidates()[0].host, A.host);
  set.failed(B);
  set.answered(B);
  assert.deepEqual(
    set.candidates().map((c) => c.host),
    [A.host, B.host],
  );
});

test('relays named in routes', () => {
  const cases: [string, { host: string; port: number } | null][] = [
    ['10.0.0.5:2223', { host: '10.0.0.5', port: 2223 }],
    ['[::1]:2223', { host: '::1', port: 2223 }],
    ['10.0.0.5', null],
    ['rtp.example.com:2223', null],
    ['10.0.0.5:0', null],
    ['10.0.0.5:70000', null],
    ['', null],
  ];
  for (const [text, expected] of cases) assert.deepEqual(parseRelay(text), expected, text);
});

test('the media rule: anchored when the server has rtpengines and the trunk does not opt out', () => {
  const cases: [boolean, 'carrier' | 'agent', 'auto' | 'off', CarrierEncryption, string | undefined][] = [
    [true, 'carrier', 'auto', 'none', 'cp'],
    [true, 'agent', 'auto', 'sdes-srtp', 'as'],
    [true, 'carrier', 'auto', 'dtls-srtp', 'cd'],
    [true, 'carrier', 'off', 'sdes-srtp', undefined],
    [false, 'carrier', 'auto', 'none', undefined],
    [false, 'agent', 'off', 'none', undefined],
  ];
  for (const [available, caller, mediaAnchoring, mediaEncryption, expected] of cases) {
    assert.equal(
      mediaProfileFor(available, caller, { mediaAnchoring, mediaEncryption }),
      expected,
      JSON.stringify({ available, caller, mediaAnchoring }),
    );
  }
  for (const profile of ['cp', 'cs', 'cd', 'ap', 'as', 'ad']) assert.equal(encodeProfile(decodeProfile(profile)!), profile);
  for (const bad of ['', 'c', 'xp', 'cx', 'cpx', 'CP', 'dc']) assert.equal(decodeProfile(bad), null, bad);
});
