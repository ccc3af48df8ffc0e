// A put's stripe on the native pool (native/stripe-seal.cc) where the GCM addon is built and the native pool is on:
// the bytes sealStripe (tasks.ts) makes on a worker, without the task's structured clone, its messages and the
// worker's JS and GC. Else (no addon, HSM_NATIVE_POOL=0, the reference codec) the caller sends the task to a worker.
import { nativePoolEnabled } from '../aead/native-batch.js';
import { nativeGcm } from '../aead/native-gcm.js';
import { ReedSolomon } from '../erasure/reed-solomon.js';
import type { SealStripeTask } from './tasks.js';

const codecs = new Map<string, ReedSolomon>();

/** The stripe sealed, coded and tagged on `threads` native threads; undefined when that path is not available. */
export function sealStripeNatively(task: SealStripeTask, threads: number): Promise<{ chunkBytes: number }> | undefined {
  const addon = nativeGcm;
  if (!addon?.sealStripe || !nativePoolEnabled()) return undefined;
  const key = `${task.k}+${task.m}`;
  let rs = codecs.get(key);
  if (!rs) codecs.set(key, (rs = new ReedSolomon({ dataShards: task.k, parityShards: task.m })));
  const kernel = rs.kernel;
  const tables = kernel === 'reference' ? null : rs.nativeEncodeTables();
  if (!tables) return undefined;
  addon.setThreads?.(threads);
  return new Promise((resolve, reject) => {
    addon.sealStripe!(
      task.payloadKey, task.noncePrefix, task.chunkKey, task.segmentBytes, task.k, task.m, task.stripe, task.isLast,
      task.plain, task.plainBytes, task.buffer, tables, kernel,
      (error, chunkBytes) => (error ? reject(error) : resolve({ chunkBytes })),
    );
  });
}
