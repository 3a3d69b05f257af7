/**
 * One timer for many deadlines: a binary min-heap of (time, item) with a single unref'd
 * setTimeout armed for the earliest. Ten thousand registrations cost one timer, not ten
 * thousand. Rescheduling or cancelling an item leaves its old entry in the heap, where it is
 * skipped when it comes up (and the heap is compacted when such entries pile up).
 */

interface Entry<T> {
  at: number;
  seq: number;
  item: T;
}

/** setTimeout's largest delay (about 24.8 days); longer ones are re-armed when it fires. */
const MAX_DELAY = 2 ** 31 - 1;

export class TimerQueue<T> {
  #heap: Entry<T>[] = [];
  /** The live entry's seq for each scheduled item. */
  #live = new Map<T, number>();
  #seq = 0;
  #timer: NodeJS.Timeout | null = null;
  #armedAt = Infinity;
  #closed = false;

  /** Called once per due item, with how late it fires (ms). Exceptions go to onError. */
  readonly #fire: (item: T, lagMs: number) => void;
  readonly #onError: (error: unknown) => void;
  readonly #clock: () => number;

  constructor(fire: (item: T, lagMs: number) => void, onError: (error: unknown) => void = () => {}, clock: () => number = Date.now) {
    this.#fire = fire;
    this.#onError = onError;
    this.#clock = clock;
  }

  get size(): number {
    return this.#live.size;
  }

  /** Schedules `item` at `at` (ms since the epoch), replacing an earlier schedule of it. */
  schedule(item: T, at: number): void {
    if (this.#closed) return;
    const seq = ++this.#seq;
    this.#live.set(item, seq);
    this.#push({ at, seq, item });
    if (this.#heap.length > 1024 && this.#heap.length > 2 * this.#live.size) this.#compact();
    if (at < this.#armedAt) this.#arm();
  }

  cancel(item: T): void {
    this.#live.delete(item);
  }

  has(item: T): boolean {
    return this.#live.has(item);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#heap = [];
    this.#live.clear();
  }

  #arm(): void {
    while (this.#heap.length > 0 && this.#live.get(this.#heap[0].item) !== this.#heap[0].seq) this.#pop();
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#armedAt = Infinity;
    const top = this.#heap[0];
    if (top === undefined || this.#closed) return;
    this.#armedAt = top.at;
    const delay = Math.min(MAX_DELAY, Math.max(0, top.at - this.#clock()));
    this.#timer = setTimeout(() => this.#run(), delay);
    this.#timer.unref();
  }

  #run(): void {
    this.#timer = null;
    this.#armedAt = Infinity;
    const now = this.#clock();
    while (this.#heap.length > 0 && this.#heap[0].at <= now && !this.#closed) {
      const entry = this.#pop()!;
      if (this.#live.get(entry.item) !== entry.seq) continue;
      this.#live.delete(entry.item);
      try {
        this.#fire(entry.item, now - entry.at);
      } catch (error) {
        this.#onError(error);
      }
    }
    this.#arm();
  }

  #compact(): void {
    this.#heap = this.#heap.filter((entry) => this.#live.get(entry.item) === entry.seq);
    for (let i = (this.#heap.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }

  #push(entry: Entry<T>): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  #pop(): Entry<T> | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last;
      this.#down(0);
    }
    return top;
  }

  #down(i: number): void {
    const heap = this.#heap;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && less(heap[left], heap[smallest])) smallest = left;
      if (right < heap.length && less(heap[right], heap[smallest])) smallest = right;
      if (smallest === i) return;
      [heap[i], heap[smallest]] = [heap[smallest], heap[i]];
      i = smallest;
    }
  }
}

function less<T>(a: Entry<T>, b: Entry<T>): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
