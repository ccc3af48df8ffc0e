// Reused SharedArrayBuffer-backed buffers for stripes in flight. Fresh memory costs page faults on first touch
// (~1.5–2 GB/s here, slower than the crypto), so stripe buffers are recycled across stripes and objects.
import { allocShared } from '../pool/shared-memory.js';

const MAX_FREE_PER_SIZE = 16;

export class SharedBuffers {
  readonly #free = new Map<number, Uint8Array[]>();

  acquire(bytes: number): Uint8Array {
    const list = this.#free.get(bytes);
    return list?.pop() ?? allocShared(bytes);
  }

  release(buffer: Uint8Array): void {
    let list = this.#free.get(buffer.length);
    if (!list) this.#free.set(buffer.length, (list = []));
    if (list.length < MAX_FREE_PER_SIZE) list.push(buffer);
  }

  clear(): void {
    this.#free.clear();
  }
}
