import type { ChangeFeed } from '../db/changes.ts';
import type { NumberRow } from './number-row.ts';

/**
 * Copies of recently read number rows, which GET /sip-phone-numbers/{id} answers from. Only on
 * SQLite: there this process is the only writer of numbers and credentials (the CLI writes
 * organizations and keys only; two servers on one SQLite file are not supported), so it sees
 * every change as it makes it and the copies stay exact. On PostgreSQL other instances write
 * too and their notifications arrive later than their answers, so reads go to the database.
 *
 * A changed number is evicted before the change is announced as done (the change feed's
 * listeners run before the API answers; the status writer evicts what it wrote). A change to
 * credentials clears everything, as a number shows its credentials' provider; an agent's
 * change is no number's (unlinking an agent's numbers announces each number). A read that was
 * under way while something was evicted is not kept, as it may predate the change.
 */
export class NumberRowCache {
  #rows = new Map<string, NumberRow>();
  #generation = 0;

  readonly #maxEntries;

  constructor(maxEntries = 10_000) {
    this.#maxEntries = maxEntries;
  }

  get(id: string): NumberRow | undefined {
    return this.#rows.get(id);
  }

  /** Resolves with what `reading` (just started) finds, and keeps it unless something was evicted meanwhile. */
  async keep(id: string, reading: Promise<NumberRow | undefined>): Promise<NumberRow | undefined> {
    const generation = this.#generation;
    const row = await reading;
    if (row && generation === this.#generation) {
      if (this.#rows.size >= this.#maxEntries) this.#rows.clear();
      this.#rows.set(id, row);
    }
    return row;
  }

  evict(ids: Iterable<string>): void {
    this.#generation++;
    for (const id of ids) this.#rows.delete(id);
  }

  clear(): void {
    this.#generation++;
    this.#rows.clear();
  }

  /** Keeps the copies exact as changes are announced; returns the unsubscribe. */
  follow(changes: ChangeFeed): () => void {
    return changes.subscribe((change) => {
      if (change.kind === 'number') this.evict([change.id]);
      else if (change.kind !== 'agent') this.clear();
    });
  }
}
