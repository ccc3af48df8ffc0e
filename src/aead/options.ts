// The sealed-object cipher's option types, resolveObjectCipherOptions (validation and defaults, once per
// cipher) and the resolved settings its one-shot, range and stream paths share.
import type { WorkerPool } from '../pool/pool.js';
import { SlabPool } from '../pool/slab-pool.js';
import { isSafeIntegerIn } from '../validate.js';
import type { EncryptionContext } from './context.js';
import type { DataKeyProvider } from './data-key-provider.js';
import { DEFAULT_SEGMENT_BYTES, MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES } from './header.js';

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
  /** Only for objects sealed in format version 1 (their DEK is wrapped with the context); default `{}`. Not needed otherwise. */
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

const isPositiveInteger = (value: unknown): value is number => isSafeIntegerIn(value, 1);

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

/** Every call's options object (required: a missing one is a TypeError, as for null). */
export function checkOptionsObject(options: unknown): void {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
}

export function resolveKeyId(keyId: unknown): string {
  if (typeof keyId !== 'string' || keyId.length === 0) throw new TypeError('options.keyId must be a non-empty string');
  return keyId;
}
