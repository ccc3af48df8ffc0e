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
import { KeyService } from './hsm/key-service.js';
import { findSlot, loadModule } from './hsm/module.js';
import { SessionPool } from './hsm/session-pool.js';
import { ObjectService } from './object/object-service.js';
import type {
  GetObjectOptions, ObjectInfo, ObjectSource, PutObjectOptions, RepairObjectOptions, RepairReport, RewrapObjectOptions, RewrapReport,
} from './object/options.js';
import { resolveEngineOptions, type CryptoEngineOptions, type ResolvedEngineOptions } from './options.js';
import { WorkerPool } from './pool/pool.js';
import { SlabPool } from './pool/slab-pool.js';
import { WORKER_ENTRY } from './worker-entry.js';

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
  readonly #bucketBuffers: SlabPool;
  #closed = false;

  private constructor(options: ResolvedEngineOptions, sessions: SessionPool, keys: KeyService) {
    this.#options = options;
    this.#sessions = sessions;
    this.keys = keys;
    this.#pool = new WorkerPool(options.threads, { entry: WORKER_ENTRY });
    this.#cipher = new ObjectCipher({ keys, pool: this.#pool, ...(options.segmentBytes ? { segmentBytes: options.segmentBytes } : {}) });
    this.erasure = new ErasureService(this.#pool);
    this.#objects = new ObjectService({ keys, pool: () => this.#pool, threads: options.threads, segmentBytes: options.segmentBytes });
    // Every bucket's object calls share one set of stripe buffers (as ObjectService: 32 MiB free per stripe in flight).
    const window = 2 * options.threads;
    this.#bucketBuffers = new SlabPool(window * 32 * 1024 * 1024);
    const bucketDeps = { pool: () => this.#pool, window, buffers: this.#bucketBuffers, segmentBytes: options.segmentBytes };
    this.buckets = new BucketService(keys, () => bucketDeps);
  }

  /** Loads the PKCS#11 module (once per process), finds the token, logs in and returns a ready engine. */
  static async open(options?: CryptoEngineOptions): Promise<CryptoEngine> {
    const resolved = resolveEngineOptions(options);
    const { library, pin } = resolved.pkcs11;
    const module = loadModule(library);
    const slot = findSlot(module, resolved.pkcs11);
    const sessions = new SessionPool(module, slot, resolved.maxSessions);
    try {
      sessions.login(pin);
    } catch (err) {
      sessions.close();
      throw err;
    }
    const keys = new KeyService(module, sessions, {
      dataKeyCache: resolved.dataKeyCache,
      keyInfoMaxAgeMs: resolved.keyInfoMaxAgeMs,
      hsmCalls: resolved.hsmCalls,
    });
    return new CryptoEngine(resolved, sessions, keys);
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

  repairObject(objectId: string, options: RepairObjectOptions): Promise<RepairReport> {
    return this.#objects.repairObject(objectId, options);
  }

  rewrapObject(objectId: string, options: RewrapObjectOptions): Promise<RewrapReport> {
    return this.#objects.rewrapObject(objectId, options);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#objects.close();
    this.#bucketBuffers.clear();
    await this.keys.close();
    await this.#pool.close();
    this.#sessions.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
