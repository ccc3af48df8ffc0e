// encryptChunks / decryptChunks: the streams as async iterables whose chunks are valid until the next step, so
// their memory is reused. A Transform hands every batch downstream in a fresh Buffer, and V8 counts the memory of
// fresh Buffers against its old-generation limit until a collection frees it: in a process holding ~110 MB of
// live objects, streaming brought a full mark-compact over the whole heap every 100–250 MiB and the stream fell
// from ~3.5 to 0.7–1.4 GB/s (node:crypto's streams alike; bench/stream-heap.mjs). Recycled outputs leave the
// collector nothing to chase.
import { Readable } from 'node:stream';
import { allocStreamOutput } from './native-batch.js';
import type { SegmentTransform } from './segment-transform.js';

/**
 * Buffers of iterations that ended, for the next ones: a fresh set per iteration is ~24 MiB of new Buffers per
 * 256 MiB object, and proportionally more for small objects. Bounded; wiped where they held plaintext before they
 * come here.
 */
const SPARE_LIMIT_BYTES = 64 * 1024 * 1024;
const spare: Buffer[] = [];
let spareBytes = 0;

function takeSpare(bytes: number): Buffer | undefined {
  for (let i = spare.length - 1; i >= 0; i--) {
    const b = spare[i];
    if (b.length >= bytes && b.length <= 2 * bytes + 4096) {
      spare.splice(i, 1);
      spareBytes -= b.length;
      return b;
    }
  }
  return undefined;
}

function giveSpare(b: Buffer): void {
  if (spareBytes + b.length > SPARE_LIMIT_BYTES) return;
  spare.push(b);
  spareBytes += b.length;
}

/**
 * `b`, or memory of its own when `b` is a view of shared memory (a small Buffer.allocUnsafe, the fallback without
 * the addon, lives in Node's pool with others): the ring tells its buffers apart, and reuses them, by their memory.
 */
function ownMemory(b: Buffer): Buffer {
  return b.byteOffset === 0 && b.length === b.buffer.byteLength ? b : Buffer.allocUnsafeSlow(b.length);
}

/** Output buffers of one iteration, reused once the consumer has moved past the chunk that used one. */
export class OutputRing {
  readonly #free: Buffer[] = [];
  /** Every buffer this ring made, by its memory (a chunk handed out is a view of one). */
  readonly #own = new Map<ArrayBufferLike, Buffer>();
  readonly #wipe: boolean;

  /** `wipe`: zero the buffers when the iteration ends (they held plaintext). */
  constructor(wipe: boolean) {
    this.#wipe = wipe;
  }

  /** `bytes` of output memory: a free buffer big enough, else a new one. */
  take(bytes: number): Buffer {
    for (let i = this.#free.length - 1; i >= 0; i--) {
      const b = this.#free[i];
      if (b.length >= bytes) {
        this.#free.splice(i, 1);
        return b.subarray(0, bytes);
      }
    }
    const b = takeSpare(bytes) ?? ownMemory(allocStreamOutput(bytes));
    this.#own.set(b.buffer, b);
    return b.subarray(0, bytes);
  }

  /** The consumer is done with `chunk`: its buffer may be reused (chunks this ring did not make are ignored). */
  release(chunk: Uint8Array): void {
    const b = this.#own.get(chunk.buffer);
    if (b && !this.#free.includes(b)) this.#free.push(b);
  }

  end(): void {
    for (const b of this.#own.values()) {
      if (this.#wipe) b.fill(0);
      giveSpare(b);
    }
    this.#free.length = 0;
    this.#own.clear();
  }
}

/**
 * Feeds `source` into `stream` and yields its output; each chunk's memory is reused once the consumer asks for the
 * next one. Errors of either side end the iteration with that error; leaving the loop early destroys both.
 */
export async function* iterateRecycled(stream: SegmentTransform, ring: OutputRing, source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<Buffer, void, undefined> {
  const input = source instanceof Readable ? source : Readable.from(source, { objectMode: true });
  input.once('error', (error) => stream.destroy(error));
  input.pipe(stream);
  let held: Buffer | undefined;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (held) ring.release(held); // the consumer came back for more: it is done with the last one
      held = chunk;
      yield chunk;
    }
  } finally {
    input.unpipe(stream);
    input.destroy();
    stream.destroy();
    // Batches still in flight write into the ring until the stream has settled them (its _destroy waits).
    await new Promise<void>((resolve) => (stream.closed ? resolve() : stream.once('close', () => resolve())));
    ring.end();
  }
}
