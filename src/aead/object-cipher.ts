// ObjectCipher: envelope encryption of whole objects, ranges and streams in the sealed format (README, "Sealed format").
// It validates options, fetches/unwraps the DEK through a DataKeyProvider, derives the per-object keys, and
// runs the segment work on the main thread (objects under POOL_MIN_BYTES) or spread over the worker pool.
import { constants as bufferConstants } from 'node:buffer';
import { DecryptionError } from '../errors.js';
import type { WorkerPool } from '../pool/pool.js';
import { allocShared } from '../pool/shared-memory.js';
import { SlabPool } from '../pool/slab-pool.js';
import { runBatches } from './batch-runner.js';
import { canonicalContext, type EncryptionContext } from './context.js';
import type { DataKeyProvider } from './data-key-provider.js';
import {
  checkObjectSize,
  DEFAULT_SEGMENT_BYTES,
  encodeHeader,
  encodeHeaderCore,
  type Header,
  headerLengthFor,
  MAX_SEGMENT_BYTES,
  MAX_WRAPPED_DEK_BYTES,
  MIN_SEGMENT_BYTES,
  NONCE_PREFIX_BYTES,
  OFFSET_WRAPPED,
  parseHeader,
  payloadLength,
  plaintextLength,
  SALT_BYTES,
  segmentCount,
  TAG_BYTES,
} from './header.js';
import { commitmentMatches, deriveObjectKeys } from './key-schedule.js';
import { fillRandom } from '../random.js';
import { openSegments, sealSegments, type SegmentSchedule } from './segment.js';
import { DecryptStream, EncryptStream } from './streams.js';
import { TASK_OPEN, TASK_SEAL } from './tasks.js';

/** Objects (or ranges) smaller than this run on the calling thread: a worker round trip costs 60–80 µs. */
export const POOL_MIN_BYTES = 1024 * 1024;
/** Plaintext bytes per worker task (rounded to whole segments). */
export const DEFAULT_BATCH_BYTES = 2 * 1024 * 1024;

export interface ObjectCipherOptions {
  /** Generates, unwraps and rewraps data keys (the HSM side). */
  keys: DataKeyProvider;
  /** Worker pool the segment batches run on. */
  pool: WorkerPool;
  /** Plaintext bytes per segment, MIN_SEGMENT_BYTES..MAX_SEGMENT_BYTES; default DEFAULT_SEGMENT_BYTES (256 KiB). */
  segmentBytes?: number;
  /** Plaintext bytes per worker task; default DEFAULT_BATCH_BYTES (2 MiB), at least one segment. */
  batchBytes?: number;
}

export interface EncryptOptions {
  /** Root key the DEK is wrapped under. */
  keyId: string;
  /** Encryption context; default `{}`. */
  context?: EncryptionContext;
  signal?: AbortSignal;
}

export interface DecryptOptions {
  context?: EncryptionContext;
  signal?: AbortSignal;
}

export interface DecryptRangeOptions extends DecryptOptions {
  /** First plaintext byte. */
  offset: number;
  /** Plaintext bytes wanted; offset + length must not exceed the object's length. */
  length: number;
}

export interface RewrapHeaderOptions {
  /** The context the object was sealed with (the HSM needs it to unwrap); default `{}`. */
  context?: EncryptionContext;
  signal?: AbortSignal;
}

export interface EncryptStreamOptions {
  keyId: string;
  context?: EncryptionContext;
  signal?: AbortSignal;
}

export interface DecryptStreamOptions {
  context?: EncryptionContext;
  signal?: AbortSignal;
}

/** Resolved settings shared by ObjectCipher and its streams. */
export interface CipherSettings {
  keys: DataKeyProvider;
  pool: WorkerPool;
  segmentBytes: number;
  /** Plaintext bytes per worker task. */
  batchBytes: number;
  maxInFlight: number;
  /** Staging memory shared by this cipher's operations and streams. */
  slabs: SlabPool;
}

/** Whole segments per worker task for segments of `segmentBytes`. */
export function segmentsPerBatch(settings: CipherSettings, segmentBytes: number): number {
  return Math.max(1, Math.round(settings.batchBytes / segmentBytes));
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0;
}

