import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBuckets } from '../../src/common/token-buckets.ts';

test('a burst, then the rate; each key on its own', () => {
  let now = 0;
  const buckets = new TokenBuckets({ ratePerSecond: 2, burst: 3, now: () => now });
  assert.deepEqual(
    [1, 2, 3, 4].map(() => buckets.take('a')),
    [true, true, true, false],
  );
  assert.equal(buckets.waitMs('a'), 500);
  assert.equal(buckets.take('b'), true, 'another key has its own bucket');
  now = 499;
  assert.equal(buckets.take('a'), false);
  now = 1000;
  assert.deepEqual([buckets.take('a'), buckets.take('a'), buckets.take('a')], [true, true, false], 'refilled at 2 a second');
  now = 100_000;
  assert.deepEqual(
    [1, 2, 3, 4].map(() => buckets.take('a')),
    [true, true, true, false],
    'never more than the burst',
  );
});

test('memory is bounded: past maxKeys the oldest bucket is forgotten', () => {
  const buckets = new TokenBuckets({ ratePerSecond: 1, burst: 1, maxKeys: 3, now: () => 0 });
  for (const key of ['a', 'b', 'c', 'd']) assert.equal(buckets.take(key), true);
  assert.equal(buckets.take('d'), false);
  assert.equal(buckets.take('a'), true, 'a was forgotten and starts full');
  assert.equal(buckets.waitMs('unknown'), 0);
});
