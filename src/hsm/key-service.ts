// engine.keys: root keys with IBM Key Protect semantics, and DEK wrap/unwrap inside the HSM: the public API.
// Arguments are checked here; token layout in RootKeyStore, what this process knows of keys in KeyRecords, how HSM
// calls run in CallScheduler, the blob format in wrapped-key.ts, BYOK in ImportTokens, CK_RV meanings in ckr.ts.
import { randomBytes } from 'node:crypto';
import { BucketRecordError, DecryptionError, KeyNotFoundError, KeyStateError } from '../errors.js';
import { fillRandom } from '../random.js';
import { bytesArg, nonEmptyStringArg, optionsArg } from '../validate.js';
import { encodeAad, type Aad } from './aad.js';
import { CallScheduler, type CallSchedulerOptions } from './call-scheduler.js';
import type { LaneStats } from './hsm-lane.js';
import { CallGate } from './call-gate.js';
import type { TokenCapabilities, WrapMechanismName } from './capabilities.js';
import { decryptFailure, hsmFailure, keyStateOfFailure, staleHandle } from './ckr.js';
import { DataKeyCache, heldOnce, type DataKeyCacheOptions, type HeldKey } from './data-key-cache.js';
import { ImportTokens, type ImportToken, type ImportTokenOptions } from './import-tokens.js';
import { KeyRecords } from './key-records.js';
import { RecordMac } from './record-mac.js';
import { Registrations, type Registration } from './registrations.js';
import type { Pkcs11 } from './module.js';
import {
  assertUsable, bytesToId, idToBytes, RootKeyStore, toInfo, validateAlias, versionId, versionLabel, type KeyRecord, type KeyVersion,
  type RootKeyInfo,
} from './root-key-store.js';
import type { SessionPool } from './session-pool.js';
import { TokenRecords } from './token-records.js';
import { MECHANISM_BYTES, open, seal, type WrapContext } from './wrap-mechanisms.js';
import { MAX_WRAP_PLAINTEXT_BYTES, MECHANISM_AES_CBC_HMAC, parseWrapped, wrappedKeyIdHex, type WrapMechanismByte } from './wrapped-key.js';

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
  /** What the token offers (probed at open) and the mechanism new wraps use. */
  token: { caps: TokenCapabilities; wrapMechanism: WrapMechanismName };
}

export const DATA_KEY_BYTES = 32;

const keyRefArg = (value: unknown) => nonEmptyStringArg(value, 'idOrAlias');

export class KeyService {
  readonly #store: RootKeyStore;
  readonly #records: KeyRecords;
  readonly #calls: CallScheduler;
  readonly #importTokens: ImportTokens;
  readonly #cache: DataKeyCache | undefined;
  readonly #sessions: SessionPool;
  readonly #gate = new CallGate();
  readonly #caps: TokenCapabilities;
  readonly #mechanism: WrapMechanismByte;
  readonly #wrapContext: WrapContext;
  /** Small authenticated records next to a key, in the token (internal: key metadata, bucket registrations). */
  readonly tokenRecords: TokenRecords;
  readonly #mac: RecordMac;
  readonly #registrations: Registrations;

  constructor(module: Pkcs11, sessions: SessionPool, options: KeyServiceOptions) {
    const { caps, wrapMechanism } = options.token;
    this.#sessions = sessions;
    this.#caps = caps;
    this.#mechanism = MECHANISM_BYTES[wrapMechanism];
    this.tokenRecords = new TokenRecords(module, sessions, caps);
    this.#store = new RootKeyStore(module, sessions, caps, this.tokenRecords, wrapMechanism);
    this.#records = new KeyRecords(this.#store, options.keyInfoMaxAgeMs, () => sessions.generation);
    this.#calls = new CallScheduler(module, sessions, options.hsmCalls, caps.library);
    this.#wrapContext = { calls: this.#calls, kwp: caps.kwp };
    this.#importTokens = new ImportTokens(module, sessions, caps);
    this.#cache = options.dataKeyCache ? new DataKeyCache(options.dataKeyCache) : undefined;
    this.#mac = new RecordMac(module, sessions, caps);
    this.#registrations = new Registrations(module, sessions, this.tokenRecords, this.#mac, caps.dataObjects);
  }

  // ---- lifecycle -------------------------------------------------------------------------------------------

