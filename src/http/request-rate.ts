/**
 * How many API requests arrived lately, in windows of a second: whether the API is under load,
 * for work that should step aside then (webhook deliveries). A rate, not the requests in flight,
 * so that long-lived event streams do not count. A whole second, so that a steady load sent in
 * bursts (200 requests at the top of each second) is not taken for load.
 */
const WINDOW_MS = 1000;
/** This many requests a second, or more, is load. */
const BUSY_PER_SECOND = 1000;

export class RequestRate {
  #windowStart = 0;
  #current = 0;
  #previous = 0;

  hit(now = Date.now()): void {
    this.#roll(now);
    this.#current++;
  }

  busy(now = Date.now()): boolean {
    this.#roll(now);
    return Math.max(this.#previous, this.#current) >= (BUSY_PER_SECOND * WINDOW_MS) / 1000;
  }

  #roll(now: number): void {
    if (now - this.#windowStart < WINDOW_MS) return;
    // A window with no request in it since the last one ended: nothing is left over.
    this.#previous = now - this.#windowStart < 2 * WINDOW_MS ? this.#current : 0;
    this.#current = 0;
    this.#windowStart = now;
  }
}
