// engine.keys: root keys with IBM Key Protect semantics, and DEK wrap/unwrap inside the HSM: the public API.
// Arguments are checked here; token layout in RootKeyStore, what this process knows of keys in KeyRecords, how HSM
// calls run in CallScheduler, the blob format in wrapped-key.ts, BYOK in ImportTokens, CK_RV meanings in ckr.ts.
import { randomBytes } from 'node:crypto';
import { BucketRecordError, DecryptionError, KeyNotFoundError, KeyStateError } from '../errors.js';
import { fillRandom } from '../random.js';
import { bytesArg, nonEmptyStringArg, optionsArg } from '../validate.js';
import { encodeAad, type Aad } from './aad.js';
import { CallScheduler, type CallSchedulerOptions } from './call-scheduler.js';
import { decryptFailure, hsmFailure, keyStateOfFailure } from './ckr.js';
import { DataKeyCache, type DataKeyCacheOptions } from './data-key-cache.js';
import { ImportTokens, type ImportToken, type ImportTokenOptions } from './import-tokens.js';
import { KeyRecords } from './key-records.js';
import { RecordMac } from './record-mac.js';
import { Registrations, type Registration } from './registrations.js';
import type { Pkcs11 } from './module.js';
import { assertUsable, bytesToId, idToBytes, RootKeyStore, toInfo, validateAlias, versionLabel, type KeyRecord, type RootKeyInfo } from './root-key-store.js';
import type { SessionPool } from './session-pool.js';
import { aesGcm, GCM_IV_BYTES } from './templates.js';
import { layoutWrapped, MAX_WRAP_PLAINTEXT_BYTES, parseWrapped, wrappedGcmAad, wrappedKeyIdHex } from './wrapped-key.js';

export type { RootKeyInfo, ImportToken, ImportTokenOptions, Aad, Registration };

export interface DestroyOptions {
  /** Destroy even while the key protects registered buckets (their objects become unreadable for good). */
  force?: boolean;
}

/** What the bucket layer needs of the HSM side besides wrap/unwrap (engine-internal, not part of the API). */
export interface BucketKeySupport {
  mac: RecordMac;
  registrations: Registrations;
  /** The key's id, alias and newest version as this process knows them (re-read within keyInfoMaxAgeMs). */
  current(idOrAlias: string): Promise<{ id: string; alias: string; version: number }>;
}

export interface AadOptions {
  aad?: Aad;
}

export interface ImportKeyOptions {
  alias: string;
  importTokenId: string;
  encryptedKey: Uint8Array;
}

export interface KeyServiceOptions {
  dataKeyCache: DataKeyCacheOptions | false;
  /** How long this process trusts what it read of a key's metadata before re-reading the token. */
  keyInfoMaxAgeMs: number;
  hsmCalls: CallSchedulerOptions;
}

export const DATA_KEY_BYTES = 32;

const keyRefArg = (value: unknown) => nonEmptyStringArg(value, 'idOrAlias');

export class KeyService {
  readonly #store: RootKeyStore;
  readonly #records: KeyRecords;
  readonly #calls: CallScheduler;
  readonly #importTokens: ImportTokens;
  readonly #cache: DataKeyCache | undefined;
  readonly #mac: RecordMac;
  readonly #registrations: Registrations;

  constructor(module: Pkcs11, sessions: SessionPool, options: KeyServiceOptions) {
    this.#store = new RootKeyStore(module, sessions);
    this.#records = new KeyRecords(this.#store, options.keyInfoMaxAgeMs);
    this.#calls = new CallScheduler(module, sessions, options.hsmCalls);
    this.#importTokens = new ImportTokens(module, sessions);
    this.#cache = options.dataKeyCache ? new DataKeyCache(options.dataKeyCache) : undefined;
    this.#mac = new RecordMac(module, sessions);
    this.#registrations = new Registrations(module, sessions, this.#mac);
  }

  // ---- lifecycle -------------------------------------------------------------------------------------------

