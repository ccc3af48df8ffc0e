// engine.keys: root keys with IBM Key Protect semantics, and DEK wrap/unwrap inside the HSM.
// Argument checks and error mapping live here; token layout in RootKeyStore, BYOK in ImportTokens.
import { randomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { DecryptionError, KeyNotFoundError, KeyStateError } from '../errors.js';
import { fillRandom } from '../random.js';
import { encodeAad, type Aad } from './aad.js';
import { CKR, ckrOf, toHsmError } from './ckr.js';
import { DataKeyCache, type DataKeyCacheOptions } from './data-key-cache.js';
import { ImportTokens, type ImportToken, type ImportTokenOptions } from './import-tokens.js';
import type { Pkcs11 } from './module.js';
import {
  assertUsable, bytesToId, idToBytes, isKeyId, RootKeyStore, toInfo, validateAlias, versionLabel,
  type KeyRecord, type RootKeyInfo,
} from './root-key-store.js';
import type { SessionPool } from './session-pool.js';
import { aesGcm, GCM_IV_BYTES } from './templates.js';
import { encodeWrappedHeader, MAX_WRAP_PLAINTEXT_BYTES, parseWrapped, WRAP_TAG_BYTES, WRAPPED_HEADER_BYTES, wrappedKeyIdHex } from './wrapped-key.js';

export type { RootKeyInfo, ImportToken, ImportTokenOptions, Aad };

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
}

export const DATA_KEY_BYTES = 32;
/** HSM calls run on the libuv pool at once while others wait; the rest run on this thread (see #crypt). */
const ASYNC_LANES = Number(process.env.HCE_HSM_ASYNC_LANES ?? 2);
/** Longest run of synchronous HSM work before the event loop gets a turn. */
const SLICE_MS = 1;
const CACHE_HITS_PER_CLOCK_CHECK = 64; // a power of two
/** An HSM whose calls take longer than this (moving average) is only called asynchronously. */
const SYNC_CALL_MAX_US = Number(process.env.HCE_HSM_SYNC_MAX_US ?? 250);
const CALL_TIME_SMOOTHING = 0.05;

