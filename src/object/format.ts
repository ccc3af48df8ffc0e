// The shard format: what every shard file holds, how an object's bytes map onto stripes and chunks, and the
// keys that authenticate shards. Documented byte by byte in the README ("Shard format").
//
//   shard    = shard header ‖ stripe_0 ‖ … ‖ stripe_{s-1} ‖ trailer
//   stripe_t = chunk (C bytes, or C' for a short last stripe) ‖ chunk tag (16)
//
// The object's sealed payload (segments of the sealed-object format, each ciphertext ‖ GCM tag) is cut into
// stripes of k chunks; parity chunks come from Reed-Solomon over them. Full stripes have chunks of C = S + 16
// bytes, so data chunk j of stripe t is exactly sealed segment t·k + j. The remainder R < k·C (if any) is a short
// last stripe of k chunks of C' = ⌈R / k⌉ bytes, zero-padded: small objects cost (k+m)/k of their size, not k+m
// whole segments.
//
// A shard is the blob `<ns>/<enc(name)>/-<gen>/<j>` (layout.ts); its geometry MAC binds the namespace, the name and
// the generation, which the reader takes from the key, so a blob moved to another generation, name or namespace
// fails. Rewrap records (`…/-<gen>/w<rgen>`) carry a newer wrapped DEK of a generation, MACed the same way.
//
// Keys (HKDF-SHA256, RFC 5869, from the DEK, the sealed header's salt and core; no context, so repair and rewrap
// work without it — the context is bound by the payload key and the key commitment of the sealed format):
//   meta key  = HKDF-Expand(PRK, "hce/shards/v1 meta key"  ‖ core, 32)  HMAC-SHA256 over geometry and trailer
//   chunk key = HKDF-Expand(PRK, "hce/shards/v1 chunk key" ‖ core, 32)  GMAC of every chunk
// The chunk tag is AES-256-GMAC (GCM with the chunk as AAD, no plaintext; NIST SP 800-38D §3) under the chunk
// key with nonce u32be(shard index) ‖ u64be(stripe index): a chunk moved to another shard or stripe, from another
// object (other DEK), or changed in any bit fails its tag.
import { createCipheriv, timingSafeEqual } from 'node:crypto';
import { nativeGcm } from '../aead/native-gcm.js';
import { deriveTwo, hmacSha256 } from '../aead/key-schedule.js';
import {
  HEADER_CORE_BYTES, HEADER_FIXED_BYTES, headerLength, headerLengthFor, MAX_WRAPPED_DEK_BYTES, parseHeader, TAG_BYTES, type Header,
} from '../aead/header.js';

export const SHARD_MAGIC = Buffer.from('HCES', 'latin1');
export const SHARD_FORMAT_VERSION = 2;
export const TRAILER_MAGIC = Buffer.from('HCET', 'latin1');
export const CHUNK_TAG_BYTES = 16;
export const MAC_BYTES = 32;
/** Fixed part of the shard header before the object id: magic, version, reserved, k, m, index, id length. */
export const SHARD_FIXED_BYTES = 14;
export const TRAILER_BYTES = 4 + 8 + MAC_BYTES;
export const OFFSET_SHARD_INDEX = 10;
/** Longest object id in bytes (UTF-8). */
export const MAX_OBJECT_ID_BYTES = 1024;
/** Enough to read any shard header in one go (fixed part, id, MAC, sealed header with a 255-byte wrapped DEK). */
export const SHARD_HEADER_PROBE_BYTES = SHARD_FIXED_BYTES + MAX_OBJECT_ID_BYTES + MAC_BYTES + headerLengthFor(MAX_WRAPPED_DEK_BYTES);
/**
 * Largest stripe buffer an object's shape may need (stripeBufferBytes: (k+m)·(S+32) + k·(S+16)): put refuses
 * larger shapes and readers treat a header asking for more as a bad shard, so no header field can make a reader
 * allocate more than this per stripe in flight.
 */
export const MAX_STRIPE_BUFFER_BYTES = 160 * 1024 * 1024;

/** Bytes a stripe buffer needs: k+m slots of (C + tag), then a k·C scratch area for a short last stripe. */
export function stripeBufferBytes(k: number, m: number, segmentBytes: number): number {
  const chunk = segmentBytes + TAG_BYTES;
  return (k + m) * (chunk + CHUNK_TAG_BYTES) + k * chunk;
}

