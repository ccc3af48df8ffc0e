// engine.buckets: create, open, list and delete buckets bound to a root key (the Key Protect + Cloud Object Storage
// flow). A bucket is its binding record and bucket keys in the store (manifest.ts, bucket-keys.ts) and its
// registration next to the root key in the token (hsm/registrations.ts). Creation registers first and writes the
// binding last, so a crash leaves at worst a registration without a bucket (destroy then needs force: the safe
// side), never a bucket its key does not know about; a failure undoes what was done.
import { BucketExistsError, BucketNotEmptyError, BucketNotFoundError, KeyNotFoundError, KeyStateError, StoreError } from '../errors.js';
import { resolveShape } from '../erasure/validate.js';
import type { BucketKeySupport, KeyService } from '../hsm/key-service.js';
import { isKeyId } from '../hsm/root-key-store.js';
import type { ShardStore } from '../object/blob-store.js';
import type { ObjectDeps } from '../object/deps.js';
import { nonEmptyStringArg, optionsArg } from '../validate.js';
import { Bucket, bucketInfo, type BucketInfo } from './bucket.js';
import { BucketKeyring } from './bucket-keys.js';
import { indexPrefix, manifestKey, newGeneration, objectsPrefix, RECORDS_ROOT, recordsPrefix } from './layout.js';
import { encodeManifest, manifestGenerations, readManifest, type Manifest } from './manifest.js';
import { bucketNameArg } from './names.js';
import { isEmptyEverywhere, listUnion, removeEverywhere, writeEverywhere } from './replicated.js';

export interface CreateBucketOptions {
  store: ShardStore;
  keyId: string;
  dataShards: number;
  parityShards: number;
}

export interface BucketStoreOptions {
  store: ShardStore;
}

export interface ListBucketsOptions {
  store: ShardStore;
  /** Only the buckets this root key (id or alias) protects. */
  keyId?: string;
}

function storeArg(value: unknown): ShardStore {
  const s = value as ShardStore;
  if (!s || typeof s !== 'object' || typeof s.openWriter !== 'function' || typeof s.list !== 'function' || !Number.isInteger(s.nodes)) {
    throw new TypeError('options.store must be a ShardStore');
  }
  return s;
}

/** What a registration records as the store: its id, or a description without one. */
export const storeIdOf = (store: ShardStore) => store.id ?? `store:${store.constructor?.name ?? 'unknown'}:${store.nodes}`;

export class BucketService {
  readonly #keys: KeyService;
  readonly #support: BucketKeySupport;
  readonly #deps: () => Omit<ObjectDeps, 'keys'>;

  /** @internal Made by the engine. */
  constructor(keys: KeyService, deps: () => Omit<ObjectDeps, 'keys'>) {
    this.#keys = keys;
    this.#support = keys.bucketSupport();
    this.#deps = deps;
  }

