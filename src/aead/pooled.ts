// A run of consecutive segments of one object on the worker pool: the payload key goes to the workers in a
// shared slot (zeroed once every batch has settled), the batches are spread evenly over the workers.
import { copyToShared } from '../pool/shared-memory.js';
import { runBatches } from './batch-runner.js';
import { segmentsPerBatch, type CipherSettings } from './options.js';
import type { SegmentSchedule } from './segment.js';
import type { TASK_OPEN, TASK_SEAL } from './tasks.js';

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
