import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GAP_WAIT_MS, SeqGapWait } from '../../src/events/seq-gaps.ts';

test('a reader of the event log passes seqs up to a gap, and the gap once it has waited long enough', () => {
  const cases: { name: string; cursor: number; seqs: number[]; waitedMs: number | null; passable: number }[] = [
    { name: 'no gap', cursor: 4, seqs: [5, 6, 7], waitedMs: null, passable: 3 },
    { name: 'nothing new', cursor: 4, seqs: [], waitedMs: null, passable: 0 },
    { name: 'a gap after two', cursor: 4, seqs: [5, 6, 8], waitedMs: null, passable: 2 },
    { name: 'a gap first', cursor: 4, seqs: [6, 7], waitedMs: null, passable: 0 },
    { name: 'a gap seen a moment ago', cursor: 4, seqs: [6, 7], waitedMs: GAP_WAIT_MS - 1, passable: 0 },
    { name: 'a gap waited for long enough', cursor: 4, seqs: [6, 7], waitedMs: GAP_WAIT_MS, passable: 2 },
  ];
  for (const c of cases) {
    const gaps = new SeqGapWait();
    const start = 1_000_000;
    if (c.waitedMs !== null) gaps.passable(c.cursor, c.seqs, start);
    assert.equal(gaps.passable(c.cursor, c.seqs, start + (c.waitedMs ?? 0)), c.passable, c.name);
  }
});

test('a gap that fills in is passed at once, and the wait starts afresh at the next one', () => {
  const gaps = new SeqGapWait();
  assert.equal(gaps.passable(0, [1, 3], 0), 1);
  assert.equal(gaps.passable(1, [2, 3], 100), 2);
  assert.equal(gaps.passable(3, [5], GAP_WAIT_MS + 100), 0, 'a new gap waits its own time');
  assert.equal(gaps.passable(3, [5], 2 * GAP_WAIT_MS + 100), 1);
});
