// Encrypt and decrypt Transforms. Input is staged into reusable buffers of one batch each; full batches are sealed
// or opened in parallel, at most `maxInFlight` at a time (the transform callback waits, so backpressure reaches the
// writer), and finished batches are pushed strictly in order.
//   - Native pool (native-batch.ts): staging buffers are ordinary memory (glibc memcpy, not V8's relaxed copy of
//     shared memory), the addon's threads write each batch's output into a fresh Buffer that is pushed as is:
//     one pass over the bytes on this thread instead of two.
//   - Worker pool (fallback): staging and output are SharedArrayBuffer slabs (the cipher's SlabPool); finished
//     batches are copied out.
// Memory is bounded by about 2 × (2 × threads + 1) batches plus what the readable side buffers, whatever the size.
//
// A batch is dispatched only once a byte after it has arrived, so the stream always knows which segment is the
// last one (its nonce carries the last flag). The decryptor pushes a batch only after every tag in it verified;
// a stream that ends early fails the final segment's check and ends with DecryptionError, never cleanly.
import { addAbortSignal, Transform, type TransformCallback } from 'node:stream';
import { DecryptionError } from '../errors.js';
import { copyToShared } from '../pool/shared-memory.js';
import { tuneAllocatorOnce } from '../pool/allocator.js';
import { headerLength, headerLengthFor, MAX_SEGMENTS, parseHeader, TAG_BYTES, MAX_WRAPPED_DEK_BYTES } from './header.js';
import { nativePoolEnabled, openBatch, sealBatch } from './native-batch.js';
import { newObject, openObjectKey } from './object-keys.js';
import { type CipherSettings, POOL_MIN_BYTES, segmentsPerBatch } from './options.js';
import { batchSegmentCount, openSegments, sealSegments } from './segment.js';
import { TASK_OPEN, TASK_SEAL, type SegmentBatchTask } from './tasks.js';

interface Pending {
  settled: Promise<unknown>;
  /** Output slab (worker pool; undefined when `out` is a Buffer of its own) and the part of it this batch fills. */
  slab: Uint8Array | undefined;
  out: Uint8Array;
  done: boolean;
}

/** Shared machinery: slab staging, in-order dispatch and push, key slot lifetime. */
abstract class SegmentTransform extends Transform {
  protected readonly settings: CipherSettings;
  protected keySlot: Uint8Array | undefined;
  protected noncePrefix: Uint8Array | undefined;
  protected segmentBytes = 0;
  /** Input bytes per full batch (plaintext for sealing, sealed segments for opening). */
  protected batchInBytes = 0;
  protected nextIndex = 0;
  #slab: Uint8Array | undefined;
  #fill = 0;
  readonly #queue: Pending[] = [];
  /** Native path: staging buffers (ordinary memory) free for reuse by this stream. */
  readonly #spare: Uint8Array[] = [];
  readonly #native = nativePoolEnabled();

  constructor(settings: CipherSettings, signal: AbortSignal | undefined) {
    super();
    this.settings = settings;
    if (signal) addAbortSignal(signal, this);
  }

  protected abstract readonly kind: typeof TASK_SEAL | typeof TASK_OPEN;
  /** Output bytes of a batch with `inBytes` input bytes and `count` segments. */
  protected abstract outBytes(inBytes: number, count: number): number;
  /** Segment count of a batch; throws if its shape is impossible. */
  protected abstract batchCount(inBytes: number, last: boolean): number;

