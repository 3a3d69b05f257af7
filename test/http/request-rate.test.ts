import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestRate } from '../../src/http/request-rate.ts';

/** src/http/request-rate.ts: load is 1000 requests a second or more, over windows of 100 ms. */
describe('API request rate', () => {
  const cases: { name: string; hits: number[]; at: number; busy: boolean }[] = [
    { name: 'no request', hits: [], at: 1000, busy: false },
    { name: '99 in a window', hits: Array.from({ length: 99 }, (_, i) => 1000 + i), at: 1050, busy: false },
    { name: '100 in a window', hits: Array.from({ length: 100 }, (_, i) => 1000 + i), at: 1050, busy: true },
    { name: '100 in the window before', hits: Array.from({ length: 100 }, (_, i) => 1000 + i), at: 1150, busy: true },
    { name: '100 two windows ago', hits: Array.from({ length: 100 }, (_, i) => 1000 + i), at: 1250, busy: false },
  ];
  for (const { name, hits, at, busy } of cases) {
    test(name, () => {
      const rate = new RequestRate();
      for (const time of hits) rate.hit(time);
      assert.equal(rate.busy(at), busy);
    });
  }
});
