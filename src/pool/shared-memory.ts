// SharedArrayBuffer-backed byte arrays: what workers read and write in place.
// Callers' buffers are never handed to workers (they could be detached or raced); their bytes are copied in first.
import { lineOffset } from './line-offset.js';

/** From this size on, shared memory starts on a cache line (the allocator gives 16-byte alignment). */
const ALIGN_FROM_BYTES = 4096;
const LINE_BYTES = 64;

/**
 * A zero-filled Uint8Array over a fresh SharedArrayBuffer; from 4 KiB on it starts on a 64-byte boundary (a view
 * into a slightly larger buffer). Why: SIMD loads and stores that straddle two cache lines cost the erasure kernels
 * up to ~1.8x their time when shards start at different offsets within a line, as separately allocated ones do.
 */
export function allocShared(bytes: number): Uint8Array {
  if (bytes < ALIGN_FROM_BYTES) return new Uint8Array(new SharedArrayBuffer(bytes));
  const whole = new Uint8Array(new SharedArrayBuffer(bytes + LINE_BYTES - 1));
  const off = lineOffset(whole);
  return off === undefined ? whole.subarray(0, bytes) : whole.subarray((LINE_BYTES - off) % LINE_BYTES, (LINE_BYTES - off) % LINE_BYTES + bytes);
}

/** A copy of `src` in shared memory (memcpy speed). */
export function copyToShared(src: Uint8Array): Uint8Array {
  const out = allocShared(src.byteLength);
  out.set(src);
  return out;
}

export function isShared(view: Uint8Array): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && view.buffer instanceof SharedArrayBuffer;
}

