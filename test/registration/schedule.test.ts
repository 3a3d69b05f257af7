import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { grantedExpiresSeconds, refreshDelayMs, retryDelayMs, type RetryPolicy } from '../../src/registration/schedule.ts';

const POLICY: RetryPolicy = { baseMs: 30_000, capMs: 30 * 60_000, jitter: 0.2 };

describe('retry schedule: capped exponential backoff with jitter', () => {
  const table: [failures: number, random: number, retryAfter: number | null, expectedMs: number][] = [
    // No jitter (random 0): 30 s doubling per failure...
    [1, 0, null, 30_000],
    [2, 0, null, 60_000],
    [3, 0, null, 120_000],
    [4, 0, null, 240_000],
    [5, 0, null, 480_000],
    [6, 0, null, 960_000],
    // ...capped at 30 minutes, however many failures.
    [7, 0, null, 1_800_000],
    [8, 0, null, 1_800_000],
    [1000, 0, null, 1_800_000],
    // Jitter takes off up to 20%: never more than the schedule, never below 80% of it.
    [1, 1, null, 24_000],
    [1, 0.5, null, 27_000],
    [7, 1, null, 1_440_000],
    // Out-of-range inputs are clamped.
    [0, 0, null, 30_000],
    [-3, 0, null, 30_000],
    [1, 7, null, 24_000],
    [1, Number.NaN, null, 30_000],
    // A registrar's longer Retry-After wins, within the cap; a shorter one does not shorten the wait.
    [1, 0, 120, 120_000],
    [1, 0, 10, 30_000],
    [1, 0, 86_400, 1_800_000],
  ];
  for (const [failures, random, retryAfter, expected] of table) {
    test(`failure ${failures}, random ${random}, Retry-After ${retryAfter ?? '-'} → ${expected} ms`, () => {
      assert.equal(retryDelayMs(failures, POLICY, random, retryAfter), expected);
    });
  }

  test('every delay stays within [0.8, 1] × min(cap, base × 2^(n-1))', () => {
    for (let failures = 1; failures < 40; failures++) {
      const schedule = Math.min(POLICY.capMs, POLICY.baseMs * 2 ** (failures - 1));
      for (let i = 0; i < 50; i++) {
        const delay = retryDelayMs(failures, POLICY, Math.random());
        assert.ok(delay >= 0.8 * schedule - 1 && delay <= schedule, `${failures}: ${delay}`);
      }
    }
  });
});

describe('refresh schedule: about half of the granted expiry', () => {
  const table: [granted: number, random: number, expectedMs: number][] = [
    [3600, 0, 1_800_000],
    [3600, 1, 1_620_000],
    [3600, 0.5, 1_710_000],
    [60, 0, 30_000],
    [60, 1, 27_000],
    [2, 0, 1000],
    // Never sooner than half a second, even for absurd grants.
    [1, 0, 500],
    [0, 0, 500],
  ];
  for (const [granted, random, expected] of table) {
    test(`granted ${granted} s, random ${random} → refresh after ${expected} ms`, () => {
      assert.equal(refreshDelayMs(granted, random), expected);
    });
  }
});

describe('granted expiry of a 2xx', () => {
  const ours = 'sip:15550100000@203.0.113.5:5060';
  const table: [what: string, contacts: string[], expires: string | undefined, expected: number][] = [
    ['our Contact’s expires parameter', ['<sip:15550100000@203.0.113.5:5060>;expires=300'], '3600', 300],
    [
      'ours among other bindings of the AOR',
      ['<sip:15550100000@198.51.100.7>;expires=50', '<sip:15550100000@203.0.113.5>;expires=120'],
      undefined,
      120,
    ],
    ['a lone Contact the registrar rewrote (NAT)', ['<sip:15550100000@198.51.100.9:40000>;expires=90'], '3600', 90],
    ['the Expires header when Contacts carry none', ['<sip:15550100000@203.0.113.5:5060>'], '600', 600],
    ['the Expires header when no Contact is ours', ['<sip:other@198.51.100.7>;expires=50', '<sip:x@198.51.100.8>;expires=70'], '450', 450],
    ['what was asked when the answer says nothing', [], undefined, 3600],
    ['what was asked when Expires is malformed', [], 'soon', 3600],
    ['a zero grant as such', ['<sip:15550100000@203.0.113.5:5060>;expires=0'], '3600', 0],
  ];
  for (const [what, contacts, expires, expected] of table) {
    test(what, () => assert.equal(grantedExpiresSeconds(contacts, expires, ours, 3600), expected));
  }
});