const LABEL_META = Buffer.from('hce/shards/v1 meta key');
const LABEL_CHUNK = Buffer.from('hce/shards/v1 chunk key');
const LABEL_GEOMETRY = Buffer.from('hce/shards/v2 geometry');
const LABEL_TRAILER = Buffer.from('hce/shards/v1 trailer');
const LABEL_RECORD = Buffer.from('hce/shards/v2 rewrap record');
export const RECORD_MAGIC = Buffer.from('HCEW', 'latin1');
const EMPTY = new Uint8Array(0);

export interface ShardKeys {
  metaKey: Buffer;
  chunkKey: Buffer;
}

/** Where a stored object is: its namespace and name (bound into the DEK's AAD) and, for a shard, its generation. */
export interface ObjectRef {
  ns: string;
  name: string;
}

/** The HSM AAD of an object's DEK: its namespace and name, so a wrapped DEK only opens for the object it was made for. */
export function objectAad(ref: ObjectRef): string[] {
  return ['hce/object/v2', ref.ns, ref.name];
}

export function deriveShardKeys(dek: Uint8Array, salt: Uint8Array, core: Uint8Array): ShardKeys {
  if (core.length !== HEADER_CORE_BYTES) throw new RangeError('bad header core');
  return deriveTwo(dek, salt, LABEL_META, LABEL_CHUNK, core, EMPTY, (metaKey, chunkKey) => ({ metaKey, chunkKey }));
}

/** Geometry of an object: everything follows from k, m, the segment size and the plaintext length. */
export interface Geometry {
  k: number;
  m: number;
  segmentBytes: number;
  /** C: chunk bytes of a full stripe (one sealed segment). */
  chunkBytes: number;
  plaintextBytes: number;
  segments: number;
  /** Sealed payload bytes (plaintext + 16 per segment). */
  payloadBytes: number;
  fullStripes: number;
  /** C' of the short last stripe, or 0 when there is none. */
  lastChunkBytes: number;
  stripes: number;
  headerBytes: number;
  shardBytes: number;
}

export function geometry(k: number, m: number, segmentBytes: number, plaintextBytes: number, headerBytes: number): Geometry {
  const chunkBytes = segmentBytes + TAG_BYTES;
  const segments = Math.max(1, Math.ceil(plaintextBytes / segmentBytes));
  const payloadBytes = plaintextBytes + segments * TAG_BYTES;
  const fullStripes = Math.floor(payloadBytes / (k * chunkBytes));
  const rest = payloadBytes - fullStripes * k * chunkBytes;
  const lastChunkBytes = rest > 0 ? Math.ceil(rest / k) : 0;
  const stripes = fullStripes + (rest > 0 ? 1 : 0);
  const shardBytes = headerBytes + fullStripes * (chunkBytes + CHUNK_TAG_BYTES) + (rest > 0 ? lastChunkBytes + CHUNK_TAG_BYTES : 0) + TRAILER_BYTES;
  return { k, m, segmentBytes, chunkBytes, plaintextBytes, segments, payloadBytes, fullStripes, lastChunkBytes, stripes, headerBytes, shardBytes };
}

/** Chunk size of stripe t. */
export function stripeChunkBytes(g: Geometry, stripe: number): number {
  return stripe < g.fullStripes ? g.chunkBytes : g.lastChunkBytes;
}

/** Byte offset of stripe t's chunk inside a shard file. */
export function stripeOffset(g: Geometry, stripe: number): number {
  return g.headerBytes + stripe * (g.chunkBytes + CHUNK_TAG_BYTES);
}

/** Payload bytes (sealed segments) that stripe t carries in its data chunks. */
export function stripePayloadBytes(g: Geometry, stripe: number): number {
  return Math.min(g.payloadBytes - stripe * g.k * g.chunkBytes, g.k * stripeChunkBytes(g, stripe));
}

/** The fields of a shard header. */
export interface ShardHeader {
  k: number;
  m: number;
  index: number;
  objectId: string;
  mac: Uint8Array;
  sealed: Header;
  /** The sealed-object header bytes (what a rewrap replaces the wrapped DEK in). */
  sealedBytes: Uint8Array;
  /** Offset of the sealed header inside the shard header. */
  sealedOffset: number;
  /** Whole shard header length. */
  length: number;
}

