// Per-object key schedule: from the DEK, the header core and the context to the payload key, the key
// commitment and each segment's nonce.
//
//   PRK         = HKDF-Extract(salt = header.salt, IKM = DEK)                       RFC 5869 §2.2
//   payload key = HKDF-Expand(PRK, "hce/aead/v1 payload key" ‖ core ‖ ctx, 32)      RFC 5869 §2.3
//   commitment  = HKDF-Expand(PRK, "hce/aead/v1 key commitment" ‖ core ‖ ctx, 32)
//   nonce(i)    = nonce prefix (7) ‖ u32be(i) ‖ (0x01 if i is the last segment else 0x00)
//
// `core` is header bytes [0, 49) (magic, version, suite, segment size, salt, nonce prefix) and `ctx` the
// canonical context. Any change to them gives unrelated keys, so every segment tag authenticates the header
// core and the context; the commitment (checked before any segment is opened) makes the payload decryptable
// under one DEK only (AWS Encryption SDK committing suites). The labels differ at their 13th byte, and the
// core has a fixed length, so the two infos can never be equal.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { nativeGcm } from './native-gcm.js';
import { COMMITMENT_BYTES, HEADER_CORE_BYTES, KEY_BYTES, NONCE_BYTES, NONCE_PREFIX_BYTES, SALT_BYTES } from './header.js';

export const LABEL_PAYLOAD_KEY = new TextEncoder().encode('hce/aead/v1 payload key');
export const LABEL_KEY_COMMITMENT = new TextEncoder().encode('hce/aead/v1 key commitment');
const ONE = Uint8Array.of(1);

export interface ObjectKeys {
  /** AES-256 key of every segment of this object. Caller zeroes it. */
  payloadKey: Buffer;
  /** Stored in the header; compare with `commitmentMatches`. */
  commitment: Buffer;
}

function expand(prk: Uint8Array, label: Uint8Array, core: Uint8Array, context: Uint8Array): Buffer {
  // One HMAC block suffices: L = 32 = HashLen, so T(1) = HMAC(PRK, info ‖ 0x01).
  return hmacSha256(prk, [label, core, context, ONE]);
}

/** Derives the object's payload key and key commitment (see the module comment). `dek` is not modified. */
export function deriveObjectKeys(dek: Uint8Array, salt: Uint8Array, core: Uint8Array, context: Uint8Array): ObjectKeys {
  if (dek.length !== KEY_BYTES) throw new RangeError(`data key must be ${KEY_BYTES} bytes`);
  if (salt.length !== SALT_BYTES || core.length !== HEADER_CORE_BYTES) throw new RangeError('bad salt or header core');
  return deriveTwo(dek, salt, LABEL_PAYLOAD_KEY, LABEL_KEY_COMMITMENT, core, context, (payloadKey, commitment) => ({ payloadKey, commitment }));
}

/**
 * HKDF-SHA256 (RFC 5869) with one extract and two one-block expands over label ‖ core ‖ context. Natively when the
 * addon is built (one call instead of three HMAC objects: a large share of sealing a small object), else node:crypto.
 */
export function deriveTwo<T>(
  ikm: Uint8Array, salt: Uint8Array, labelA: Uint8Array, labelB: Uint8Array, core: Uint8Array, context: Uint8Array,
  result: (a: Buffer, b: Buffer) => T,
): T {
  // One allocation for both (each half zeroed by its owner): an ArrayBuffer's backing store costs more than the hashing.
  const both = Buffer.allocUnsafeSlow(64);
  const a = both.subarray(0, 32);
  const b = both.subarray(32);
  if (nativeGcm) {
    nativeGcm.hkdfTwo(ikm, salt, labelA, labelB, core, context, a, b);
    return result(a, b);
  }
  const prk = hmacSha256(salt, [ikm]);
  try {
    expand(prk, labelA, core, context).copy(a);
    expand(prk, labelB, core, context).copy(b);
    return result(a, b);
  } finally {
    prk.fill(0);
  }
}

/** HMAC-SHA256 of the parts concatenated (at most 8; a key of at most 64 bytes): natively when built, else node:crypto. */
export function hmacSha256(key: Uint8Array, parts: readonly Uint8Array[]): Buffer {
  if (nativeGcm?.hmacSha256 && key.length <= 64 && parts.length <= 8) {
    const out = Buffer.allocUnsafe(32);
    nativeGcm.hmacSha256(key, parts, out);
    return out;
  }
  const h = createHmac('sha256', key);
  for (const part of parts) h.update(part);
  return h.digest();
}

/** Constant-time comparison of a derived commitment with the one stored in a header. */
export function commitmentMatches(derived: Uint8Array, stored: Uint8Array): boolean {
  return stored.length === COMMITMENT_BYTES && derived.length === COMMITMENT_BYTES && timingSafeEqual(derived, stored);
}

/** Nonce of segment `index`: prefix ‖ u32be(index) ‖ last flag (Tink AesGcmHkdfStreaming). Writes into `out`. */
export function segmentNonce(
  noncePrefix: Uint8Array,
  index: number,
  last: boolean,
  out: Uint8Array = new Uint8Array(NONCE_BYTES),
): Uint8Array {
  if (noncePrefix.length !== NONCE_PREFIX_BYTES) throw new RangeError(`nonce prefix must be ${NONCE_PREFIX_BYTES} bytes`);
  if (!Number.isInteger(index) || index < 0 || index > 0xffff_ffff) throw new RangeError('segment index out of range');
  out.set(noncePrefix, 0);
  out[7] = index >>> 24;
  out[8] = (index >>> 16) & 0xff;
  out[9] = (index >>> 8) & 0xff;
  out[10] = index & 0xff;
  out[11] = last ? 1 : 0;
  return out;
}
