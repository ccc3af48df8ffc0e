// The segmented AEAD area's public surface.
export { ObjectCipher, POOL_MIN_BYTES, DEFAULT_BATCH_BYTES } from './object-cipher.js';
export type {
  ObjectCipherOptions,
  EncryptOptions,
  DecryptOptions,
  DecryptRangeOptions,
  RewrapHeaderOptions,
  EncryptStreamOptions,
  DecryptStreamOptions,
} from './object-cipher.js';
export type { DataKeyProvider, DataKeyAad, WrappedKeyInfo } from './data-key-provider.js';
export { canonicalContext, MAX_CONTEXT_BYTES, type EncryptionContext } from './context.js';
export { EncryptStream, DecryptStream } from './streams.js';
export {
  MAGIC,
  FORMAT_VERSION,
  SUITE_AES256GCM_HKDFSHA256_COMMIT,
  KEY_BYTES,
  TAG_BYTES,
  NONCE_BYTES,
  NONCE_PREFIX_BYTES,
  SALT_BYTES,
  COMMITMENT_BYTES,
  MAX_WRAPPED_DEK_BYTES,
  HEADER_CORE_BYTES,
  HEADER_FIXED_BYTES,
  HEADER_ALIGN_BYTES,
  headerLengthFor,
  MIN_SEGMENT_BYTES,
  MAX_SEGMENT_BYTES,
  DEFAULT_SEGMENT_BYTES,
  MAX_SEGMENTS,
  maxObjectBytes,
  encodeHeaderCore,
  encodeHeader,
  headerLength,
  parseHeader,
  segmentCount,
  payloadLength,
  plaintextLength,
  type Header,
} from './header.js';
export { deriveObjectKeys, commitmentMatches, segmentNonce, type ObjectKeys } from './key-schedule.js';
export {
  gcmSealInto,
  gcmOpenInto,
  nodeCryptoSealInto,
  nodeCryptoOpenInto,
  sealSegment,
  openSegment,
  sealSegments,
  openSegments,
  batchSegmentCount,
  UPDATE_CHUNK_BYTES,
  type SegmentSchedule,
} from './segment.js';
export { TASK_SEAL, TASK_OPEN, aeadTasks, type SegmentBatchTask } from './tasks.js';