function lengthPrefixed(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const out = Buffer.alloc(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  bytes.copy(out, 2);
  return out;
}

function geometryMacInput(k: number, m: number, ref: ObjectRef, gen: string, objectIdBytes: Uint8Array, sealedFixed: Uint8Array): Buffer {
  const fixed = Buffer.alloc(SHARD_FIXED_BYTES);
  SHARD_MAGIC.copy(fixed, 0);
  fixed[4] = SHARD_FORMAT_VERSION;
  fixed.writeUInt16BE(k, 6);
  fixed.writeUInt16BE(m, 8);
  // The shard index (bytes 10..11) is left 0 here: the MAC is the same in every shard; the index is bound by the
  // chunk tags' nonces instead.
  fixed.writeUInt16BE(objectIdBytes.length, 12);
  return Buffer.concat([LABEL_GEOMETRY, fixed, objectIdBytes, lengthPrefixed(ref.ns), lengthPrefixed(gen), sealedFixed]);
}

/**
 * HMAC-SHA256 under the meta key over k, m, the name (the header's object id), the namespace, the generation and
 * the sealed header up to the wrapped DEK (core, commitment, wrapped length): everything but the shard index
 * (bound by the chunk tags' nonces) and the embedded wrapped DEK (which unwraps only under the object's AAD).
 */
export function geometryMac(metaKey: Uint8Array, k: number, m: number, ref: ObjectRef, gen: string, sealedHeader: Uint8Array): Buffer {
  const sealedFixed = sealedHeader.subarray(0, HEADER_FIXED_BYTES);
  return hmacSha256(metaKey, [geometryMacInput(k, m, ref, gen, Buffer.from(ref.name, 'utf8'), sealedFixed)]);
}

/** A rewrap record: magic ‖ u8 wrapped length ‖ wrapped DEK ‖ HMAC(meta key, label ‖ ns ‖ name ‖ gen ‖ rgen ‖ wrapped). */
export function encodeRecord(metaKey: Uint8Array, ref: ObjectRef, gen: string, rgen: string, wrapped: Uint8Array): Buffer {
  if (wrapped.length < 1 || wrapped.length > MAX_WRAPPED_DEK_BYTES) throw new RangeError('wrapped data key must be 1..255 bytes');
  const body = Buffer.concat([RECORD_MAGIC, Buffer.of(wrapped.length), wrapped]);
  return Buffer.concat([body, recordMac(metaKey, ref, gen, rgen, wrapped)]);
}

function recordMac(metaKey: Uint8Array, ref: ObjectRef, gen: string, rgen: string, wrapped: Uint8Array): Buffer {
  return hmacSha256(metaKey, [LABEL_RECORD, lengthPrefixed(ref.ns), lengthPrefixed(ref.name), lengthPrefixed(gen), lengthPrefixed(rgen), Buffer.of(wrapped.length), wrapped]);
}

/** Longest record blob. */
export const MAX_RECORD_BYTES = 4 + 1 + MAX_WRAPPED_DEK_BYTES + MAC_BYTES;

/** The wrapped DEK of a record blob, or undefined when it is not well formed (its MAC is checked once unwrapped). */
export function parseRecord(bytes: Uint8Array): { wrapped: Uint8Array; mac: Uint8Array } | undefined {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 5 || !b.subarray(0, 4).equals(RECORD_MAGIC) || b[4] === 0 || b.length !== 5 + b[4]! + MAC_BYTES) return undefined;
  return { wrapped: b.subarray(5, 5 + b[4]!), mac: b.subarray(5 + b[4]!) };
}

export function recordMacMatches(metaKey: Uint8Array, ref: ObjectRef, gen: string, rgen: string, wrapped: Uint8Array, mac: Uint8Array): boolean {
  return mac.length === MAC_BYTES && timingSafeEqual(recordMac(metaKey, ref, gen, rgen, wrapped), mac);
}

export function encodeShardHeader(k: number, m: number, index: number, objectId: string, mac: Uint8Array, sealedHeader: Uint8Array): Buffer {
  const id = Buffer.from(objectId, 'utf8');
  const out = Buffer.alloc(SHARD_FIXED_BYTES + id.length + MAC_BYTES + sealedHeader.length);
  SHARD_MAGIC.copy(out, 0);
  out[4] = SHARD_FORMAT_VERSION;
  out.writeUInt16BE(k, 6);
  out.writeUInt16BE(m, 8);
  out.writeUInt16BE(index, OFFSET_SHARD_INDEX);
  out.writeUInt16BE(id.length, 12);
  id.copy(out, SHARD_FIXED_BYTES);
  out.set(mac, SHARD_FIXED_BYTES + id.length);
  out.set(sealedHeader, SHARD_FIXED_BYTES + id.length + MAC_BYTES);
  return out;
}

