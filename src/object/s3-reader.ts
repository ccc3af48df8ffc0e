// S3ShardStore's reader. Opening is one ranged GET of the blob's first readAheadBytes (or more, when the caller says
// it will read them: OpenReaderOptions): its Content-Range gives the size and its body is kept, so the object layer's
// header probe (and, for small shards, the trailer and every chunk) costs no further round trip — no HEAD first.
// Later reads fetch exactly the bytes the read-ahead lacks, pinned to the ETag seen at open: a reader sees the
// version it opened or a StoreError, never a mix. Where the caller declared a span it will read in order
// (willRead), those bytes come in streamed ranged GETs of up to STREAM_PIECE_BYTES each, served read by read
// (s3-body.ts), instead of one GET per read. readAheadBytes 0 opens with a HEAD instead (nothing fetched before
// the first read).
import type { Readable } from 'node:stream';
import { StoreError } from '../errors.js';
import { bytesArg, nonNegativeIntegerArg } from '../validate.js';
import type { OpenReaderOptions, ShardReader } from './blob-store.js';
import { BodyCursor, readInto } from './s3-body.js';
import { deadline, isNotFound, s3Request, storeError, type Deadline, type RetryPolicy, type S3Node } from './s3-request.js';

/** The most one streamed GET of a declared span asks for: its connection goes back to the pool in between. */
export const STREAM_PIECE_BYTES = 8 * 1024 * 1024;
/** A streamed GET left unread this long is dropped, so that a paused reader holds no connection. */
const STREAM_IDLE_MS = 1000;
/** A gap up to this many bytes before the next read is skipped on a streamed GET rather than fetched apart. */
const MAX_SKIP_BYTES = 64 * 1024;
/** The most a read-ahead asked for at open may be (the store's own option has the same cap). */
const MAX_OPEN_READ_AHEAD_BYTES = 16 * 1024 * 1024;

/** The blob, or null when the node has none under `key` (a missing bucket is a StoreError, not a missing blob). */
export async function openS3Reader(
  node: S3Node, policy: RetryPolicy, key: string, readAheadBytes: number, options?: OpenReaderOptions,
): Promise<ShardReader | null> {
  const call = deadline(policy);
  // A caller that will read more of the blob's start has it fetched with the open (readAheadBytes 0: nothing).
  const asked = options?.readAheadBytes;
  const headBytes = readAheadBytes > 0 && typeof asked === 'number' && Number.isSafeInteger(asked) && asked > readAheadBytes
    ? Math.min(asked, MAX_OPEN_READ_AHEAD_BYTES) : readAheadBytes;
  try {
    return headBytes > 0 ? await openWithGet(node, policy, call, key, headBytes) : await openWithHead(node, policy, call, key);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    // A GET's error has a body: NoSuchKey says the bucket is there.
    if ((err as StoreError).reason === 'NoSuchKey') return null;
  }
  // HEAD answers a bare 404 for a missing bucket too: tell the two apart, so a misconfigured node is an error.
  try {
    await s3Request(node, policy, call, 'openReader/HeadBucket', (abortSignal) =>
      node.client.send('HeadBucket', { Bucket: node.bucket }, { abortSignal }));
  } catch (err) {
    if (err instanceof StoreError && err.status === 404) throw storeError(node, 'openReader', 'NoSuchBucket', 404);
    throw err;
  }
  return null;
}

async function openWithHead(n: S3Node, policy: RetryPolicy, call: Deadline, Key: string): Promise<S3ShardReader> {
  const head = await s3Request(n, policy, call, 'openReader/HeadObject', (abortSignal) =>
    n.client.send('HeadObject', { Bucket: n.bucket, Key }, { abortSignal }));
  return new S3ShardReader(n, policy, Key, sizeOf(n, head.ContentLength, 'openReader/HeadObject'), head.ETag, EMPTY);
}

