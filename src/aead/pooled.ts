// A run of consecutive segments of one object, in parallel: on the native pool as one job (input read in place,
// output written straight into `dst`, the key copied into the job and wiped there), else on the worker pool,
// where the payload key goes to the workers in a shared slot (zeroed once every batch has settled) and the
// batches are spread evenly over the workers.
import { copyToShared } from '../pool/shared-memory.js';
import { runBatches } from './batch-runner.js';
import { nativePoolEnabled, openBatch, sealBatch } from './native-batch.js';
import { segmentsPerBatch, type CipherSettings } from './options.js';
import type { SegmentSchedule } from './segment.js';
import { TASK_SEAL, type TASK_OPEN } from './tasks.js';

export interface PooledRun {
  kind: typeof TASK_SEAL | typeof TASK_OPEN;
  /** The payload key (any memory; copied into a shared slot for the workers). */
  key: Uint8Array;
  schedule: SegmentSchedule;
  firstIndex: number;
  count: number;
  endsObject: boolean;
  src: Uint8Array;
  dst: Uint8Array;
  signal: AbortSignal | undefined;
}

/** Resolves true when every batch succeeded (for opens: every tag verified); see runBatches. */
export async function runPooled(settings: CipherSettings, run: PooledRun): Promise<boolean> {
  const { pool, maxInFlight } = settings;
  const { segmentBytes } = run.schedule;
  if (nativePoolEnabled()) {
    run.signal?.throwIfAborted();
    if (run.kind === TASK_SEAL) {
      await sealBatch(run.key, run.schedule, run.firstIndex, run.endsObject, [run.src], run.dst, pool.threads, run.signal);
      return true;
    }
    return (await openBatch(run.key, run.schedule, run.firstIndex, run.endsObject, [run.src], run.dst, pool.threads, run.signal)) < 0;
  }
  const keySlot = copyToShared(run.key);
  try {
    return await runBatches({
      kind: run.kind,
      pool,
      slabs: settings.slabs,
      keySlot,
      noncePrefix: new Uint8Array(run.schedule.noncePrefix),
      segmentBytes,
      firstIndex: run.firstIndex,
      segmentCount: run.count,
      endsObject: run.endsObject,
      src: run.src,
      dst: run.dst,
      // Spread a medium object evenly over the workers; cap at the configured batch.
      segmentsPerBatch: Math.min(segmentsPerBatch(settings, segmentBytes), Math.ceil(run.count / pool.threads)),
      maxInFlight,
      ...(run.signal ? { signal: run.signal } : {}),
    });
  } finally {
    keySlot.fill(0);
  }
}