  /** Stages body bytes; dispatches each full batch once a byte beyond it is known. */
  protected async stage(chunk: Uint8Array): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      if (this.#slab !== undefined && this.#fill === this.batchInBytes) await this.dispatch(false);
      this.#slab ??= this.#native ? (this.#spare.pop() ?? Buffer.allocUnsafeSlow(this.batchInBytes)) : this.settings.slabs.acquire(this.batchInBytes);
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
    const pending: Pending = { settled: undefined as unknown as Promise<unknown>, slab: undefined, out: src, done: false };
    if (this.#native) {
      // Output straight into the Buffer that is pushed downstream (malloc memory, recycled once collected).
      const out = Buffer.allocUnsafe(outBytes);
      pending.out = out;
      const threads = this.settings.pool.threads;
      const run = this.kind === TASK_SEAL
        ? sealBatch(this.keySlot!, schedule, firstIndex, last, [src], out, threads).then(() => -1)
        : openBatch(this.keySlot!, schedule, firstIndex, last, [src], out, threads);
      pending.settled = run.then((failed) => {
        this.#release(slab);
        if (failed >= 0) throw new DecryptionError();
        pending.done = true;
      });
    } else {
      tuneAllocatorOnce();
      const slabs = this.settings.slabs;
      const outSlab = slabs.acquire(outBytes);
      const out = outSlab.subarray(0, outBytes);
      pending.slab = outSlab;
      pending.out = out;
      const task: SegmentBatchTask = { kind: this.kind, key: this.keySlot!, ...schedule, firstIndex, src, dst: out, isLastBatch: last };
      pending.settled = this.settings.pool.run<number | undefined>(task).then((result) => {
        this.#release(slab);
        if (typeof result === 'number' && result >= 0) {
          slabs.release(outSlab);
          throw new DecryptionError();
        }
        pending.done = true;
      });
    }
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
      const copy = Buffer.allocUnsafe(head.out.length);
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

/** Plaintext in, sealed object out. Created by ObjectCipher.createEncryptStream. */
export class EncryptStream extends SegmentTransform {
  protected readonly kind = TASK_SEAL;
  readonly #keyId: string;
  readonly #context: Uint8Array;

  constructor(settings: CipherSettings, keyId: string, context: Uint8Array, signal?: AbortSignal) {
    super(settings, signal);
    this.#keyId = keyId;
    this.#context = context;
  }

  protected outBytes(inBytes: number, count: number): number {
    return inBytes + count * TAG_BYTES;
  }

  protected batchCount(inBytes: number, last: boolean): number {
    return batchSegmentCount(inBytes, this.segmentBytes, last);
  }

  async #start(): Promise<void> {
    if (this.keySlot) return;
    const object = await newObject(this.settings.keys, this.#keyId, this.settings.segmentBytes, this.#context);
    this.keySlot = copyToShared(object.payloadKey);
    object.payloadKey.fill(0);
    this.noncePrefix = object.noncePrefix;
    this.segmentBytes = this.settings.segmentBytes;
    this.batchInBytes = segmentsPerBatch(this.settings, this.segmentBytes) * this.segmentBytes;
    this.push(Buffer.from(object.header));
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#start()
      .then(() => this.stage(chunk))
      .then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.#start()
      .then(() => this.dispatch(true))
      .then(() => this.drain(0))
      .then(() => {
        this.finish();
        callback();
      }, callback);
  }
}

/** Sealed object in, plaintext out. Created by ObjectCipher.createDecryptStream. */
export class DecryptStream extends SegmentTransform {
  protected readonly kind = TASK_OPEN;
  readonly #context: Uint8Array;
  #headerBytes: Uint8Array | undefined = new Uint8Array(0);

  constructor(settings: CipherSettings, context: Uint8Array, signal?: AbortSignal) {
    super(settings, signal);
    this.#context = context;
  }

  protected outBytes(inBytes: number, count: number): number {
    return inBytes - count * TAG_BYTES;
  }

  protected batchCount(inBytes: number, last: boolean): number {
    const sealedSegment = this.segmentBytes + TAG_BYTES;
    if (!last) return inBytes / sealedSegment; // stage() only dispatches full batches early
    const count = Math.ceil(inBytes / sealedSegment);
    const lastPlain = inBytes - (count - 1) * sealedSegment - TAG_BYTES;
    // Structure of the final batch: 1..S bytes in the last segment (0 only for the empty object).
    if (count === 0 || lastPlain < 0 || (lastPlain === 0 && (count > 1 || this.nextIndex > 0))) throw new DecryptionError();
    return count;
  }

  /** Collects the header, then unwraps the DEK and checks the key commitment. Returns the body bytes of `chunk`. */
  async #header(chunk: Uint8Array): Promise<Uint8Array> {
    if (this.#headerBytes === undefined) return chunk;
    const have = this.#headerBytes;
    const take = Math.min(chunk.length, headerLengthFor(MAX_WRAPPED_DEK_BYTES) - have.length);
    const joined = new Uint8Array(have.length + take);
    joined.set(have);
    joined.set(chunk.subarray(0, take), have.length);
    const length = headerLength(joined);
    if (length === undefined || joined.length < length) {
      this.#headerBytes = joined;
      return chunk.subarray(take);
    }
    this.#headerBytes = undefined;
    const header = parseHeader(joined.subarray(0, length));
    const key = await openObjectKey(this.settings.keys, header, this.#context);
    this.keySlot = copyToShared(key);
    key.fill(0);
    this.noncePrefix = new Uint8Array(header.noncePrefix);
    this.segmentBytes = header.segmentBytes;
    this.batchInBytes = segmentsPerBatch(this.settings, this.segmentBytes) * (this.segmentBytes + TAG_BYTES);
    // Bytes of `joined` past the header, then the rest of `chunk`.
    const extra = joined.subarray(length);
    const rest = chunk.subarray(take);
    if (extra.length === 0) return rest;
    const body = new Uint8Array(extra.length + rest.length);
    body.set(extra);
    body.set(rest, extra.length);
    return body;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#header(chunk)
      .then((body) => (body.length > 0 ? this.stage(body) : undefined))
      .then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    if (this.#headerBytes !== undefined || this.staged === 0) {
      // Ended inside the header, or with no segment at all after it.
      callback(new DecryptionError());
      return;
    }
    this.dispatch(true)
      .then(() => this.drain(0))
      .then(() => {
        this.finish();
        callback();
      }, callback);
  }
}
