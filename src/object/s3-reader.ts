// S3ShardStore's reader. Opening is one ranged GET of the blob's first readAheadBytes: its Content-Range gives the
// size and its body is kept, so the object layer's header probe (and, for small shards, the trailer and every
// chunk) costs no further round trip — no HEAD first. Later reads fetch exactly the bytes the read-ahead lacks, with
// ranged GETs pinned to the ETag seen at open: a reader sees the version it opened or a StoreError, never a mix.
// readAheadBytes 0 opens with a HEAD instead (nothing fetched before the first read).
import type { Readable } from 'node:stream';
import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { StoreError } from '../errors.js';
import { bytesArg, nonNegativeIntegerArg } from '../validate.js';
import type { ShardReader } from './blob-store.js';
import { deadline, isNotFound, s3Request, storeError, type Deadline, type RetryPolicy, type S3Node } from './s3-request.js';

/** The blob, or null when the node has none under `key` (a missing bucket is a StoreError, not a missing blob). */
export async function openS3Reader(node: S3Node, policy: RetryPolicy, key: string, readAheadBytes: number): Promise<ShardReader | null> {
  const call = deadline(policy);
  try {
    return readAheadBytes > 0 ? await openWithGet(node, policy, call, key, readAheadBytes) : await openWithHead(node, policy, call, key);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    // A GET's error has a body: NoSuchKey says the bucket is there.
    if ((err as StoreError).reason === 'NoSuchKey') return null;
  }
  // HEAD answers a bare 404 for a missing bucket too: tell the two apart, so a misconfigured node is an error.
  try {
    await s3Request(node, policy, call, 'openReader/HeadBucket', (abortSignal) =>
      node.client.send(new HeadBucketCommand({ Bucket: node.bucket }), { abortSignal }));
  } catch (err) {
    if (err instanceof StoreError && err.status === 404) throw storeError(node, 'openReader', 'NoSuchBucket', 404);
    throw err;
  }
  return null;
}

async function openWithHead(n: S3Node, policy: RetryPolicy, call: Deadline, Key: string): Promise<S3ShardReader> {
  const head = await s3Request(n, policy, call, 'openReader/HeadObject', (abortSignal) =>
    n.client.send(new HeadObjectCommand({ Bucket: n.bucket, Key }), { abortSignal }));
  return new S3ShardReader(n, policy, Key, sizeOf(n, head.ContentLength, 'openReader/HeadObject'), head.ETag, EMPTY);
}

async function openWithGet(n: S3Node, policy: RetryPolicy, call: Deadline, Key: string, readAheadBytes: number): Promise<S3ShardReader> {
  const opened = await s3Request(n, policy, call, 'openReader/GetObject', async (abortSignal) => {
    const res = await n.client.send(new GetObjectCommand({ Bucket: n.bucket, Key, Range: `bytes=0-${readAheadBytes - 1}` }), { abortSignal });
    const body = res.Body as Readable | undefined;
    // 206: Content-Range `bytes 0-L/SIZE`. 200: the whole blob (a peer that ignores ranges, or an empty blob).
    const total = res.ContentRange === undefined ? res.ContentLength : Number(/\/(\d+)$/.exec(res.ContentRange)?.[1]);
    const size = sizeOf(n, total, 'openReader/GetObject', body);
    const want = Math.min(size, readAheadBytes);
    const head = Buffer.allocUnsafe(want);
    if (body !== undefined) await readInto(body, head, want, abortSignal, n, res.ContentRange === undefined);
    else if (want > 0) throw storeError(n, 'openReader/GetObject', 'ShortBody');
    return { size, etag: res.ETag, head };
  }).catch((err: unknown) => {
    // An empty blob has no byte 0: S3 answers 416 to any range; its size comes from a HEAD then.
    if (err instanceof StoreError && err.status === 416) return undefined;
    throw err;
  });
  if (opened === undefined) return openWithHead(n, policy, call, Key);
  return new S3ShardReader(n, policy, Key, opened.size, opened.etag, opened.head);
}

function sizeOf(n: S3Node, size: unknown, operation: string, body?: Readable): number {
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    body?.destroy();
    throw storeError(n, operation, 'BadContentLength');
  }
  return size;
}

const EMPTY = Buffer.alloc(0);

export class S3ShardReader implements ShardReader {
  readonly size: number;
  readonly #node: S3Node;
  readonly #policy: RetryPolicy;
  readonly #key: string;
  readonly #etag: string | undefined;
  /** Bytes [0, head.length) of the blob, fetched at open. */
  #head: Buffer;

  constructor(node: S3Node, policy: RetryPolicy, key: string, size: number, etag: string | undefined, head: Buffer) {
    this.#node = node;
    this.#policy = policy;
    this.#key = key;
    this.size = size;
    this.#etag = etag;
    this.#head = head;
  }

  async read(offset: number, target: Uint8Array): Promise<number> {
    nonNegativeIntegerArg(offset, 'offset');
    bytesArg(target, 'target');
    if (target.length === 0 || offset >= this.size) return 0;
    const want = Math.min(target.length, this.size - offset);
    // What the read-ahead holds is copied; only the rest is fetched.
    const cached = Math.max(0, Math.min(want, this.#head.length - offset));
    if (cached > 0) target.set(this.#head.subarray(offset, offset + cached));
    if (cached === want) return want;
    const from = offset + cached;
    const count = want - cached;
    const n = this.#node;
    await s3Request(n, this.#policy, deadline(this.#policy), 'read/GetObject', async (abortSignal) => {
      // IfMatch: a blob replaced since open answers 412 instead of mixing two versions' bytes.
      const res = await n.client.send(new GetObjectCommand({
        Bucket: n.bucket, Key: this.#key, Range: `bytes=${from}-${from + count - 1}`, IfMatch: this.#etag,
      }), { abortSignal });
      if (res.ContentLength !== count) {
        (res.Body as Readable | undefined)?.destroy();
        throw storeError(n, 'read/GetObject', 'BadContentLength', res.$metadata.httpStatusCode);
      }
      await readInto(res.Body as Readable, target.subarray(cached, want), count, abortSignal, n);
    });
    return want;
  }

  async close(): Promise<void> {
    this.#head = EMPTY;
  }
}

/**
 * Copies a response body into target[0, want); fails on a short body, and on a long one unless `truncate` (then the
 * rest is dropped with the connection); the deadline destroys the stream.
 */
async function readInto(body: Readable, target: Uint8Array, want: number, signal: AbortSignal, n: S3Node, truncate = false): Promise<void> {
  const onAbort = (): void => {
    body.destroy();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    let at = 0;
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      if (at + chunk.length > want) {
        if (!truncate) throw storeError(n, 'read/GetObject', 'LongBody');
        target.set(chunk.subarray(0, want - at), at);
        at = want;
        body.destroy();
        break;
      }
      target.set(chunk, at);
      at += chunk.length;
    }
    if (at !== want) throw storeError(n, 'read/GetObject', 'ShortBody');
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
