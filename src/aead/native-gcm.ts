// AES-256-GCM (and the HKDF of the key schedule) through the OpenSSL Node links, or intel-ipsec-mb's VAES kernels
// where built and supported (native/gcm.cc): no per-call output allocation and copy as with node:crypto's
// update(), and in place where src and dst coincide. Optional: when the
// addon is missing (or HSM_GCM_NATIVE=0), callers use node:crypto. Both paths are checked against the same
// known-answer vectors.
import { createRequire } from 'node:module';

/** The addon's AES-GCM implementations: OpenSSL always, intel-ipsec-mb where built and the CPU has VAES. */
export type GcmKernel = 'openssl' | 'ipsec-mb';

export interface NativeGcm {
  /** What this build and CPU can run; the fastest is in use unless HSM_GCM_KERNEL=openssl. */
  readonly kernels?: readonly GcmKernel[];
  /** Whether this build has intel-ipsec-mb linked in (its kernels still need a CPU with VAES). */
  readonly ipsecMbLinked?: boolean;
  /** The implementation every native seal and open of this process uses now. */
  kernel?(): GcmKernel;
  /** Switches it for the whole process (tests and benchmarks); false when this one is not available. */
  setKernel?(kernel: GcmKernel): boolean;
  /** dst = ciphertext ‖ tag (src.length + 16 bytes); dst may start at src. */
  seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, src: Uint8Array, dst: Uint8Array): void;
  /** src = ciphertext ‖ tag; dst gets src.length - 16 bytes; false (dst zeroed) when the tag does not verify. */
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, src: Uint8Array, dst: Uint8Array): boolean;
  /** tag (16 bytes) = GMAC of data. */
  gmac(key: Uint8Array, nonce: Uint8Array, data: Uint8Array, tag: Uint8Array): void;
  /** HKDF-SHA256: one extract, then outX = HMAC(PRK, labelX ‖ core ‖ context ‖ 0x01) (32 bytes each). */
  /**
   * Segments firstIndex… of one object sealed (or opened) on the addon's own threads, at most `maxParallel` at a
   * time; `parts` are read where they lie (consecutive pieces of the batch's input), `dst` is written. The callback
   * runs on this thread: seal → (error | null, cancelled); open → (error | null, failed: -1, -2 if cancelled, or
   * the lowest failing index). Setting cancel[0] skips the segments not yet started.
   */
  sealBatch?(key: Uint8Array, noncePrefix: Uint8Array, segmentBytes: number, firstIndex: number, isLastBatch: boolean, parts: readonly Uint8Array[], dst: Uint8Array, maxParallel: number, cancel: Uint8Array | undefined, callback: (error: Error | null, cancelled: boolean) => void): void;
  openBatch?(key: Uint8Array, noncePrefix: Uint8Array, segmentBytes: number, firstIndex: number, isLastBatch: boolean, parts: readonly Uint8Array[], dst: Uint8Array, maxParallel: number, cancel: Uint8Array | undefined, callback: (error: Error | null, failed: number) => void): void;
  /**
   * One stripe of a put on the addon's threads (native/stripe-seal.cc): the bytes tasks.ts sealStripe makes. The
   * callback gets the stripe's chunk size.
   */
  sealStripe?(payloadKey: Uint8Array, noncePrefix: Uint8Array, chunkKey: Uint8Array, segmentBytes: number, k: number, m: number, stripe: number, isLast: boolean, plain: Uint8Array, plainBytes: number, buffer: Uint8Array, tables: Uint8Array, kernel: string, callback: (error: Error | null, chunkBytes: number) => void): void;
  /**
   * A get's healthy stripe (native/stripe-seal.cc): the present chunks' tags verified, then segments first…last
   * opened into out. status 0 done, 1 a chunk tag failed (nothing opened), 2 a segment did not authenticate.
   */
  openStripe?(chunkKey: Uint8Array, k: number, m: number, stripe: number, chunkBytes: number, short: boolean, buffer: Uint8Array, present: Uint8Array, payloadKey: Uint8Array, noncePrefix: Uint8Array, segmentBytes: number, firstSegment: number, lastSegment: number, segments: number, plaintextBytes: number, out: Uint8Array, callback: (error: Error | null, status: number) => void): void;
  /** Starts at least n native pool threads. */
  setThreads?(n: number): void;
  /**
   * n bytes as a Buffer made natively: with `huge` (default) and n ≥ 2 MiB, fresh memory advised for huge pages
   * (one page fault per 2 MiB); else plain memory that V8 frees in scavenges (no full GC per few tens of MiB).
   */
  allocBytes?(n: number, huge?: boolean): Buffer;
  /** out (32 bytes) = HMAC-SHA256(key, parts concatenated); key ≤ 64 bytes, at most 8 parts. */
  hmacSha256?(key: Uint8Array, parts: readonly Uint8Array[], out: Uint8Array): void;
  hkdfTwo(ikm: Uint8Array, salt: Uint8Array, labelA: Uint8Array, labelB: Uint8Array, core: Uint8Array, context: Uint8Array, outA: Uint8Array, outB: Uint8Array): void;
}

const ADDON_PATH = '../../native/build/Release/hsm_gcm.node'; // from dist/aead/ to the package root

function load(): NativeGcm | null {
  if (process.env.HSM_GCM_NATIVE === '0') return null;
  try {
    return createRequire(import.meta.url)(ADDON_PATH) as NativeGcm;
  } catch {
    return null; // not built here (Windows, no compiler): node:crypto does the same work, a little slower
  }
}

export const nativeGcm: NativeGcm | null = load();
