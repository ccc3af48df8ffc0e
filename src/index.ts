// Public entry point: re-exports only.
export * from './errors.js';
export { CryptoEngine } from './engine.js';
export type { CryptoEngineOptions, Pkcs11Options } from './options.js';
export type { HsmInfo } from './engine.js';
export type { WrapMechanismName } from './hsm/capabilities.js';
export type { KeyService, RootKeyInfo, ImportToken, ImportTokenOptions, ImportKeyOptions, AadOptions, Aad } from './hsm/key-service.js';
export * from './erasure/index.js';
export * from './aead/index.js';
export { FsShardStore, type FsShardStoreOptions } from './object/fs-shard-store.js';
export { S3ShardStore, type S3ShardStoreOptions, type S3NodeOptions, type S3Credentials } from './object/s3-shard-store.js';
export type { ShardStore, ShardWriter, ShardReader, ListOptions, OpenReaderOptions, OpenWriterOptions } from './object/blob-store.js';
export type {
  ObjectInfo, ObjectSource, PutObjectOptions, GetObjectOptions, RepairObjectOptions, RepairReport, RewrapObjectOptions, RewrapReport,
  DeleteObjectOptions, DeleteReport, ListObjectsOptions, StoreOptions,
} from './object/options.js';
export type { BucketService, CreateBucketOptions, BucketStoreOptions, ListBucketsOptions } from './bucket/service.js';
export type {
  Bucket, BucketInfo, BucketObjectInfo, BucketPutOptions, BucketGetOptions, ListObjectsOptions as BucketListObjectsOptions, BucketRewrapOptions,
  BucketRepairReport,
} from './bucket/bucket.js';
export type { RewrapKeysReport } from './bucket/bucket-keys.js';
export type { Registration, DestroyOptions } from './hsm/key-service.js';
