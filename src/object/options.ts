// The object calls' option and report types, and one resolveXxxOptions per call: argument checks (in the order
// the calls have always made them, with the engine's shared wording from validate.ts) and defaults.
import { canonicalContext, type EncryptionContext } from '../aead/context.js';
import { DEFAULT_SEGMENT_BYTES, MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES } from '../aead/header.js';
import { resolveShape } from '../erasure/validate.js';
import { functionArg, isSafeIntegerIn, isWellFormed, nonEmptyStringArg, nonNegativeIntegerArg, signalArg } from '../validate.js';
import type { ShardStore } from './blob-store.js';
import { MAX_OBJECT_ID_BYTES, MAX_STRIPE_BUFFER_BYTES, stripeBufferBytes, type ObjectRef } from './format.js';
import { isValidNamespace } from './layout.js';

/** The namespace of the engine's own objects (a bucket layer uses its own: `b/<bucket>/o`). */
export const DEFAULT_NAMESPACE = 'o';

/** Every object call takes these: where the object lives besides its name. */
export interface StoreOptions {
  store: ShardStore;
  /** Key namespace ('/'-separated segments of [A-Za-z0-9._-]); default "o". */
  namespace?: string;
}

export type ObjectSource = Uint8Array | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>;
export type Progress = (done: number, total: number) => void;

export interface PutObjectOptions extends StoreOptions {
  keyId: string;
  context?: EncryptionContext;
  dataShards: number;
  parityShards: number;
  /** Plaintext bytes per segment (and so per data chunk); default 256 KiB. */
  segmentBytes?: number;
  /**
   * The source's length in bytes, when known: onProgress's total, and the shard lengths the store is told (a store
   * may then send each shard in one request). A source that gives another number of bytes fails with a RangeError.
   */
  size?: number;
  signal?: AbortSignal;
  onProgress?: Progress;
}

export interface ObjectInfo {
  objectId: string;
  /** The generation written (layout.ts). */
  generation: string;
  /** Older generations the put found (and removed): 0 for a name that had none. */
  replacedGenerations: number;
  size: number;
  dataShards: number;
  parityShards: number;
  segmentBytes: number;
  stripes: number;
  shardBytes: number;
  keyId: string;
  keyVersion: number;
}

export interface GetObjectOptions extends StoreOptions {
  context?: EncryptionContext;
  range?: { offset: number; length: number };
  /**
   * The geometry this name's puts use, when every one of them had at most `parityShards` parity shards: the get
   * then lists only parityShards + 1 nodes first (README "Reading"). A generation with more parity shards than
   * this may then be passed over for an older one while it is still readable.
   */
  shards?: { dataShards: number; parityShards: number };
  signal?: AbortSignal;
  onProgress?: Progress;
}

export interface RepairObjectOptions extends StoreOptions {
  signal?: AbortSignal;
  onProgress?: Progress;
  /**
   * Generations newer than the one read, with fewer than k good shards, are removed once older than this (a put
   * that died; one still running commits all its shards at its end). Default 1 hour: more than any put takes.
   */
  staleAfterMs?: number;
}

export interface RepairReport {
  objectId: string;
  /** Plaintext bytes of the object. */
  size: number;
  shards: number;
  /** Shards that were not there (or not readable). */
  missing: number[];
  /** Shards that were there but wrong: header, size, trailer or a chunk failing its tag. */
  corrupt: number[];
  /** Shards rewritten (byte-identical to what put wrote). */
  repaired: number[];
  stripes: number;
  /** The generation read and repaired. */
  generation: string;
  /** Other generations removed (older ones, and newer incomplete ones past staleAfterMs). */
  removedGenerations: string[];
}

export interface RewrapObjectOptions extends StoreOptions {
  signal?: AbortSignal;
}

export interface DeleteObjectOptions extends StoreOptions {
  signal?: AbortSignal;
}

export interface DeleteReport {
  objectId: string;
  /** Blobs removed (shards and rewrap records of every generation). */
  removed: number;
}

export interface ListObjectsOptions extends StoreOptions {
  /** Only names starting with this. */
  prefix?: string;
  /** Only names after this one. */
  startAfter?: string;
}

export interface RewrapReport {
  objectId: string;
  keyId: string;
  keyVersion: number;
  /** Shards the new rewrap record covers (the good shards of the generation). */
  rewrapped: number[];
  /** Shards that were missing or bad (repair them: the record covers them once they are back). */
  skipped: number[];
  generation: string;
}

/** What every object call resolves to. */
export interface ResolvedCall {
  ref: ObjectRef;
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
  shards: { dataShards: number; parityShards: number } | undefined;
}

