// Public entry point: re-exports only.
export * from './errors.js';
export { CryptoEngine } from './engine.js';
export type { CryptoEngineOptions, Pkcs11Options } from './options.js';
export type { KeyService, RootKeyInfo, ImportToken, ImportTokenOptions, ImportKeyOptions, AadOptions, Aad } from './hsm/key-service.js';
export * from './erasure/index.js';
export * from './aead/index.js';
export { FsShardStore } from './object/fs-shard-store.js';
export type { ShardStore, ShardWriter } from './object/shard-store.js';
export type {
  ObjectInfo, ObjectSource, PutObjectOptions, GetObjectOptions, RepairObjectOptions, RepairReport, RewrapObjectOptions, RewrapReport,
} from './object/options.js';
export type { BucketService, CreateBucketOptions, BucketStoreOptions, ListBucketsOptions } from './bucket/service.js';
export type {
  Bucket, BucketInfo, BucketObjectInfo, BucketPutOptions, BucketGetOptions, ListObjectsOptions, BucketRewrapOptions,
} from './bucket/bucket.js';
export type { RewrapKeysReport } from './bucket/bucket-keys.js';
export type { Registration, DestroyOptions } from './hsm/key-service.js';