  async create(options: { alias: string }): Promise<RootKeyInfo> {
    const alias = validateAlias(optionsArg(options).alias);
    await this.#records.assertAliasFree(alias);
    return toInfo(this.#records.remember(await this.#store.create(alias)));
  }

  async createImportToken(options?: ImportTokenOptions): Promise<ImportToken> {
    return this.#importTokens.create(optionsArg(options));
  }

  async import(options: ImportKeyOptions): Promise<RootKeyInfo> {
    const { alias: rawAlias, importTokenId, encryptedKey } = optionsArg(options);
    const alias = validateAlias(rawAlias);
    nonEmptyStringArg(importTokenId, 'options.importTokenId');
    bytesArg(encryptedKey, 'options.encryptedKey');
    await this.#records.assertAliasFree(alias);
    const idBytes = randomBytes(16);
    const createdAt = Date.now();
    await this.#importTokens.unwrapInto(importTokenId, encryptedKey, idBytes, versionLabel(idBytes, 1, createdAt));
    return toInfo(this.#records.remember(await this.#store.recordImported(idBytes, alias, createdAt)));
  }

  async get(idOrAlias: string): Promise<RootKeyInfo> {
    return toInfo(await this.#records.resolve(keyRefArg(idOrAlias), true));
  }

  async list(): Promise<RootKeyInfo[]> {
    return (await this.#records.all()).map(toInfo);
  }

  async rotate(idOrAlias: string): Promise<RootKeyInfo> {
    const record = assertUsable(await this.#records.resolve(keyRefArg(idOrAlias), true));
    return toInfo(this.#records.remember(await this.#store.rotate(record)));
  }

  async disable(idOrAlias: string): Promise<RootKeyInfo> {
    return this.#setEnabled(idOrAlias, false);
  }

  async enable(idOrAlias: string): Promise<RootKeyInfo> {
    return this.#setEnabled(idOrAlias, true);
  }

  async destroy(idOrAlias: string, options?: DestroyOptions): Promise<void> {
    const record = await this.#records.resolve(keyRefArg(idOrAlias), true);
    const force = optionsArg(options).force;
    if (force !== undefined && typeof force !== 'boolean') throw new TypeError('options.force must be a boolean');
    if (!force) {
      // A registration that fails its integrity check still counts: refusing is the safe answer.
      const count = await this.#registrations.list(record.id).then(
        (found) => found.length,
        (err: unknown) => {
          if (err instanceof BucketRecordError) return 1;
          throw err;
        },
      );
      if (count > 0) throw new KeyStateError('root key protects registered buckets (destroy with force to shred them)');
    }
    this.#cache?.dropKey(record.id);
    await this.#store.destroy(record);
    this.#cache?.dropKey(record.id);
    this.#records.remember({ ...record, destroyed: true, versions: new Map() });
    if (force) await this.#registrations.remove(record.id);
  }

  /** The buckets this root key protects, as registered next to it in the token. */
  async registrations(idOrAlias: string): Promise<Registration[]> {
    const record = await this.#records.resolve(keyRefArg(idOrAlias), true);
    return (await this.#registrations.list(record.id)).map(({ bucket, store, createdAt }) => ({ bucket, store, createdAt: new Date(createdAt) }));
  }

  /** @internal For the bucket layer (engine.buckets). */
  bucketSupport(): BucketKeySupport {
    return {
      mac: this.#mac,
      registrations: this.#registrations,
      current: async (idOrAlias) => {
        const record = await this.#records.resolve(keyRefArg(idOrAlias), false);
        return { id: record.id, alias: record.alias, version: record.newest };
      },
    };
  }

  // ---- wrapping --------------------------------------------------------------------------------------------

  async wrap(idOrAlias: string, plaintext: Uint8Array, options?: AadOptions): Promise<Uint8Array> {
    const ref = keyRefArg(idOrAlias);
    bytesArg(plaintext, 'plaintext');
    if (plaintext.byteLength === 0 || plaintext.byteLength > MAX_WRAP_PLAINTEXT_BYTES) {
      throw new RangeError(`plaintext must be 1 to ${MAX_WRAP_PLAINTEXT_BYTES} bytes`);
    }
    const aad = encodeAad(optionsArg(options).aad);
    this.#calls.enter();
    try {
      return await this.#wrap(await this.#records.resolve(ref, false), plaintext, aad);
    } finally {
      this.#calls.leave();
    }
  }

  async unwrap(wrapped: Uint8Array, options?: AadOptions): Promise<Uint8Array> {
    bytesArg(wrapped, 'wrapped');
    const aad = encodeAad(optionsArg(options).aad);
    const cacheKey = this.#cache ? DataKeyCache.keyOf(wrapped, aad) : '';
    const cached = this.#cache?.get(cacheKey);
    if (cached) {
      const turn = this.#calls.afterCacheHit();
      if (turn) await turn;
      return cached;
    }
    this.#calls.enter();
    try {
      const plaintext = await this.#unwrap(wrapped, aad);
      this.#cache?.set(cacheKey, bytesToId(Buffer.from(wrappedKeyIdHex(wrapped), 'hex')), plaintext);
      return plaintext;
    } finally {
      this.#calls.leave();
    }
  }

  async rewrap(wrapped: Uint8Array, options?: AadOptions): Promise<Uint8Array> {
    bytesArg(wrapped, 'wrapped');
    const aad = encodeAad(optionsArg(options).aad);
    this.#calls.enter();
    let plaintext: Buffer | undefined;
    try {
      plaintext = await this.#unwrap(wrapped, aad);
      const record = await this.#records.resolve(bytesToId(Buffer.from(wrappedKeyIdHex(wrapped), 'hex')), false);
      return await this.#wrap(record, plaintext, aad);
    } finally {
      plaintext?.fill(0);
      this.#calls.leave();
    }
  }

  async generateDataKey(idOrAlias: string, options?: AadOptions): Promise<{ plaintext: Uint8Array; wrapped: Uint8Array }> {
    const ref = keyRefArg(idOrAlias);
    const aad = encodeAad(optionsArg(options).aad);
    // Its own memory (not a slice of Buffer's shared pool), so the caller's fill(0) wipes exactly this DEK.
    const plaintext = fillRandom(Buffer.allocUnsafeSlow(DATA_KEY_BYTES));
    this.#calls.enter();
    try {
      return { plaintext, wrapped: await this.#wrap(await this.#records.resolve(ref, false), plaintext, aad) };
    } catch (err) {
      plaintext.fill(0);
      throw err;
    } finally {
      this.#calls.leave();
    }
  }

  /** Forgets cached DEKs and import tokens. Sessions belong to the engine. */
  async close(): Promise<void> {
    this.#cache?.clear();
    await this.#importTokens.close();
  }

  // ---- internals -------------------------------------------------------------------------------------------

  async #wrap(record: KeyRecord, plaintext: Uint8Array, aad: Buffer): Promise<Uint8Array> {
    assertUsable(record);
    const version = record.versions.get(record.newest)!;
    const iv = fillRandom(Buffer.allocUnsafe(GCM_IV_BYTES));
    const { blob, gcmAad, sealed } = layoutWrapped(record.idBytes, version.version, iv, aad, plaintext.byteLength);
    const input = Buffer.from(plaintext); // our copy, zeroed below: the caller may reuse its buffer meanwhile
    try {
      await this.#calls.crypt('C_Encrypt', version.handle, aesGcm(iv, gcmAad), input, sealed);
      return blob;
    } catch (err) {
      throw await this.#keyUseError(record.id, err, 'C_Encrypt');
    } finally {
      input.fill(0);
    }
  }

  async #unwrap(wrapped: Uint8Array, aad: Buffer): Promise<Buffer> {
    const parts = parseWrapped(wrapped);
    const record = await this.#records.forBlob(parts.keyId, parts.version);
    // An id the token never had is a changed byte, so DecryptionError; a known but destroyed key is shredded.
    if (!record) throw new DecryptionError();
    assertUsable(record);
    const version = record.versions.get(parts.version);
    if (!version) throw new DecryptionError();
    try {
      return await this.#calls.crypt('C_Decrypt', version.handle, aesGcm(parts.iv, wrappedGcmAad(parts, aad)), parts.sealed, Buffer.alloc(parts.sealed.length));
    } catch (err) {
      if (keyStateOfFailure(err)) throw await this.#keyUseError(record.id, err, 'C_Decrypt');
      throw decryptFailure(err);
    }
  }

  /** A failed use of a key: disabled or destroyed by anyone (this or another process) → KeyStateError. */
  async #keyUseError(id: string, err: unknown, fn: string): Promise<Error> {
    const state = keyStateOfFailure(err);
    if (state === undefined) return hsmFailure(fn, err);
    const record = await this.#records.reload(id).catch(() => undefined);
    this.#cache?.dropKey(id);
    if (state === 'disabled') return new KeyStateError('root key is disabled');
    return record ? new KeyStateError('root key has been destroyed') : new KeyNotFoundError();
  }

  async #setEnabled(idOrAlias: string, enabled: boolean): Promise<RootKeyInfo> {
    const record = await this.#records.resolve(keyRefArg(idOrAlias), true);
    if (record.destroyed) throw new KeyStateError('root key has been destroyed');
    if (!enabled) this.#cache?.dropKey(record.id);
    return toInfo(this.#records.remember(await this.#store.setEnabled(record, enabled)));
  }
}

export { idToBytes };
