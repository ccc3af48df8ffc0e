// Segment batches on the native thread pool (native/gcm-batch.cc): the input is read where the caller holds it
// (one or more consecutive chunks), the output is written into engine memory handed to the caller, and no byte
// is copied on this thread or sent over a message channel. Falls back to the piscina workers (batch-runner.ts)
// when the addon is missing, HSM_GCM_NATIVE=0 or HSM_NATIVE_POOL=0; tests switch with setNativePool().
import { KEY_BYTES, NONCE_PREFIX_BYTES } from './header.js';
import { nativeGcm } from './native-gcm.js';
import type { SegmentSchedule } from './segment.js';

const available = !!nativeGcm && typeof nativeGcm.sealBatch === 'function' && typeof nativeGcm.openBatch === 'function';
let enabled = available && process.env.HSM_NATIVE_POOL !== '0';

/** Whether bulk segments run on the native pool (else on the worker pool). */
export function nativePoolEnabled(): boolean {
  return enabled;
}

/** Switches the native pool on or off (tests run both paths); on needs the addon. Returns the previous state. */
export function setNativePool(on: boolean): boolean {
  const before = enabled;
  enabled = on && available;
  return before;
}

function check(key: Uint8Array, schedule: SegmentSchedule, firstIndex: number, parts: readonly Uint8Array[], dst: Uint8Array, threads: number): void {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) throw new RangeError(`key must be ${KEY_BYTES} bytes`);
  if (!(schedule.noncePrefix instanceof Uint8Array) || schedule.noncePrefix.length !== NONCE_PREFIX_BYTES) throw new RangeError(`nonce prefix must be ${NONCE_PREFIX_BYTES} bytes`);
  if (!Number.isSafeInteger(schedule.segmentBytes) || schedule.segmentBytes < 1 || schedule.segmentBytes > 0x7fff_ffff) throw new RangeError('segmentBytes out of range');
  if (!Number.isSafeInteger(firstIndex) || firstIndex < 0 || firstIndex > 0xffff_ffff) throw new RangeError('segment index out of range');
  if (!Array.isArray(parts) || !parts.every((p) => p instanceof Uint8Array)) throw new TypeError('parts must be an array of Uint8Array');
  if (!(dst instanceof Uint8Array)) throw new TypeError('dst must be a Uint8Array');
  if (!Number.isSafeInteger(threads) || threads < 1 || threads > 256) throw new RangeError('threads must be an integer in [1, 256]');
}

/**
 * Runs one native job; an abort stops it early (segments not yet started are skipped) and rejects with the
 * signal's reason once no native thread touches the buffers any more.
 */
function run<T>(signal: AbortSignal | undefined, start: (cancel: Uint8Array | undefined, done: (error: Error | null, value: T) => void) => void, cancelled: (value: T) => boolean): Promise<T> {
  signal?.throwIfAborted();
  const cancel = signal ? new Uint8Array(1) : undefined;
  const onAbort = () => (cancel![0] = 1);
  signal?.addEventListener('abort', onAbort, { once: true });
  return new Promise<T>((resolve, reject) => {
    start(cancel, (error, value) => {
      signal?.removeEventListener('abort', onAbort);
      if (error) reject(error);
      else if (cancelled(value)) reject(signal!.reason);
      else resolve(value);
    });
  });
}

/** Seals segments firstIndex… from `parts` (their concatenation: whole segments unless the batch ends the object) into dst. */
export function sealBatch(key: Uint8Array, schedule: SegmentSchedule, firstIndex: number, isLastBatch: boolean, parts: readonly Uint8Array[], dst: Uint8Array, threads: number, signal?: AbortSignal): Promise<void> {
  check(key, schedule, firstIndex, parts, dst, threads);
  return run<boolean>(signal, (cancel, done) => nativeGcm!.sealBatch!(key, schedule.noncePrefix, schedule.segmentBytes, firstIndex, isLastBatch, parts, dst, threads, cancel, done), (c) => c).then(() => undefined);
}

/** Opens sealed segments; resolves -1 when every tag verified, else the lowest failing index (dst zeroed). */
export function openBatch(key: Uint8Array, schedule: SegmentSchedule, firstIndex: number, isLastBatch: boolean, parts: readonly Uint8Array[], dst: Uint8Array, threads: number, signal?: AbortSignal): Promise<number> {
  check(key, schedule, firstIndex, parts, dst, threads);
  return run<number>(signal, (cancel, done) => nativeGcm!.openBatch!(key, schedule.noncePrefix, schedule.segmentBytes, firstIndex, isLastBatch, parts, dst, threads, cancel, done), (f) => f === -2);
}

/** Output memory for a large one-shot result: huge-page backed where possible (first touch is slow here). */
export function allocOutput(bytes: number): Buffer {
  if (enabled && nativeGcm!.allocBytes && bytes >= 2 * 1024 * 1024) return nativeGcm!.allocBytes(bytes);
  return Buffer.allocUnsafeSlow(bytes);
}

/**
 * A stream's output batch (handed downstream, never reused): made natively where the addon is built. A Buffer made
 * in JS counts as external memory, and V8 answers every few tens of MiB of those with a full mark-compact: a
 * quarter of the CPU of a 2 GB/s stream (measured). node:crypto's own outputs are made the native way.
 */
export function allocStreamOutput(bytes: number): Buffer {
  return nativeGcm?.allocBytes ? nativeGcm.allocBytes(bytes, false) : Buffer.allocUnsafe(bytes);
}
