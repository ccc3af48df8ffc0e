// The sealed object's header and payload layout: constants, encode/parse, and the arithmetic that maps
// plaintext offsets to segments. Byte-by-byte description in the README ("Sealed format"). Parsing failures are DecryptionError
// (one uninformative error for anything wrong with a sealed object).
import { DecryptionError } from '../errors.js';

/** "HCEO": hsm-crypto-engine object. */
export const MAGIC = Uint8Array.of(0x48, 0x43, 0x45, 0x4f);
/**
 * Version 2: the DEK is wrapped with a fixed AAD (SEALED_DEK_AAD) and the context is bound only through the key
 * derivation and commitment, so rewrapHeader needs no context. Version 1 (DEK wrapped with the context as AAD)
 * is still read.
 */
export const FORMAT_VERSION = 2;
export const FORMAT_VERSION_1 = 1;
/** HSM AAD of a version-2 header's DEK (never a canonical context: that starts with a small u32 count). */
export const SEALED_DEK_AAD: Uint8Array = new TextEncoder().encode('hce/aead/v2 dek');
/** Suite 1: AES-256-GCM segments, HKDF-SHA256 per-object key and key commitment, nonce = prefix ‖ counter ‖ last. */
export const SUITE_AES256GCM_HKDFSHA256_COMMIT = 1;

export const KEY_BYTES = 32; // AES-256
export const TAG_BYTES = 16; // full GCM tag, NIST SP 800-38D §5.2.1.2
export const NONCE_BYTES = 12; // 96-bit IV, NIST SP 800-38D §8.2.1 (deterministic construction)
export const NONCE_PREFIX_BYTES = 7; // Tink AesGcmHkdfStreaming: 7-byte prefix ‖ 4-byte counter ‖ 1-byte last flag
export const SALT_BYTES = 32; // HKDF salt, RFC 5869 §3.1
export const COMMITMENT_BYTES = 32; // 256-bit key commitment (AWS Encryption SDK committing suites)
export const MAX_WRAPPED_DEK_BYTES = 255; // stored in one byte

// Field offsets.
export const OFFSET_MAGIC = 0;
export const OFFSET_VERSION = 4;
export const OFFSET_SUITE = 5;
export const OFFSET_SEGMENT_BYTES = 6;
export const OFFSET_SALT = 10;
export const OFFSET_NONCE_PREFIX = 42;
export const OFFSET_COMMITMENT = 49;
export const OFFSET_WRAPPED_LENGTH = 81;
export const OFFSET_WRAPPED = 82;
/** Bytes [0, 49): magic … nonce prefix. Mixed into the key derivation, so changing any of them changes every key. */
export const HEADER_CORE_BYTES = OFFSET_COMMITMENT;
/** Header bytes before the wrapped DEK. */
export const HEADER_FIXED_BYTES = OFFSET_WRAPPED;
/**
 * The header is zero-padded after the wrapped DEK to a multiple of this, so the payload keeps the alignment of
 * the buffer holding the object: bulk copies between shared and plain memory run ~6× faster when source and
 * destination agree modulo 8 (V8 copies shared memory word by word only when they do).
 */
export const HEADER_ALIGN_BYTES = 8;

/** Header length for a wrapped DEK of `wrappedBytes`: 82 + W, rounded up to a multiple of 8. */
export function headerLengthFor(wrappedBytes: number): number {
  return Math.ceil((HEADER_FIXED_BYTES + wrappedBytes) / HEADER_ALIGN_BYTES) * HEADER_ALIGN_BYTES;
}

export const MIN_SEGMENT_BYTES = 16;
export const MAX_SEGMENT_BYTES = 64 * 1024 * 1024;
export const DEFAULT_SEGMENT_BYTES = 256 * 1024;
/** The segment counter is 32 bits wide (nonce bytes 7..10): at most 2^32 segments per object. */
export const MAX_SEGMENTS = 2 ** 32;
/** Largest plaintext for a segment size: MAX_SEGMENTS full segments. */
export function maxObjectBytes(segmentBytes: number): number {
  return MAX_SEGMENTS * segmentBytes;
}

export interface Header {
  version: number;
  suite: number;
  segmentBytes: number;
  salt: Uint8Array;
  noncePrefix: Uint8Array;
  commitment: Uint8Array;
  wrappedDek: Uint8Array;
  /** The authenticated core, bytes [0, HEADER_CORE_BYTES) of the header. */
  core: Uint8Array;
  /** Total header length: HEADER_FIXED_BYTES + wrappedDek.length, padded to a multiple of 8. */
  length: number;
}

/** The HSM AAD a header's wrapped DEK is bound to: fixed from version 2, the canonical context in version 1. */
export function dekAad(version: number, context: Uint8Array): Uint8Array {
  return version === FORMAT_VERSION_1 ? context : SEALED_DEK_AAD;
}

/** Bytes [0, HEADER_CORE_BYTES): what the key derivation authenticates. */
export function encodeHeaderCore(segmentBytes: number, salt: Uint8Array, noncePrefix: Uint8Array, version = FORMAT_VERSION): Uint8Array {
  const core = new Uint8Array(HEADER_CORE_BYTES);
  core.set(MAGIC, OFFSET_MAGIC);
  core[OFFSET_VERSION] = version;
  core[OFFSET_SUITE] = SUITE_AES256GCM_HKDFSHA256_COMMIT;
  new DataView(core.buffer).setUint32(OFFSET_SEGMENT_BYTES, segmentBytes);
  core.set(salt, OFFSET_SALT);
  core.set(noncePrefix, OFFSET_NONCE_PREFIX);
  return core;
}

