/**
 * How many API requests arrived lately: whether the API is under load, for work that should
 * step aside then (webhook deliveries). A rate, not the requests in flight, so that long-lived
 * event streams do not count. Counted in buckets of 100 ms over the last second: load is 1000
 * requests within a second, or twice that rate over the last 200 ms, so that load is noticed
 * within a fifth of a second while a steady load sent in bursts (200 requests at the top of
 * each second) is not taken for it.
 */
const BUCKET_MS = 100;
const BUCKETS = 10;
/** This many requests within the last second is load. */
const BUSY_PER_SECOND = 1000;
/** This many within the last two buckets is load as well (2000 a second). */
const BUSY_PER_TWO_BUCKETS = 400;

export class RequestRate {
  readonly #buckets = new Array<number>(BUCKETS).fill(0);
  /** The bucket of the latest hit or look, counted from the epoch. */
  #bucket = 0;

  hit(now = Date.now()): void {
    this.#roll(now);
    this.#buckets[this.#bucket % BUCKETS]++;
  }

  busy(now = Date.now()): boolean {
    this.#roll(now);
    const lastTwo = this.#buckets[this.#bucket % BUCKETS] + this.#buckets[(this.#bucket + BUCKETS - 1) % BUCKETS];
    return lastTwo >= BUSY_PER_TWO_BUCKETS || this.#buckets.reduce((sum, count) => sum + count, 0) >= BUSY_PER_SECOND;
  }

  /** Empties the buckets that ended since the last hit or look. */
  #roll(now: number): void {
    const bucket = Math.floor(now / BUCKET_MS);
    for (let passed = this.#bucket + 1; passed <= bucket && passed <= this.#bucket + BUCKETS; passed++) this.#buckets[passed % BUCKETS] = 0;
    if (bucket > this.#bucket) this.#bucket = bucket;
  }
}
