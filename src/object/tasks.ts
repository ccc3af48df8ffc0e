// Worker tasks for objects as shards. One task per stripe does all of that stripe's bulk work, so its bytes
// cross the thread boundary once each way: seal the segments, erasure code, tag every chunk (put); verify chunk
// tags, rebuild what is missing or bad, decrypt the segments wanted (get), or re-tag rebuilt chunks (repair).
// Buffers are SharedArrayBuffer views owned by the main thread; keys arrive as copies and are zeroed here.
import { ReedSolomon } from '../erasure/reed-solomon.js';
import { TAG_BYTES } from '../aead/header.js';
import { batchSegmentCount, openSegments, sealSegments } from '../aead/segment.js';
import { CHUNK_TAG_BYTES, chunkTag, chunkTagMatches } from './format.js';

export const TASK_SEAL_STRIPE = 'object.sealStripe';
export const TASK_OPEN_STRIPE = 'object.openStripe';

export interface SealStripeTask {
  kind: typeof TASK_SEAL_STRIPE;
  k: number;
  m: number;
  segmentBytes: number;
  stripe: number;
  isLast: boolean;
  plain: Uint8Array;
  plainBytes: number;
  /** k+m chunk slots at a stride of the chunk size this stripe ends up with. */
  chunks: Uint8Array;
  tags: Uint8Array;
  payloadKey: Uint8Array;
  noncePrefix: Uint8Array;
  chunkKey: Uint8Array;
}

export interface OpenStripeTask {
  kind: typeof TASK_OPEN_STRIPE;
  k: number;
  m: number;
  stripe: number;
  chunkBytes: number;
  chunks: Uint8Array;
  tags: Uint8Array;
  /** Shards whose chunk and tag were read into their slots. */
  present: number[];
  /** Shards to rebuild into their slots (repair), or data chunks the decryption needs (get). */
  rebuild: number[];
  /** Tag the rebuilt chunks (repair writes them out). */
  tagRebuilt: boolean;
  chunkKey: Uint8Array;
  decrypt?: {
    payloadKey: Uint8Array;
    noncePrefix: Uint8Array;
    segmentBytes: number;
    firstSegment: number;
    /** Sealed bytes of the wanted segments inside this stripe's data chunks. */
    payloadOffset: number;
    payloadBytes: number;
    includesLastSegment: boolean;
    out: Uint8Array;
  };
}

export interface OpenStripeResult {
  /** Present shards whose chunk failed its tag. */
  bad: number[];
  /** Everything asked was rebuilt (and decrypted); false when fewer than k good chunks were given. */
  ok: boolean;
  /** The chunks were good but a segment did not authenticate. */
  decryptFailed: boolean;
}

const codecs = new Map<string, ReedSolomon>();
function codec(k: number, m: number): ReedSolomon {
  const key = `${k}+${m}`;
  let rs = codecs.get(key);
  if (!rs) codecs.set(key, (rs = new ReedSolomon({ dataShards: k, parityShards: m })));
  return rs;
}

function slots(chunks: Uint8Array, count: number, chunkBytes: number): Uint8Array[] {
  return Array.from({ length: count }, (_, j) => chunks.subarray(j * chunkBytes, (j + 1) * chunkBytes));
}

/** Seals one stripe's segments into its data chunks, computes parity, tags every chunk. Returns the chunk size. */
export function sealStripe(task: SealStripeTask): { chunkBytes: number } {
  const { k, m, segmentBytes, stripe, isLast, plain, plainBytes, chunks, tags } = task;
  try {
    const count = batchSegmentCount(plainBytes, segmentBytes, isLast);
    const payloadBytes = plainBytes + count * TAG_BYTES;
    const fullChunk = segmentBytes + TAG_BYTES;
    const chunkBytes = payloadBytes === k * fullChunk ? fullChunk : Math.ceil(payloadBytes / k);
    if (!isLast && chunkBytes !== fullChunk) throw new RangeError('a stripe that is not the last must hold k whole segments');
    sealSegments(task.payloadKey, { noncePrefix: task.noncePrefix, segmentBytes }, stripe * k, plain.subarray(0, plainBytes), chunks.subarray(0, payloadBytes), isLast);
    chunks.fill(0, payloadBytes, k * chunkBytes);
    const shards = slots(chunks, k + m, chunkBytes);
    codec(k, m).encode(shards);
    shards.forEach((chunk, j) => chunkTag(task.chunkKey, j, stripe, chunk, tags.subarray(j * CHUNK_TAG_BYTES, (j + 1) * CHUNK_TAG_BYTES)));
    return { chunkBytes };
  } finally {
    task.payloadKey.fill(0);
    task.chunkKey.fill(0);
  }
}

/** Verifies the chunks read, rebuilds what is asked from the good ones, and decrypts the wanted segments. */
export function openStripe(task: OpenStripeTask): OpenStripeResult {
  const { k, m, stripe, chunkBytes, chunks, tags, present, rebuild } = task;
  try {
    const shards: (Uint8Array | null)[] = slots(chunks, k + m, chunkBytes);
    const tagOf = (j: number) => tags.subarray(j * CHUNK_TAG_BYTES, (j + 1) * CHUNK_TAG_BYTES);
    const isPresent = new Set(present);
    const bad: number[] = [];
    for (let j = 0; j < k + m; j++) {
      if (!isPresent.has(j)) shards[j] = null;
      else if (!chunkTagMatches(task.chunkKey, j, stripe, shards[j]!, tagOf(j))) {
        bad.push(j);
        shards[j] = null;
      }
    }
    const targets = rebuild.filter((j) => shards[j] === null);
    if (targets.length > 0) {
      if (k + m - shards.filter((s) => s === null).length < k) return { bad, ok: false, decryptFailed: false };
      const outputs = targets.map((j) => chunks.subarray(j * chunkBytes, (j + 1) * chunkBytes));
      codec(k, m).reconstructInto(shards, targets, outputs);
      if (task.tagRebuilt) for (const j of targets) chunkTag(task.chunkKey, j, stripe, outputs[targets.indexOf(j)]!, tagOf(j));
    }
    const d = task.decrypt;
    if (d) {
      const sealed = chunks.subarray(d.payloadOffset, d.payloadOffset + d.payloadBytes);
      const failed = openSegments(d.payloadKey, { noncePrefix: d.noncePrefix, segmentBytes: d.segmentBytes }, d.firstSegment, sealed, d.out, d.includesLastSegment);
      if (failed !== -1) return { bad, ok: true, decryptFailed: true };
    }
    return { bad, ok: true, decryptFailed: false };
  } finally {
    task.chunkKey.fill(0);
    task.decrypt?.payloadKey.fill(0);
  }
}

export const objectTasks: Record<string, (task: any) => unknown> = {
  [TASK_SEAL_STRIPE]: sealStripe,
  [TASK_OPEN_STRIPE]: openStripe,
};
