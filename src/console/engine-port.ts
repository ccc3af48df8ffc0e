// What the console needs of an engine, typed structurally so the console builds before and after the buckets API
// (API.md "Buckets") is in the engine: a missing part answers 501 with words, not a crash.
import type { Readable } from 'node:stream';
import type { CryptoEngine } from '../engine.js';
import type { ShardStore } from '../object/shard-store.js';
import { ConsoleRequestError } from './operator-errors.js';

export interface BucketInfo {
  name: string;
  keyId: string;
  keyAlias: string;
  createdAt: Date;
  dataShards: number;
  parityShards: number;
}

export interface BucketObjectInfo {
  bucket: string;
  name: string;
  size: number;
  createdAt: Date;
  keyId: string;
  keyVersion: number;
}

export interface Progress {
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export interface Bucket {
  readonly info?: BucketInfo;
  putObject(name: string, source: Readable | Uint8Array, options?: Progress & { size?: number }): Promise<BucketObjectInfo>;
  getObject(name: string, options?: { range?: { offset: number; length: number }; signal?: AbortSignal }): Readable;
  headObject(name: string): Promise<BucketObjectInfo>;
  listObjects(options?: { prefix?: string; startAfter?: string }): AsyncIterable<BucketObjectInfo>;
  deleteObject(name: string): Promise<unknown>;
  repairObject(name: string, options?: Progress): Promise<unknown>;
  rewrap(options?: Progress): Promise<unknown>;
}

export interface Buckets {
  create(name: string, options: { store: ShardStore; keyId: string; dataShards: number; parityShards: number }): Promise<Bucket>;
  open(name: string, options: { store: ShardStore }): Promise<Bucket>;
  list(options: { store: ShardStore; keyId?: string }): Promise<BucketInfo[]>;
  delete(name: string, options: { store: ShardStore }): Promise<unknown>;
}

export interface Registration {
  bucket: string;
  store: unknown;
  createdAt: Date;
}

interface BucketAwareKeys {
  registrations?(idOrAlias: string): Promise<Registration[]>;
  destroy(idOrAlias: string, options?: { force?: boolean }): Promise<void>;
}

export function bucketsOf(engine: CryptoEngine): Buckets {
  const buckets = (engine as unknown as { buckets?: Buckets }).buckets;
  if (!buckets) throw new ConsoleRequestError(501, 'ERR_NO_BUCKETS', 'This engine build has no buckets.');
  return buckets;
}

/** The buckets a key protects; undefined when the engine cannot tell (no buckets API). */
export async function registrationsOf(engine: CryptoEngine, idOrAlias: string): Promise<Registration[] | undefined> {
  const keys = engine.keys as unknown as BucketAwareKeys;
  return keys.registrations ? keys.registrations(idOrAlias) : undefined;
}

export function destroyKey(engine: CryptoEngine, idOrAlias: string, force: boolean): Promise<void> {
  return (engine.keys as unknown as BucketAwareKeys).destroy(idOrAlias, { force });
}