export function resolveObjectCipherOptions(options: ObjectCipherOptions): CipherSettings {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { keys, pool } = options;
  if (keys === null || typeof keys !== 'object' || typeof keys.generateDataKey !== 'function' || typeof keys.unwrap !== 'function' || typeof keys.rewrap !== 'function') {
    throw new TypeError('options.keys must be a DataKeyProvider (generateDataKey, unwrap, rewrap)');
  }
  if (pool === null || typeof pool !== 'object' || typeof pool.run !== 'function' || !isPositiveInteger(pool.threads)) {
    throw new TypeError('options.pool must be a WorkerPool');
  }
  const segmentBytes = options.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
  if (!isPositiveInteger(segmentBytes)) throw new TypeError('options.segmentBytes must be a positive integer');
  if (segmentBytes < MIN_SEGMENT_BYTES || segmentBytes > MAX_SEGMENT_BYTES) {
    throw new RangeError(`options.segmentBytes must be between ${MIN_SEGMENT_BYTES} and ${MAX_SEGMENT_BYTES}`);
  }
  const batchBytes = options.batchBytes ?? DEFAULT_BATCH_BYTES;
  if (!isPositiveInteger(batchBytes)) throw new TypeError('options.batchBytes must be a positive integer');
  const maxInFlight = 2 * pool.threads;
  return {
    keys,
    pool,
    segmentBytes,
    batchBytes,
    maxInFlight,
    // Enough for two operations' windows (input and output slab per task in flight, plus a filling one).
    slabs: new SlabPool(2 * (2 * maxInFlight + 2) * (batchBytes + 64 * 1024)),
  };
}

