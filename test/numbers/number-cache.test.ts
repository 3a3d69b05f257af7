import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalChangeFeed } from '../../src/db/changes.ts';
import { NumberRowCache } from '../../src/numbers/number-cache.ts';
import type { NumberRow } from '../../src/numbers/number-row.ts';

const row = (id: string, description = 'first') => ({ id, description }) as unknown as NumberRow;

describe('number row cache', () => {
  test('a row read is kept; a missing number is not', async () => {
    const cache = new NumberRowCache();
    assert.equal(cache.get('a'), undefined);
    assert.equal((await cache.keep('a', Promise.resolve(row('a'))))?.id, 'a');
    assert.equal(cache.get('a')?.id, 'a');
    assert.equal(await cache.keep('b', Promise.resolve(undefined)), undefined);
    assert.equal(cache.get('b'), undefined);
  });

  test('an evicted number is gone', async () => {
    const cache = new NumberRowCache();
    await cache.keep('a', Promise.resolve(row('a')));
    await cache.keep('b', Promise.resolve(row('b')));
    cache.evict(['a']);
    assert.equal(cache.get('a'), undefined);
    assert.equal(cache.get('b')?.id, 'b');
  });

  test('a read under way while something is evicted is not kept: it may predate the change', async () => {
    const cache = new NumberRowCache();
    let answer!: (row: NumberRow) => void;
    const reading = cache.keep('a', new Promise((resolve) => (answer = resolve)));
    cache.evict(['a']);
    answer(row('a', 'before the change'));
    assert.equal((await reading)?.description, 'before the change', 'the caller still gets its answer');
    assert.equal(cache.get('a'), undefined);
  });

  test('following the change feed: a number change evicts it, credentials clear all, agents change nothing', async () => {
    const cache = new NumberRowCache();
    const changes = new LocalChangeFeed();
    const stop = cache.follow(changes);
    const fill = async () => {
      await cache.keep('a', Promise.resolve(row('a')));
      await cache.keep('b', Promise.resolve(row('b')));
    };
    const kept = () => [cache.get('a') !== undefined, cache.get('b') !== undefined];

    await fill();
    await changes.publish({ kind: 'number', orgId: 'o', id: 'a' });
    assert.deepEqual(kept(), [false, true]);

    await fill();
    await changes.publish({ kind: 'number', orgId: 'o', id: 'a', linkOnly: true });
    assert.deepEqual(kept(), [false, true], 'a link is a change of the number');

    await fill();
    await changes.publish({ kind: 'agent', orgId: 'o', id: 'x' });
    assert.deepEqual(kept(), [true, true]);

    await changes.publish({ kind: 'credentials', orgId: 'o', id: 'c' });
    assert.deepEqual(kept(), [false, false]);

    await fill();
    await changes.publish({ kind: 'reload' });
    assert.deepEqual(kept(), [false, false]);

    await fill();
    stop();
    await changes.publish({ kind: 'number', orgId: 'o', id: 'a' });
    assert.deepEqual(kept(), [true, true], 'unsubscribed');
  });

  test('holds at most maxEntries rows', async () => {
    const cache = new NumberRowCache(2);
    for (const id of ['a', 'b', 'c']) await cache.keep(id, Promise.resolve(row(id)));
    assert.equal(cache.get('c')?.id, 'c', 'the newest stays');
    assert.equal(cache.get('a'), undefined, 'older ones made room');
  });
});
