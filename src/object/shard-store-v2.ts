// The v2 shard store: a dumb per-node blob store with opaque string keys (the object layer owns naming).
// Why: crash safety needs immutable, generation-named blobs (no in-place overwrite, which S3 lacks), buckets need
// listing. Planned in /work/wt/SHARDSTORE-V2.md; lives here until the object layer moves to it.

/** Appends one blob; nothing is visible under its key until commit(). */
export interface ShardWriter {
  /** May be called many times; memory stays bounded (streaming / multipart underneath). */
  write(bytes: Uint8Array): Promise<void>;
  /** Durable but unpublished (S3: waits for parts in flight; nothing more is possible). */
  flush(): Promise<void>;
  /** Publishes atomically, replacing any blob of that key; durable. */
  commit(): Promise<void>;
  /** Drops everything; safe at any time, also after a failure. */
  abort(): Promise<void>;
}

export interface ShardReader {
  readonly size: number;
  /** Reads up to target.length bytes at `offset` into `target` (exactly those bytes are fetched); returns the count. */
  read(offset: number, target: Uint8Array): Promise<number>;
  close(): Promise<void>;
}

export interface ListOptions {
  prefix: string;
  startAfter?: string;
  limit: number;
}

export interface ShardStore {
  readonly nodes: number;
  openWriter(node: number, key: string): Promise<ShardWriter>;
  /** null when the blob does not exist; a node that is down/erroring/timing out answers null or throws (a lost shard). */
  openReader(node: number, key: string): Promise<ShardReader | null>;
  /** Missing is not an error. */
  remove(node: number, key: string): Promise<void>;
  /** Keys on `node` starting with `prefix`, strictly after `startAfter`, in ascending byte (UTF-8) order, at most `limit`. */
  list(node: number, options: ListOptions): Promise<string[]>;
}

export const MAX_KEY_BYTES = 900;
const KEY_CHARS = /^[A-Za-z0-9._~%/+=-]*$/;
const KEY_RULE = `1 to ${MAX_KEY_BYTES} characters of [A-Za-z0-9._~%/+=-] in '/'-separated segments (none empty, '.' or '..')`;

/** A key as SHARDSTORE-V2.md defines it (ASCII only, so characters are bytes). */
export function shardKeyArg(value: unknown, name = 'key'): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string of ${KEY_RULE}`);
  if (value.length === 0 || value.length > MAX_KEY_BYTES || !KEY_CHARS.test(value)) {
    throw new RangeError(`${name} must be ${KEY_RULE}`);
  }
  for (const segment of value.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') throw new RangeError(`${name} must be ${KEY_RULE}`);
  }
  return value;
}

/** A listing prefix or start point: the key alphabet, possibly empty (a prefix need not end on a segment). */
export function keyPrefixArg(value: unknown, name: string): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string`);
  if (value.length > MAX_KEY_BYTES || !KEY_CHARS.test(value)) {
    throw new RangeError(`${name} must be at most ${MAX_KEY_BYTES} characters of [A-Za-z0-9._~%/+=-]`);
  }
  return value;
}
