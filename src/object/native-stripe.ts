// Stripes on the native pool (native/stripe-seal.cc) where the GCM addon is built and the native pool is on: a put's
// stripe sealed (the bytes sealStripe in tasks.ts makes on a worker) and a get's healthy stripe opened, without the
// task's structured clone, its messages and the worker's JS and GC. Else (no addon, HSM_NATIVE_POOL=0, the
// reference codec; for a get also a chunk to rebuild or one that fails its tag) the caller sends the task to a worker.
import { nativePoolEnabled } from '../aead/native-batch.js';
import { nativeGcm } from '../aead/native-gcm.js';
import { codec, type OpenStripeResult, type OpenStripeTask, type SealStripeTask } from './tasks.js';

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

/**
 * A get's stripe opened natively when nothing needs rebuilding: the result openStripe (tasks.ts) would give, or
 * undefined when the worker task must do it (the path is not available, a needed chunk is missing, or a chunk failed
 * its tag: the worker finds which and rebuilds).
 */
export async function openStripeNatively(task: OpenStripeTask, threads: number): Promise<OpenStripeResult | undefined> {
  const addon = nativeGcm;
  const d = task.decrypt;
  if (!addon?.openStripe || !nativePoolEnabled() || !d || task.tagRebuilt || !task.rebuild.every((j) => task.present.includes(j))) return undefined;
  addon.setThreads?.(threads);
  const status = await new Promise<number>((resolve, reject) => {
    addon.openStripe!(
      task.chunkKey, task.k, task.m, task.stripe, task.chunkBytes, task.short, task.buffer, Uint8Array.from(task.present),
      d.payloadKey, d.noncePrefix, d.segmentBytes, d.firstSegment, d.lastSegment, d.segments, d.plaintextBytes, d.out,
      (error, s) => (error ? reject(error) : resolve(s)),
    );
  });
  if (status === 1) return undefined;
  return { bad: [], ok: true, decryptFailed: status === 2 };
}
