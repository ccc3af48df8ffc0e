// The engine's concurrency windows, in one place: an ordered window (results delivered in submission order,
// at most `limit` in flight) and a limiter (at most `limit` holders at once, FIFO).

/** Runs promises with at most `limit` in flight, delivering results in order. */
export class OrderedWindow<T> {
  readonly #limit: number;
  readonly #queue: Promise<T>[] = [];
  constructor(limit: number) {
    this.#limit = limit;
  }
  get full(): boolean {
    return this.#queue.length >= this.#limit;
  }
  get size(): number {
    return this.#queue.length;
  }
  push(job: Promise<T>): void {
    job.catch(() => {}); // observed when shifted; avoids an unhandled rejection while waiting in line
    this.#queue.push(job);
  }
  shift(): Promise<T> {
    return this.#queue.shift()!;
  }
  /** Waits for every job still in line, ignoring their failures (cleanup after an error). */
  async drain(): Promise<void> {
    while (this.#queue.length > 0) await this.#queue.shift()!.catch(() => {});
  }
}

/** At most `limit` concurrent holders; the rest wait in FIFO order. */
export class Limiter {
  readonly #limit: number;
  #active = 0;
  readonly #waiting: Array<() => void> = [];
  constructor(limit: number) {
    this.#limit = limit;
  }
  get active(): number {
    return this.#active;
  }
  async run<R>(job: () => Promise<R>): Promise<R> {
    if (this.#active >= this.#limit) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#active++;
    try {
      return await job();
    } finally {
      this.#active--;
      this.#waiting.shift()?.();
    }
  }
}
