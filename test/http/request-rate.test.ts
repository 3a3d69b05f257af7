import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestRate } from '../../src/http/request-rate.ts';

/** src/http/request-rate.ts: load is 1000 requests a second or more, over windows of a second. */
describe('API request rate', () => {
  const cases: { name: string; hits: number[]; at: number; busy: boolean }[] = [
    { name: 'no request', hits: [], at: 1000, busy: false },
    { name: '999 in a window', hits: Array.from({ length: 999 }, (_, i) => 1000 + i / 2), at: 1500, busy: false },
    { name: '1000 in a window', hits: Array.from({ length: 1000 }, (_, i) => 1000 + i / 2), at: 1500, busy: true },
    { name: 'a burst of 200, as a steady 200 a second sends them', hits: Array.from({ length: 200 }, () => 1000), at: 1001, busy: false },
    { name: '1000 in the window before', hits: Array.from({ length: 1000 }, (_, i) => 1000 + i / 2), at: 2500, busy: true },
    { name: '1000 two windows ago', hits: Array.from({ length: 1000 }, (_, i) => 1000 + i / 2), at: 3500, busy: false },
  ];
  for (const { name, hits, at, busy } of cases) {
    test(name, () => {
      const rate = new RequestRate();
      for (const time of hits) rate.hit(time);
      assert.equal(rate.busy(at), busy);
    });
  }
});
