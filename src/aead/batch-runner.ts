// Spreads consecutive segments of one object over the worker pool in batches, keeping at most `maxInFlight`
// tasks queued so every worker always has the next batch ready, and staging caller memory into reusable
// SharedArrayBuffer slabs (the caller's buffer is never handed to a worker: it could be detached or be in
// non-shared memory). Used by the one-shot paths and decryptRange; streams have their own incremental variant.
import type { WorkerPool } from '../pool/pool.js';
import { allocShared, isShared } from '../pool/shared-memory.js';
import { TAG_BYTES } from './header.js';
import { TASK_OPEN, TASK_SEAL, type SegmentBatchTask } from './tasks.js';

export interface BatchJob {
  kind: typeof TASK_SEAL | typeof TASK_OPEN;
  pool: WorkerPool;
  /** Payload key in shared memory; the caller zeroes it after `runBatches` settles. */
  keySlot: Uint8Array;
  noncePrefix: Uint8Array;
  segmentBytes: number;
  firstIndex: number;
  segmentCount: number;
  /** Whether the job's final segment is the object's last one. */
  endsObject: boolean;
  /** Input for exactly these segments (plaintext to seal, or sealed segments to open). */
  src: Uint8Array;
  /** Output for exactly these segments, in shared memory. */
  dst: Uint8Array;
  segmentsPerBatch: number;
  maxInFlight: number;
  signal?: AbortSignal;
}

/** Runs the job; resolves true when every batch succeeded (for opens: every tag verified). */
export async function runBatches(job: BatchJob): Promise<boolean> {
  const { kind, segmentBytes: S, segmentCount, segmentsPerBatch } = job;
  const sealing = kind === TASK_SEAL;
  const inStride = sealing ? S : S + TAG_BYTES; // input bytes per whole segment
  const outStride = sealing ? S + TAG_BYTES : S;
  const direct = isShared(job.src);
  const slabBytes = Math.min(segmentsPerBatch * inStride, job.src.length);
  const freeSlabs: Uint8Array[] = [];
  const inFlight: Array<Promise<unknown>> = [];
  let ok = true;
  try {
    for (let first = 0; first < segmentCount; first += segmentsPerBatch) {
      job.signal?.throwIfAborted();
      const count = Math.min(segmentsPerBatch, segmentCount - first);
      const last = first + count === segmentCount;
      const inFrom = first * inStride;
      const inTo = last ? job.src.length : inFrom + count * inStride;
      const outFrom = first * outStride;
      const outTo = last ? job.dst.length : outFrom + count * outStride;
      while (inFlight.length >= job.maxInFlight) await inFlight.shift();
      let src: Uint8Array;
      let slab: Uint8Array | undefined;
      if (direct) {
        src = job.src.subarray(inFrom, inTo);
      } else {
        slab = freeSlabs.pop() ?? allocShared(slabBytes);
        src = slab.subarray(0, inTo - inFrom);
        src.set(job.src.subarray(inFrom, inTo));
      }
      const task: SegmentBatchTask = {
        kind,
        key: job.keySlot,
        noncePrefix: job.noncePrefix,
        segmentBytes: S,
        firstIndex: job.firstIndex + first,
        src,
        dst: job.dst.subarray(outFrom, outTo),
        isLastBatch: last && job.endsObject,
      };
      const settled = job.pool.run<number | undefined>(task, job.signal).then((result) => {
        if (typeof result === 'number' && result >= 0) ok = false;
        if (slab) freeSlabs.push(slab);
      });
      settled.catch(() => {}); // handled where it is awaited; keeps an early rejection from being "unhandled"
      inFlight.push(settled);
      if (!ok) break;
    }
    while (inFlight.length > 0) await inFlight.shift();
  } finally {
    // Nothing may still be reading the key slot or writing dst when the caller zeroes them.
    await Promise.allSettled(inFlight);
  }
  return ok;
}
