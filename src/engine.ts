// CryptoEngine: wires the HSM session pool, root keys, the worker pool, the sealed-object cipher, the erasure
// codec and objects as shards together. Each part validates its own arguments; little logic lives here.
import type { Readable } from 'node:stream';
import {
  ObjectCipher, type DecryptOptions, type DecryptRangeOptions, type DecryptStreamOptions, type EncryptOptions,
  type EncryptStreamOptions, type RewrapHeaderOptions,
} from './aead/index.js';
import type { DecryptStream, EncryptStream } from './aead/streams.js';
import { BucketService } from './bucket/service.js';
import { ErasureService } from './erasure/service.js';
import { tokenCapabilities, type WrapMechanismName } from './hsm/capabilities.js';
import { KeyService } from './hsm/key-service.js';
import type { OaepHash } from './hsm/templates.js';
import { moduleGate } from './hsm/module-gate.js';
import { findSlot, loadModule, tokenSessionCap } from './hsm/module.js';
import { SessionPool } from './hsm/session-pool.js';
import { ObjectService } from './object/object-service.js';
import type {
  DeleteObjectOptions, DeleteReport, GetObjectOptions, ListObjectsOptions, ObjectInfo, ObjectSource, PutObjectOptions, RepairObjectOptions,
  RepairReport, RewrapObjectOptions, RewrapReport,
} from './object/options.js';
import { resolveEngineOptions, type CryptoEngineOptions, type ResolvedEngineOptions } from './options.js';
import { WorkerPool } from './pool/pool.js';
import { WORKER_ENTRY } from './worker-entry.js';

export interface HsmInfo {
  library: string;
  /** CK_TOKEN_INFO manufacturerID and model, trimmed. */
  manufacturer: string;
  model: string;
  tokenLabel: string;
  /** How new DEKs are wrapped on this token. */
  wrapMechanism: WrapMechanismName;
  /** The RSA-OAEP hash BYOK import tokens use on this token. */
  oaepHash: OaepHash;
}

export class CryptoEngine {
  /** Root keys and DEK wrapping (IBM Key Protect semantics). */
  readonly keys: KeyService;
  /** Reed-Solomon erasure coding on the worker pool. */
  readonly erasure: ErasureService;
  /** Buckets bound to a root key, with bucket keys (the Key Protect + Cloud Object Storage flow). */
  readonly buckets: BucketService;
  readonly #options: ResolvedEngineOptions;
  readonly #sessions: SessionPool;
  readonly #pool: WorkerPool;
  readonly #cipher: ObjectCipher;
  readonly #objects: ObjectService;
  readonly #info: HsmInfo;
  #closed = false;