/** 1 to 1024 bytes of well-formed UTF-8 (a lone surrogate has no UTF-8 form: two names would collide). */
export function objectIdArg(objectId: unknown, name = 'objectId'): string {
  if (typeof objectId !== 'string' || objectId.length === 0 || Buffer.byteLength(objectId) > MAX_OBJECT_ID_BYTES || !isWellFormed(objectId)) {
    throw new TypeError(`${name} must be a non-empty string of well-formed UTF-8, at most ${MAX_OBJECT_ID_BYTES} bytes`);
  }
  return objectId;
}

export function storeArg(store: unknown): ShardStore {
  const s = store as ShardStore;
  if (
    !s || typeof s !== 'object' || typeof s.openWriter !== 'function' || typeof s.openReader !== 'function' || typeof s.list !== 'function'
    || typeof s.remove !== 'function' || !Number.isInteger(s.nodes) || s.nodes < 1 || s.nodes > 256
  ) {
    throw new TypeError('options.store must be a ShardStore');
  }
  return s;
}

export function namespaceArg(ns: unknown): string {
  if (ns === undefined) return DEFAULT_NAMESPACE;
  if (!isValidNamespace(ns)) throw new TypeError("options.namespace must be '/'-separated segments of [A-Za-z0-9._-], at most 100 characters");
  return ns;
}

/** The checks every object call starts with (options are required: no call has a default store). */
function resolveCall(objectId: unknown, options: unknown): ResolvedCall {
  const name = objectIdArg(objectId);
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const o = options as { store?: unknown; signal?: unknown; onProgress?: unknown; namespace?: unknown };
  const store = storeArg(o.store);
  const ns = namespaceArg(o.namespace);
  const signal = signalArg(o.signal);
  const onProgress = functionArg<Progress>(o.onProgress, 'options.onProgress');
  return { ref: { ns, name }, store, signal, onProgress };
}

export function resolvePutObjectOptions(objectId: unknown, options: PutObjectOptions, defaultSegmentBytes?: number): ResolvedPut {
  const call = resolveCall(objectId, options);
  const keyId = nonEmptyStringArg(options.keyId, 'options.keyId');
  const { dataShards: k, parityShards: m } = resolveShape(options);
  const segmentBytes = options.segmentBytes ?? defaultSegmentBytes ?? DEFAULT_SEGMENT_BYTES;
  if (!isSafeIntegerIn(segmentBytes, MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES)) {
    throw new RangeError(`options.segmentBytes must be an integer from ${MIN_SEGMENT_BYTES} to ${MAX_SEGMENT_BYTES}`);
  }
  if (stripeBufferBytes(k, m, segmentBytes) > MAX_STRIPE_BUFFER_BYTES) {
    throw new RangeError(`options.segmentBytes × (2·dataShards + parityShards) must stay under ${MAX_STRIPE_BUFFER_BYTES / 1048576} MiB (a stripe in memory)`);
  }
  const context = canonicalContext(options.context ?? {});
  const size = options.size === undefined ? undefined : nonNegativeIntegerArg(options.size, 'options.size');
  return { ...call, keyId, k, m, segmentBytes, context, size };
}

/**
 * Segment size for a whole object known to be smaller than one stripe (a buffer source, segment size not given):
 * just large enough for one stripe, in 1 KiB steps, so its stripe buffers are the object's size rather than a full
 * stripe's (k+m segments of 256 KiB for a 4 KiB object: most of a small put's CPU went to zeroing and faulting them).
 */
export function fittedSegmentBytes(segmentBytes: number, objectBytes: number, k: number): number {
  return Math.min(segmentBytes, Math.max(1024, Math.ceil(objectBytes / k / 1024) * 1024));
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
  const shards = options.shards === undefined ? undefined : resolveShape(options.shards, 'options.shards');
  return { ...call, context, range, shards };
}

export function resolveRepairObjectOptions(objectId: unknown, options: RepairObjectOptions): ResolvedCall & { staleAfterMs: number } {
  const call = resolveCall(objectId, options);
  const staleAfterMs = options.staleAfterMs === undefined ? 60 * 60_000 : nonNegativeIntegerArg(options.staleAfterMs, 'options.staleAfterMs');
  return { ...call, staleAfterMs };
}

export function resolveRewrapObjectOptions(objectId: unknown, options: RewrapObjectOptions): ResolvedCall {
  return resolveCall(objectId, options);
}

export function resolveDeleteObjectOptions(objectId: unknown, options: DeleteObjectOptions): ResolvedCall {
  return resolveCall(objectId, options);
}

export function resolveListObjectsOptions(options: ListObjectsOptions): { store: ShardStore; ns: string; prefix: string; startAfter: string | undefined } {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const store = storeArg(options.store);
  const ns = namespaceArg(options.namespace);
  const prefix = options.prefix ?? '';
  if (typeof prefix !== 'string' || !isWellFormed(prefix)) throw new TypeError('options.prefix must be a well-formed string');
  const startAfter = options.startAfter === undefined ? undefined : objectIdArg(options.startAfter, 'options.startAfter');
  return { store, ns, prefix, startAfter };
}
