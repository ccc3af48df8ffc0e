// The object cipher's streams (ObjectCipher.createEncryptStream / createDecryptStream): the header on either side of
// the segments; staging, dispatch and ordered output are the shared machinery of segment-transform.ts.
import { type TransformCallback } from 'node:stream';
import { DecryptionError } from '../errors.js';
import { copyToShared } from '../pool/shared-memory.js';
import type { OutputRing } from './chunk-iterators.js';
import { headerLength, headerLengthFor, parseHeader, TAG_BYTES, MAX_WRAPPED_DEK_BYTES } from './header.js';
import { newObject, openObjectKey } from './object-keys.js';
import { type CipherSettings, segmentsPerBatch } from './options.js';
import { batchSegmentCount } from './segment.js';
import { SegmentTransform } from './segment-transform.js';
import { TASK_OPEN, TASK_SEAL } from './tasks.js';

/** Plaintext in, sealed object out. Created by ObjectCipher.createEncryptStream. */
export class EncryptStream extends SegmentTransform {
  protected readonly kind = TASK_SEAL;
  readonly #keyId: string;
  readonly #context: Uint8Array;

  constructor(settings: CipherSettings, keyId: string, context: Uint8Array, signal?: AbortSignal, ring?: OutputRing) {
    super(settings, signal, ring);
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
    this.unitBytes = this.segmentBytes;
    this.push(Buffer.from(object.header));
  }

  protected async body(chunk: Uint8Array): Promise<Uint8Array> {
    await this.#start();
    return chunk;
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

  constructor(settings: CipherSettings, context: Uint8Array, signal?: AbortSignal, ring?: OutputRing) {
    super(settings, signal, ring);
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
    this.unitBytes = this.segmentBytes + TAG_BYTES;
    // Bytes of `joined` past the header, then the rest of `chunk`.
    const extra = joined.subarray(length);
    const rest = chunk.subarray(take);
    if (extra.length === 0) return rest;
    const body = new Uint8Array(extra.length + rest.length);
    body.set(extra);
    body.set(rest, extra.length);
    return body;
  }

  protected body(chunk: Uint8Array): Promise<Uint8Array> {
    return this.#header(chunk);
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
