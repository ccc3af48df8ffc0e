// A put's stripe on the native pool (native/stripe-seal.cc) where the GCM addon is built and the native pool is on:
// the bytes sealStripe (tasks.ts) makes on a worker, without the task's structured clone, its messages and the
// worker's JS and GC. Else (no addon, HSM_NATIVE_POOL=0, the reference codec) the caller sends the task to a worker.
import { nativePoolEnabled } from '../aead/native-batch.js';
import { nativeGcm } from '../aead/native-gcm.js';
import { codec, type SealStripeTask } from './tasks.js';

/** The expanded parity tables when stripes of this shape can be sealed natively, else null. */
function nativeTables(k: number, m: number): Uint8Array | null {
  if (!nativeGcm?.sealStripe || !nativePoolEnabled()) return null;
  const rs = codec(k, m);
  return rs.kernel === 'reference' ? null : rs.nativeEncodeTables();
}

/** Whether sealStripeNatively takes stripes of this shape (then any Uint8Array may hold the plaintext). */
export function nativeStripeAvailable(k: number, m: number): boolean {
  return nativeTables(k, m) !== null;
}

/** The stripe sealed, coded and tagged on `threads` native threads; undefined when that path is not available. */
export function sealStripeNatively(task: SealStripeTask, threads: number): Promise<{ chunkBytes: number }> | undefined {
  const addon = nativeGcm;
  const tables = nativeTables(task.k, task.m);
  if (!addon || !tables) return undefined;
  const kernel = codec(task.k, task.m).kernel;
  addon.setThreads?.(threads);
  return new Promise((resolve, reject) => {
    addon.sealStripe!(
      task.payloadKey, task.noncePrefix, task.chunkKey, task.segmentBytes, task.k, task.m, task.stripe, task.isLast,
      task.plain, task.plainBytes, task.buffer, tables, kernel,
      (error, chunkBytes) => (error ? reject(error) : resolve({ chunkBytes })),
    );
  });
}