/** A shard header with its index field set to `index` (headers of one object differ only there). */
export function withShardIndex(header: Uint8Array, index: number): Buffer {
  const out = Buffer.from(header);
  out.writeUInt16BE(index, OFFSET_SHARD_INDEX);
  return out;
}

/** Parses the start of a shard; undefined when it is not a well-formed shard header (a bad shard, not an error). */
export function parseShardHeader(bytes: Uint8Array): ShardHeader | undefined {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < SHARD_FIXED_BYTES || !b.subarray(0, 4).equals(SHARD_MAGIC) || b[4] !== SHARD_FORMAT_VERSION || b[5] !== 0) return undefined;
  const k = b.readUInt16BE(6);
  const m = b.readUInt16BE(8);
  const index = b.readUInt16BE(OFFSET_SHARD_INDEX);
  const idBytes = b.readUInt16BE(12);
  if (k < 1 || k + m > 256 || index >= k + m || idBytes < 1 || idBytes > MAX_OBJECT_ID_BYTES) return undefined;
  const sealedOffset = SHARD_FIXED_BYTES + idBytes + MAC_BYTES;
  let sealedLength: number | undefined;
  try {
    sealedLength = headerLength(b.subarray(sealedOffset));
  } catch {
    return undefined;
  }
  if (sealedLength === undefined || b.length < sealedOffset + sealedLength) return undefined;
  let sealed: Header;
  try {
    sealed = parseHeader(b.subarray(sealedOffset, sealedOffset + sealedLength));
  } catch {
    return undefined;
  }
  // A shape no put makes (and no reader allocates for): a bad shard, not a reason to allocate.
  if (stripeBufferBytes(k, m, sealed.segmentBytes) > MAX_STRIPE_BUFFER_BYTES) return undefined;
  return {
    k,
    m,
    index,
    objectId: b.toString('utf8', SHARD_FIXED_BYTES, SHARD_FIXED_BYTES + idBytes),
    mac: b.subarray(SHARD_FIXED_BYTES + idBytes, sealedOffset),
    sealed,
    sealedBytes: b.subarray(sealedOffset, sealedOffset + sealedLength),
    sealedOffset,
    length: sealedOffset + sealedLength,
  };
}

export function encodeTrailer(metaKey: Uint8Array, plaintextBytes: number): Buffer {
  const out = Buffer.alloc(TRAILER_BYTES);
  TRAILER_MAGIC.copy(out, 0);
  out.writeBigUInt64BE(BigInt(plaintextBytes), 4);
  hmacSha256(metaKey, [LABEL_TRAILER, out.subarray(4, 12)]).copy(out, 12);
  return out;
}

/** The plaintext length a trailer vouches for, or undefined when it is not authentic. */
export function parseTrailer(metaKey: Uint8Array, trailer: Uint8Array): number | undefined {
  const b = Buffer.from(trailer.buffer, trailer.byteOffset, trailer.byteLength);
  if (b.length !== TRAILER_BYTES || !b.subarray(0, 4).equals(TRAILER_MAGIC)) return undefined;
  const expected = hmacSha256(metaKey, [LABEL_TRAILER, b.subarray(4, 12)]);
  if (!timingSafeEqual(expected, b.subarray(12))) return undefined;
  const length = b.readBigUInt64BE(4);
  return length <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(length) : undefined;
}

/** GMAC nonce of a chunk: u32be(shard index) ‖ u64be(stripe index). */
function chunkNonce(shardIndex: number, stripe: number): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32BE(shardIndex, 0);
  nonce.writeBigUInt64BE(BigInt(stripe), 4);
  return nonce;
}

/** Writes the chunk's GMAC tag into `tag` (16 bytes). */
export function chunkTag(chunkKey: Uint8Array, shardIndex: number, stripe: number, chunk: Uint8Array, tag: Uint8Array): void {
  if (nativeGcm) {
    nativeGcm.gmac(chunkKey, chunkNonce(shardIndex, stripe), chunk, tag);
    return;
  }
  const gmac = createCipheriv('aes-256-gcm', chunkKey, chunkNonce(shardIndex, stripe), { authTagLength: CHUNK_TAG_BYTES });
  gmac.setAAD(chunk);
  gmac.final();
  tag.set(gmac.getAuthTag());
}

const scratchTag = new Uint8Array(CHUNK_TAG_BYTES);
export function chunkTagMatches(chunkKey: Uint8Array, shardIndex: number, stripe: number, chunk: Uint8Array, tag: Uint8Array): boolean {
  chunkTag(chunkKey, shardIndex, stripe, chunk, scratchTag);
  return timingSafeEqual(scratchTag, tag);
}