  async create(options: { alias: string }): Promise<RootKeyInfo> {
    const alias = validateAlias(optionsArg(options).alias);
    return this.#gated(async () => {
      await this.#records.assertAliasFree(alias);
      return toInfo(this.#records.remember(await this.#store.create(alias)));
    });
  }

  async createImportToken(options?: ImportTokenOptions): Promise<ImportToken> {
    const given = optionsArg(options);
    return this.#gated(() => this.#importTokens.create(given));
  }

  async import(options: ImportKeyOptions): Promise<RootKeyInfo> {
    const { alias: rawAlias, importTokenId, encryptedKey } = optionsArg(options);
    const alias = validateAlias(rawAlias);
    nonEmptyStringArg(importTokenId, 'options.importTokenId');
    bytesArg(encryptedKey, 'options.encryptedKey');
    return this.#gated(async () => {
      await this.#records.assertAliasFree(alias);
      const idBytes = randomBytes(16);
      const createdAt = Date.now();
      await this.#importTokens.unwrapInto(importTokenId, encryptedKey, versionId(idBytes, 1), versionLabel(idBytes, 1, createdAt));
      return toInfo(this.#records.remember(await this.#store.recordImported(idBytes, alias, createdAt)));
    });
  }

  async get(idOrAlias: string): Promise<RootKeyInfo> {
    const ref = keyRefArg(idOrAlias);
    return this.#gated(async () => toInfo(await this.#records.resolve(ref, true)));
  }

  async list(): Promise<RootKeyInfo[]> {
    return this.#gated(async () => (await this.#records.all()).map(toInfo));
  }

  async rotate(idOrAlias: string): Promise<RootKeyInfo> {
    const ref = keyRefArg(idOrAlias);
    return this.#gated(async () => {
      const record = assertUsable(await this.#records.resolve(ref, true));
      return toInfo(this.#records.remember(await this.#store.rotate(record)));
    });
  }

  async disable(idOrAlias: string): Promise<RootKeyInfo> {
    return this.#setEnabled(idOrAlias, false);
  }

  async enable(idOrAlias: string): Promise<RootKeyInfo> {
    return this.#setEnabled(idOrAlias, true);
  }

  async destroy(idOrAlias: string, options?: DestroyOptions): Promise<void> {
    const ref = keyRefArg(idOrAlias);
    const force = optionsArg(options).force;
    if (force !== undefined && typeof force !== 'boolean') throw new TypeError('options.force must be a boolean');
    return this.#gated(async () => {
      const record = await this.#records.resolve(ref, true);
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
    });
  }

  /** The buckets this root key protects, as registered next to it in the token. */
  async registrations(idOrAlias: string): Promise<Registration[]> {
    const record = await this.#records.resolve(keyRefArg(idOrAlias), true);
    return (await this.#registrations.list(record.id)).map(({ bucket, store, createdAt }) => ({ bucket, store, createdAt: new Date(createdAt) }));
  }

  /** @internal Native HSM lane counters (LaneStats: calls run, sleeps, CPU seconds, seconds in module calls, times run dry, lanes used), or undefined when calls have no lane (benchmarks, tests). */
  hsmLaneStats(): LaneStats | undefined {
    return this.#calls.laneStats();
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
    this.#gate.enter();
    this.#calls.enter();
    try {
      return await this.#wrap(await this.#records.resolve(ref, false), plaintext, aad);
    } finally {
      this.#calls.leave();
      this.#gate.leave();
    }
  }

  async unwrap(wrapped: Uint8Array, options?: AadOptions): Promise<Uint8Array> {
    bytesArg(wrapped, 'wrapped');
    const aad = encodeAad(optionsArg(options).aad);
    const cacheKey = this.#cache ? DataKeyCache.keyOf(wrapped, aad) : '';
    this.#gate.enter();
    try {
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
    } finally {
      this.#gate.leave();
    }
  }

  /**
   * @internal For keys used many times in a row (bucket keys): the unwrapped key held in place in the data-key
   * cache, so repeated uses cost no lookup. It stops being live the moment the cache drops it (disable, destroy,
   * expiry, eviction, close). With the cache off, a key held once (zeroed on release).
   */
  async unwrapHeld(wrapped: Uint8Array, options?: AadOptions): Promise<HeldKey> {
    bytesArg(wrapped, 'wrapped');
    const cache = this.#cache;
    if (!cache) return heldOnce(await this.unwrap(wrapped, options));
    const cacheKey = DataKeyCache.keyOf(wrapped, encodeAad(optionsArg(options).aad));
    const held = cache.hold(cacheKey);
    if (held) return held;
    const plaintext = await this.unwrap(wrapped, options); // caches it
    const kept = cache.hold(cacheKey);
    if (!kept) return heldOnce(plaintext); // refused by the cache (too large): this caller's alone
    plaintext.fill(0);
    return kept;
  }

  async rewrap(wrapped: Uint8Array, options?: AadOptions): Promise<Uint8Array> {
    bytesArg(wrapped, 'wrapped');
    const aad = encodeAad(optionsArg(options).aad);
    this.#gate.enter();
    this.#calls.enter();
    let plaintext: Buffer | undefined;
    try {
      plaintext = await this.#unwrap(wrapped, aad);
      const record = await this.#records.resolve(bytesToId(Buffer.from(wrappedKeyIdHex(wrapped), 'hex')), false);
      return await this.#wrap(record, plaintext, aad);
    } finally {
      plaintext?.fill(0);
      this.#calls.leave();
      this.#gate.leave();
    }
  }

  async generateDataKey(idOrAlias: string, options?: AadOptions): Promise<{ plaintext: Uint8Array; wrapped: Uint8Array }> {
    const ref = keyRefArg(idOrAlias);
    const aad = encodeAad(optionsArg(options).aad);
    // Its own memory (not a slice of Buffer's shared pool), so the caller's fill(0) wipes exactly this DEK.
    this.#gate.enter();
    const plaintext = fillRandom(Buffer.allocUnsafeSlow(DATA_KEY_BYTES));
    this.#calls.enter();
    try {
      return { plaintext, wrapped: await this.#wrap(await this.#records.resolve(ref, false), plaintext, aad) };
    } catch (err) {
      plaintext.fill(0);
      throw err;
    } finally {
      this.#calls.leave();
      this.#gate.leave();
    }
  }

  /** Waits for calls in flight (new ones are refused), then forgets cached DEKs and import tokens. Sessions belong to the engine. */
  async close(): Promise<void> {
    await this.#gate.close();
    this.#calls.close();
    this.#cache?.clear();
    await this.#importTokens.close();
  }

  async #gated<T>(call: () => Promise<T>): Promise<T> {
    this.#gate.enter();
    try {
      return await call();
    } finally {
      this.#gate.leave();
    }
  }

  // ---- internals -------------------------------------------------------------------------------------------

  async #wrap(record: KeyRecord, plaintext: Uint8Array, aad: Buffer): Promise<Uint8Array> {
    assertUsable(record);
    const input = Buffer.from(plaintext); // our copy, zeroed below: the caller may reuse its buffer meanwhile
    try {
      return await this.#withVersion(record, record.newest, 'C_Encrypt', (version) =>
        seal(this.#wrapContext, this.#mechanismFor(version), record.idBytes, version, input, aad),
      );
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
    if (!record.versions.has(parts.version)) throw new DecryptionError();
    return this.#withVersion(record, parts.version, 'C_Decrypt', (version) =>
      open(this.#wrapContext, parts, version, aad).catch((err: unknown) => {
        throw keyStateOfFailure(err, this.#caps.profile) || staleHandle(err) ? err : decryptFailure(err, this.#caps.profile);
      }),
    );
  }

  /**
   * Runs `call` with one version's token object. A handle gone stale (token reset, failover, re-login: tokens may
   * give objects new handles) makes this log in again if needed, re-read the key's record and try once more; a key
   * really disabled or destroyed by anyone is then a KeyStateError, any other failure an HsmError.
   */
  async #withVersion<T>(record: KeyRecord, versionNumber: number, fn: string, call: (version: KeyVersion) => Promise<T>): Promise<T> {
    let current = record;
    for (let attempt = 0; ; attempt++) {
      try {
        return await call(current.versions.get(versionNumber)!);
      } catch (err) {
        if (attempt === 0 && staleHandle(err)) {
          this.#sessions.ensureLoggedIn();
          const fresh = await this.#records.reload(record.id);
          if (fresh && !fresh.destroyed && fresh.state === 'active' && fresh.versions.has(versionNumber)) {
            current = fresh;
            continue;
          }
        }
        throw await this.#keyUseError(record.id, versionNumber, err, fn);
      }
    }
  }

  /** A failed use of a key: disabled or destroyed by anyone (this or another process) → KeyStateError. */
  async #keyUseError(id: string, versionNumber: number, err: unknown, fn: string): Promise<Error> {
    const state = keyStateOfFailure(err, this.#caps.profile);
    if (state === undefined) return hsmFailure(fn, err);
    const record = await this.#records.reload(id).catch(() => undefined);
    this.#cache?.dropKey(id);
    if (state === 'disabled') return new KeyStateError('root key is disabled');
    // The key is still there: its handle failing is the HSM's fault, not a destroyed key.
    if (record && !record.destroyed && record.versions.has(versionNumber)) return hsmFailure(fn, err);
    return record ? new KeyStateError('root key has been destroyed') : new KeyNotFoundError();
  }

  /**
   * The mechanism a new wrap under `version` uses: the engine's, except that a version made before CBC-HMAC was
   * chosen has no HMAC key: it keeps the token's best other mechanism.
   */
  #mechanismFor(version: KeyVersion): WrapMechanismByte {
    if (this.#mechanism !== MECHANISM_AES_CBC_HMAC || version.macHandle) return this.#mechanism;
    return MECHANISM_BYTES[this.#caps.wrapMechanism];
  }

  async #setEnabled(idOrAlias: string, enabled: boolean): Promise<RootKeyInfo> {
    const ref = keyRefArg(idOrAlias);
    return this.#gated(async () => {
      const record = await this.#records.resolve(ref, true);
      if (record.destroyed) throw new KeyStateError('root key has been destroyed');
      if (!enabled) this.#cache?.dropKey(record.id);
      return toInfo(this.#records.remember(await this.#store.setEnabled(record, enabled)));
    });
  }
}

export { idToBytes };
