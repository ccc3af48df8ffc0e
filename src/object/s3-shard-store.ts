// A v2 ShardStore over S3-compatible endpoints (Ceph RGW, MinIO, AWS S3): node i is one bucket, a key is the object
// key in it. Writers told the blob's length stream it in one PUT (s3-stream-writer.ts); others (s3-writer.ts) go up
// in one PUT when small, as a multipart upload otherwise; readers
// (s3-reader.ts) open with one ranged GET that also gives the size, then fetch exactly the bytes asked (a span the
// caller will read in order in streamed GETs). No request waits longer than requestTimeoutMs for its answer
// (s3-request.ts); failures are StoreErrors.

import { integerArg, optionsArg, positiveIntegerArg } from '../validate.js';
import { LazyS3Client } from './s3-client.js';
import { resolveS3Options, type ResolvedS3Options, type S3ShardStoreOptions } from './s3-options.js';
import { deadline, isNotFound, s3Request, type RetryPolicy, type S3Node } from './s3-request.js';
import {
  keyPrefixArg, openWriterArg, shardKeyArg, type ListOptions, type OpenReaderOptions, type OpenWriterOptions, type ShardReader, type ShardStore, type ShardWriter,
} from './blob-store.js';
import { openS3Reader } from './s3-reader.js';
import { MAX_PUT_BYTES, S3StreamWriter } from './s3-stream-writer.js';
import { PartPool, S3ShardWriter } from './s3-writer.js';

export type { S3ShardStoreOptions, S3NodeOptions, S3Credentials } from './s3-options.js';

/** ListObjectsV2 returns at most this many keys per page. */
const LIST_PAGE_KEYS = 1000;
/** Idle part buffers a store keeps for its writers to reuse (at least two parts). */
const POOLED_PART_BYTES = 64 * 1024 * 1024;

export class S3ShardStore implements ShardStore {
  readonly nodes: number;
  /**
   * Names the store stably and without secrets: `s3:` + each node's endpoint/bucket, comma-separated. Two stores over
   * the same buckets in the same order have the same id (what the buckets layer registers under).
   */
  readonly id: string;
  readonly #nodes: S3Node[];
  readonly #policy: RetryPolicy;
  readonly #parts: PartPool;
  readonly #readAheadBytes: number;

  constructor(options: S3ShardStoreOptions) {
    const o: ResolvedS3Options = resolveS3Options(options);
    this.nodes = o.nodes.length;
    this.id = 's3:' + o.nodes.map((n) => `${n.endpoint}/${n.bucket}`).join(',');
    this.#policy = { timeoutMs: o.requestTimeoutMs, maxAttempts: o.maxAttempts };
    this.#parts = new PartPool(o.partBytes, Math.max(2, Math.floor(POOLED_PART_BYTES / o.partBytes)));
    this.#readAheadBytes = o.readAheadBytes;
    this.#nodes = o.nodes.map((n, index) => {
      const client = new LazyS3Client({
        endpoint: n.endpoint, region: n.region, credentials: n.credentials, forcePathStyle: n.forcePathStyle,
        requestTimeoutMs: o.requestTimeoutMs, maxSockets: o.maxSockets,
      });
      return { index, endpoint: n.endpoint, bucket: n.bucket, client };
    });
  }

  /**
   * With `options.bytes` (up to S3's 5 GiB single-PUT limit) the blob goes up as one streamed PUT of that length
   * (s3-stream-writer.ts); without it, or longer, buffered: one PUT up to partBytes, else a multipart upload.
   */
  async openWriter(node: number, key: string, options?: OpenWriterOptions): Promise<ShardWriter> {
    const n = this.#node(node);
    const k = shardKeyArg(key);
    const { bytes } = openWriterArg(options);
    if (bytes !== undefined && bytes <= MAX_PUT_BYTES) return new S3StreamWriter(n, this.#policy, k, bytes);
    return new S3ShardWriter(n, this.#policy, k, this.#parts);
  }

  async openReader(node: number, key: string, options?: OpenReaderOptions): Promise<ShardReader | null> {
    return openS3Reader(this.#node(node), this.#policy, shardKeyArg(key), this.#readAheadBytes, options);
  }

  async remove(node: number, key: string): Promise<void> {
    const n = this.#node(node);
    const Key = shardKeyArg(key);
    try {
      await s3Request(n, this.#policy, deadline(this.#policy), 'remove/DeleteObject', (abortSignal) =>
        n.client.send('DeleteObject', { Bucket: n.bucket, Key }, { abortSignal }));
    } catch (err) {
      if (!isNotFound(err)) throw err; // S3 answers 204 for a missing key; some peers 404
    }
  }

  async list(node: number, options: ListOptions): Promise<string[]> {
    const n = this.#node(node);
    if (options === undefined) throw new TypeError('options must be an object');
    const o = optionsArg(options);
    const prefix = keyPrefixArg(o.prefix, 'options.prefix');
    const startAfter = o.startAfter === undefined ? undefined : keyPrefixArg(o.startAfter, 'options.startAfter');
    const limit = positiveIntegerArg(o.limit, 'options.limit');
    const keys: string[] = [];
    let token: string | undefined;
    do {
      // One deadline per page: a long listing is many calls, each bounded.
      const page = await s3Request(n, this.#policy, deadline(this.#policy), 'list/ListObjectsV2', (abortSignal) =>
        n.client.send('ListObjectsV2', {
          Bucket: n.bucket,
          Prefix: prefix === '' ? undefined : prefix,
          StartAfter: token === undefined && startAfter !== '' ? startAfter : undefined,
          ContinuationToken: token,
          MaxKeys: Math.min(LIST_PAGE_KEYS, limit - keys.length),
        }, { abortSignal }));
      for (const entry of page.Contents ?? []) {
        if (typeof entry.Key === 'string' && keys.length < limit) keys.push(entry.Key);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined && keys.length < limit);
    return keys;
  }

  /** Closes every node's connections; the store is unusable afterwards. */
  async close(): Promise<void> {
    for (const n of this.#nodes) n.client.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #node(node: number): S3Node {
    return this.#nodes[integerArg(node, 'node', 0, this.nodes - 1)];
  }
}
