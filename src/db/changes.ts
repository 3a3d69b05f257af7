import { EventEmitter } from 'node:events';

/** What changed; listeners re-read what they need. `reload` means "assume everything changed". */
export type Change =
  | { kind: 'number'; orgId: string; id: string }
  | { kind: 'agent'; orgId: string; id: string }
  | { kind: 'credentials'; orgId: string; id: string }
  | { kind: 'reload' };

export type ChangeListener = (change: Change) => void;

/**
 * The one subscription through which the rest of the code learns of changes to numbers, links,
 * agents and credentials, whichever instance made them.
 */
export interface ChangeFeed {
  /** Announces a committed change made by this instance. */
  publish(change: Change): void;
  subscribe(listener: ChangeListener): () => void;
  close(): Promise<void>;
}

/** Single-process feed: every change is made here, so publishing is delivering. */
export class LocalChangeFeed implements ChangeFeed {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  publish(change: Change): void {
    this.emitter.emit('change', change);
  }

  subscribe(listener: ChangeListener): () => void {
    this.emitter.on('change', listener);
    return () => this.emitter.off('change', listener);
  }

  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}
