/**
 * On PostgreSQL an event's seq is taken at insert and becomes visible at commit, so a smaller
 * seq can appear after a larger one. Whoever follows the event log in order (the live stream,
 * the webhook fan-out) waits this long at a gap before passing it: a gap that stays is a rolled
 * back transaction's seq, or one skipped by the sequence after a crash.
 */
export const GAP_WAIT_MS = 2000;

/** Remembers since when the reader has been stopped at a gap after its cursor. */
export class SeqGapWait {
  #since: number | null = null;

  /** How many of `seqs` (ascending, all after `cursor`) may be passed now. */
  passable(cursor: number, seqs: readonly number[], now = Date.now()): number {
    let previous = cursor;
    for (let i = 0; i < seqs.length; i++) {
      if (seqs[i] !== previous + 1) {
        this.#since ??= now;
        if (now - this.#since < GAP_WAIT_MS) return i;
      }
      this.#since = null;
      previous = seqs[i];
    }
    return seqs.length;
  }
}
