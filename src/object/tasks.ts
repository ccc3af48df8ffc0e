// Worker tasks for objects as shards. One task per stripe does all of that stripe's bulk work, so its bytes
// cross the thread boundary once each way: seal the segments, erasure code, tag every chunk (put); verify chunk
// tags, rebuild what is missing or bad, decrypt the segments wanted (get), or re-tag rebuilt chunks (repair).
//
// A stripe buffer holds k+m slots of (chunk ‖ tag), exactly as they sit in the shard files, so each shard's part
// of a stripe is one read or one write; a full stripe's data chunk j is sealed segment t·k + j in place. A short
// last stripe is sealed into (or gathered from) a scratch area after the slots, since its segments straddle chunks.
// Buffers and keys are SharedArrayBuffer views owned by the main thread (nothing is cloned): the keys' shared
// slots are shared by all of a call's tasks, so the main thread zeroes them once the call's last task has settled.
import { ReedSolomon } from '../erasure/reed-solomon.js';
import { TAG_BYTES } from '../aead/header.js';
import { batchSegmentCount, openSegment, openSegments, sealSegment, sealSegments } from '../aead/segment.js';
import { CHUNK_TAG_BYTES, chunkTag, chunkTagMatches } from './format.js';

export const TASK_SEAL_STRIPE = 'object.sealStripe';
export const TASK_OPEN_STRIPE = 'object.openStripe';
/**
 * Stripes of at most this many bytes are sealed or opened on the calling thread: their work (a few µs) costs less
 * than a worker round trip (posting, waking a worker, settling: context switches that dominated small-object gets).
 */
export const INLINE_STRIPE_BYTES = 32 * 1024;

export { stripeBufferBytes } from './format.js';

export interface SealStripeTask {
  kind: typeof TASK_SEAL_STRIPE;
  k: number;
  m: number;
  segmentBytes: number;
  stripe: number;
  isLast: boolean;
  plain: Uint8Array;
  plainBytes: number;
  /** stripeBufferBytes(k, m, segmentBytes) bytes; slots at a stride of (chunk size + tag). */
  buffer: Uint8Array;
  payloadKey: Uint8Array;
  noncePrefix: Uint8Array;
  chunkKey: Uint8Array;
}