/** The full header: core ‖ commitment ‖ wrapped length ‖ wrapped DEK ‖ zero padding to a multiple of 8. */
export function encodeHeader(core: Uint8Array, commitment: Uint8Array, wrappedDek: Uint8Array): Uint8Array {
  if (wrappedDek.length < 1 || wrappedDek.length > MAX_WRAPPED_DEK_BYTES) {
    throw new RangeError(`wrapped data key must be 1..${MAX_WRAPPED_DEK_BYTES} bytes, got ${wrappedDek.length}`);
  }
  const out = new Uint8Array(headerLengthFor(wrappedDek.length)); // padding stays zero
  out.set(core, 0);
  out.set(commitment, OFFSET_COMMITMENT);
  out[OFFSET_WRAPPED_LENGTH] = wrappedDek.length;
  out.set(wrappedDek, OFFSET_WRAPPED);
  return out;
}

/**
 * Header length from a prefix of a sealed object: `undefined` while fewer than HEADER_FIXED_BYTES are known,
 * DecryptionError if the prefix cannot start a header of this format.
 */
export function headerLength(prefix: Uint8Array): number | undefined {
  for (let i = 0; i < MAGIC.length && i < prefix.length; i++) {
    if (prefix[i] !== MAGIC[i]) throw new DecryptionError();
  }
  if (prefix.length > OFFSET_VERSION && prefix[OFFSET_VERSION] !== FORMAT_VERSION && prefix[OFFSET_VERSION] !== FORMAT_VERSION_1) throw new DecryptionError();
  if (prefix.length > OFFSET_SUITE && prefix[OFFSET_SUITE] !== SUITE_AES256GCM_HKDFSHA256_COMMIT) throw new DecryptionError();
  if (prefix.length < HEADER_FIXED_BYTES) return undefined;
  const wrapped = prefix[OFFSET_WRAPPED_LENGTH];
  if (wrapped === 0) throw new DecryptionError();
  return headerLengthFor(wrapped);
}

/** Parses the header at the start of `sealed` (views, no copies). DecryptionError if malformed or incomplete. */
export function parseHeader(sealed: Uint8Array): Header {
  const length = headerLength(sealed);
  if (length === undefined || sealed.length < length) throw new DecryptionError();
  const segmentBytes = new DataView(sealed.buffer, sealed.byteOffset, HEADER_FIXED_BYTES).getUint32(OFFSET_SEGMENT_BYTES);
  if (segmentBytes < MIN_SEGMENT_BYTES || segmentBytes > MAX_SEGMENT_BYTES) throw new DecryptionError();
  const wrappedEnd = OFFSET_WRAPPED + sealed[OFFSET_WRAPPED_LENGTH];
  for (let i = wrappedEnd; i < length; i++) if (sealed[i] !== 0) throw new DecryptionError(); // padding
  return {
    version: sealed[OFFSET_VERSION],
    suite: sealed[OFFSET_SUITE],
    segmentBytes,
    salt: sealed.subarray(OFFSET_SALT, OFFSET_SALT + SALT_BYTES),
    noncePrefix: sealed.subarray(OFFSET_NONCE_PREFIX, OFFSET_NONCE_PREFIX + NONCE_PREFIX_BYTES),
    commitment: sealed.subarray(OFFSET_COMMITMENT, OFFSET_COMMITMENT + COMMITMENT_BYTES),
    wrappedDek: sealed.subarray(OFFSET_WRAPPED, wrappedEnd),
    core: sealed.subarray(0, HEADER_CORE_BYTES),
    length,
  };
}

/** Segment count of a plaintext: empty → one empty final segment; otherwise ceil(n / S). */
export function segmentCount(plaintextBytes: number, segmentBytes: number): number {
  return plaintextBytes === 0 ? 1 : Math.ceil(plaintextBytes / segmentBytes);
}

/** Payload length (segments with their tags) of a plaintext. */
export function payloadLength(plaintextBytes: number, segmentBytes: number): number {
  return plaintextBytes + segmentCount(plaintextBytes, segmentBytes) * TAG_BYTES;
}

/** Range check used by every encrypt path. */
export function checkObjectSize(plaintextBytes: number, segmentBytes: number): void {
  if (plaintextBytes > maxObjectBytes(segmentBytes)) {
    throw new RangeError(`object exceeds ${MAX_SEGMENTS} segments of ${segmentBytes} bytes`);
  }
}

/**
 * Plaintext length implied by a payload length. The total length is not stored: the last segment's flag
 * (in its nonce) authenticates where the object ends. Every non-final segment holds exactly S plaintext bytes;
 * the final one holds 1..S (0 only when it is the only segment). Anything else → DecryptionError.
 */
export function plaintextLength(payloadBytes: number, segmentBytes: number): number {
  const sealedSegment = segmentBytes + TAG_BYTES;
  if (payloadBytes < TAG_BYTES) throw new DecryptionError();
  const count = Math.ceil(payloadBytes / sealedSegment);
  const last = payloadBytes - (count - 1) * sealedSegment - TAG_BYTES;
  if (last < 0 || (last === 0 && count > 1) || count > MAX_SEGMENTS) throw new DecryptionError();
  return payloadBytes - count * TAG_BYTES;
}
