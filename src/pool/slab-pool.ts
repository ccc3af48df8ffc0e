// Reusable SharedArrayBuffer slabs for staging bulk data between the main thread and the workers.
//
// Why reuse: fresh memory costs a page fault per 4 KiB on first touch (as much as the encryption itself), and a
// SharedArrayBuffer that was ever posted to a worker stays alive until that worker's next GC, which may be far
// away (a worker allocates little on its own heap). Reusing a bounded set of slabs keeps both the faults and the
// memory flat, whatever the object size. Slabs never leave the engine: callers get copies.
import { allocShared } from './shared-memory.js';

/** Slab sizes are rounded up to this, so batches of slightly different sizes share slabs. */
export const SLAB_GRANULE_BYTES = 64 * 1024;

export class SlabPool {
  readonly maxFreeBytes: number;
  readonly #free = new Map<number, Uint8Array[]>();
  #freeBytes = 0;

  /** Keeps at most `maxFreeBytes` of released slabs for reuse; the rest are zeroed and dropped. */
  constructor(maxFreeBytes: number) {
    this.maxFreeBytes = maxFreeBytes;
  }

  /** A slab of at least `bytes` bytes (its contents are whatever the last user left: overwrite before use). */
  acquire(bytes: number): Uint8Array {
    const capacity = Math.max(SLAB_GRANULE_BYTES, Math.ceil(bytes / SLAB_GRANULE_BYTES) * SLAB_GRANULE_BYTES);
    const list = this.#free.get(capacity);
    const slab = list?.pop();
    if (slab) {
      this.#freeBytes -= slab.length;
      return slab;
    }
    return allocShared(capacity);
  }

  /** Returns a slab from `acquire` (the whole slab, not a subarray of it). */
  release(slab: Uint8Array): void {
    if (this.#freeBytes + slab.length > this.maxFreeBytes) {
      slab.fill(0); // it held plaintext; it may live on in a worker until that worker collects it
      return;
    }
    let list = this.#free.get(slab.length);
    if (!list) this.#free.set(slab.length, (list = []));
    list.push(slab);
    this.#freeBytes += slab.length;
  }

  /** Zeroes and drops every free slab. */
  clear(): void {
    for (const list of this.#free.values()) for (const slab of list) slab.fill(0);
    this.#free.clear();
    this.#freeBytes = 0;
  }
}
