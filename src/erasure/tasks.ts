// Erasure worker task handlers: one task encodes or rebuilds one column range [start, end) of a stripe whose
// shards live in SharedArrayBuffers. Nothing is copied or cloned; each worker keeps its own codecs.
import { ReedSolomon } from './reed-solomon.js';
import type { KernelName } from './native.js';

/** One column range of one stripe. Shard i is bytes [offsets[i], offsets[i] + shardBytes) of buffers[i]. */
export interface StripeTask {
  kind: 'erasure.stripe';
  dataShards: number;
  parityShards: number;
  kernel: KernelName;
  shardBytes: number;
  start: number;
  end: number;
  buffers: (SharedArrayBuffer | null)[]; // null: missing shard
  offsets: number[];
  /** Absent: encode parity in place. Present: rebuild these missing shards into targetBuffers/targetOffsets. */
  targets?: number[];
  targetBuffers?: SharedArrayBuffer[];
  targetOffsets?: number[];
}

const CODEC_CACHE_ENTRIES = 16;
const codecs = new Map<string, ReedSolomon>();

function codec(k: number, m: number, kernel: KernelName): ReedSolomon {
  const key = `${k}+${m}/${kernel}`;
  let rs = codecs.get(key);
  if (!rs) {
    rs = new ReedSolomon({ dataShards: k, parityShards: m, kernel });
    if (codecs.size >= CODEC_CACHE_ENTRIES) codecs.delete(codecs.keys().next().value as string);
    codecs.set(key, rs);
  }
  return rs;
}

function runStripe(task: StripeTask): null {
  const rs = codec(task.dataShards, task.parityShards, task.kernel);
  const len = task.end - task.start;
  const view = (b: SharedArrayBuffer, off: number) => new Uint8Array(b, off + task.start, len);
  const shards = task.buffers.map((b, i) => (b ? view(b, task.offsets[i]) : null));
  if (!task.targets) {
    rs.encode(shards as Uint8Array[]);
  } else {
    const outputs = task.targets.map((_, i) => view(task.targetBuffers![i], task.targetOffsets![i]));
    rs.reconstructInto(shards, task.targets, outputs);
  }
  return null;
}

export const erasureTasks: Record<string, (task: any) => unknown> = {
  'erasure.stripe': runStripe,
};
