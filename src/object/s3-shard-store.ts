// A v2 ShardStore over S3-compatible endpoints (Ceph RGW, MinIO, AWS S3): node i is one bucket, a key is the object
// key in it. Writers buffer one part and go up in one PUT when small, as a multipart upload otherwise (memory: two
// parts per writer); readers HEAD for the size, then fetch exactly the asked bytes with ranged GETs pinned to the
// ETag seen at open. No call waits longer than requestTimeoutMs (s3-request.ts); failures are StoreErrors.

import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand,
  GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { bytesArg, integerArg, nonNegativeIntegerArg, optionsArg, positiveIntegerArg } from '../validate.js';
import { resolveS3Options, type ResolvedS3Options, type S3ShardStoreOptions } from './s3-options.js';
import { deadline, describe, isNotFound, s3Request, storeError, type RetryPolicy, type S3Node } from './s3-request.js';
import { keyPrefixArg, shardKeyArg, type ListOptions, type ShardReader, type ShardStore, type ShardWriter } from './blob-store.js';
import { StoreError } from '../errors.js';

export type { S3ShardStoreOptions, S3NodeOptions, S3Credentials } from './s3-options.js';

/** ListObjectsV2 returns at most this many keys per page. */
const LIST_PAGE_KEYS = 1000;
/** A writer's first buffer; it doubles up to the part size as bytes come. */
const MIN_BUFFER_BYTES = 64 * 1024;

export class S3ShardStore implements ShardStore {
  readonly nodes: number;
  readonly #nodes: S3Node[];
  readonly #policy: RetryPolicy;
  readonly #partBytes: number;

