// S3ShardStore's writer: buffers one part and goes up in one PUT when the blob is small, as a multipart upload
// otherwise (one part in flight while the next fills: two part buffers at most). Nothing is visible before commit;
// a failure fails the writer for good and aborts its multipart upload in the background. Full-size part buffers
// come from the store's PartPool and go back to it: fresh memory costs a page fault per 4 KiB on first touch, which
// made copying into new parts the biggest cost of a large put.
import { StoreError } from '../errors.js';
import { bytesArg } from '../validate.js';
import type { ShardWriter } from './blob-store.js';
import { deadline, describe, s3Request, storeError, type RetryPolicy, type S3Node } from './s3-request.js';

/** A writer's first buffer; it doubles as bytes come, until a part from the pool is worth taking. */
const MIN_BUFFER_BYTES = 64 * 1024;

/** Part-size buffers kept for reuse across writers (at most `maxFree` idle ones; the rest are left to the GC). */
export class PartPool {
  readonly partBytes: number;
  readonly #maxFree: number;
  readonly #free: Buffer[] = [];

  constructor(partBytes: number, maxFree: number) {
    this.partBytes = partBytes;
    this.#maxFree = maxFree;
  }

  acquire(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafeSlow(this.partBytes);
  }

  release(buffer: Buffer | null): void {
    if (buffer !== null && buffer.length === this.partBytes && this.#free.length < this.#maxFree) this.#free.push(buffer);
  }
}

type WriterState = 'open' | 'committed' | 'aborted' | 'failed';

export class S3ShardWriter implements ShardWriter {
  readonly #node: S3Node;
  readonly #policy: RetryPolicy;
  readonly #key: string;
  readonly #partBytes: number;
  readonly #parts: PartPool;
  #state: WriterState = 'open';
  /** The part being filled, and a drained one to reuse: two buffers at most. */
  #buffer: Buffer | null = null;
  #filled = 0;
  #spare: Buffer | null = null;
  #uploadId: string | undefined;
  #etags: string[] = [];
  /** The part upload in flight (one at a time, overlapping the filling of the next). */
  #inFlight: Promise<void> | null = null;
  #failure: StoreError | null = null;
  #aborting: Promise<void> | null = null;

  constructor(node: S3Node, policy: RetryPolicy, key: string, parts: PartPool) {
    this.#node = node;
    this.#policy = policy;
    this.#key = key;
    this.#partBytes = parts.partBytes;
    this.#parts = parts;
  }