  private constructor(options: ResolvedEngineOptions, sessions: SessionPool, keys: KeyService, info: HsmInfo) {
    this.#options = options;
    this.#info = info;
    this.#sessions = sessions;
    this.keys = keys;
    this.#pool = new WorkerPool(options.threads, { entry: WORKER_ENTRY });
    try {
      this.#cipher = new ObjectCipher({ keys, pool: this.#pool, ...(options.segmentBytes ? { segmentBytes: options.segmentBytes } : {}) });
      this.erasure = new ErasureService(this.#pool);
      this.#objects = new ObjectService({ keys, pool: () => this.#pool, threads: options.threads, segmentBytes: options.segmentBytes });
      // Bucket objects share the object layer's buffers and memory budget, under each bucket's keyring.
      this.buckets = new BucketService(keys, (keyring) => this.#objects.depsWith(keyring));
    } catch (err) {
      void this.#pool.close();
      throw err;
    }
  }

  /**
   * Loads the PKCS#11 module (once per process), finds the token, logs in and returns a ready engine. Every
   * option is checked before anything is acquired; whatever was acquired is released when a later step fails.
   */
  static async open(options?: CryptoEngineOptions): Promise<CryptoEngine> {
    const resolved = resolveEngineOptions(options);
    const { pin, ...pkcs11 } = resolved.pkcs11;
    // The engine keeps no PIN string: the session pool holds its own copy (for re-login) and wipes it on close.
    const engineOptions: ResolvedEngineOptions = { ...resolved, pkcs11: { ...pkcs11, pin: '' } };
    const module = loadModule(pkcs11.library, pkcs11.initArgs);
    const slot = findSlot(module, pkcs11);
    const loginKey = `${pkcs11.library}\0${slot.toString('hex')}`;
    // Its own memory (not a slice of Buffer's shared pool), so the pool's fill(0) at close wipes exactly the PIN.
    const pinBytes = Buffer.allocUnsafeSlow(Buffer.byteLength(pin, 'utf8'));
    pinBytes.write(pin, 'utf8');
    const sessions = new SessionPool(module, slot, pinBytes, {
      maxSessions: resolved.maxSessions,
      sessionWaitMs: resolved.sessionWaitMs,
      loginKey,
      gate: moduleGate(pkcs11.library),
    });
    try {
      const cap = tokenSessionCap(module, slot);
      if (cap !== undefined) sessions.capSessions(cap);
      sessions.login();
      const token = await sessions.use((session) => tokenCapabilities(module, slot, session, pkcs11.library, loginKey, pkcs11.wrapMechanism));
      const keys = new KeyService(module, sessions, {
        dataKeyCache: resolved.dataKeyCache,
        keyInfoMaxAgeMs: resolved.keyInfoMaxAgeMs,
        hsmCalls: resolved.hsmCalls,
        token,
      });
      const { caps, wrapMechanism } = token;
      const info: HsmInfo = {
        library: caps.library, manufacturer: caps.manufacturer, model: caps.model, tokenLabel: caps.tokenLabel, wrapMechanism, oaepHash: caps.oaepHash,
      };
      return new CryptoEngine(engineOptions, sessions, keys, info);
    } catch (err) {
      await sessions.close();
      throw err;
    }
  }

  /** The PKCS#11 module and token this engine uses, and what it chose on it (probed at open). */
  hsmInfo(): HsmInfo {
    return { ...this.#info };
  }

  get threads(): number {
    return this.#options.threads;
  }

  // ---- sealed objects (envelope encryption) -------------------------------------------------------------------

  encrypt(plaintext: Uint8Array, options: EncryptOptions): Promise<Buffer> {
    return this.#cipher.encrypt(plaintext, options);
  }

  decrypt(sealed: Uint8Array, options?: DecryptOptions): Promise<Buffer> {
    return this.#cipher.decrypt(sealed, options);
  }

  createEncryptStream(options: EncryptStreamOptions): EncryptStream {
    return this.#cipher.createEncryptStream(options);
  }

  createDecryptStream(options?: DecryptStreamOptions): DecryptStream {
    return this.#cipher.createDecryptStream(options);
  }

  /** createEncryptStream as an async iterable of chunks valid until the next step (ObjectCipher.encryptChunks). */
  encryptChunks(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: EncryptStreamOptions): AsyncGenerator<Buffer, void, undefined> {
    return this.#cipher.encryptChunks(source, options);
  }

  /** createDecryptStream as an async iterable of chunks valid until the next step (ObjectCipher.decryptChunks). */
  decryptChunks(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options?: DecryptStreamOptions): AsyncGenerator<Buffer, void, undefined> {
    return this.#cipher.decryptChunks(source, options);
  }

  decryptRange(sealed: Uint8Array, options: DecryptRangeOptions): Promise<Buffer> {
    return this.#cipher.decryptRange(sealed, options);
  }

  rewrapHeader(sealed: Uint8Array, options?: RewrapHeaderOptions): Promise<Buffer> {
    return this.#cipher.rewrapHeader(sealed, options);
  }

  // ---- objects as shards --------------------------------------------------------------------------------------

  putObject(objectId: string, source: ObjectSource, options: PutObjectOptions): Promise<ObjectInfo> {
    return this.#objects.putObject(objectId, source, options);
  }

  getObject(objectId: string, options: GetObjectOptions): Readable {
    return this.#objects.getObject(objectId, options);
  }

  /**
   * getObject's bytes as an async iterable of chunks valid until the next step of the loop: views of the stripe
   * buffers, reused once the consumer asks for more (copy what you keep). No copy and no fresh Buffer per segment.
   */
  getObjectChunks(objectId: string, options: GetObjectOptions): AsyncGenerator<Buffer, void, undefined> {
    return this.#objects.getObjectChunks(objectId, options);
  }

  repairObject(objectId: string, options: RepairObjectOptions): Promise<RepairReport> {
    return this.#objects.repairObject(objectId, options);
  }

  rewrapObject(objectId: string, options: RewrapObjectOptions): Promise<RewrapReport> {
    return this.#objects.rewrapObject(objectId, options);
  }

  deleteObject(objectId: string, options: DeleteObjectOptions): Promise<DeleteReport> {
    return this.#objects.deleteObject(objectId, options);
  }

  /** Object names in a namespace (default "o"), in order, listed page by page as iterated. */
  listObjects(options: ListObjectsOptions): AsyncGenerator<string> {
    return this.#objects.listObjects(options);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#objects.close();
    await this.keys.close();
    await this.#pool.close();
    await this.#sessions.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
