// One segment's AES-256-GCM, and batches of consecutive segments, as pure functions over Uint8Array views.
// These are what worker tasks (and, later, erasure-coded stripes) call: no state, no allocation they keep,
// the destination is always caller-provided.
//
// node:crypto's update() allocates its output; a ≥ 128 KiB allocation would be a fresh mmap (page faults every
// time), so segments go through update() in UPDATE_CHUNK_BYTES pieces that malloc recycles while they are still
// in cache, and are copied into the destination.
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { KEY_BYTES, NONCE_BYTES, TAG_BYTES } from './header.js';
import { segmentNonce } from './key-schedule.js';
import { nativeGcm } from './native-gcm.js';

/** Size of each update() call over a segment: below glibc's mmap threshold, small enough to stay in L2. */
export const UPDATE_CHUNK_BYTES = 64 * 1024;

/** Where the segments of one object live: its nonce prefix and segment size. */
export interface SegmentSchedule {
  noncePrefix: Uint8Array;
  segmentBytes: number;
}

const EMPTY = new Uint8Array(0);

function checkKeyNonce(key: Uint8Array, nonce: Uint8Array): void {
  if (key.length !== KEY_BYTES) throw new RangeError(`key must be ${KEY_BYTES} bytes`);
  if (nonce.length !== NONCE_BYTES) throw new RangeError(`nonce must be ${NONCE_BYTES} bytes`);
}

/** AES-256-GCM: `dst` (src.length + 16 bytes) = ciphertext ‖ tag. `src` and `dst` must not overlap. */
export function gcmSealInto(key: Uint8Array, nonce: Uint8Array, src: Uint8Array, dst: Uint8Array, aad: Uint8Array = EMPTY): void {
  checkKeyNonce(key, nonce);
  if (dst.length !== src.length + TAG_BYTES) throw new RangeError('dst must be src.length + 16 bytes');
  if (nativeGcm) nativeGcm.seal(key, nonce, aad, src, dst);
  else nodeCryptoSealInto(key, nonce, src, dst, aad);
}

/**
 * AES-256-GCM open: `src` = ciphertext ‖ tag, `dst` gets src.length - 16 bytes. Returns false (and zeroes
 * `dst`) if the tag does not verify: nothing unauthenticated is left behind for a caller to release.
 */
export function gcmOpenInto(key: Uint8Array, nonce: Uint8Array, src: Uint8Array, dst: Uint8Array, aad: Uint8Array = EMPTY): boolean {
  checkKeyNonce(key, nonce);
  const length = src.length - TAG_BYTES;
  if (length < 0 || dst.length !== length) throw new RangeError('dst must be src.length - 16 bytes');
  return nativeGcm ? nativeGcm.open(key, nonce, aad, src, dst) : nodeCryptoOpenInto(key, nonce, src, dst, aad);
}

/** gcmSealInto on node:crypto: the fallback without the native addon, and a second opinion in tests. */
export function nodeCryptoSealInto(key: Uint8Array, nonce: Uint8Array, src: Uint8Array, dst: Uint8Array, aad: Uint8Array = EMPTY): void {
  checkKeyNonce(key, nonce);
  if (dst.length !== src.length + TAG_BYTES) throw new RangeError('dst must be src.length + 16 bytes');
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  if (aad.length > 0) cipher.setAAD(aad);
  let written = 0;
  for (let at = 0; at < src.length; at += UPDATE_CHUNK_BYTES) {
    const out = cipher.update(src.subarray(at, Math.min(at + UPDATE_CHUNK_BYTES, src.length)));
    dst.set(out, written);
    written += out.length;
  }
  const tail = cipher.final();
  dst.set(tail, written);
  written += tail.length;
  dst.set(cipher.getAuthTag(), written);
}

/** gcmOpenInto on node:crypto (see nodeCryptoSealInto). */
export function nodeCryptoOpenInto(key: Uint8Array, nonce: Uint8Array, src: Uint8Array, dst: Uint8Array, aad: Uint8Array = EMPTY): boolean {
  checkKeyNonce(key, nonce);
  const length = src.length - TAG_BYTES;
  if (length < 0 || dst.length !== length) throw new RangeError('dst must be src.length - 16 bytes');
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: TAG_BYTES });
  decipher.setAuthTag(src.subarray(length));
  if (aad.length > 0) decipher.setAAD(aad);
  let written = 0;
  for (let at = 0; at < length; at += UPDATE_CHUNK_BYTES) {
    const out = decipher.update(src.subarray(at, Math.min(at + UPDATE_CHUNK_BYTES, length)));
    dst.set(out, written);
    written += out.length;
  }
  try {
    const tail = decipher.final();
    dst.set(tail, written);
    return true;
  } catch {
    dst.fill(0);
    return false;
  }
}