  async create(name: string, options: CreateBucketOptions): Promise<Bucket> {
    bucketNameArg(name);
    const o = optionsArg(options);
    const store = storeArg(o.store);
    const keyRef = nonEmptyStringArg(o.keyId, 'options.keyId');
    const { dataShards, parityShards } = resolveShape(o);
    const root = await this.#keys.get(keyRef);
    if (root.state !== 'active') throw new KeyStateError('root key is disabled');
    await this.#assertFree(store, name);

    const createdAt = Date.now();
    const manifest: Manifest = { name, keyId: root.id, keyAlias: root.alias, createdAt, dataShards, parityShards, gen: newGeneration(createdAt) };
    const registration = { keyId: root.id, bucket: name, store: storeIdOf(store), createdAt, gen: manifest.gen };
    await this.#support.registrations.add(registration);
    const keyring = new BucketKeyring(this.#keys, this.#support, store, manifest);
    const key = manifestKey(name, manifest.gen);
    let bkid: string | undefined;
    try {
      bkid = await keyring.createKey();
      const failed = await writeEverywhere(store, key, await encodeManifest(this.#support.mac, manifest));
      if (failed.length > 0) throw new StoreError(failed[0]!, 'write', `bucket record not durable on node(s) ${failed.join(', ')}`);
      // Two creators racing: the oldest generation is the bucket; the other backs out.
      const winner = await readManifest(this.#support.mac, store, name);
      if (winner.gen !== manifest.gen) throw new BucketExistsError(`bucket "${name}" already exists`);
    } catch (err) {
      await removeEverywhere(store, key);
      if (bkid) for (const k of await listUnion(store, `${recordsPrefix(name)}k/${bkid}/`).catch(() => [])) await removeEverywhere(store, k);
      await this.#support.registrations.remove(root.id, registration).catch(() => {});
      throw err;
    }
    return new Bucket(manifest, this.#keys, keyring, store, this.#deps());
  }

  async open(name: string, options: BucketStoreOptions): Promise<Bucket> {
    bucketNameArg(name);
    const store = storeArg(optionsArg(options).store);
    const manifest = await readManifest(this.#support.mac, store, name);
    const keyring = new BucketKeyring(this.#keys, this.#support, store, manifest);
    await keyring.load();
    return new Bucket(manifest, this.#keys, keyring, store, this.#deps());
  }

  /** Buckets in the store, by name; with keyId, only those that root key protects. */
  async list(options: ListBucketsOptions): Promise<BucketInfo[]> {
    const o = optionsArg(options);
    const store = storeArg(o.store);
    let keyId: string | undefined;
    if (o.keyId !== undefined) {
      const ref = nonEmptyStringArg(o.keyId, 'options.keyId');
      try {
        keyId = (await this.#keys.get(ref)).id;
      } catch (err) {
        // A destroyed key's buckets are still listed by its id.
        if (!(err instanceof KeyNotFoundError) || !isKeyId(ref)) throw err;
        keyId = ref.toLowerCase();
      }
    }
    const gens = new Map<string, string[]>();
    for (const key of await listUnion(store, RECORDS_ROOT)) {
      const match = /^br\/([^/]+)\/m\/([0-9a-f]{20})$/.exec(key);
      if (match) gens.set(match[1]!, [...(gens.get(match[1]!) ?? []), match[2]!]);
    }
    const out: BucketInfo[] = [];
    for (const [name, list] of [...gens].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      let manifest: Manifest;
      try {
        manifest = await readManifest(this.#support.mac, store, name, list.sort());
      } catch (err) {
        if (err instanceof BucketNotFoundError) continue; // removed while we listed
        throw err;
      }
      if (keyId === undefined || manifest.keyId === keyId) out.push(bucketInfo(manifest));
    }
    return out;
  }

  /** Deletes an empty bucket: its records, then its registration. */
  async delete(name: string, options: BucketStoreOptions): Promise<void> {
    bucketNameArg(name);
    const store = storeArg(optionsArg(options).store);
    const manifest = await readManifest(this.#support.mac, store, name);
    if (!(await isEmptyEverywhere(store, objectsPrefix(name))) || !(await isEmptyEverywhere(store, indexPrefix(name)))) {
      throw new BucketNotEmptyError(`bucket "${name}" is not empty`);
    }
    // The binding goes first (the bucket is gone for everyone), then its keys, then the registration.
    for (const gen of await manifestGenerations(store, name)) await removeEverywhere(store, manifestKey(name, gen));
    for (const key of await listUnion(store, recordsPrefix(name))) await removeEverywhere(store, key);
    await this.#support.registrations.remove(manifest.keyId, { bucket: name, store: storeIdOf(store), gen: manifest.gen });
  }

  async #assertFree(store: ShardStore, name: string): Promise<void> {
    const gens = await manifestGenerations(store, name);
    if (gens.length === 0) return;
    try {
      await readManifest(this.#support.mac, store, name, gens);
    } catch (err) {
      if (err instanceof BucketNotFoundError) return; // listed but gone: a delete in progress
      throw err;
    }
    throw new BucketExistsError(`bucket "${name}" already exists`);
  }
}
