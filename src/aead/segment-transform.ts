// The machinery of the encrypt and decrypt Transforms (streams.ts). Input is staged into reusable buffers of one
// batch each; full batches are sealed or opened in parallel, at most `maxInFlight` at a time (the transform
// callback waits, so backpressure reaches the writer), and finished batches are pushed strictly in order.
//   - Native pool (native-batch.ts): whole segments are read by the addon's threads where the writer's chunks
//     lie (no copy), and each batch's output is written into a fresh Buffer that is pushed as is. Only the tail
//     that must wait for more input (≤ one segment per write) is copied, into ordinary memory. A write's callback
//     runs once the segments reading its chunks are done (a writer may reuse a chunk after its callback), and
//     _writev plus a writable high-water mark of a few batches let the writer queue chunks meanwhile, so the
//     threads get several batches per round trip.
//   - Worker pool (fallback): staging and output are SharedArrayBuffer slabs (the cipher's SlabPool); finished
//     batches are copied out.
// Memory is bounded by about 2 × (4 × threads + 1) batches plus what the readable side buffers, whatever the size
// (the writer's queued chunks are its own memory, referenced, not copied).
//
// A batch is dispatched only once a byte after it has arrived, so the stream always knows which segment is the
// last one (its nonce carries the last flag). The decryptor pushes a batch only after every tag in it verified;
// a stream that ends early fails the final segment's check and ends with DecryptionError, never cleanly.
import { addAbortSignal, Transform, type TransformCallback } from 'node:stream';
import { DecryptionError } from '../errors.js';
import { tuneAllocatorOnce } from '../pool/allocator.js';
import { MAX_SEGMENTS } from './header.js';
import type { OutputRing } from './chunk-iterators.js';
import { allocStreamOutput, nativePoolEnabled, openBatch, sealBatch } from './native-batch.js';
import { type CipherSettings, POOL_MIN_BYTES } from './options.js';
import { openSegments, sealSegments } from './segment.js';
import { TASK_OPEN, TASK_SEAL, type SegmentBatchTask } from './tasks.js';

interface Pending {
  settled: Promise<unknown>;
  /** Output slab (worker pool; undefined when `out` is a Buffer of its own) and the part of it this batch fills. */
  slab: Uint8Array | undefined;
  out: Uint8Array;
  done: boolean;
}

/** Shared machinery: slab staging, in-order dispatch and push, key slot lifetime. */
export abstract class SegmentTransform extends Transform {
  protected readonly settings: CipherSettings;
  protected keySlot: Uint8Array | undefined;
  protected noncePrefix: Uint8Array | undefined;
  protected segmentBytes = 0;
  /** Input bytes per full batch (plaintext for sealing, sealed segments for opening). */
  protected batchInBytes = 0;
  /** Input bytes of one whole segment (plaintext for sealing, sealed segment for opening). */
  protected unitBytes = 0;
  protected nextIndex = 0;
  /** Resolves a write waiting for the readable side to drain (native path, _writev). */
  #onRead: (() => void) | undefined;
  #slab: Uint8Array | undefined;
  #fill = 0;
  readonly #queue: Pending[] = [];
  /** Native path: staging buffers (ordinary memory) free for reuse by this stream. */
  readonly #spare: Uint8Array[] = [];
  readonly #native = nativePoolEnabled();
  /** Where outputs go when the consumer hands them back (chunk-iterators.ts); else fresh Buffers. */
  readonly #ring: OutputRing | undefined;

  constructor(settings: CipherSettings, signal: AbortSignal | undefined, ring?: OutputRing) {
    // Native path: let the writer queue a few batches of chunks (by reference) while the threads work. The bytes
    // in flight count against the mark, so a write gets about half of it: at 2 × threads batches, writes of 4 MiB
    // (2 threads) left both threads idle between writes often enough to cost ~7 % (measured, alternating runs);
    // 4 × threads gives writes of 8 MiB.
    // With a ring, the readable side holds whole chunks (object mode): a byte-mode read() joins what is buffered
    // into one fresh Buffer, which would hand the consumer a copy instead of the ring's memory (measured: 4 MiB
    // chunks without the addon). One chunk buffered, as a byte-mode mark of 16 KiB allows.
    super({
      ...(nativePoolEnabled() ? { writableHighWaterMark: 4 * settings.pool.threads * settings.batchBytes } : {}),
      ...(ring ? { readableObjectMode: true, readableHighWaterMark: 1 } : {}),
    });
    this.settings = settings;
    this.#ring = ring;
    if (signal) addAbortSignal(signal, this);
  }

