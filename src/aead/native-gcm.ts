// AES-256-GCM (and the HKDF of the key schedule) through the OpenSSL Node links (native/gcm.cc): no per-call output
// allocation and copy as with node:crypto's update(), and in place where src and dst coincide. Optional: when the
// addon is missing (or HSM_GCM_NATIVE=0), callers use node:crypto. Both paths are checked against the same
// known-answer vectors.
import { createRequire } from 'node:module';

export interface NativeGcm {
  /** dst = ciphertext ‖ tag (src.length + 16 bytes); dst may start at src. */
  seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, src: Uint8Array, dst: Uint8Array): void;
  /** src = ciphertext ‖ tag; dst gets src.length - 16 bytes; false (dst zeroed) when the tag does not verify. */
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, src: Uint8Array, dst: Uint8Array): boolean;
  /** tag (16 bytes) = GMAC of data. */
  gmac(key: Uint8Array, nonce: Uint8Array, data: Uint8Array, tag: Uint8Array): void;
  /** HKDF-SHA256: one extract, then outX = HMAC(PRK, labelX ‖ core ‖ context ‖ 0x01) (32 bytes each). */
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