function checkBytes(value: unknown, name: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array`);
}

function checkOptionsObject(options: unknown): void {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
}

function checkSignal(signal: unknown): void {
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new TypeError('options.signal must be an AbortSignal');
}

export function resolveKeyId(keyId: unknown): string {
  if (typeof keyId !== 'string' || keyId.length === 0) throw new TypeError('options.keyId must be a non-empty string');
  return keyId;
}

/** Everything a fresh object needs: its header and payload key (caller zeroes `payloadKey`). */
export interface NewObject {
  header: Uint8Array;
  payloadKey: Uint8Array;
  noncePrefix: Uint8Array;
}

/** Generates a DEK, draws salt and nonce prefix, derives the keys and builds the header. */
export async function newObject(settings: CipherSettings, keyId: string, context: Uint8Array): Promise<NewObject> {
  const { plaintext: dek, wrapped } = await settings.keys.generateDataKey(keyId, { aad: context });
  try {
    const random = fillRandom(new Uint8Array(SALT_BYTES + NONCE_PREFIX_BYTES));
    const salt = random.subarray(0, SALT_BYTES);
    const noncePrefix = random.subarray(SALT_BYTES);
    const core = encodeHeaderCore(settings.segmentBytes, salt, noncePrefix);
    const { payloadKey, commitment } = deriveObjectKeys(dek, salt, core, context);
    return { header: encodeHeader(core, commitment, wrapped), payloadKey, noncePrefix };
  } finally {
    dek.fill(0);
  }
}

/**
 * Unwraps the header's DEK with `context` as AAD, derives the payload key and checks the key commitment in
 * constant time, before any segment is touched. Caller zeroes the result.
 */
export async function openObjectKey(settings: CipherSettings, header: Header, context: Uint8Array): Promise<Uint8Array> {
  const dek = await settings.keys.unwrap(new Uint8Array(header.wrappedDek), { aad: context });
  let derived;
  try {
    derived = deriveObjectKeys(dek, header.salt, header.core, context);
  } catch (cause) {
    throw new DecryptionError({ cause });
  } finally {
    dek.fill(0);
  }
  if (!commitmentMatches(derived.commitment, header.commitment)) {
    derived.payloadKey.fill(0);
    throw new DecryptionError();
  }
  return derived.payloadKey;
}

export class ObjectCipher {
  readonly #settings: CipherSettings;

  constructor(options: ObjectCipherOptions) {
    this.#settings = resolveObjectCipherOptions(options);
  }

  /** Plaintext bytes per segment of objects this cipher seals. */
  get segmentBytes(): number {
    return this.#settings.segmentBytes;
  }

  /** Sealed length of a plaintext of `plaintextBytes` under a wrapped DEK of `wrappedBytes`. */
  sealedLength(plaintextBytes: number, wrappedBytes: number): number {
    return headerLengthFor(wrappedBytes) + payloadLength(plaintextBytes, this.#settings.segmentBytes);
  }

  /** Seals `plaintext` under a fresh DEK wrapped by root key `keyId`. The input is never modified. */
  async encrypt(plaintext: Uint8Array, options: EncryptOptions): Promise<Buffer> {
    checkBytes(plaintext, 'plaintext');
    checkOptionsObject(options);
    const keyId = resolveKeyId(options.keyId);
    const context = canonicalContext(options.context);
    checkSignal(options.signal);
    const S = this.#settings.segmentBytes;
    checkObjectSize(plaintext.length, S);
    if (payloadLength(plaintext.length, S) + headerLengthFor(MAX_WRAPPED_DEK_BYTES) > bufferConstants.MAX_LENGTH) {
      throw new RangeError('plaintext is too large for a one-shot sealed buffer; use createEncryptStream');
    }
    options.signal?.throwIfAborted();
    const object = await newObject(this.#settings, keyId, context);
    try {
      const total = object.header.length + payloadLength(plaintext.length, S);
      const count = segmentCount(plaintext.length, S);
      if (plaintext.length < POOL_MIN_BYTES || count === 1) {
        const sealed = Buffer.allocUnsafeSlow(total);
        sealed.set(object.header, 0);
        sealSegments(object.payloadKey, { noncePrefix: object.noncePrefix, segmentBytes: S }, 0, plaintext, sealed.subarray(object.header.length), true);
        return sealed;
      }
      const sealed = Buffer.allocUnsafeSlow(total);
      sealed.set(object.header, 0);
      await this.#pooled(TASK_SEAL, object.payloadKey, { noncePrefix: object.noncePrefix, segmentBytes: S }, 0, count, true, plaintext, sealed.subarray(object.header.length), options.signal);
      return sealed;
    } finally {
      object.payloadKey.fill(0);
    }
  }

  /** Parses the header and unwraps, derives and commitment-checks the payload key (caller zeroes it). */
  async #openSealed(sealed: Uint8Array, options: DecryptOptions): Promise<{ header: Header; plainLength: number; key: Uint8Array }> {
    const context = canonicalContext(options.context);
    checkSignal(options.signal);
    options.signal?.throwIfAborted();
    const header = parseHeader(sealed);
    const plainLength = plaintextLength(sealed.length - header.length, header.segmentBytes);
    return { header, plainLength, key: await openObjectKey(this.#settings, header, context) };
  }

  /** Opens a sealed object; DecryptionError for anything wrong with it or the context. */
  async decrypt(sealed: Uint8Array, options: DecryptOptions = {}): Promise<Buffer> {
    checkBytes(sealed, 'sealed');
    checkOptionsObject(options);
    const { header, plainLength, key } = await this.#openSealed(sealed, options);
    const S = header.segmentBytes;
    try {
      const count = segmentCount(plainLength, S);
      const payload = sealed.subarray(header.length);
      if (plainLength < POOL_MIN_BYTES || count === 1) {
        const plain = Buffer.allocUnsafeSlow(plainLength);
        if (openSegments(key, { noncePrefix: header.noncePrefix, segmentBytes: S }, 0, payload, plain, true) >= 0) throw new DecryptionError();
        return plain;
      }
      const plain = Buffer.allocUnsafeSlow(plainLength);
      if (!(await this.#pooled(TASK_OPEN, key, { noncePrefix: header.noncePrefix, segmentBytes: S }, 0, count, true, payload, plain, options.signal))) {
        plain.fill(0);
        throw new DecryptionError();
      }
      return plain;
    } finally {
      key.fill(0);
    }
  }

  /**
   * Plaintext bytes [offset, offset + length) of a sealed object, opening only the segments that hold them.
   * The object's length is implied by the sealed length and authenticated by the last segment's flag: a range
   * that reaches the last segment verifies it; a range past the end is a RangeError once the end is verified.
   */
  async decryptRange(sealed: Uint8Array, options: DecryptRangeOptions): Promise<Buffer> {
    checkBytes(sealed, 'sealed');
    checkOptionsObject(options);
    const { offset, length } = options;
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw new TypeError('options.offset must be a non-negative integer');
    if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) throw new TypeError('options.length must be a non-negative integer');
    const { header, plainLength, key } = await this.#openSealed(sealed, options);
    const S = header.segmentBytes;
    try {
      const total = segmentCount(plainLength, S);
      const schedule = { noncePrefix: header.noncePrefix, segmentBytes: S };
      const payload = sealed.subarray(header.length);
      if (offset + length > plainLength) {
        // Authenticate the end before blaming the caller: a truncated object must fail as DecryptionError.
        const lastFrom = (total - 1) * (S + TAG_BYTES);
        const scratch = new Uint8Array(payload.length - lastFrom - TAG_BYTES);
        const ok = openSegments(key, schedule, total - 1, payload.subarray(lastFrom), scratch, true) < 0;
        scratch.fill(0);
        if (!ok) throw new DecryptionError();
        throw new RangeError(`options.offset + options.length must not exceed the object's ${plainLength} bytes`);
      }
      // Empty ranges still prove the context and key (above); segments [first, last] hold the rest.
      if (length === 0) return Buffer.alloc(0);
      const first = Math.floor(offset / S);
      const last = Math.floor((offset + length - 1) / S);
      const count = last - first + 1;
      const endsObject = last === total - 1;
      const src = payload.subarray(first * (S + TAG_BYTES), endsObject ? payload.length : (last + 1) * (S + TAG_BYTES));
      const plainBytes = src.length - count * TAG_BYTES;
      const skip = offset - first * S;
      if (plainBytes < POOL_MIN_BYTES || count === 1) {
        const scratch = Buffer.allocUnsafeSlow(plainBytes);
        if (openSegments(key, schedule, first, src, scratch, endsObject) >= 0) throw new DecryptionError();
        if (skip === 0 && length === plainBytes) return scratch;
        const part = Buffer.from(scratch.subarray(skip, skip + length));
        scratch.fill(0);
        return part;
      }
      const scratch = Buffer.allocUnsafeSlow(plainBytes);
      if (!(await this.#pooled(TASK_OPEN, key, schedule, first, count, endsObject, src, scratch, options.signal))) {
        scratch.fill(0);
        throw new DecryptionError();
      }
      if (skip === 0 && length === plainBytes) return scratch;
      const part = Buffer.from(scratch.subarray(skip, skip + length));
      scratch.fill(0);
      return part;
    } finally {
      key.fill(0);
    }
  }

  /**
   * Rewraps the object's DEK under the newest version of its root key. `sealed` may be the whole object or
   * any prefix holding at least the header; the result has the same length, with only the wrapped-DEK bytes
   * changed (the payload authenticates neither them nor the key version, so it stays valid). RangeError if the
   * provider returns a wrapped DEK of a different length (the header could not be rewritten in place).
   */
  async rewrapHeader(sealed: Uint8Array, options: RewrapHeaderOptions = {}): Promise<Buffer> {
    checkBytes(sealed, 'sealed');
    checkOptionsObject(options);
    const context = canonicalContext(options.context);
    checkSignal(options.signal);
    options.signal?.throwIfAborted();
    const header = parseHeader(sealed);
    const rewrapped = await this.#settings.keys.rewrap(new Uint8Array(header.wrappedDek), { aad: context });
    if (!(rewrapped instanceof Uint8Array) || rewrapped.length !== header.wrappedDek.length) {
      throw new RangeError(`rewrapped data key is ${rewrapped?.length} bytes, the header holds ${header.wrappedDek.length}: cannot rewrite in place`);
    }
    const out = Buffer.allocUnsafeSlow(sealed.length);
    out.set(sealed);
    out.set(rewrapped, OFFSET_WRAPPED);
    return out;
  }

  /** Transform: plaintext in, sealed object out (header first). Memory stays bounded whatever the size. */
  createEncryptStream(options: EncryptStreamOptions): EncryptStream {
    checkOptionsObject(options);
    const keyId = resolveKeyId(options.keyId);
    const context = canonicalContext(options.context);
    checkSignal(options.signal);
    return new EncryptStream(this.#settings, keyId, context, options.signal);
  }

  /** Transform: sealed object in, plaintext out; emits a segment only after its tag verified. */
  createDecryptStream(options: DecryptStreamOptions = {}): DecryptStream {
    checkOptionsObject(options);
    const context = canonicalContext(options.context);
    checkSignal(options.signal);
    return new DecryptStream(this.#settings, context, options.signal);
  }

  async #pooled(
    kind: typeof TASK_SEAL | typeof TASK_OPEN,
    key: Uint8Array,
    schedule: SegmentSchedule,
    firstIndex: number,
    count: number,
    endsObject: boolean,
    src: Uint8Array,
    dst: Uint8Array,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    const { pool, maxInFlight } = this.#settings;
    const { segmentBytes } = schedule;
    const keySlot = allocShared(key.length);
    keySlot.set(key);
    try {
      return await runBatches({
        kind,
        pool,
        slabs: this.#settings.slabs,
        keySlot,
        noncePrefix: new Uint8Array(schedule.noncePrefix),
        segmentBytes,
        firstIndex,
        segmentCount: count,
        endsObject,
        src,
        dst,
        // Spread a medium object evenly over the workers; cap at the configured batch.
        segmentsPerBatch: Math.min(segmentsPerBatch(this.#settings, segmentBytes), Math.ceil(count / pool.threads)),
        maxInFlight,
        ...(signal ? { signal } : {}),
      });
    } finally {
      keySlot.fill(0);
    }
  }
}