async function openWithGet(n: S3Node, policy: RetryPolicy, call: Deadline, Key: string, readAheadBytes: number): Promise<S3ShardReader> {
  const opened = await s3Request(n, policy, call, 'openReader/GetObject', async (abortSignal) => {
    const res = await n.client.send('GetObject', { Bucket: n.bucket, Key, Range: `bytes=0-${readAheadBytes - 1}` }, { abortSignal });
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
  /** The span the caller will read in order (willRead), and the streamed GET serving it. */
  #span: { from: number; to: number } | undefined;
  #cursor: BodyCursor | undefined;
  #idle: NodeJS.Timeout | undefined;
  /** Reads past the head take their turn at the streamed GET one at a time, in call order (it serves offset order). */
  #queue: Promise<unknown> = Promise.resolve();
  /** Set once a request of this reader timed out: the node hangs, every later read fails at once. */
  #hung: StoreError | undefined;

  constructor(node: S3Node, policy: RetryPolicy, key: string, size: number, etag: string | undefined, head: Buffer) {
    this.#node = node;
    this.#policy = policy;
    this.#key = key;
    this.size = size;
    this.#etag = etag;
    this.#head = head;
  }

  willRead(offset: number, length: number): void {
    nonNegativeIntegerArg(offset, 'offset');
    nonNegativeIntegerArg(length, 'length');
    this.#span = { from: offset, to: Math.min(this.size, offset + length) };
  }

  async read(offset: number, target: Uint8Array): Promise<number> {
    nonNegativeIntegerArg(offset, 'offset');
    bytesArg(target, 'target');
    if (target.length === 0 || offset >= this.size) return 0;
    const want = Math.min(target.length, this.size - offset);
    // What the read-ahead holds is copied; only the rest is fetched.
    const cached = Math.max(0, Math.min(want, this.#head.length - offset));
    if (cached > 0) target.set(this.#head.subarray(offset, offset + cached));
    // Reading the declared span past the head: the head is not needed again (memory back early).
    if (this.#span && offset >= this.#span.from && offset >= this.#head.length) this.#head = EMPTY;
    if (cached === want) return want;
    if (this.#hung) throw this.#hung;
    const from = offset + cached;
    const rest = target.subarray(cached, want);
    const turn = this.#queue.then(() => this.#fromStream(from, rest));
    this.#queue = turn.catch(() => {});
    const streamed = await turn;
    // What the stream did not serve comes by one ranged GET (outside the queue: reads elsewhere run in parallel).
    if (streamed < rest.length) await this.#rangedGet(from + streamed, rest.subarray(streamed));
    return want;
  }

  async close(): Promise<void> {
    this.#head = EMPTY;
    this.#span = undefined;
    this.#dropCursor();
  }

  /** Fills a prefix of `target` (the bytes at `from`) from the streamed GET, opening one inside the span; its length. */
  async #fromStream(from: number, target: Uint8Array): Promise<number> {
    if (this.#hung) throw this.#hung;
    let at = 0;
    for (;;) {
      const pos = from + at;
      const c = this.#cursor;
      if (c && pos > c.position && pos - c.position <= MAX_SKIP_BYTES && pos < c.end) {
        if (!(await this.#take(c, pos - c.position, undefined))) return at;
      }
      if (c && c === this.#cursor && c.position === pos) {
        const n = Math.min(target.length - at, c.end - pos);
        if (!(await this.#take(c, n, target.subarray(at, at + n)))) return at;
        at += n;
        if (at === target.length) return at;
        continue;
      }
      const span = this.#span;
      if (!span || pos < span.from || from + target.length > span.to || this.#cursor) return at;
      // A streamed GET from here to the span's end (a piece of it at most): this read and the next ones.
      this.#cursor = await this.#stream(pos, Math.min(span.to, Math.max(from + target.length, pos + STREAM_PIECE_BYTES)));
    }
  }

  /** Takes `n` bytes from the streamed GET into `into` (or skips them); false when it failed (then dropped). */
  async #take(c: BodyCursor, n: number, into: Uint8Array | undefined): Promise<boolean> {
    clearTimeout(this.#idle);
    const call = deadline(this.#policy);
    try {
      await c.take(n, into, call.signal);
    } catch (err) {
      this.#dropCursor();
      if (call.signal.aborted) {
        this.#hung ??= storeError(this.#node, 'read/GetObject', 'Timeout', undefined, `no answer within ${this.#policy.timeoutMs} ms`);
        throw this.#hung;
      }
      return false; // a dropped connection: the rest comes by a ranged GET, retried as any
    }
    if (c.position === c.end) {
      // Read to its end: the connection goes back to the pool.
      if (this.#cursor === c) this.#cursor = undefined;
      c.close();
    } else {
      this.#idle = setTimeout(() => this.#dropCursor(), STREAM_IDLE_MS).unref();
    }
    return true;
  }

  #dropCursor(): void {
    clearTimeout(this.#idle);
    this.#cursor?.close();
    this.#cursor = undefined;
  }

  /** Opens a streamed GET of [from, to): bounded by a deadline until its answer starts, not while it is read. */
  async #stream(from: number, to: number): Promise<BodyCursor> {
    const n = this.#node;
    return this.#watch(s3Request(n, this.#policy, deadline(this.#policy), 'read/GetObject', async (abortSignal) => {
      const own = new AbortController();
      const forward = (): void => own.abort(abortSignal.reason);
      abortSignal.addEventListener('abort', forward, { once: true });
      try {
        const res = await n.client.send('GetObject', {
          Bucket: n.bucket, Key: this.#key, Range: `bytes=${from}-${to - 1}`, IfMatch: this.#etag,
        }, { abortSignal: own.signal });
        const body = res.Body as Readable | undefined;
        if (res.ContentLength !== to - from || body === undefined) {
          body?.destroy();
          throw storeError(n, 'read/GetObject', 'BadContentLength', res.$metadata.httpStatusCode);
        }
        return new BodyCursor(body, from, to);
      } finally {
        abortSignal.removeEventListener('abort', forward);
      }
    }));
  }

  /** `request`, remembering a timeout (see #hung). */
  async #watch<T>(request: Promise<T>): Promise<T> {
    try {
      return await request;
    } catch (err) {
      if (err instanceof StoreError && err.reason === 'Timeout') this.#hung ??= err;
      throw err;
    }
  }

  async #rangedGet(from: number, target: Uint8Array): Promise<void> {
    const n = this.#node;
    const count = target.length;
    await this.#watch(s3Request(n, this.#policy, deadline(this.#policy), 'read/GetObject', async (abortSignal) => {
      // IfMatch: a blob replaced since open answers 412 instead of mixing two versions' bytes.
      const res = await n.client.send('GetObject', {
        Bucket: n.bucket, Key: this.#key, Range: `bytes=${from}-${from + count - 1}`, IfMatch: this.#etag,
      }, { abortSignal });
      if (res.ContentLength !== count) {
        (res.Body as Readable | undefined)?.destroy();
        throw storeError(n, 'read/GetObject', 'BadContentLength', res.$metadata.httpStatusCode);
      }
      await readInto(res.Body as Readable, target, count, abortSignal, n);
    }));
  }
}