  constructor(options: S3ShardStoreOptions) {
    const o: ResolvedS3Options = resolveS3Options(options);
    this.nodes = o.nodes.length;
    this.#policy = { timeoutMs: o.requestTimeoutMs, maxAttempts: o.maxAttempts };
    this.#partBytes = o.partBytes;
    this.#nodes = o.nodes.map((n, index) => {
      const agentOptions = { keepAlive: true, maxSockets: o.maxSockets };
      const client = new S3Client({
        endpoint: n.endpoint,
        region: n.region,
        credentials: n.credentials,
        forcePathStyle: n.forcePathStyle,
        // Retries are ours (s3-request.ts), so that backoff waits stay inside the call's deadline.
        maxAttempts: 1,
        // SDK defaults send bodies aws-chunked with trailing checksums, which RGW answers with 411.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        requestHandler: new NodeHttpHandler({
          requestTimeout: o.requestTimeoutMs,
          connectionTimeout: o.requestTimeoutMs,
          // Without it the SDK only warns when requestTimeout passes, and a hung node hangs the call.
          throwOnRequestTimeout: true,
          httpAgent: new HttpAgent(agentOptions),
          httpsAgent: new HttpsAgent(agentOptions),
        }),
      });
      return { index, endpoint: n.endpoint, bucket: n.bucket, client };
    });
  }

  async openWriter(node: number, key: string): Promise<ShardWriter> {
    const n = this.#node(node);
    return new S3ShardWriter(n, this.#policy, shardKeyArg(key), this.#partBytes);
  }

  async openReader(node: number, key: string): Promise<ShardReader | null> {
    const n = this.#node(node);
    const Key = shardKeyArg(key);
    const call = deadline(this.#policy);
    try {
      const head = await s3Request(n, this.#policy, call, 'openReader/HeadObject', (abortSignal) =>
        n.client.send(new HeadObjectCommand({ Bucket: n.bucket, Key }), { abortSignal }));
      const size = head.ContentLength;
      if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
        throw storeError(n, 'openReader/HeadObject', 'BadContentLength', head.$metadata.httpStatusCode);
      }
      return new S3ShardReader(n, this.#policy, Key, size, head.ETag);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    // HEAD answers a bare 404 for a missing bucket too: tell the two apart, so a misconfigured node is an error.
    try {
      await s3Request(n, this.#policy, call, 'openReader/HeadBucket', (abortSignal) =>
        n.client.send(new HeadBucketCommand({ Bucket: n.bucket }), { abortSignal }));
    } catch (err) {
      if (err instanceof StoreError && err.status === 404) throw storeError(n, 'openReader', 'NoSuchBucket', 404);
      throw err;
    }
    return null;
  }

  async remove(node: number, key: string): Promise<void> {
    const n = this.#node(node);
    const Key = shardKeyArg(key);
    try {
      await s3Request(n, this.#policy, deadline(this.#policy), 'remove/DeleteObject', (abortSignal) =>
        n.client.send(new DeleteObjectCommand({ Bucket: n.bucket, Key }), { abortSignal }));
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
        n.client.send(new ListObjectsV2Command({
          Bucket: n.bucket,
          Prefix: prefix === '' ? undefined : prefix,
          StartAfter: token === undefined && startAfter !== '' ? startAfter : undefined,
          ContinuationToken: token,
          MaxKeys: Math.min(LIST_PAGE_KEYS, limit - keys.length),
        }), { abortSignal }));
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

class S3ShardReader implements ShardReader {
  readonly size: number;
  readonly #node: S3Node;
  readonly #policy: RetryPolicy;
  readonly #key: string;
  readonly #etag: string | undefined;

  constructor(node: S3Node, policy: RetryPolicy, key: string, size: number, etag: string | undefined) {
    this.#node = node;
    this.#policy = policy;
    this.#key = key;
    this.size = size;
    this.#etag = etag;
  }

  async read(offset: number, target: Uint8Array): Promise<number> {
    nonNegativeIntegerArg(offset, 'offset');
    bytesArg(target, 'target');
    if (target.length === 0 || offset >= this.size) return 0;
    const want = Math.min(target.length, this.size - offset);
    const n = this.#node;
    await s3Request(n, this.#policy, deadline(this.#policy), 'read/GetObject', async (abortSignal) => {
      // IfMatch: a blob replaced since open answers 412 instead of mixing two versions' bytes.
      const res = await n.client.send(new GetObjectCommand({
        Bucket: n.bucket, Key: this.#key, Range: `bytes=${offset}-${offset + want - 1}`, IfMatch: this.#etag,
      }), { abortSignal });
      if (res.ContentLength !== want) {
        (res.Body as Readable | undefined)?.destroy();
        throw storeError(n, 'read/GetObject', 'BadContentLength', res.$metadata.httpStatusCode);
      }
      await readInto(res.Body as Readable, target, want, abortSignal, n);
    });
    return want;
  }

  async close(): Promise<void> {}
}

/** Copies a response body into target[0, want); fails on a short or long body; the deadline destroys the stream. */
async function readInto(body: Readable, target: Uint8Array, want: number, signal: AbortSignal, n: S3Node): Promise<void> {
  const onAbort = (): void => {
    body.destroy();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    let at = 0;
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      if (at + chunk.length > want) throw storeError(n, 'read/GetObject', 'LongBody');
      target.set(chunk, at);
      at += chunk.length;
    }
    if (at !== want) throw storeError(n, 'read/GetObject', 'ShortBody');
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}

type WriterState = 'open' | 'committed' | 'aborted' | 'failed';

class S3ShardWriter implements ShardWriter {
  readonly #node: S3Node;
  readonly #policy: RetryPolicy;
  readonly #key: string;
  readonly #partBytes: number;
  #state: WriterState = 'open';
  /** The part being filled, and a drained one to reuse: two buffers at most. */
  #buffer: Buffer | null = null;
  #filled = 0;
  #spare: Buffer | null = null;
  #uploadId: string | undefined;
  #etags: string[] = [];
  /** The part upload in flight (one at a time, overlapping the filling of the next). */
  #inFlight: Promise<void> | null = null;
  #failure: StoreError | null = null;
  #aborting: Promise<void> | null = null;

  constructor(node: S3Node, policy: RetryPolicy, key: string, partBytes: number) {
    this.#node = node;
    this.#policy = policy;
    this.#key = key;
    this.#partBytes = partBytes;
  }

  async write(bytes: Uint8Array): Promise<void> {
    bytesArg(bytes, 'bytes');
    this.#checkOpen('write');
    let done = 0;
    while (done < bytes.length) {
      const n = Math.min(bytes.length - done, this.#partBytes - this.#filled);
      this.#reserve(this.#filled + n).set(bytes.subarray(done, done + n), this.#filled);
      this.#filled += n;
      done += n;
      if (this.#filled === this.#partBytes) await this.#guard(() => this.#shipPart());
    }
  }

  async flush(): Promise<void> {
    this.#checkOpen('flush');
    // Parts already sent are durable; the buffered tail cannot be sent before commit (parts must be ≥ 5 MiB).
    await this.#guard(() => this.#settle());
  }

  async commit(): Promise<void> {
    this.#checkOpen('commit');
    await this.#guard(async () => {
      await this.#settle();
      const n = this.#node;
      const body = this.#buffer === null ? new Uint8Array(0) : this.#buffer.subarray(0, this.#filled);
      if (this.#uploadId === undefined) {
        await s3Request(n, this.#policy, deadline(this.#policy), 'commit/PutObject', (abortSignal) =>
          n.client.send(new PutObjectCommand({ Bucket: n.bucket, Key: this.#key, Body: body }), { abortSignal }));
      } else {
        if (this.#filled > 0) await this.#uploadPart(this.#etags.length + 1, body);
        const UploadId = this.#uploadId;
        const Parts = this.#etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 }));
        await s3Request(n, this.#policy, deadline(this.#policy), 'commit/CompleteMultipartUpload', (abortSignal) =>
          n.client.send(new CompleteMultipartUploadCommand({
            Bucket: n.bucket, Key: this.#key, UploadId, MultipartUpload: { Parts },
          }), { abortSignal }));
      }
      this.#state = 'committed';
      this.#release();
    });
  }

  async abort(): Promise<void> {
    if (this.#state === 'committed') return;
    this.#state = this.#state === 'failed' ? 'failed' : 'aborted';
    await this.#inFlight?.catch(() => {});
    this.#inFlight = null;
    this.#aborting ??= this.#abortUpload();
    await this.#aborting;
    this.#release();
  }

  #checkOpen(what: string): void {
    if (this.#failure !== null) throw this.#failure;
    if (this.#state !== 'open') throw new Error(`ShardWriter.${what}: the writer is ${this.#state}`);
  }

  /** Runs a step; on failure the writer is failed for good and its multipart upload is aborted in the background. */
  async #guard(step: () => Promise<void>): Promise<void> {
    try {
      await step();
    } catch (err) {
      this.#failure ??= err instanceof StoreError ? err : storeError(this.#node, 'write', describe(err).reason);
      this.#state = 'failed';
      this.#aborting ??= this.#abortUpload();
      throw this.#failure;
    }
  }

  /** Room for `bytes` in the part being filled: the spare part, else a buffer grown by doubling (small blobs stay small). */
  #reserve(bytes: number): Buffer {
    const current = this.#buffer;
    if (current !== null && current.length >= bytes) return current;
    let next: Buffer;
    if (this.#spare !== null) {
      next = this.#spare;
      this.#spare = null;
    } else {
      next = Buffer.allocUnsafe(Math.min(this.#partBytes, Math.max(bytes, MIN_BUFFER_BYTES, 2 * (current?.length ?? 0))));
    }
    if (current !== null) next.set(current.subarray(0, this.#filled));
    this.#buffer = next;
    return next;
  }

  /** Sends the full buffer as the next part once the previous one is in; filling goes on meanwhile. */
  async #shipPart(): Promise<void> {
    await this.#settle();
    const n = this.#node;
    if (this.#uploadId === undefined) {
      const created = await s3Request(n, this.#policy, deadline(this.#policy), 'write/CreateMultipartUpload', (abortSignal) =>
        n.client.send(new CreateMultipartUploadCommand({ Bucket: n.bucket, Key: this.#key }), { abortSignal }));
      if (typeof created.UploadId !== 'string') throw storeError(n, 'write/CreateMultipartUpload', 'NoUploadId');
      this.#uploadId = created.UploadId;
    }
    const part = this.#buffer as Buffer;
    this.#buffer = null;
    this.#filled = 0;
    const inFlight = this.#uploadPart(this.#etags.length + 1, part).then(() => {
      this.#spare = part;
    });
    inFlight.catch(() => {}); // observed by #settle
    this.#inFlight = inFlight;
  }

  async #settle(): Promise<void> {
    const inFlight = this.#inFlight;
    this.#inFlight = null;
    await inFlight;
  }

  async #uploadPart(PartNumber: number, Body: Uint8Array): Promise<void> {
    const n = this.#node;
    const UploadId = this.#uploadId as string;
    const res = await s3Request(n, this.#policy, deadline(this.#policy), 'write/UploadPart', (abortSignal) =>
      n.client.send(new UploadPartCommand({ Bucket: n.bucket, Key: this.#key, UploadId, PartNumber, Body }), { abortSignal }));
    if (typeof res.ETag !== 'string') throw storeError(n, 'write/UploadPart', 'NoETag');
    this.#etags[PartNumber - 1] = res.ETag;
  }

  /** Best effort: a node that is down keeps the parts until its own cleanup (lifecycle rules) removes them. */
  async #abortUpload(): Promise<void> {
    const UploadId = this.#uploadId;
    if (UploadId === undefined) return;
    this.#uploadId = undefined;
    const n = this.#node;
    await s3Request(n, this.#policy, deadline(this.#policy), 'abort/AbortMultipartUpload', (abortSignal) =>
      n.client.send(new AbortMultipartUploadCommand({ Bucket: n.bucket, Key: this.#key, UploadId }), { abortSignal }))
      .catch(() => {});
  }

  #release(): void {
    this.#buffer = null;
    this.#spare = null;
    this.#filled = 0;
  }
}
