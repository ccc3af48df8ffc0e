// The wrapped-DEK blob: self-describing (which root key, which version, which mechanism) and fixed-length for a
// given DEK length and mechanism, so rewrapping never changes an object header's size. The mechanism byte says
// how the token that made it wrapped it, so every blob stays readable on the token that made it.
//
//   offset  bytes  field
//   0       2      magic "HW" (0x48 0x57)
//   2       1      format version (1)
//   3       1      mechanism (below)
//   4       16     root key id
//   20      4      root key version, big-endian
//   24      …      per mechanism:
//     1 = AES-256-GCM in the HSM:  IV (12) ‖ ciphertext of the n-byte DEK ‖ tag (16).
//         GCM AAD = bytes 0..35 ‖ encoded caller aad (the blob layout of every blob made before mechanism choice).
//     2 = AES key wrap with padding (RFC 5649) in the HSM: KWP(SHA-256(bytes 0..23 ‖ encoded caller aad) ‖ DEK),
//         ⌈(32+n)/8⌉·8 + 8 bytes. KWP authenticates its whole input, so the digest binds header and aad.
//     3 = AES-256-CBC-PAD + HMAC-SHA-256 in the HSM (encrypt-then-MAC, two keys per version): IV (16) ‖
//         CBC-PAD ciphertext (⌊n/16⌋·16 + 16) ‖ MAC (32) over bytes 0..(end of ciphertext) ‖ encoded caller aad.
import { DecryptionError } from '../errors.js';
import { CBC_IV_BYTES, GCM_IV_BYTES } from './templates.js';

export const WRAPPED_MAGIC = Buffer.from('HW', 'latin1');
export const WRAPPED_FORMAT_VERSION = 1;
export const MECHANISM_AES_GCM = 1;
export const MECHANISM_AES_KWP = 2;
export const MECHANISM_AES_CBC_HMAC = 3;
export type WrapMechanismByte = typeof MECHANISM_AES_GCM | typeof MECHANISM_AES_KWP | typeof MECHANISM_AES_CBC_HMAC;
export const KEY_ID_BYTES = 16;
/** Magic, format, mechanism, key id, version: what every mechanism's blob starts with. */
export const COMMON_HEADER_BYTES = 2 + 1 + 1 + KEY_ID_BYTES + 4;
/** The GCM blob's header (common header ‖ IV): what its GCM AAD starts with. */
export const WRAPPED_HEADER_BYTES = COMMON_HEADER_BYTES + GCM_IV_BYTES;
export const WRAP_TAG_BYTES = 16;
export const KWP_DIGEST_BYTES = 32;
export const HMAC_BYTES = 32;
/** DEKs (and other secrets) the HSM wraps: 1..4096 bytes. */
export const MAX_WRAP_PLAINTEXT_BYTES = 4096;

export interface WrappedKeyParts {
  mechanism: WrapMechanismByte;
  keyId: Buffer;
  version: number;
  /** GCM: bytes 0..35; KWP: bytes 0..23; CBC-HMAC: bytes 0..(end of ciphertext), what the MAC covers before the aad. */
  header: Buffer;
  /** GCM: 12 bytes; CBC: 16 bytes; KWP: empty. */
  iv: Buffer;
  /** GCM: ciphertext ‖ tag; KWP: the wrapped bytes; CBC: the ciphertext. */
  sealed: Buffer;
  /** CBC-HMAC: the MAC; else empty. */
  mac: Buffer;
}

/** The blob's length for an n-byte DEK under a mechanism. */
export function wrappedLength(mechanism: WrapMechanismByte, n: number): number {
  switch (mechanism) {
    case MECHANISM_AES_GCM:
      return WRAPPED_HEADER_BYTES + n + WRAP_TAG_BYTES;
    case MECHANISM_AES_KWP:
      return COMMON_HEADER_BYTES + kwpLength(KWP_DIGEST_BYTES + n);
    case MECHANISM_AES_CBC_HMAC:
      return COMMON_HEADER_BYTES + CBC_IV_BYTES + cbcPadLength(n) + HMAC_BYTES;
  }
}

export const kwpLength = (n: number) => Math.ceil(n / 8) * 8 + 8;
export const cbcPadLength = (n: number) => Math.floor(n / 16) * 16 + 16;

/** The common header, written at the start of `into`. */
export function encodeCommonHeader(mechanism: WrapMechanismByte, keyId: Buffer, version: number, into: Buffer): Buffer {
  WRAPPED_MAGIC.copy(into, 0);
  into[2] = WRAPPED_FORMAT_VERSION;
  into[3] = mechanism;
  keyId.copy(into, 4);
  into.writeUInt32BE(version, 20);
  return into;
}

/** GCM's 36-byte header (common header ‖ IV), written at the start of `header` (the caller's AAD may follow). */
export function encodeWrappedHeader(keyId: Buffer, version: number, iv: Buffer, header = Buffer.alloc(WRAPPED_HEADER_BYTES)): Buffer {
  encodeCommonHeader(MECHANISM_AES_GCM, keyId, version, header);
  iv.copy(header, COMMON_HEADER_BYTES);
  return header;
}

