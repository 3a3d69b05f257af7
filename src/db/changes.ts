/** What changed; listeners re-read what they need. `reload` means "assume everything changed". */
export type Change =
  | {
      kind: 'number';
      orgId: string;
      id: string;
      /** Set when only the number's inbound agent changed (a link or unlink), for listeners that do not care. */
      linkOnly?: boolean;
    }
  | { kind: 'agent'; orgId: string; id: string }
  | { kind: 'credentials'; orgId: string; id: string }
  | { kind: 'reload' };

/** A listener may return a promise: the publisher waits for it (see publish). */
export type ChangeListener = (change: Change) => void | Promise<void>;

/**
 * The one subscription through which the rest of the code learns of changes to numbers, links,
 * agents and credentials, whichever instance made them.
 */
export interface ChangeFeed {
  /**
   * Announces a committed change made by this instance, and resolves once every local listener
   * has taken it in: an API call that changed a link answers only after call routing knows.
   */
  publish(change: Change): Promise<void>;
  subscribe(listener: ChangeListener): () => void;
  close(): Promise<void>;
}

/** The listeners of one process; both feeds deliver through it. */
export class ChangeListeners {
  readonly #listeners = new Set<ChangeListener>();

  add(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async deliver(change: Change): Promise<void> {
    const pending: Promise<void>[] = [];
    for (const listener of this.#listeners) {
      const result = listener(change);
      if (result) pending.push(result);
    }
    if (pending.length > 0) await Promise.all(pending);
  }

  clear(): void {
    this.#listeners.clear();
  }
}

/** Single-process feed: every change is made here, so publishing is delivering. */
export class LocalChangeFeed implements ChangeFeed {
  readonly #listeners = new ChangeListeners();

  publish(change: Change): Promise<void> {
    return this.#listeners.deliver(change);
  }

  subscribe(listener: ChangeListener): () => void {
    return this.#listeners.add(listener);
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}
