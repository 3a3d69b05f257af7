import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TimerQueue } from '../../src/registration/timer-queue.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

test('items fire in time order, once, after reschedules and cancels', async () => {
  const fired: string[] = [];
  const queue = new TimerQueue<string>((item) => fired.push(item));
  const start = Date.now();
  queue.schedule('c', start + 60);
  queue.schedule('a', start + 20);
  queue.schedule('b', start + 40);
  queue.schedule('d', start + 30);
  queue.schedule('d', start + 80); // moved later: fires once, at the new time
  queue.schedule('e', start + 10);
  queue.cancel('e');
  assert.equal(queue.size, 4);
  await sleep(150);
  assert.deepEqual(fired, ['a', 'b', 'c', 'd']);
  assert.equal(queue.size, 0);
  queue.close();
});

test('ten thousand items cost one timer and keep order; stale entries are compacted', async () => {
  const fired: number[] = [];
  const queue = new TimerQueue<number>((item) => fired.push(item));
  const start = Date.now();
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 10_000; i++) queue.schedule(i, start + 20 + ((i * 7919) % 100));
  }
  await sleep(200);
  assert.equal(fired.length, 10_000);
  const at = (i: number) => (i * 7919) % 100;
  for (let i = 1; i < fired.length; i++) assert.ok(at(fired[i - 1]) <= at(fired[i]));
  queue.close();
});

test('a throwing callback does not stop the others', async () => {
  const fired: string[] = [];
  const errors: unknown[] = [];
  const queue = new TimerQueue<string>(
    (item) => {
      if (item === 'bad') throw new Error('boom');
      fired.push(item);
    },
    (error) => errors.push(error),
  );
  queue.schedule('bad', Date.now() + 5);
  queue.schedule('good', Date.now() + 5);
  await sleep(40);
  assert.deepEqual(fired, ['good']);
  assert.equal(errors.length, 1);
  queue.close();
});
