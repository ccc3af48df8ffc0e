// A Bucket: objects bound to the bucket's root key (through its bucket keys) and geometry, named 1..1024 bytes of
// UTF-8, listed in name order. Object bytes go through the object layer with the bucket's keyring as DataKeyProvider
// and the bucket's namespace of the store (`bo/<bucket>`); the listing is the bucket's own (listing.ts), as it
// carries size, creation and key version without opening a shard.
import type { Readable } from 'node:stream';
import { KeyNotFoundError, KeyStateError, ObjectNotFoundError } from '../errors.js';
import type { KeyService } from '../hsm/key-service.js';
import type { ShardStore } from '../object/blob-store.js';
import { deleteObject } from '../object/delete.js';
import type { ObjectDeps } from '../object/deps.js';
import { objectAad } from '../object/format.js';
import { getObject, getObjectChunks } from '../object/get.js';
import { listObjectKeys } from '../object/listing.js';
import type { GetObjectOptions, ObjectSource, Progress, RepairReport } from '../object/options.js';

export interface BucketRepairReport extends RepairReport {
  /** The object had no listing entry (a crash after its shards, before the entry) and now has one again. */
  listingRestored: boolean;
}
import { putObject } from '../object/put.js';
import { repairObject } from '../object/repair.js';
import { functionArg, optionsArg, signalArg } from '../validate.js';
import type { BucketKeyring, RewrapKeysReport } from './bucket-keys.js';
import { ObjectIndex } from './listing.js';
import type { Manifest } from './manifest.js';
import { namePrefixArg, objectNameArg } from './names.js';
import { generationTime, objectsNamespace } from './layout.js';

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

export interface BucketPutOptions {
  /** The source's length in bytes when known (onProgress's total; told to the store): another count fails with a RangeError. */
  size?: number;
  signal?: AbortSignal;
  onProgress?: Progress;
}

export interface BucketGetOptions {
  range?: { offset: number; length: number };
  signal?: AbortSignal;
  onProgress?: Progress;
}

export interface ListObjectsOptions {
  prefix?: string;
  startAfter?: string;
}

export interface BucketRewrapOptions {
  signal?: AbortSignal;
  onProgress?: Progress;
}

export const bucketInfo = (m: Manifest): BucketInfo => ({
  name: m.name, keyId: m.keyId, keyAlias: m.keyAlias, createdAt: new Date(m.createdAt), dataShards: m.dataShards, parityShards: m.parityShards,
});

export class Bucket {
  readonly #manifest: Manifest;
  readonly #keys: KeyService;
  readonly #keyring: BucketKeyring;
  readonly #deps: ObjectDeps;
  readonly #store: ShardStore;
  /** The object layer's namespace for this bucket's objects. */
  readonly #ns: string;
  readonly #index: ObjectIndex;

  /** @internal Made by engine.buckets.create/open. */
  constructor(manifest: Manifest, keys: KeyService, keyring: BucketKeyring, store: ShardStore, deps: ObjectDeps) {
    this.#manifest = manifest;
    this.#keys = keys;
    this.#keyring = keyring;
    this.#deps = deps;
    this.#store = store;
    this.#ns = objectsNamespace(manifest.name);
    this.#index = new ObjectIndex(store, manifest, keyring);
  }

  get name(): string {
    return this.#manifest.name;
  }

  get info(): BucketInfo {
    return bucketInfo(this.#manifest);
  }

  async putObject(name: string, source: ObjectSource, options?: BucketPutOptions): Promise<BucketObjectInfo> {
    objectNameArg(name);
    const { size, signal, onProgress } = optionsArg(options);
    const m = this.#manifest;
    const info = await putObject(this.#deps, name, source, {
      keyId: m.keyId, dataShards: m.dataShards, parityShards: m.parityShards, store: this.#store, namespace: this.#ns,
      ...(size !== undefined ? { size } : {}), ...(signal ? { signal } : {}), ...(onProgress ? { onProgress } : {}),
    });
    const bkid = this.#keyring.takeIssued(objectAad({ ns: this.#ns, name }))!;
    const createdAt = Date.now();
    await this.#index.write({ name, createdAt, size: info.size, bkid }, info.replacedGenerations > 0);
    return { bucket: m.name, name, size: info.size, createdAt: new Date(createdAt), keyId: m.keyId, keyVersion: info.keyVersion };
  }

