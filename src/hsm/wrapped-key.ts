// The wrapped-DEK blob: self-describing (which root key, which version, which mechanism) and fixed-length for a
// given DEK length, so rewrapping never changes an object header's size.
//
//   offset  bytes  field
//   0       2      magic "HW" (0x48 0x57)
//   2       1      format version (1)
//   3       1      mechanism (1 = AES-256-GCM inside the HSM, 96-bit IV, 128-bit tag)
//   4       16     root key id
//   20      4      root key version, big-endian
//   24      12     GCM IV (random)
//   36      n+16   GCM ciphertext of the n-byte DEK, then the tag
//
// GCM AAD = bytes 0..35 (everything before the ciphertext) ‖ encoded caller aad: the key id, version and IV
// cannot be changed without the HSM's tag check failing.
import { DecryptionError } from '../errors.js';
import { GCM_IV_BYTES } from './templates.js';

export const WRAPPED_MAGIC = Buffer.from('HW', 'latin1');
export const WRAPPED_FORMAT_VERSION = 1;
export const MECHANISM_AES_GCM = 1;
export const KEY_ID_BYTES = 16;
export const WRAPPED_HEADER_BYTES = 2 + 1 + 1 + KEY_ID_BYTES + 4 + GCM_IV_BYTES;
export const WRAP_TAG_BYTES = 16;
/** DEKs (and other secrets) the HSM wraps: 1..4096 bytes. */
export const MAX_WRAP_PLAINTEXT_BYTES = 4096;

export interface WrappedKeyParts {
  keyId: Buffer;
  version: number;
  iv: Buffer;
  /** Bytes 0..35: what the GCM AAD starts with. */
  header: Buffer;
  /** Ciphertext followed by the tag. */
  sealed: Buffer;
}

/** The blob's first 36 bytes, written at the start of `header` (which may be longer: the caller's AAD follows). */
export function encodeWrappedHeader(keyId: Buffer, version: number, iv: Buffer, header = Buffer.alloc(WRAPPED_HEADER_BYTES)): Buffer {
  WRAPPED_MAGIC.copy(header, 0);
  header[2] = WRAPPED_FORMAT_VERSION;
  header[3] = MECHANISM_AES_GCM;
  keyId.copy(header, 4);
  header.writeUInt32BE(version, 20);
  iv.copy(header, 24);
  return header;
}

/** Splits a wrapped blob; anything malformed is a DecryptionError (one answer for every bad blob). */
export function parseWrapped(wrapped: Uint8Array): WrappedKeyParts {
  const blob = Buffer.from(wrapped.buffer, wrapped.byteOffset, wrapped.byteLength);
  if (
    blob.length < WRAPPED_HEADER_BYTES + WRAP_TAG_BYTES + 1 ||
    blob.length > WRAPPED_HEADER_BYTES + WRAP_TAG_BYTES + MAX_WRAP_PLAINTEXT_BYTES ||
    blob[0] !== WRAPPED_MAGIC[0] ||
    blob[1] !== WRAPPED_MAGIC[1] ||
    blob[2] !== WRAPPED_FORMAT_VERSION ||
    blob[3] !== MECHANISM_AES_GCM
  ) {
    throw new DecryptionError();
  }
  const version = blob.readUInt32BE(20);
  if (version === 0) throw new DecryptionError();
  // One copy (the caller may reuse or change its buffer while the HSM call is in flight), then views of it.
  const copy = Buffer.from(blob);
  return {
    keyId: copy.subarray(4, 4 + KEY_ID_BYTES),
    version,
    iv: copy.subarray(24, 24 + GCM_IV_BYTES),
    header: copy.subarray(0, WRAPPED_HEADER_BYTES),
    sealed: copy.subarray(WRAPPED_HEADER_BYTES),
  };
}

/** The key id inside a wrapped blob without parsing the rest (for cache bookkeeping). */
export function wrappedKeyIdHex(wrapped: Uint8Array): string {
  return Buffer.from(wrapped.buffer, wrapped.byteOffset + 4, KEY_ID_BYTES).toString('hex');
}

/** A blob being assembled by `layoutWrapped`: the HSM writes ciphertext and tag into `sealed`, a view of `blob`. */
export interface WrappedLayout {
  blob: Buffer;
  /** GCM AAD = header ‖ caller aad. */
  gcmAad: Buffer;
  sealed: Buffer;
}

/** Lays out the blob for an `plaintextLength`-byte DEK: header written, AAD built, room for ciphertext and tag. */
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
