// Shared setup for the aead tests: an in-memory key provider with one root key, a worker pool, ciphers.
import { ObjectCipher } from '../../dist/index.js';
import { WorkerPool } from '../../dist/pool/pool.js';
import { WORKER_ENTRY } from '../../dist/worker-entry.js';
import { MemoryKeyProvider } from './memory-keys.js';

export interface Fixture {
  keys: MemoryKeyProvider;
  pool: WorkerPool;
  keyId: string;
  cipher(options?: { segmentBytes?: number; batchBytes?: number }): ObjectCipher;
  close(): Promise<void>;
}

export function fixture(threads = 2): Fixture {
  const keys = new MemoryKeyProvider();
  const keyId = keys.createKey('root-1');
  const pool = new WorkerPool(threads, { entry: WORKER_ENTRY });
  return {
    keys,
    pool,
    keyId,
    cipher: (options = {}) => new ObjectCipher({ keys, pool, ...options }),
    close: () => pool.close(),
  };
}

/** Deterministic pseudo-random bytes (xorshift), cheap for large sizes. */
export function pseudoRandom(length: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(length);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  for (; i < length; i++) out[i] = (x >>>= 1) & 0xff;
  return out;
}