function bytesArg(value: unknown, name: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array`);
  return value;
}

function keyRefArg(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw new TypeError('idOrAlias must be a non-empty string');
  return value;
}

function optionsArg<T extends object>(value: T | undefined): T {
  if (value === undefined) return {} as T;
  if (typeof value !== 'object' || value === null) throw new TypeError('options must be an object');
  return value;
}

export class KeyService {
  readonly #module: Pkcs11;
  readonly #sessions: SessionPool;
  readonly #store: RootKeyStore;
  readonly #importTokens: ImportTokens;
  readonly #cache: DataKeyCache | undefined;
  readonly #keyInfoMaxAgeMs: number;
  readonly #records = new Map<string, KeyRecord>();
  /** The same records by the raw 16-byte id a wrapped blob carries (no UUID formatting on the unwrap path). */
  readonly #byRawId = new Map<string, KeyRecord>();
  /** Public wrap/unwrap calls started and not settled: one alone may take the synchronous fast path. */
  #pending = 0;
  readonly #revalidating = new Set<string>();
  #asyncInFlight = 0;
  #sliceStart = -1;
  #cacheHits = 0;
  #callMicros = 0;

  constructor(module: Pkcs11, sessions: SessionPool, options: KeyServiceOptions) {
    this.#module = module;
    this.#sessions = sessions;
    this.#store = new RootKeyStore(module, sessions);
    this.#importTokens = new ImportTokens(module, sessions);
    this.#cache = options.dataKeyCache ? new DataKeyCache(options.dataKeyCache) : undefined;
    this.#keyInfoMaxAgeMs = options.keyInfoMaxAgeMs;
  }

  // ---- lifecycle -------------------------------------------------------------------------------------------

  async create(options: { alias: string }): Promise<RootKeyInfo> {
    const alias = validateAlias(optionsArg(options).alias);
    await this.#assertAliasFree(alias);
    return toInfo(this.#remember(await this.#store.create(alias)));
  }

  async createImportToken(options?: ImportTokenOptions): Promise<ImportToken> {
    return this.#importTokens.create(optionsArg(options));
  }

  async import(options: ImportKeyOptions): Promise<RootKeyInfo> {
    const { alias: rawAlias, importTokenId, encryptedKey } = optionsArg(options);
    const alias = validateAlias(rawAlias);
    if (typeof importTokenId !== 'string' || importTokenId.length === 0) throw new TypeError('options.importTokenId must be a non-empty string');
    bytesArg(encryptedKey, 'options.encryptedKey');
    await this.#assertAliasFree(alias);
    const idBytes = randomBytes(16);
    const createdAt = Date.now();
    await this.#importTokens.unwrapInto(importTokenId, encryptedKey, idBytes, versionLabel(idBytes, 1, createdAt));
    return toInfo(this.#remember(await this.#store.recordImported(idBytes, alias, createdAt)));
  }

  async get(idOrAlias: string): Promise<RootKeyInfo> {
    return toInfo(await this.#resolve(keyRefArg(idOrAlias), true));
  }

  async list(): Promise<RootKeyInfo[]> {
    await this.#reloadAll();
    return [...this.#records.values()]
      .filter((record) => !record.destroyed)
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())
      .map(toInfo);
  }

  async rotate(idOrAlias: string): Promise<RootKeyInfo> {
    const record = assertUsable(await this.#resolve(keyRefArg(idOrAlias), true));
    return toInfo(this.#remember(await this.#store.rotate(record)));
  }

  async disable(idOrAlias: string): Promise<RootKeyInfo> {
    return this.#setEnabled(idOrAlias, false);
  }

  async enable(idOrAlias: string): Promise<RootKeyInfo> {
    return this.#setEnabled(idOrAlias, true);
  }

  async destroy(idOrAlias: string): Promise<void> {
    const record = await this.#resolve(keyRefArg(idOrAlias), true);
    this.#cache?.dropKey(record.id);
    await this.#store.destroy(record);
    this.#cache?.dropKey(record.id);
    this.#remember({ ...record, destroyed: true, versions: new Map() });
  }

  // ---- wrapping --------------------------------------------------------------------------------------------

  async wrap(idOrAlias: string, plaintext: Uint8Array, options?: AadOptions): Promise<Uint8Array> {
    const ref = keyRefArg(idOrAlias);
    bytesArg(plaintext, 'plaintext');
    if (plaintext.byteLength === 0 || plaintext.byteLength > MAX_WRAP_PLAINTEXT_BYTES) {
      throw new RangeError(`plaintext must be 1 to ${MAX_WRAP_PLAINTEXT_BYTES} bytes`);
    }
    const aad = encodeAad(optionsArg(options).aad);
    this.#pending++;
    try {
      return await this.#wrap(await this.#resolve(ref, false), plaintext, aad);
    } finally {
      this.#pending--;
    }
  }

  async unwrap(wrapped: Uint8Array, options?: AadOptions): Promise<Uint8Array> {
    bytesArg(wrapped, 'wrapped');
    const aad = encodeAad(optionsArg(options).aad);
    const cacheKey = this.#cache ? DataKeyCache.keyOf(wrapped, aad) : '';
    const cached = this.#cache?.get(cacheKey);
    if (cached) {
      // A hit costs ~1 µs: look at the clock only every CACHE_HITS_PER_CLOCK_CHECK of them.
      if ((++this.#cacheHits & (CACHE_HITS_PER_CLOCK_CHECK - 1)) === 0) await this.#yieldIfHogging();
      return cached;
    }
    this.#pending++;
    try {
      const plaintext = await this.#unwrap(wrapped, aad);
      this.#cache?.set(cacheKey, bytesToId(Buffer.from(wrappedKeyIdHex(wrapped), 'hex')), plaintext);
      return plaintext;
    } finally {
      this.#pending--;
    }
  }

  async rewrap(wrapped: Uint8Array, options?: AadOptions): Promise<Uint8Array> {
    bytesArg(wrapped, 'wrapped');
    const aad = encodeAad(optionsArg(options).aad);
    this.#pending++;
    let plaintext: Buffer | undefined;
    try {
      plaintext = await this.#unwrap(wrapped, aad);
      const record = await this.#resolve(bytesToId(Buffer.from(wrappedKeyIdHex(wrapped), 'hex')), false);
      return await this.#wrap(record, plaintext, aad);
    } finally {
      plaintext?.fill(0);
      this.#pending--;
    }
  }

  async generateDataKey(idOrAlias: string, options?: AadOptions): Promise<{ plaintext: Uint8Array; wrapped: Uint8Array }> {
    const ref = keyRefArg(idOrAlias);
    const aad = encodeAad(optionsArg(options).aad);
    // Its own memory (not a slice of Buffer's shared pool), so the caller's fill(0) wipes exactly this DEK.
    const plaintext = fillRandom(Buffer.allocUnsafeSlow(DATA_KEY_BYTES));
    this.#pending++;
    try {
      return { plaintext, wrapped: await this.#wrap(await this.#resolve(ref, false), plaintext, aad) };
    } catch (err) {
      plaintext.fill(0);
      throw err;
    } finally {
      this.#pending--;
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
    // GCM AAD = blob header ‖ caller aad, built in one buffer; the blob is assembled in place around the ciphertext.
    const gcmAad = Buffer.allocUnsafe(WRAPPED_HEADER_BYTES + aad.length);
    encodeWrappedHeader(record.idBytes, version.version, iv, gcmAad);
    aad.copy(gcmAad, WRAPPED_HEADER_BYTES);
    const blob = Buffer.alloc(WRAPPED_HEADER_BYTES + plaintext.byteLength + WRAP_TAG_BYTES);
    gcmAad.copy(blob, 0, 0, WRAPPED_HEADER_BYTES);
    const input = Buffer.from(plaintext); // our copy, zeroed below: the caller may reuse its buffer meanwhile
    try {
      await this.#crypt('C_Encrypt', version.handle, aesGcm(iv, gcmAad), input, blob.subarray(WRAPPED_HEADER_BYTES));
      return blob;
    } catch (err) {
      throw await this.#keyUseError(record.id, err, 'C_Encrypt');
    } finally {
      input.fill(0);
    }
  }

  async #unwrap(wrapped: Uint8Array, aad: Buffer): Promise<Buffer> {
    const parts = parseWrapped(wrapped);
    let record = this.#byRawId.get(parts.keyId.toString('latin1'));
    const id = record?.id ?? bytesToId(parts.keyId);
    if (!record || !record.versions.has(parts.version)) record = await this.#reload(id);
    else if (this.#isStale(record)) this.#revalidate(() => this.#reload(id), id);
    // An id the token never had is a changed byte, so DecryptionError; a known but destroyed key is shredded.
    if (!record) throw new DecryptionError();
    assertUsable(record);
    const version = record.versions.get(parts.version);
    if (!version) throw new DecryptionError();
    try {
      return await this.#crypt('C_Decrypt', version.handle, aesGcm(parts.iv, Buffer.concat([parts.header, aad])), parts.sealed, Buffer.alloc(parts.sealed.length));
    } catch (err) {
      const ckr = ckrOf(err);
      // A failed GCM tag check: CKR_ENCRYPTED_DATA_INVALID per the standard, CKR_GENERAL_ERROR on SoftHSM 2.6.
      if (ckr === CKR.ENCRYPTED_DATA_INVALID || ckr === CKR.ENCRYPTED_DATA_LEN_RANGE || ckr === CKR.GENERAL_ERROR) {
        throw new DecryptionError();
      }
      throw await this.#keyUseError(id, err, 'C_Decrypt');
    }
  }

  /**
   * One Init + single-part call on a session, output written into `output` (decrypt output is sized as the input:
   * SoftHSM asks room for the tag too). How it runs depends on the HSM's measured call time:
   * - fast (a local token such as SoftHSM: ~20 µs, less than a libuv hop): synchronously on this thread, yielding
   *   to the event loop every SLICE_MS; while others wait, up to ASYNC_LANES run as *Async on the libuv pool;
   * - slow (a network HSM: ~1 ms and more): always *Async, one session each, so calls overlap and the event loop
   *   never waits on the HSM.
   */
  async #crypt(fn: 'C_Encrypt' | 'C_Decrypt', key: Buffer, mechanism: pkcs11js.Mechanism, input: Buffer, output: Buffer): Promise<Buffer> {
    const module = this.#module;
    const init = (session: Buffer) => {
      if (fn === 'C_Encrypt') module.C_EncryptInit(session, mechanism, key);
      else module.C_DecryptInit(session, mechanism, key);
    };
    const fast = this.#callMicros < SYNC_CALL_MAX_US;
    if (fast && (this.#pending <= 1 || this.#asyncInFlight >= ASYNC_LANES)) {
      await this.#yieldIfHogging();
      const started = performance.now();
      const done = this.#sessions.tryUseSync((session) => {
        init(session);
        return fn === 'C_Encrypt' ? module.C_Encrypt(session, input, output) : module.C_Decrypt(session, input, output);
      });
      if (done) {
        this.#observe(started);
        return done.value;
      }
    }
    this.#asyncInFlight++;
    try {
      return await this.#sessions.use(async (session) => {
        init(session);
        const started = performance.now();
        // input and output stay referenced by this closure until the call settles.
        const result = await (fn === 'C_Encrypt' ? module.C_EncryptAsync(session, input, output) : module.C_DecryptAsync(session, input, output));
        // An async call also pays the thread hop: count half, so a fast HSM is not mistaken for a slow one.
        this.#observe(started, 0.5);
        return result;
      });
    } finally {
      this.#asyncInFlight--;
    }
  }

  /** Moving average of the HSM's call time (µs). */
  #observe(started: number, weight = 1): void {
    const micros = (performance.now() - started) * 1000 * weight;
    this.#callMicros += (micros - this.#callMicros) * CALL_TIME_SMOOTHING;
  }

  /**
   * Synchronous HSM calls (and cache hits) chained through promises never let the event loop turn: a caller
   * looping over them would starve timers and I/O for as long as it runs. After SLICE_MS of that, yield once.
   * A natural turn of the loop resets the slice (the setImmediate armed when the slice began).
   */
  async #yieldIfHogging(): Promise<void> {
    const now = performance.now();
    if (this.#sliceStart < 0) {
      this.#sliceStart = now;
      setImmediate(() => {
        this.#sliceStart = -1;
      });
    } else if (now - this.#sliceStart >= SLICE_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Maps a failure of a key's use: disabled or destroyed by anyone (this or another process) → KeyStateError. */
  async #keyUseError(id: string, err: unknown, fn: string): Promise<Error> {
    const ckr = ckrOf(err);
    if (ckr === undefined && err instanceof Error) return err; // already ours (or not from the HSM)
    if (ckr === CKR.KEY_FUNCTION_NOT_PERMITTED) {
      await this.#reload(id).catch(() => undefined);
      this.#cache?.dropKey(id);
      return new KeyStateError('root key is disabled');
    }
    if (ckr === CKR.KEY_HANDLE_INVALID || ckr === CKR.OBJECT_HANDLE_INVALID) {
      const record = await this.#reload(id).catch(() => undefined);
      this.#cache?.dropKey(id);
      if (!record) return new KeyNotFoundError();
      return new KeyStateError('root key has been destroyed');
    }
    return toHsmError(fn, err);
  }

  async #setEnabled(idOrAlias: string, enabled: boolean): Promise<RootKeyInfo> {
    const record = await this.#resolve(keyRefArg(idOrAlias), true);
    if (record.destroyed) throw new KeyStateError('root key has been destroyed');
    if (!enabled) this.#cache?.dropKey(record.id);
    return toInfo(this.#remember(await this.#store.setEnabled(record, enabled)));
  }

  /** The live record for an id or alias; KeyNotFoundError when unknown or destroyed. */
  async #resolve(ref: string, fresh: boolean): Promise<KeyRecord> {
    if (isKeyId(ref)) {
      const id = ref.toLowerCase();
      let record = this.#records.get(id);
      if (!record || fresh) record = await this.#reload(id);
      else if (this.#isStale(record)) this.#revalidate(() => this.#reload(id), id);
      if (!record || record.destroyed) throw new KeyNotFoundError();
      return record;
    }
    let record = this.#byAlias(ref);
    if (!record || fresh) {
      await this.#reloadAll();
      record = this.#byAlias(ref);
    } else if (this.#isStale(record)) this.#revalidate(() => this.#reloadAll(), '*');
    if (!record) throw new KeyNotFoundError();
    return record;
  }

  /**
   * Stale metadata is still used (the HSM enforces disable and destroy by itself) while one background re-read
   * per key refreshes it: concurrent callers must not each re-read the token.
   */
  #revalidate(reload: () => Promise<unknown>, key: string): void {
    if (this.#revalidating.has(key)) return;
    this.#revalidating.add(key);
    reload()
      .catch(() => undefined)
      .finally(() => this.#revalidating.delete(key));
  }

  #byAlias(alias: string): KeyRecord | undefined {
    for (const record of this.#records.values()) if (record.alias === alias && !record.destroyed) return record;
    return undefined;
  }

  async #assertAliasFree(alias: string): Promise<void> {
    await this.#reloadAll();
    if (this.#byAlias(alias)) throw new KeyStateError('alias is already in use');
  }

  #isStale(record: KeyRecord): boolean {
    return Date.now() - record.loadedAt > this.#keyInfoMaxAgeMs;
  }

  async #reload(id: string): Promise<KeyRecord | undefined> {
    const record = await this.#store.load(id);
    if (record) this.#remember(record);
    else {
      this.#records.delete(id);
      this.#byRawId.delete(idToBytes(id).toString('latin1'));
    }
    return record;
  }

  async #reloadAll(): Promise<void> {
    const records = await this.#store.loadAll();
    this.#records.clear();
    this.#byRawId.clear();
    for (const record of records) this.#remember(record);
  }

  #remember(record: KeyRecord): KeyRecord {
    this.#records.set(record.id, record);
    this.#byRawId.set(record.idBytes.toString('latin1'), record);
    return record;
  }
}

export { idToBytes };