  getObject(name: string, options?: BucketGetOptions): Readable {
    return getObject(this.#deps, name, this.#getOptions(name, options));
  }

  /** getObject as an async iterable of chunks valid until the next step (no copies; see engine.getObjectChunks). */
  getObjectChunks(name: string, options?: BucketGetOptions): AsyncGenerator<Buffer, void, undefined> {
    return getObjectChunks(this.#deps, name, this.#getOptions(name, options));
  }

  #getOptions(name: string, options: BucketGetOptions | undefined): GetObjectOptions {
    objectNameArg(name);
    const { range, signal, onProgress } = optionsArg(options);
    signalArg(signal);
    functionArg(onProgress, 'options.onProgress');
    // Every object of the bucket is put with its geometry: a get lists parityShards + 1 nodes first.
    const shards = { dataShards: this.#manifest.dataShards, parityShards: this.#manifest.parityShards };
    return { store: this.#store, namespace: this.#ns, shards, ...(range !== undefined ? { range } : {}), ...(signal ? { signal } : {}), ...(onProgress ? { onProgress } : {}) };
  }

  async headObject(name: string): Promise<BucketObjectInfo> {
    objectNameArg(name);
    const entry = await this.#index.read(name);
    if (!entry || !(await this.#hasShard(name))) throw new ObjectNotFoundError(`no object "${name}" in bucket "${this.name}"`);
    return this.#toInfo(entry);
  }

  /** Objects in name order (UTF-8 byte order), fetched a page at a time. */
  async *listObjects(options?: ListObjectsOptions): AsyncGenerator<BucketObjectInfo> {
    const o = optionsArg(options);
    const prefix = namePrefixArg(o.prefix, 'options.prefix');
    const startAfter = namePrefixArg(o.startAfter, 'options.startAfter');
    for await (const entry of this.#index.list(prefix, startAfter)) yield await this.#toInfo(entry);
  }

  /** Removes the object's shards, then its listing entry. Needs no key (a shredded bucket can still be emptied), but a disabled key refuses it. */
  async deleteObject(name: string): Promise<void> {
    objectNameArg(name);
    await this.#assertNotDisabled();
    const listed = (await this.#index.read(name).catch(() => undefined)) !== undefined;
    let hadShards = true;
    try {
      await deleteObject(name, { store: this.#store, namespace: this.#ns });
    } catch (err) {
      if (!(err instanceof ObjectNotFoundError)) throw err;
      hadShards = false;
    }
    await this.#index.remove(name);
    if (!hadShards && !listed) throw new ObjectNotFoundError(`no object "${name}" in bucket "${this.name}"`);
  }

  /**
   * Repairs the object's shards; and restores its listing entry if it has none (a crash between the last shard and
   * the entry leaves an object that reads but is not listed).
   */
  async repairObject(name: string, options?: BucketRewrapOptions): Promise<BucketRepairReport> {
    objectNameArg(name);
    const { signal, onProgress } = optionsArg(options);
    let wrapped: Uint8Array | undefined;
    const report = await repairObject(this.#deps, name, {
      store: this.#store, namespace: this.#ns, ...(signal ? { signal } : {}), ...(onProgress ? { onProgress } : {}),
    }, (w) => (wrapped = w));
    const listed = await this.#index.read(name);
    if (listed || !wrapped) return { ...report, listingRestored: false };
    await this.#index.write({ name, createdAt: generationTime(report.generation), size: report.size, bkid: this.#keyring.bucketKeyOf(wrapped) }, false);
    return { ...report, listingRestored: true };
  }

  /** After a rotation: every bucket key re-protected under the root key's newest version; no object rewritten. */
  async rewrap(options?: BucketRewrapOptions): Promise<RewrapKeysReport> {
    const { signal, onProgress } = optionsArg(options);
    return this.#keyring.rewrapKeys({ signal: signalArg(signal), onProgress: functionArg(onProgress, 'options.onProgress') });
  }

  async #toInfo(entry: { name: string; createdAt: number; size: number; bkid: string }): Promise<BucketObjectInfo> {
    return {
      bucket: this.name, name: entry.name, size: entry.size, createdAt: new Date(entry.createdAt), keyId: this.#manifest.keyId,
      keyVersion: await this.#keyring.versionOfKey(entry.bkid),
    };
  }

  async #hasShard(name: string): Promise<boolean> {
    return (await listObjectKeys(this.#store, { ns: this.#ns, name })).gens.length > 0;
  }

  async #assertNotDisabled(): Promise<void> {
    try {
      if ((await this.#keys.get(this.#manifest.keyId)).state === 'disabled') throw new KeyStateError('root key is disabled');
    } catch (err) {
      if (!(err instanceof KeyNotFoundError)) throw err;
    }
  }
}
