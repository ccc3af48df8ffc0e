// CryptoEngine: wires the HSM session pool, root keys, the worker pool and the object/erasure layers together.
import { HsmError } from './errors.js';
import { KeyService } from './hsm/key-service.js';
import { findSlotById, findSlotByLabel, loadModule } from './hsm/module.js';
import { SessionPool } from './hsm/session-pool.js';
import { resolveEngineOptions, type CryptoEngineOptions, type ResolvedEngineOptions } from './options.js';
import { WorkerPool } from './pool/pool.js';

export class CryptoEngine {
  /** Root keys and DEK wrapping (IBM Key Protect semantics). */
  readonly keys: KeyService;
  readonly #options: ResolvedEngineOptions;
  readonly #sessions: SessionPool;
  #pool: WorkerPool | undefined;
  #closed = false;

  private constructor(options: ResolvedEngineOptions, sessions: SessionPool, keys: KeyService) {
    this.#options = options;
    this.#sessions = sessions;
    this.keys = keys;
  }

  /** Loads the PKCS#11 module (once per process), finds the token, logs in and returns a ready engine. */
  static async open(options?: CryptoEngineOptions): Promise<CryptoEngine> {
    const resolved = resolveEngineOptions(options);
    const { library, tokenLabel, slot: slotId, pin } = resolved.pkcs11;
    const module = loadModule(library);
    const slot = tokenLabel !== undefined ? findSlotByLabel(module, tokenLabel) : findSlotById(module, slotId!);
    if (!slot) {
      throw new HsmError('C_GetSlotList', 'CKR_TOKEN_NOT_PRESENT', tokenLabel !== undefined ? `no token labelled "${tokenLabel}"` : `no token in slot ${slotId}`);
    }
    const sessions = new SessionPool(module, slot, resolved.maxSessions);
    try {
      sessions.login(pin);
    } catch (err) {
      sessions.close();
      throw err;
    }
    const keys = new KeyService(module, sessions, { dataKeyCache: resolved.dataKeyCache, keyInfoMaxAgeMs: resolved.keyInfoMaxAgeMs });
    return new CryptoEngine(resolved, sessions, keys);
  }

  /** The worker pool, started on first use so a keys-only engine costs no threads. */
  protected get pool(): WorkerPool {
    if (this.#closed) throw new Error('the engine is closed');
    this.#pool ??= new WorkerPool(this.#options.threads);
    return this.#pool;
  }

  get threads(): number {
    return this.#options.threads;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.keys.close();
    await this.#pool?.close();
    this.#sessions.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
