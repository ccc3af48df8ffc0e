// The object calls' option and report types, and one resolveXxxOptions per call: argument checks (in the order
// the calls have always made them, with the engine's shared wording from validate.ts) and defaults.
import { canonicalContext, type EncryptionContext } from '../aead/context.js';
import { DEFAULT_SEGMENT_BYTES, MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES } from '../aead/header.js';
import { resolveShape } from '../erasure/validate.js';
import { functionArg, isSafeIntegerIn, nonEmptyStringArg, signalArg } from '../validate.js';
import { MAX_OBJECT_ID_BYTES } from './format.js';
import type { ShardStore } from './shard-store.js';

export type ObjectSource = Uint8Array | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>;
export type Progress = (done: number, total: number) => void;

export interface PutObjectOptions {
  keyId: string;
  context?: EncryptionContext;
  dataShards: number;
  parityShards: number;
  store: ShardStore;
  /** Plaintext bytes per segment (and so per data chunk); default 256 KiB. */
  segmentBytes?: number;
  /** Expected size, only for onProgress's total when the source is a stream. */
  size?: number;
  signal?: AbortSignal;
  onProgress?: Progress;
}

export interface ObjectInfo {
  objectId: string;
  size: number;
  dataShards: number;
  parityShards: number;
  segmentBytes: number;
  stripes: number;
  shardBytes: number;
  keyId: string;
  keyVersion: number;
}

export interface GetObjectOptions {
  store: ShardStore;
  context?: EncryptionContext;
  range?: { offset: number; length: number };
  signal?: AbortSignal;
  onProgress?: Progress;
}

export interface RepairObjectOptions {
  store: ShardStore;
  signal?: AbortSignal;
  onProgress?: Progress;
}

export interface RepairReport {
  objectId: string;
  shards: number;
  /** Shards that were not there (or not readable). */
  missing: number[];
  /** Shards that were there but wrong: header, size, trailer or a chunk failing its tag. */
  corrupt: number[];
  /** Shards rewritten (byte-identical to what put wrote). */
  repaired: number[];
  stripes: number;
}

export interface RewrapObjectOptions {
  store: ShardStore;
  signal?: AbortSignal;
}

export interface RewrapReport {
  objectId: string;
  keyId: string;
  keyVersion: number;
  /** Shards whose header was rewritten. */
  rewrapped: number[];
  /** Shards left alone because they were missing or bad (repair them, then rewrap again). */
  skipped: number[];
}

/** What every object call resolves to. */
export interface ResolvedCall {
  store: ShardStore;
  signal: AbortSignal | undefined;
  onProgress: Progress | undefined;
}

export interface ResolvedPut extends ResolvedCall {
  keyId: string;
  k: number;
  m: number;
  segmentBytes: number;
  context: Uint8Array;
  size: number | undefined;
}

export interface ResolvedGet extends ResolvedCall {
  context: Uint8Array;
  range: { offset: number; length: number } | undefined;
}

function objectIdArg(objectId: unknown): string {
  if (typeof objectId !== 'string' || objectId.length === 0 || Buffer.byteLength(objectId) > MAX_OBJECT_ID_BYTES) {
    throw new TypeError(`objectId must be a non-empty string of at most ${MAX_OBJECT_ID_BYTES} UTF-8 bytes`);
  }
  return objectId;
}

function storeArg(store: unknown): ShardStore {
  const s = store as ShardStore;
  if (!s || typeof s !== 'object' || typeof s.openWriter !== 'function' || typeof s.openReader !== 'function' || !Number.isInteger(s.nodes)) {
    throw new TypeError('options.store must be a ShardStore');
  }
  return s;
}

/** The checks every object call starts with (options are required: no call has a default store). */
function resolveCall(objectId: unknown, options: unknown): ResolvedCall {
  objectIdArg(objectId);
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const o = options as { store?: unknown; signal?: unknown; onProgress?: unknown };
  const store = storeArg(o.store);
  const signal = signalArg(o.signal);
  const onProgress = functionArg<Progress>(o.onProgress, 'options.onProgress');
  return { store, signal, onProgress };
}

export function resolvePutObjectOptions(objectId: unknown, options: PutObjectOptions, defaultSegmentBytes?: number): ResolvedPut {
  const call = resolveCall(objectId, options);
  const keyId = nonEmptyStringArg(options.keyId, 'options.keyId');
  const { dataShards: k, parityShards: m } = resolveShape(options);
  const segmentBytes = options.segmentBytes ?? defaultSegmentBytes ?? DEFAULT_SEGMENT_BYTES;
  if (!isSafeIntegerIn(segmentBytes, MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES)) {
    throw new RangeError(`options.segmentBytes must be an integer from ${MIN_SEGMENT_BYTES} to ${MAX_SEGMENT_BYTES}`);
  }
  const context = canonicalContext(options.context ?? {});
  return { ...call, keyId, k, m, segmentBytes, context, size: options.size };
}

export function resolveGetObjectOptions(objectId: unknown, options: GetObjectOptions): ResolvedGet {
  const call = resolveCall(objectId, options);
  const context = canonicalContext(options.context ?? {});
  let range: ResolvedGet['range'];
  if (options.range !== undefined) {
    const { offset, length } = options.range ?? ({} as { offset?: unknown; length?: unknown });
    if (!isSafeIntegerIn(offset, 0)) throw new RangeError('options.range.offset must be a non-negative integer');
    if (!isSafeIntegerIn(length, 0)) throw new RangeError('options.range.length must be a non-negative integer');
    range = { offset, length };
  }
  return { ...call, context, range };
}

export function resolveRepairObjectOptions(objectId: unknown, options: RepairObjectOptions): ResolvedCall {
  return resolveCall(objectId, options);
}

export function resolveRewrapObjectOptions(objectId: unknown, options: RewrapObjectOptions): ResolvedCall {
  return resolveCall(objectId, options);
}