export interface OpenStripeTask {
  kind: typeof TASK_OPEN_STRIPE;
  k: number;
  m: number;
  stripe: number;
  /** This stripe's chunk size (C, or C' for a short last stripe). */
  chunkBytes: number;
  /** True for a short last stripe (segments straddle chunks). */
  short: boolean;
  buffer: Uint8Array;
  /** Shards whose slot was read. */
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
    /** Segments wanted, and the object's segment count and length (to size and flag the last one). */
    firstSegment: number;
    lastSegment: number;
    segments: number;
    plaintextBytes: number;
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
/** One codec per shape for this thread (its decode programs are cached). */
export function codec(k: number, m: number): ReedSolomon {
  const key = `${k}+${m}`;
  let rs = codecs.get(key);
  if (!rs) codecs.set(key, (rs = new ReedSolomon({ dataShards: k, parityShards: m })));
  return rs;
}

const chunkOf = (buffer: Uint8Array, j: number, chunkBytes: number) => buffer.subarray(j * (chunkBytes + CHUNK_TAG_BYTES), j * (chunkBytes + CHUNK_TAG_BYTES) + chunkBytes);
const tagOf = (buffer: Uint8Array, j: number, chunkBytes: number) => buffer.subarray((j + 1) * (chunkBytes + CHUNK_TAG_BYTES) - CHUNK_TAG_BYTES, (j + 1) * (chunkBytes + CHUNK_TAG_BYTES));
const scratchOf = (buffer: Uint8Array, k: number, m: number, chunkBytes: number) => buffer.subarray((k + m) * (chunkBytes + CHUNK_TAG_BYTES));

/** Seals one stripe's segments into its data chunks, computes parity, tags every chunk. Returns the chunk size. */
export function sealStripe(task: SealStripeTask): { chunkBytes: number } {
  const { k, m, segmentBytes, stripe, isLast, plain, plainBytes, buffer } = task;
  const count = batchSegmentCount(plainBytes, segmentBytes, isLast);
  const payloadBytes = plainBytes + count * TAG_BYTES;
  const fullChunk = segmentBytes + TAG_BYTES;
  const full = payloadBytes === k * fullChunk;
  if (!isLast && !full) throw new RangeError('a stripe that is not the last must hold k whole segments');
  const chunkBytes = full ? fullChunk : Math.ceil(payloadBytes / k);
  if (full) {
    for (let j = 0; j < k; j++) {
      const segment = plain.subarray(j * segmentBytes, (j + 1) * segmentBytes);
      sealSegment(task.payloadKey, task.noncePrefix, stripe * k + j, isLast && j === k - 1, segment, chunkOf(buffer, j, chunkBytes));
    }
  } else {
    const scratch = scratchOf(buffer, k, m, fullChunk).subarray(0, k * chunkBytes);
    sealSegments(task.payloadKey, { noncePrefix: task.noncePrefix, segmentBytes }, stripe * k, plain.subarray(0, plainBytes), scratch.subarray(0, payloadBytes), true);
    scratch.fill(0, payloadBytes);
    for (let j = 0; j < k; j++) chunkOf(buffer, j, chunkBytes).set(scratch.subarray(j * chunkBytes, (j + 1) * chunkBytes));
  }
  const chunks = Array.from({ length: k + m }, (_, j) => chunkOf(buffer, j, chunkBytes));
  codec(k, m).encode(chunks);
  chunks.forEach((chunk, j) => chunkTag(task.chunkKey, j, stripe, chunk, tagOf(buffer, j, chunkBytes)));
  return { chunkBytes };
}

/** Verifies the chunks read, rebuilds what is asked from the good ones, and decrypts the wanted segments. */
export function openStripe(task: OpenStripeTask): OpenStripeResult {
  const { k, m, stripe, chunkBytes, buffer, present, rebuild } = task;
  const chunks: (Uint8Array | null)[] = Array.from({ length: k + m }, (_, j) => chunkOf(buffer, j, chunkBytes));
  const isPresent = new Set(present);
  const bad: number[] = [];
  for (let j = 0; j < k + m; j++) {
    if (!isPresent.has(j)) chunks[j] = null;
    else if (!chunkTagMatches(task.chunkKey, j, stripe, chunks[j]!, tagOf(buffer, j, chunkBytes))) {
      bad.push(j);
      chunks[j] = null;
    }
  }
  const targets = rebuild.filter((j) => chunks[j] === null);
  if (targets.length > 0) {
    if (chunks.filter((c) => c !== null).length < k) return { bad, ok: false, decryptFailed: false };
    const outputs = targets.map((j) => chunkOf(buffer, j, chunkBytes));
    codec(k, m).reconstructInto(chunks, targets, outputs);
    if (task.tagRebuilt) targets.forEach((j, i) => chunkTag(task.chunkKey, j, stripe, outputs[i]!, tagOf(buffer, j, chunkBytes)));
  }
  const d = task.decrypt;
  if (d && !decryptSegments(task, d)) return { bad, ok: true, decryptFailed: true };
  return { bad, ok: true, decryptFailed: false };
}

function decryptSegments(task: OpenStripeTask, d: NonNullable<OpenStripeTask['decrypt']>): boolean {
  const { k, m, stripe, chunkBytes, buffer } = task;
  const S = d.segmentBytes;
  const plainOf = (i: number) => (i === d.segments - 1 ? d.plaintextBytes - i * S : S);
  if (!task.short) {
    let at = 0;
    for (let i = d.firstSegment; i <= d.lastSegment; i++) {
      const length = plainOf(i);
      const sealed = chunkOf(buffer, i - stripe * k, chunkBytes).subarray(0, length + TAG_BYTES);
      if (!openSegment(d.payloadKey, d.noncePrefix, i, i === d.segments - 1, sealed, d.out.subarray(at, at + length))) return false;
      at += length;
    }
    return true;
  }
  // Short last stripe: gather its data chunks back into the contiguous sealed payload, then open the range.
  const scratch = scratchOf(buffer, k, m, S + TAG_BYTES).subarray(0, k * chunkBytes);
  for (let j = 0; j < k; j++) scratch.set(chunkOf(buffer, j, chunkBytes), j * chunkBytes);
  const from = (d.firstSegment - stripe * k) * (S + TAG_BYTES);
  let sealedBytes = 0;
  for (let i = d.firstSegment; i <= d.lastSegment; i++) sealedBytes += plainOf(i) + TAG_BYTES;
  const failed = openSegments(d.payloadKey, { noncePrefix: d.noncePrefix, segmentBytes: S }, d.firstSegment, scratch.subarray(from, from + sealedBytes), d.out, d.lastSegment === d.segments - 1);
  return failed === -1;
}

export const objectTasks: Record<string, (task: any) => unknown> = {
  [TASK_SEAL_STRIPE]: sealStripe,
  [TASK_OPEN_STRIPE]: openStripe,
};
