import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalChangeFeed } from '../../src/db/changes.ts';
import { NumberRowCache } from '../../src/numbers/number-cache.ts';
import type { NumberRow } from '../../src/numbers/numbers.ts';

const row = (id: string, description = 'first') => ({ id, description }) as unknown as NumberRow;

/** A load whose answer the test releases when it chooses, to order it against evictions. */
function pendingLoad(answer: NumberRow) {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let calls = 0;
  return {
    load: async () => {
      calls++;
      await released;
      return answer;
    },
    release,
    calls: () => calls,
  };
}

describe('number row cache', () => {
  test('a second read is answered from memory; a missing number is not remembered', async () => {
    const cache = new NumberRowCache();
    let loads = 0;
    const load = async () => (loads++, row('a'));
    await cache.read('a', load);
    assert.equal((await cache.read('a', load))?.id, 'a');
    assert.equal(loads, 1);
    let misses = 0;
    await cache.read('b', async () => (misses++, undefined));
    await cache.read('b', async () => (misses++, undefined));
    assert.equal(misses, 2);
  });

  test('an evicted number is read again', async () => {
    const cache = new NumberRowCache();
    await cache.read('a', async () => row('a'));
    cache.evict(['a']);
    assert.equal((await cache.read('a', async () => row('a', 'second')))?.description, 'second');
  });

  test('a read under way while something is evicted is not kept: it may predate the change', async () => {
    const cache = new NumberRowCache();
    const stale = pendingLoad(row('a', 'before the change'));
    const reading = cache.read('a', stale.load);
    cache.evict(['a']);
    stale.release();
    assert.equal((await reading)?.description, 'before the change', 'the caller still gets its answer');
    assert.equal((await cache.read('a', async () => row('a', 'after the change')))?.description, 'after the change');
  });

  test('following the change feed: a number change evicts it, credentials clear all, agents change nothing', async () => {
    const cache = new NumberRowCache();
    const changes = new LocalChangeFeed();
    const stop = cache.follow(changes);
    const fill = async () => {
      await cache.read('a', async () => row('a'));
      await cache.read('b', async () => row('b'));
    };
    const reloadsOf = async (id: string) => {
      let loads = 0;
      await cache.read(id, async () => (loads++, row(id)));
      return loads;
    };

    await fill();
    await changes.publish({ kind: 'number', orgId: 'o', id: 'a' });
    assert.deepEqual([await reloadsOf('a'), await reloadsOf('b')], [1, 0]);

    await changes.publish({ kind: 'agent', orgId: 'o', id: 'x' });
    assert.deepEqual([await reloadsOf('a'), await reloadsOf('b')], [0, 0]);

    await changes.publish({ kind: 'credentials', orgId: 'o', id: 'c' });
    assert.deepEqual([await reloadsOf('a'), await reloadsOf('b')], [1, 1]);

    await changes.publish({ kind: 'reload' });
    assert.deepEqual([await reloadsOf('a'), await reloadsOf('b')], [1, 1]);

    stop();
    await changes.publish({ kind: 'number', orgId: 'o', id: 'a' });
    assert.equal(await reloadsOf('a'), 0, 'unsubscribed');
  });

  test('holds at most maxEntries rows', async () => {
    const cache = new NumberRowCache(2);
    let loads = 0;
    const read = (id: string) => cache.read(id, async () => (loads++, row(id)));
    await read('a');
    await read('b');
    await read('c');
    await read('c');
    assert.equal(loads, 3, 'the newest stays');
    await read('a');
    assert.equal(loads, 4, 'older ones made room');
  });
});
