// Bucket keys (as S3 Bucket Keys): the HSM wraps a bucket key under the bucket's root key; object DEKs are wrapped
// by the bucket key here, in the engine, so the HSM is called per bucket key, not per object. This is the bucket's
// DataKeyProvider for the object layer.
//
// Each bucket key is its own immutable record `br/<bucket>/k/<bkid>/<rgen>` on every node (never a shared record
// rewritten in place, so concurrent writers cannot lose one): body JSON { v, wrapped } where `wrapped` is the HSM's
// wrap with AAD = (bucket, root key id, shape, createdAt, creation gen, bkid), so a record moved to another bucket
// or a changed byte fails to unwrap. A rewrap (root key rotated) adds a newer rgen and removes older ones only once
// the new one is durable on every node. Bucket key plaintexts are never copied here: they are held in place in the
// engine's data-key cache (keys.unwrapHeld), checked live before each use, so disable/destroy (which empty the
// cache), expiry and close take effect at once; with the cache off every use unwraps in the HSM.
//
// Object DEK wrapped by a bucket key (74 bytes):
//   0 "BW" | 2 format 1 | 3 alg 1 (AES-256-GCM) | 4 bkid (10 bytes) | 14 IV (12) | 26 DEK ciphertext (32) | 58 tag (16)
// GCM AAD = bytes 0..25 ‖ enc(["hce/bucket-dek/v1", bucket, creation gen]) ‖ enc(object aad): a DEK moved to
// another object name or bucket fails (DecryptionError).
import type { DataKeyProvider, WrappedKeyInfo } from '../aead/data-key-provider.js';
import { hmacSha256 } from '../aead/key-schedule.js';
import { gcmOpenInto, gcmSealInto } from '../aead/segment.js';
import { DecryptionError, KeyStateError, StoreError } from '../errors.js';
import { encodeAad, type Aad } from '../hsm/aad.js';
import type { HeldKey } from '../hsm/data-key-cache.js';
import type { BucketKeySupport, KeyService } from '../hsm/key-service.js';
import { parseWrapped } from '../hsm/wrapped-key.js';
import { fillRandom } from '../random.js';
import type { ShardStore } from '../object/blob-store.js';
import { bucketKeyRecordKey, newGeneration, parseRecordKey, recordsPrefix } from './layout.js';
import type { Manifest } from './manifest.js';
import { listUnion, readVerified, removeEverywhere, writeEverywhere } from './replicated.js';

/** HMAC(bucket key, this) is the key of the bucket's listing-entry MACs: another key than the GCM one. */
const INDEX_KEY_LABEL = Buffer.from('hce/bucket-index-key/v1', 'utf8');
const MAGIC = Buffer.from('BW', 'latin1');
const BKID_BYTES = 10;
const IV_BYTES = 12; // NIST SP 800-38D §5.2.1.1
const TAG_BYTES = 16;
const DEK_BYTES = 32;
const HEADER_BYTES = 4 + BKID_BYTES + IV_BYTES;
export const BUCKET_WRAPPED_BYTES = HEADER_BYTES + DEK_BYTES + TAG_BYTES;
const MAX_RECORD_BYTES = 8192;

interface KeyRecordCopy {
  rgen: string;
  wrapped: Buffer;
  /** Root key version protecting it (authenticated: the HSM unwrapped it). */
  version: number;
}

interface BucketKey {
  bkid: string;
  /** Record generations seen in the store, newest first. */
  rgens: string[];
  /** The newest record that verified, once one has. */
  current?: KeyRecordCopy;
  /** Its plaintext, held in the data-key cache (see #use). */
  held?: HeldKey;
}

export interface RewrapKeysReport {
  bucketKeys: number;
  rewrapped: number;
  /** Bytes written to the store (records only: no object is rewritten). */
  bytesWritten: number;
}

export class BucketKeyring implements DataKeyProvider<Aad> {
  readonly #keys: KeyService;
  readonly #support: BucketKeySupport;
  readonly #store: ShardStore;
  readonly #manifest: Manifest;
  readonly #entries = new Map<string, BucketKey>();
  readonly #dekDomain: Buffer;
  readonly #aadMemo = new WeakMap<object, Buffer>();
  #sorted: string[] | undefined;
  #creating: Promise<string> | undefined;
  /** Which bucket key the last DEK issued for an object AAD went under (for its listing entry). */
  readonly #issued = new Map<string, string>();