  async write(bytes: Uint8Array): Promise<void> {
    bytesArg(bytes, 'bytes');
    this.#checkOpen('write');
    // Buffer.copy is a memmove; TypedArray.set from a SharedArrayBuffer view (the stripe buffers) copies word by word.
    const source = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    let done = 0;
    while (done < bytes.length) {
      const n = Math.min(bytes.length - done, this.#partBytes - this.#filled);
      source.copy(this.#reserve(this.#filled + n), this.#filled, done, done + n);
      this.#filled += n;
      done += n;
      if (this.#filled === this.#partBytes) await this.#guard(() => this.#shipPart());
    }
  }

  async flush(): Promise<void> {
    this.#checkOpen('flush');
    // Parts already sent are durable; the buffered tail cannot be sent before commit (parts must be ≥ 5 MiB).
    await this.#guard(() => this.#settle());
  }

  async commit(): Promise<void> {
    this.#checkOpen('commit');
    await this.#guard(async () => {
      await this.#settle();
      const n = this.#node;
      const body = this.#buffer === null ? new Uint8Array(0) : this.#buffer.subarray(0, this.#filled);
      if (this.#uploadId === undefined) {
        await s3Request(n, this.#policy, deadline(this.#policy), 'commit/PutObject', (abortSignal) =>
          n.client.send('PutObject', { Bucket: n.bucket, Key: this.#key, Body: body }, { abortSignal }));
      } else {
        if (this.#filled > 0) await this.#uploadPart(this.#etags.length + 1, body);
        const UploadId = this.#uploadId;
        const Parts = this.#etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 }));
        await s3Request(n, this.#policy, deadline(this.#policy), 'commit/CompleteMultipartUpload', (abortSignal) =>
          n.client.send('CompleteMultipartUpload', {
            Bucket: n.bucket, Key: this.#key, UploadId, MultipartUpload: { Parts },
          }, { abortSignal }));
      }
      this.#state = 'committed';
      this.#release();
    });
  }

  async abort(): Promise<void> {
    if (this.#state === 'committed') return;
    this.#state = this.#state === 'failed' ? 'failed' : 'aborted';
    await this.#inFlight?.catch(() => {});
    this.#inFlight = null;
    this.#aborting ??= this.#abortUpload();
    await this.#aborting;
    this.#release();
  }

  #checkOpen(what: string): void {
    if (this.#failure !== null) throw this.#failure;
    if (this.#state !== 'open') throw new Error(`ShardWriter.${what}: the writer is ${this.#state}`);
  }

  /** Runs a step; on failure the writer is failed for good and its multipart upload is aborted in the background. */
  async #guard(step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (err) {
      this.#failure ??= err instanceof StoreError ? err : storeError(this.#node, 'write', describe(err).reason);
      this.#state = 'failed';
      this.#aborting ??= this.#abortUpload();
      throw this.#failure;
    }
  }

  /** Room for `bytes` in the part being filled: the spare part, a buffer grown by doubling (small blobs stay small), or a pooled part. */
  #reserve(bytes: number): Buffer {
    const current = this.#buffer;
    if (current !== null && current.length >= bytes) return current;
    let next: Buffer;
    if (this.#spare !== null) {
      next = this.#spare;
      this.#spare = null;
    } else {
      // Once the blob is known to be large (a part has gone) or has grown to an eighth of a part, parts are full
      // size and pooled: regrowing by doubling would leave ~a part of garbage buffers per part.
      const grown = this.#uploadId !== undefined ? this.#partBytes : Math.max(bytes, MIN_BUFFER_BYTES, 2 * (current?.length ?? 0));
      next = grown * 8 > this.#partBytes ? this.#parts.acquire() : Buffer.allocUnsafe(grown);
    }
    if (current !== null) next.set(current.subarray(0, this.#filled));
    this.#buffer = next;
    return next;
  }

  /** Sends the full buffer as the next part once the previous one is in; filling goes on meanwhile. */
  async #shipPart(): Promise<void> {
    await this.#settle();
    const n = this.#node;
    if (this.#uploadId === undefined) {
      const created = await s3Request(n, this.#policy, deadline(this.#policy), 'write/CreateMultipartUpload', (abortSignal) =>
        n.client.send('CreateMultipartUpload', { Bucket: n.bucket, Key: this.#key }, { abortSignal }));
      if (typeof created.UploadId !== 'string') throw storeError(n, 'write/CreateMultipartUpload', 'NoUploadId');
      this.#uploadId = created.UploadId;
    }
    const part = this.#buffer as Buffer;
    this.#buffer = null;
    this.#filled = 0;
    const inFlight = this.#uploadPart(this.#etags.length + 1, part).then(() => {
      this.#spare = part;
    });
    inFlight.catch(() => {}); // observed by #settle
    this.#inFlight = inFlight;
  }

  async #settle(): Promise<void> {
    const inFlight = this.#inFlight;
    this.#inFlight = null;
    await inFlight;
  }

  async #uploadPart(PartNumber: number, Body: Uint8Array): Promise<void> {
    const n = this.#node;
    const UploadId = this.#uploadId as string;
    const res = await s3Request(n, this.#policy, deadline(this.#policy), 'write/UploadPart', (abortSignal) =>
      n.client.send('UploadPart', { Bucket: n.bucket, Key: this.#key, UploadId, PartNumber, Body }, { abortSignal }));
    if (typeof res.ETag !== 'string') throw storeError(n, 'write/UploadPart', 'NoETag');
    this.#etags[PartNumber - 1] = res.ETag;
  }

  /** Best effort: a node that is down keeps the parts until its own cleanup (lifecycle rules) removes them. */
  async #abortUpload(): Promise<void> {
    const UploadId = this.#uploadId;
    if (UploadId === undefined) return;
    this.#uploadId = undefined;
    const n = this.#node;
    await s3Request(n, this.#policy, deadline(this.#policy), 'abort/AbortMultipartUpload', (abortSignal) =>
      n.client.send('AbortMultipartUpload', { Bucket: n.bucket, Key: this.#key, UploadId }, { abortSignal }))
      .catch(() => {});
  }

  /** Drops the buffers; to the pool unless a request may still be sending from them (a failure cut it short). */
  #release(): void {
    if (this.#state !== 'failed') {
      this.#parts.release(this.#buffer);
      this.#parts.release(this.#spare);
    }
    this.#buffer = null;
    this.#spare = null;
    this.#filled = 0;
  }
}
