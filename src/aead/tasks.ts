// AEAD worker task handlers. A task carries a batch of consecutive segments as views over SharedArrayBuffers
// (nothing is cloned or transferred) and the object's payload key, also in shared memory: the worker never
// sees the DEK, never keeps the key past the task, and the main thread zeroes the key's shared slot once the
// object's last task has settled.
import { openSegments, sealSegments } from './segment.js';

export const TASK_SEAL = 'aead.seal';
export const TASK_OPEN = 'aead.open';

export type SegmentBatchTask = {
  kind: typeof TASK_SEAL | typeof TASK_OPEN;
  /** 32-byte payload key (view over shared memory). */
  key: Uint8Array;
  noncePrefix: Uint8Array;
  segmentBytes: number;
  firstIndex: number;
  /** Input segments (shared memory). */
  src: Uint8Array;
  /** Output segments (shared memory), written in place. */
  dst: Uint8Array;
  isLastBatch: boolean;
};

export const aeadTasks: Record<string, (task: any) => unknown> = {
  /** Returns nothing: `dst` holds the sealed segments when the task settles. */
  [TASK_SEAL](task: SegmentBatchTask): void {
    sealSegments(task.key, task, task.firstIndex, task.src, task.dst, task.isLastBatch);
  },
  /** Returns -1 when every tag verified, else the first failing segment index (dst zeroed). */
  [TASK_OPEN](task: SegmentBatchTask): number {
    return openSegments(task.key, task, task.firstIndex, task.src, task.dst, task.isLastBatch);
  },
};