/** Seals segment `index` of an object (nonce from the schedule). dst = src.length + 16 bytes. */
export function sealSegment(key: Uint8Array, noncePrefix: Uint8Array, index: number, last: boolean, src: Uint8Array, dst: Uint8Array): void {
  gcmSealInto(key, segmentNonce(noncePrefix, index, last), src, dst);
}

/** Opens segment `index`; false (dst zeroed) if it is not that segment of that object with that last flag. */
export function openSegment(key: Uint8Array, noncePrefix: Uint8Array, index: number, last: boolean, src: Uint8Array, dst: Uint8Array): boolean {
  return gcmOpenInto(key, segmentNonce(noncePrefix, index, last), src, dst);
}

/** Number of segments in a batch of `plainBytes` plaintext bytes; validates the batch shape. */
export function batchSegmentCount(plainBytes: number, segmentBytes: number, isLastBatch: boolean): number {
  if (isLastBatch) return plainBytes === 0 ? 1 : Math.ceil(plainBytes / segmentBytes);
  if (plainBytes === 0 || plainBytes % segmentBytes !== 0) {
    throw new RangeError('a batch that is not the last must hold whole segments');
  }
  return plainBytes / segmentBytes;
}

/**
 * Seals consecutive segments firstIndex, firstIndex+1, … : `src` is their plaintext back to back (whole
 * segments, except that the last batch may end with a short or, for an empty object, empty segment), `dst`
 * receives segment ciphertext ‖ tag back to back (src.length + 16 × count bytes). The batch's final segment
 * carries the last flag iff `isLastBatch`.
 */
export function sealSegments(
  key: Uint8Array,
  schedule: SegmentSchedule,
  firstIndex: number,
  src: Uint8Array,
  dst: Uint8Array,
  isLastBatch: boolean,
): void {
  const { segmentBytes, noncePrefix } = schedule;
  const count = batchSegmentCount(src.length, segmentBytes, isLastBatch);
  if (dst.length !== src.length + count * TAG_BYTES) throw new RangeError('dst must be src.length + 16 × segments bytes');
  if (firstIndex + count - 1 > 0xffff_ffff) throw new RangeError('segment index out of range');
  const nonce = new Uint8Array(NONCE_BYTES);
  for (let i = 0; i < count; i++) {
    const from = i * segmentBytes;
    const to = Math.min(from + segmentBytes, src.length);
    const at = from + i * TAG_BYTES;
    gcmSealInto(key, segmentNonce(noncePrefix, firstIndex + i, isLastBatch && i === count - 1, nonce), src.subarray(from, to), dst.subarray(at, at + (to - from) + TAG_BYTES));
  }
}

/**
 * Opens consecutive segments (the inverse of sealSegments). Returns -1 if every tag verified, else the index
 * of the first segment that failed; on failure all of `dst` is zeroed.
 */
export function openSegments(
  key: Uint8Array,
  schedule: SegmentSchedule,
  firstIndex: number,
  src: Uint8Array,
  dst: Uint8Array,
  isLastBatch: boolean,
): number {
  const { segmentBytes, noncePrefix } = schedule;
  const sealedSegment = segmentBytes + TAG_BYTES;
  const count = Math.ceil(src.length / sealedSegment);
  if (count === 0) throw new RangeError('empty batch');
  const lastCipher = src.length - (count - 1) * sealedSegment;
  if (lastCipher < TAG_BYTES || (!isLastBatch && lastCipher !== sealedSegment)) throw new RangeError('batch does not hold whole segments');
  if (dst.length !== src.length - count * TAG_BYTES) throw new RangeError('dst must be src.length - 16 × segments bytes');
  if (firstIndex + count - 1 > 0xffff_ffff) throw new RangeError('segment index out of range');
  const nonce = new Uint8Array(NONCE_BYTES);
  for (let i = 0; i < count; i++) {
    const at = i * sealedSegment;
    const end = Math.min(at + sealedSegment, src.length);
    const out = dst.subarray(i * segmentBytes, i * segmentBytes + (end - at) - TAG_BYTES);
    if (!gcmOpenInto(key, segmentNonce(noncePrefix, firstIndex + i, isLastBatch && i === count - 1, nonce), src.subarray(at, end), out)) {
      dst.fill(0);
      return firstIndex + i;
    }
  }
  return -1;
}
