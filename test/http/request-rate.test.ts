import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestRate } from '../../src/http/request-rate.ts';

/** src/http/request-rate.ts: load is 1000 requests within the last second, or 400 within the last 200 ms. */
describe('API request rate', () => {
  const spread = (count: number, from: number, overMs: number) => Array.from({ length: count }, (_, i) => from + (i * overMs) / count);
  const cases: { name: string; hits: number[]; at: number; busy: boolean }[] = [
    { name: 'no request', hits: [], at: 1000, busy: false },
    { name: '999 within a second', hits: spread(999, 1000, 990), at: 1995, busy: false },
    { name: '1000 within a second', hits: spread(1000, 1000, 990), at: 1995, busy: true },
    { name: 'a burst of 200, as a steady 200 a second sends them', hits: spread(200, 1000, 5), at: 1010, busy: false },
    { name: '400 within 200 ms: load, noticed at once', hits: spread(400, 1000, 150), at: 1150, busy: true },
    { name: '1000 a second ago and more', hits: spread(1000, 1000, 500), at: 2600, busy: false },
    {
      name: 'a steady 200 a second for three seconds',
      hits: [...spread(200, 1000, 5), ...spread(200, 2000, 5), ...spread(200, 3000, 5)],
      at: 3500,
      busy: false,
    },
  ];
  for (const { name, hits, at, busy } of cases) {
    test(name, () => {
      const rate = new RequestRate();
      for (const time of hits) rate.hit(time);
      assert.equal(rate.busy(at), busy);
    });
  }
});
