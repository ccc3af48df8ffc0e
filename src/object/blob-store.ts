// Where shards live: a ShardStore is a set of nodes, each a flat blob store with opaque string keys. Blobs are
// immutable once published (no in-place overwrite, which S3 lacks): the object layer names every version of a
// shard apart (generations) and decides what to read, so a store only has to publish atomically and list.
// FsShardStore (local folders) and S3ShardStore (S3-compatible endpoints) implement it; services may add their own.
import { nonNegativeIntegerArg, optionsArg } from '../validate.js';

/** Appends one blob; nothing is visible under its key until `commit()`. */
export interface ShardWriter {
  /** Appends bytes; may be called many times. The store keeps memory bounded (streams or parts underneath). */
  write(bytes: Uint8Array): Promise<void>;
  /** Makes the written bytes durable without publishing them (a no-op where publishing is itself durable). */
  flush(): Promise<void>;
  /**
   * Optional: appends `parts` in order, then flushes: what write() of each part and then flush() do, in one call
   * where the store can (FsShardStore: one writev and fdatasync). Callers fall back to write + flush without it.
   */
  writeFinal?(parts: readonly Uint8Array[]): Promise<void>;
  /** Publishes the blob atomically under its key (replacing any blob of that key), durably. */
  commit(): Promise<void>;
  /** Drops everything written; safe to call at any time, also after a failure, and after commit (then a no-op). */
  abort(): Promise<void>;
}

/** One blob opened for reading: random access for the length of an operation. */
export interface ShardReader {
  readonly size: number;
  /** Reads up to target.length bytes at `offset` into `target` (only those bytes are fetched); returns the count. */
  read(offset: number, target: Uint8Array): Promise<number>;
  /**
   * A hint (optional to implement and to call): the caller will read [offset, offset + length) next, in order and
   * whole, so a store may fetch it in one request and serve the reads from it (reads elsewhere still work).
   */
  willRead?(offset: number, length: number): void;
  close(): Promise<void>;
}

/** Hints for opening a reader; a store may ignore them. */
export interface OpenReaderOptions {
  /**
   * The caller will read the blob's first bytes up to this many (or the whole blob when it is shorter) in order,
   * header and trailer included: a store may fetch them with the open, in the same request.
   */
  readAheadBytes?: number;
}

/** Hints for opening a writer; a store may ignore them. */
export interface OpenWriterOptions {
  /**
   * The blob's exact length in bytes, when the caller knows it: a store may then send it in one request as it is
   * written (S3ShardStore: one streamed PUT). A writer that uses it fails with a RangeError when more or fewer bytes
   * are written, and publishes nothing.
   */
  bytes?: number;
}

export interface ListOptions {
  /** Only keys that start with this. */
  prefix: string;
  /** Only keys strictly after this one (byte order). */
  startAfter?: string;
  /** At most this many keys. */
  limit: number;
}

export interface ShardStore {
  /** Number of nodes. */
  readonly nodes: number;
  /** A stable description of where the store is (no secrets), recorded in bucket registrations; e.g. 'fs:/a,/b'. */
  readonly id?: string;
  openWriter(node: number, key: string, options?: OpenWriterOptions): Promise<ShardWriter>;
  /** The blob, or null when there is none. A node that is down may answer null or throw: both are a lost shard. */
  openReader(node: number, key: string, options?: OpenReaderOptions): Promise<ShardReader | null>;
  /** Removes a blob; a missing one is not an error. */
  remove(node: number, key: string): Promise<void>;
  /** Keys on `node` in ascending byte order (UTF-8; keys are ASCII), after `startAfter`, with `prefix`. */
  list(node: number, options: ListOptions): Promise<string[]>;
}

/** Longest key in bytes: S3 allows 1024, and FsShardStore needs room for its folder. */
export const MAX_KEY_BYTES = 900;
/** Longest '/'-separated key segment (a file name on FsShardStore). */
export const MAX_KEY_SEGMENT_BYTES = 200;
const KEY_CHARS = /^[A-Za-z0-9._~%/+=-]*$/;
const KEY_RULE = `1 to ${MAX_KEY_BYTES} characters of [A-Za-z0-9._~%/+=-] in '/'-separated segments of at most ${MAX_KEY_SEGMENT_BYTES} (none empty, '.', '..' or starting '.tmp-')`;

/** Keys are ASCII from a small set (so characters are bytes), '/'-separated, no empty, '.' or '..' segment. */
export function isValidKey(key: unknown): key is string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_BYTES || !KEY_CHARS.test(key)) return false;
  return key.split('/').every((s) => s.length > 0 && s.length <= MAX_KEY_SEGMENT_BYTES && s !== '.' && s !== '..' && !s.startsWith('.tmp-'));
}

/** A key argument: TypeError when not a string, RangeError when not a valid key. */
export function shardKeyArg(value: unknown, name = 'key'): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string of ${KEY_RULE}`);
  if (!isValidKey(value)) throw new RangeError(`${name} must be ${KEY_RULE}`);
  return value;
}
export const keyArg = shardKeyArg;

/** A listing prefix or start point: the key alphabet, possibly empty (a prefix need not end on a segment). */
export function keyPrefixArg(value: unknown, name: string): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string`);
  if (value.length > MAX_KEY_BYTES || !KEY_CHARS.test(value)) {
    throw new RangeError(`${name} must be at most ${MAX_KEY_BYTES} characters of [A-Za-z0-9._~%/+=-]`);
  }
  return value;
}

export function nodeArg(node: unknown, nodes: number): number {
  if (typeof node !== 'number' || !Number.isSafeInteger(node) || node < 0 || node >= nodes) {
    throw new RangeError(`node must be an integer from 0 to ${nodes - 1}`);
  }
  return node;
}

/** Writer hints, checked (TypeError/RangeError naming `options.bytes`) whether or not the store uses them. */
export function openWriterArg(options: OpenWriterOptions | undefined): OpenWriterOptions {
  const { bytes } = optionsArg(options);
  return bytes === undefined ? {} : { bytes: nonNegativeIntegerArg(bytes, 'options.bytes') };
}

export function listArg(options: unknown): Required<Pick<ListOptions, 'prefix' | 'limit'>> & { startAfter: string } {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  const { prefix, startAfter, limit } = options as ListOptions;
  if (typeof prefix !== 'string') throw new TypeError('options.prefix must be a string');
  if (startAfter !== undefined && typeof startAfter !== 'string') throw new TypeError('options.startAfter must be a string');
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) throw new RangeError('options.limit must be a positive integer');
  return { prefix, startAfter: startAfter ?? '', limit };
}