  constructor(keys: KeyService, support: BucketKeySupport, store: ShardStore, manifest: Manifest) {
    this.#keys = keys;
    this.#support = support;
    this.#store = store;
    this.#manifest = manifest;
    this.#dekDomain = encodeAad(['hce/bucket-dek/v1', manifest.name, manifest.gen]);
  }

  /** (Re)reads which bucket keys and record generations the store holds. */
  async load(): Promise<void> {
    const keys = await listUnion(this.#store, `${recordsPrefix(this.#manifest.name)}k/`);
    const seen = new Map<string, string[]>();
    for (const key of keys) {
      const parsed = parseRecordKey(this.#manifest.name, key);
      if (parsed?.kind !== 'bucket-key') continue;
      const list = seen.get(parsed.bkid) ?? [];
      list.push(parsed.rgen);
      seen.set(parsed.bkid, list);
    }
    for (const [bkid, rgens] of seen) {
      rgens.sort().reverse();
      const entry = this.#entries.get(bkid);
      if (entry) entry.rgens = rgens;
      else this.#entries.set(bkid, { bkid, rgens });
    }
  }

  get size(): number {
    return this.#entries.size;
  }

  #aad(bkid: string): string[] {
    const m = this.#manifest;
    return ['hce/bucket-key/v1', m.name, m.keyId, String(m.dataShards), String(m.parityShards), String(m.createdAt), m.gen, bkid];
  }

  /** Creates the bucket's first key at bucket creation (all nodes must hold it). */
  async createKey(): Promise<string> {
    const bkid = newGeneration();
    const { plaintext, wrapped } = await this.#keys.generateDataKey(this.#manifest.keyId, { aad: this.#aad(bkid) });
    plaintext.fill(0);
    const rgen = newGeneration();
    const key = bucketKeyRecordKey(this.#manifest.name, bkid, rgen);
    const failed = await writeEverywhere(this.#store, key, encodeRecord(wrapped));
    if (failed.length > 0) {
      await removeEverywhere(this.#store, key);
      throw new StoreError(failed[0]!, 'write', `bucket key record not durable on node(s) ${failed.join(', ')}`);
    }
    this.#entries.set(bkid, { bkid, rgens: [rgen], current: { rgen, wrapped: Buffer.from(wrapped), version: parseWrapped(wrapped).version } });
    return bkid;
  }

  /** The newest record of a bucket key that unwraps (verifying it once per process). */
  async #current(entry: BucketKey): Promise<KeyRecordCopy> {
    if (entry.current) return entry.current;
    for (const rgen of entry.rgens) {
      const { value } = await readVerified(this.#store, bucketKeyRecordKey(this.#manifest.name, entry.bkid, rgen), MAX_RECORD_BYTES, async (bytes) => {
        const wrapped = decodeRecord(bytes);
        if (!wrapped) return undefined;
        try {
          (await this.#keys.unwrap(wrapped, { aad: this.#aad(entry.bkid) })).fill(0);
        } catch (err) {
          if (err instanceof DecryptionError) return undefined;
          throw err;
        }
        return { rgen, wrapped, version: parseWrapped(wrapped).version };
      });
      if (value) return (entry.current = value);
    }
    throw new DecryptionError(); // every copy of every record of this bucket key is damaged
  }

  async #entry(bkid: string): Promise<BucketKey> {
    let entry = this.#entries.get(bkid);
    if (!entry) {
      await this.load(); // another process may have added it since
      entry = this.#entries.get(bkid);
    }
    if (!entry) throw new DecryptionError();
    return entry;
  }

  /**
   * Runs `fn` synchronously over the bucket key's plaintext, held in place in the data-key cache (one HSM unwrap per
   * bucket key and cache lifetime, no lookup per object). `fn` never awaits, so the key cannot be dropped while it
   * runs; one dropped while this waited is unwrapped again (and a disabled or destroyed root key fails there).
   */
  async #use<T>(entry: BucketKey, fn: (key: Uint8Array) => T): Promise<T> {
    for (;;) {
      let held = entry.held;
      if (!held?.live()) {
        const current = await this.#current(entry);
        held = entry.held = await this.#keys.unwrapHeld(current.wrapped, { aad: this.#aad(entry.bkid) });
      }
      if (!held.live()) continue;
      try {
        return fn(held.key);
      } finally {
        held.release();
      }
    }
  }

  /** enc(aad) of the object DEK, memoised for the fixed AAD the sealed format uses. */
  #dekAad(header: Uint8Array, aad: Aad): Buffer {
    let encoded = this.#aadMemo.get(aad);
    if (!encoded) {
      encoded = Buffer.concat([this.#dekDomain, encodeAad(aad)]);
      if (aad instanceof Uint8Array) this.#aadMemo.set(aad, encoded);
    }
    return Buffer.concat([header, encoded]);
  }

  /** Bucket key ids, newest first (ids are generations: they sort by creation). Recomputed only when keys change. */
  #newestFirst(): string[] {
    if (this.#sorted?.length !== this.#entries.size) this.#sorted = [...this.#entries.keys()].sort().reverse();
    return this.#sorted;
  }

  /** The bucket key new objects go under: the newest one protected by the root key's newest version. */
  async #forWrite(): Promise<BucketKey> {
    const { version } = await this.#support.current(this.#manifest.keyId);
    for (const bkid of this.#newestFirst()) {
      const entry = this.#entries.get(bkid)!;
      if ((await this.#current(entry)).version >= version) return entry;
    }
    // None under the newest version (a rotation): one new bucket key, made once however many puts are waiting.
    this.#creating ??= this.createKey().finally(() => (this.#creating = undefined));
    return this.#entries.get(await this.#creating)!;
  }

  // ---- DataKeyProvider ----------------------------------------------------------------------------------------

  async generateDataKey(_keyId: string, opts: { aad: Aad }): Promise<{ plaintext: Uint8Array; wrapped: Uint8Array }> {
    const entry = await this.#forWrite();
    if (Array.isArray(opts.aad)) this.#issued.set(opts.aad.join('\u0000'), entry.bkid);
    const wrapped = Buffer.allocUnsafe(BUCKET_WRAPPED_BYTES);
    MAGIC.copy(wrapped, 0);
    wrapped[2] = 1;
    wrapped[3] = 1;
    wrapped.write(entry.bkid, 4, BKID_BYTES, 'hex');
    const header = wrapped.subarray(0, HEADER_BYTES);
    fillRandom(header.subarray(4 + BKID_BYTES));
    const aad = this.#dekAad(header, opts.aad);
    const dek = fillRandom(Buffer.allocUnsafeSlow(DEK_BYTES)); // its own memory: the caller's fill(0) wipes exactly it
    try {
      await this.#use(entry, (bk) => gcmSealInto(bk, header.subarray(4 + BKID_BYTES), dek, wrapped.subarray(HEADER_BYTES), aad));
      return { plaintext: dek, wrapped };
    } catch (err) {
      dek.fill(0);
      throw err;
    }
  }

  async unwrap(wrapped: Uint8Array, opts: { aad: Aad }): Promise<Uint8Array> {
    const blob = parseBucketWrapped(wrapped);
    const aad = this.#dekAad(blob.header, opts.aad);
    const dek = Buffer.allocUnsafeSlow(DEK_BYTES);
    const ok = await this.#use(await this.#entry(blob.bkid), (bk) => gcmOpenInto(bk, blob.iv, blob.sealed, dek, aad));
    if (!ok) throw new DecryptionError(); // gcmOpenInto zeroed dek
    return dek;
  }

  /** Object DEKs stay wrapped by their bucket key: rotation re-protects bucket keys (rewrapKeys), not objects. */
  async rewrap(wrapped: Uint8Array, opts: { aad: Aad }): Promise<Uint8Array> {
    (await this.unwrap(wrapped, opts)).fill(0); // still checked: a rewrap never blesses a bad blob
    return Buffer.from(wrapped);
  }

  describeWrapped(wrapped: Uint8Array): WrappedKeyInfo {
    const entry = this.#entries.get(parseBucketWrapped(wrapped).bkid);
    if (!entry?.current) throw new DecryptionError();
    return { keyId: this.#manifest.keyId, keyVersion: entry.current.version };
  }

  /** Root key version protecting the bucket key an object DEK is under (verifying that bucket key). */
  async versionOf(wrapped: Uint8Array): Promise<number> {
    return (await this.#current(await this.#entry(parseBucketWrapped(wrapped).bkid))).version;
  }

  /** The bucket key of the DEK last issued for `aad` (and forgets it). */
  takeIssued(aad: readonly string[]): string | undefined {
    const key = aad.join('\u0000');
    const bkid = this.#issued.get(key);
    this.#issued.delete(key);
    return bkid;
  }

  /** Root key version protecting bucket key `bkid` (verifying it once). */
  async versionOfKey(bkid: string): Promise<number> {
    return (await this.#current(await this.#entry(bkid))).version;
  }

  /** The bucket key a DEK wrapped here is under (no check: the caller unwraps to verify). */
  bucketKeyOf(wrapped: Uint8Array): string {
    return parseBucketWrapped(wrapped).bkid;
  }

  /**
   * MACs (16 bytes each) of listing entries under a key derived from bucket key `bkid` (HMAC(BK, label), so the
   * GCM key and the MAC key differ). One unwrap for the whole batch.
   */
  async indexMacs(bkid: string, inputs: readonly Uint8Array[]): Promise<Buffer[]> {
    const macKey = await this.#use(await this.#entry(bkid), (bk) => hmacSha256(bk, [INDEX_KEY_LABEL]));
    try {
      return inputs.map((input) => hmacSha256(macKey, [input]).subarray(0, 16));
    } finally {
      macKey.fill(0);
    }
  }

  /** After a rotation: every bucket key re-protected under the newest root version; no object is touched. */
  async rewrapKeys(options: { signal?: AbortSignal | undefined; onProgress?: ((done: number, total: number) => void) | undefined }): Promise<RewrapKeysReport> {
    await this.load();
    const root = await this.#keys.get(this.#manifest.keyId);
    if (root.state !== 'active') throw new KeyStateError('root key is disabled');
    const entries = [...this.#entries.values()];
    const report: RewrapKeysReport = { bucketKeys: entries.length, rewrapped: 0, bytesWritten: 0 };
    let done = 0;
    for (const entry of entries) {
      options.signal?.throwIfAborted();
      const current = await this.#current(entry);
      if (current.version < root.version) {
        const wrapped = await this.#keys.rewrap(current.wrapped, { aad: this.#aad(entry.bkid) });
        const rgen = newGeneration();
        const body = encodeRecord(wrapped);
        const failed = await writeEverywhere(this.#store, bucketKeyRecordKey(this.#manifest.name, entry.bkid, rgen), body);
        report.bytesWritten += body.length * (this.#store.nodes - failed.length);
        if (failed.length > 0) throw new StoreError(failed[0]!, 'write', `rewrapped bucket key not durable on node(s) ${failed.join(', ')}; the old one is kept`);
        // Durable everywhere: only now may the older records go.
        for (const old of entry.rgens) await removeEverywhere(this.#store, bucketKeyRecordKey(this.#manifest.name, entry.bkid, old));
        entry.rgens = [rgen];
        entry.held = undefined; // held under the old record's cache key (same plaintext): the next use unwraps the new one
        entry.current = { rgen, wrapped: Buffer.from(wrapped), version: parseWrapped(wrapped).version };
        report.rewrapped++;
      }
      options.onProgress?.(++done, entries.length);
    }
    return report;
  }
}

function encodeRecord(wrapped: Uint8Array): Buffer {
  return Buffer.from(JSON.stringify({ v: 1, wrapped: Buffer.from(wrapped).toString('base64') }));
}

function decodeRecord(bytes: Buffer): Buffer | undefined {
  try {
    const parsed = JSON.parse(bytes.toString('utf8')) as { v?: unknown; wrapped?: unknown };
    if (parsed.v !== 1 || typeof parsed.wrapped !== 'string') return undefined;
    return Buffer.from(parsed.wrapped, 'base64');
  } catch {
    return undefined;
  }
}

function parseBucketWrapped(wrapped: Uint8Array) {
  const b = Buffer.from(wrapped.buffer, wrapped.byteOffset, wrapped.byteLength);
  if (b.length !== BUCKET_WRAPPED_BYTES || b[0] !== MAGIC[0] || b[1] !== MAGIC[1] || b[2] !== 1 || b[3] !== 1) throw new DecryptionError();
  const copy = Buffer.from(b);
  return {
    bkid: copy.toString('hex', 4, 4 + BKID_BYTES),
    header: copy.subarray(0, HEADER_BYTES),
    iv: copy.subarray(4 + BKID_BYTES, HEADER_BYTES),
    /** DEK ciphertext ‖ tag. */
    sealed: copy.subarray(HEADER_BYTES),
  };
}