  protected abstract readonly kind: typeof TASK_SEAL | typeof TASK_OPEN;
  /** Output bytes of a batch with `inBytes` input bytes and `count` segments. */
  protected abstract outBytes(inBytes: number, count: number): number;
  /** Segment count of a batch; throws if its shape is impossible. */
  protected abstract batchCount(inBytes: number, last: boolean): number;

  /** The object body bytes in `chunk` (after the header has been dealt with). */
  protected abstract body(chunk: Uint8Array): Promise<Uint8Array>;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#write([chunk]).then(() => callback(), callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.#write(chunks.map((c) => c.chunk))
      .then(() => (this.readableLength >= this.readableHighWaterMark ? new Promise<void>((resolve) => (this.#onRead = resolve)) : undefined))
      .then(() => callback(), callback);
  }

  override _read(size: number): void {
    const resume = this.#onRead;
    this.#onRead = undefined;
    resume?.();
    super._read(size);
  }

  async #write(chunks: Uint8Array[]): Promise<void> {
    const bodies: Uint8Array[] = [];
    for (const chunk of chunks) {
      const body = await this.body(chunk);
      if (body.length > 0) bodies.push(body);
    }
    if (bodies.length === 0) return;
    if (this.#native) await this.#stageInPlace(bodies);
    else for (const body of bodies) await this.stage(body);
  }

  /**
   * Native path: dispatches every whole segment but the last 1..unit bytes straight from `bodies` (and the held
   * tail of earlier writes), copies those last bytes into the held buffer, and returns once the dispatched
   * batches are done and pushed: then nothing references the writer's chunks any more.
   */
  async #stageInPlace(bodies: Uint8Array[]): Promise<void> {
    const views = this.#slab && this.#fill > 0 ? [this.#slab.subarray(0, this.#fill), ...bodies] : bodies;
    let avail = 0;
    for (const v of views) avail += v.length;
    const keep = ((avail - 1) % this.unitBytes) + 1; // avail > 0 here
    let send = avail - keep;
    if (send === 0) {
      // Not a whole segment beyond the held tail yet: append to it (it has room for a whole batch).
      this.#slab ??= this.#spare.pop() ?? Buffer.allocUnsafeSlow(this.batchInBytes);
      for (const b of bodies) {
        this.#slab.set(b, this.#fill);
        this.#fill += b.length;
      }
      return;
    }
    const held = this.#fill > 0 ? this.#slab : undefined;
    let v = 0;
    let at = 0;
    const take = (n: number): Uint8Array[] => {
      const out: Uint8Array[] = [];
      while (n > 0) {
        const piece = views[v].subarray(at, at + Math.min(n, views[v].length - at));
        out.push(piece);
        n -= piece.length;
        at += piece.length;
        if (at === views[v].length) (v++, (at = 0));
      }
      return out;
    };
    let first = true;
    while (send > 0) {
      const n = Math.min(this.batchInBytes, send);
      this.#runNative(take(n), n, false, first ? held : undefined);
      first = false;
      send -= n;
    }
    const tail = take(keep);
    const next = this.#spare.pop() ?? Buffer.allocUnsafeSlow(this.batchInBytes);
    let fill = 0;
    for (const piece of tail) {
      next.set(piece, fill);
      fill += piece.length;
    }
    if (held === undefined && this.#slab) this.#release(this.#slab);
    this.#slab = next;
    this.#fill = fill;
    await this.drain(0);
  }

  /** Native path: seals/opens `parts` (fill bytes, whole segments unless last) into a Buffer queued for pushing. */
  #runNative(parts: Uint8Array[], fill: number, last: boolean, release: Uint8Array | undefined): void {
    const count = this.batchCount(fill, last);
    if (this.nextIndex + count > MAX_SEGMENTS) throw new RangeError(`object exceeds ${MAX_SEGMENTS} segments`);
    const firstIndex = this.nextIndex;
    this.nextIndex += count;
    const schedule = { noncePrefix: this.noncePrefix!, segmentBytes: this.segmentBytes };
    // Output straight into the Buffer that is pushed downstream (malloc memory, recycled once collected, or the
    // ring's when the consumer gives chunks back).
    const bytes = this.outBytes(fill, count);
    const out = this.#ring ? this.#ring.take(bytes) : allocStreamOutput(bytes);
    const threads = this.settings.pool.threads;
    const run = this.kind === TASK_SEAL
      ? sealBatch(this.keySlot!, schedule, firstIndex, last, parts, out, threads).then(() => -1)
      : openBatch(this.keySlot!, schedule, firstIndex, last, parts, out, threads);
    const pending: Pending = { settled: undefined as unknown as Promise<unknown>, slab: undefined, out, done: false };
    pending.settled = run.then((failed) => {
      this.#release(release);
      if (failed >= 0) throw new DecryptionError();
      pending.done = true;
    });
    pending.settled.catch(() => {}); // awaited in order by drain(); this only marks early failures handled
    this.#queue.push(pending);
  }

  /** Worker path: stages body bytes; dispatches each full batch once a byte beyond it is known. */
  protected async stage(chunk: Uint8Array): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      if (this.#slab !== undefined && this.#fill === this.batchInBytes) await this.dispatch(false);
      this.#slab ??= this.settings.slabs.acquire(this.batchInBytes);
      const n = Math.min(chunk.length - at, this.batchInBytes - this.#fill);
      this.#slab.set(chunk.subarray(at, at + n), this.#fill);
      this.#fill += n;
      at += n;
    }
  }

  /** Sends the staged batch to a worker (or, for a small whole object, seals/opens it right here). */
  protected async dispatch(last: boolean): Promise<void> {
    const slab = this.#slab;
    const fill = this.#fill;
    this.#slab = undefined;
    this.#fill = 0;
    const src = slab ? slab.subarray(0, fill) : new Uint8Array(0);
    const count = this.batchCount(fill, last);
    if (this.nextIndex + count > MAX_SEGMENTS) throw new RangeError(`object exceeds ${MAX_SEGMENTS} segments`);
    const outBytes = this.outBytes(fill, count);
    const firstIndex = this.nextIndex;
    this.nextIndex += count;
    const schedule = { noncePrefix: this.noncePrefix!, segmentBytes: this.segmentBytes };
    if (last && firstIndex === 0 && fill < POOL_MIN_BYTES) {
      // A small whole object: no round trip to another thread.
      const out = Buffer.allocUnsafeSlow(outBytes);
      const ok = this.kind === TASK_SEAL ? (sealSegments(this.keySlot!, schedule, 0, src, out, true), true) : openSegments(this.keySlot!, schedule, 0, src, out, true) < 0;
      this.#release(slab);
      if (!ok) throw new DecryptionError();
      this.push(out);
      return;
    }
    tuneAllocatorOnce(); // both paths hand fresh batch-sized Buffers downstream
    if (this.#native) {
      this.nextIndex = firstIndex; // #runNative numbers the segments itself
      this.#runNative([src], fill, last, slab);
      await this.drain(this.settings.maxInFlight - 1);
      return;
    }
    const slabs = this.settings.slabs;
    const outSlab = slabs.acquire(outBytes);
    const out = outSlab.subarray(0, outBytes);
    const task: SegmentBatchTask = { kind: this.kind, key: this.keySlot!, ...schedule, firstIndex, src, dst: out, isLastBatch: last };
    const pending: Pending = { settled: undefined as unknown as Promise<unknown>, slab: outSlab, out, done: false };
    pending.settled = this.settings.pool.run<number | undefined>(task).then((result) => {
      this.#release(slab);
      if (typeof result === 'number' && result >= 0) {
        slabs.release(outSlab);
        throw new DecryptionError();
      }
      pending.done = true;
    });
    pending.settled.catch(() => {}); // awaited in order by drain(); this only marks early failures handled
    this.#queue.push(pending);
    await this.drain(this.settings.maxInFlight - 1);
  }

  /** Returns a staging buffer to where it came from. */
  #release(slab: Uint8Array | undefined): void {
    if (!slab) return;
    if (!this.#native) this.settings.slabs.release(slab);
    else if (this.#spare.length < this.settings.maxInFlight + 1) this.#spare.push(slab);
    else slab.fill(0);
  }

  /** Pushes finished batches in order; waits until at most `keep` are still in flight. */
  protected async drain(keep: number): Promise<void> {
    while (this.#queue.length > 0 && (this.#queue.length > keep || this.#queue[0].done)) {
      const head = this.#queue[0];
      await head.settled;
      this.#queue.shift();
      if (!head.slab) {
        this.push(head.out); // native path: already a Buffer of its own
        continue;
      }
      // Downstream gets its own copy (malloc-ed, so recycled once collected); the slab goes back to the pool.
      const copy = this.#ring ? this.#ring.take(head.out.length) : allocStreamOutput(head.out.length);
      copy.set(head.out);
      this.settings.slabs.release(head.slab);
      this.push(copy);
    }
  }

  /** Staged body bytes not yet dispatched. */
  protected get staged(): number {
    return this.#fill;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Workers may still read the key slot: zero it once everything in flight has settled.
    const inFlight = this.#queue.splice(0).map((p) => p.settled);
    Promise.allSettled(inFlight).then(() => {
      this.#wipe();
      callback(error);
    });
  }

  protected finish(): void {
    this.#wipe();
  }

  #wipe(): void {
    this.keySlot?.fill(0);
    this.#release(this.#slab);
    this.#slab = undefined;
    for (const spare of this.#spare.splice(0)) spare.fill(0); // staged plaintext
  }
}

