// One memory budget for the stripe buffers of every object call of a service, so that many calls at once (16
// puts and gets of 8 MiB objects) stay within a bound instead of each taking its own window. A call's first
// stripe is always granted (so every call progresses, and a get piped into a put cannot deadlock); further
// stripes wait until the bytes in use fall under the limit. The bound is `limit` plus one stripe per call.

/** What one call holds. */
export class BudgetHolder {
  held = 0;
}

export class MemoryBudget {
  readonly limit: number;
  #used = 0;
  readonly #waiting: Array<{ holder: BudgetHolder; bytes: number; grant: () => void }> = [];

  constructor(limit: number) {
    this.limit = limit;
  }

  get used(): number {
    return this.#used;
  }

  /** Whether `take` would grant at once (a call that holds nothing always gets its stripe). */
  fits(holder: BudgetHolder, bytes: number): boolean {
    return holder.held === 0 || this.#used + bytes <= this.limit;
  }

  async take(holder: BudgetHolder, bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.#waiting.length === 0 && this.fits(holder, bytes)) {
      this.#grant(holder, bytes);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const entry = { holder, bytes, grant: () => { signal?.removeEventListener('abort', onAbort); resolve(); } };
      const onAbort = () => {
        const at = this.#waiting.indexOf(entry);
        if (at >= 0) this.#waiting.splice(at, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiting.push(entry);
      this.#wake();
    });
  }

  give(holder: BudgetHolder, bytes: number): void {
    holder.held -= bytes;
    this.#used -= bytes;
    this.#wake();
  }

  #grant(holder: BudgetHolder, bytes: number): void {
    holder.held += bytes;
    this.#used += bytes;
  }

  /** Grants waiters in order; one that does not fit yet does not stop a later one whose call holds nothing. */
  #wake(): void {
    for (let i = 0; i < this.#waiting.length; ) {
      const w = this.#waiting[i]!;
      if (this.fits(w.holder, w.bytes)) {
        this.#waiting.splice(i, 1);
        this.#grant(w.holder, w.bytes);
        w.grant();
      } else {
        i++;
      }
    }
  }
}