/** Splits a wrapped blob; anything malformed is a DecryptionError (one answer for every bad blob). */
export function parseWrapped(wrapped: Uint8Array): WrappedKeyParts {
  const blob = Buffer.from(wrapped.buffer, wrapped.byteOffset, wrapped.byteLength);
  if (blob.length < COMMON_HEADER_BYTES || blob[0] !== WRAPPED_MAGIC[0] || blob[1] !== WRAPPED_MAGIC[1] || blob[2] !== WRAPPED_FORMAT_VERSION) {
    throw new DecryptionError();
  }
  const mechanism = blob[3];
  const body = blob.length - COMMON_HEADER_BYTES;
  let ok: boolean;
  if (mechanism === MECHANISM_AES_GCM) ok = body >= GCM_IV_BYTES + WRAP_TAG_BYTES + 1 && body <= GCM_IV_BYTES + WRAP_TAG_BYTES + MAX_WRAP_PLAINTEXT_BYTES;
  else if (mechanism === MECHANISM_AES_KWP) ok = body % 8 === 0 && body >= kwpLength(KWP_DIGEST_BYTES + 1) && body <= kwpLength(KWP_DIGEST_BYTES + MAX_WRAP_PLAINTEXT_BYTES);
  else if (mechanism === MECHANISM_AES_CBC_HMAC) {
    const ct = body - CBC_IV_BYTES - HMAC_BYTES;
    ok = ct >= 16 && ct % 16 === 0 && ct <= cbcPadLength(MAX_WRAP_PLAINTEXT_BYTES);
  } else ok = false;
  if (!ok) throw new DecryptionError();
  const version = blob.readUInt32BE(20);
  if (version === 0) throw new DecryptionError();
  // One copy (the caller may reuse or change its buffer while the HSM call is in flight), then views of it.
  const copy = Buffer.from(blob);
  const keyId = copy.subarray(4, 4 + KEY_ID_BYTES);
  const empty = Buffer.alloc(0);
  switch (mechanism as WrapMechanismByte) {
    case MECHANISM_AES_GCM:
      return {
        mechanism: MECHANISM_AES_GCM, keyId, version,
        header: copy.subarray(0, WRAPPED_HEADER_BYTES),
        iv: copy.subarray(COMMON_HEADER_BYTES, WRAPPED_HEADER_BYTES),
        sealed: copy.subarray(WRAPPED_HEADER_BYTES),
        mac: empty,
      };
    case MECHANISM_AES_KWP:
      return { mechanism: MECHANISM_AES_KWP, keyId, version, header: copy.subarray(0, COMMON_HEADER_BYTES), iv: empty, sealed: copy.subarray(COMMON_HEADER_BYTES), mac: empty };
    case MECHANISM_AES_CBC_HMAC: {
      const macAt = copy.length - HMAC_BYTES;
      return {
        mechanism: MECHANISM_AES_CBC_HMAC, keyId, version,
        header: copy.subarray(0, macAt),
        iv: copy.subarray(COMMON_HEADER_BYTES, COMMON_HEADER_BYTES + CBC_IV_BYTES),
        sealed: copy.subarray(COMMON_HEADER_BYTES + CBC_IV_BYTES, macAt),
        mac: copy.subarray(macAt),
      };
    }
  }
}

/** The key id inside a wrapped blob without parsing the rest (for cache bookkeeping). */
export function wrappedKeyIdHex(wrapped: Uint8Array): string {
  return Buffer.from(wrapped.buffer, wrapped.byteOffset + 4, KEY_ID_BYTES).toString('hex');
}

/** A GCM blob being assembled by `layoutWrapped`: the HSM writes ciphertext and tag into `sealed`, a view of `blob`. */
export interface WrappedLayout {
  blob: Buffer;
  /** GCM AAD = header ‖ caller aad. */
  gcmAad: Buffer;
  sealed: Buffer;
}

/** Lays out a GCM blob for an `plaintextLength`-byte DEK: header written, AAD built, room for ciphertext and tag. */
export function layoutWrapped(keyId: Buffer, version: number, iv: Buffer, aad: Buffer, plaintextLength: number): WrappedLayout {
  // GCM AAD built in one buffer; the blob is assembled in place around the ciphertext.
  const gcmAad = Buffer.allocUnsafe(WRAPPED_HEADER_BYTES + aad.length);
  encodeWrappedHeader(keyId, version, iv, gcmAad);
  aad.copy(gcmAad, WRAPPED_HEADER_BYTES);
  const blob = Buffer.alloc(WRAPPED_HEADER_BYTES + plaintextLength + WRAP_TAG_BYTES);
  gcmAad.copy(blob, 0, 0, WRAPPED_HEADER_BYTES);
  return { blob, gcmAad, sealed: blob.subarray(WRAPPED_HEADER_BYTES) };
}

/** The GCM AAD a parsed blob was sealed with, given the caller's encoded aad. */
export function wrappedGcmAad(parts: WrappedKeyParts, aad: Buffer): Buffer {
  return Buffer.concat([parts.header, aad]);
}
