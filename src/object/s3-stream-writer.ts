// S3ShardStore's writer for a blob whose length the caller announced (`openWriter(node, key, { bytes })`): ONE
// PutObject with Content-Length = bytes, its body fed by write() calls as they come — no part buffers, no multipart
// upload, no copy. A write resolves once the socket has taken its bytes (the caller may then reuse them), so memory
// is the caller's own buffers plus the kernel's socket buffer. The last byte is held back (copied) until commit():
// a server that has the whole body publishes it, so until then the request stays one byte short and abort() or a
// failure (which destroy it) publish nothing. Writing more or fewer bytes than announced fails the writer
// (RangeError). The deadline is about progress: the request fails when no slice of the body moved (and no answer
// came) for requestTimeoutMs while the writer had bytes to move or was committing; a caller that is slow to write
// does not count against it. A body cannot be replayed once a write resolved, so a failed request is retried only
// while none has (every byte is still here); any later failure fails the writer for good (StoreError).
import { Readable, type Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { StoreError } from '../errors.js';
import { bytesArg } from '../validate.js';
import type { ShardWriter } from './blob-store.js';
import { backoffMs, deadline, describe, isRetryable, s3Request, storeError, type RetryPolicy, type S3Node } from './s3-request.js';

/** S3's largest single PUT (AWS S3 user guide, "Uploading objects"); a longer blob goes up as a multipart upload. */
export const MAX_PUT_BYTES = 5 * 1024 ** 3;
/** A write reaches the request in slices of at most this, each acknowledged on its own: progress is seen per slice. */
const SLICE_BYTES = 256 * 1024;

interface Slice {
  bytes: Buffer;
  flushed: boolean;
  /** The caller's write that ends with this slice, resolved once it is flushed. */
  done?: { resolve: () => void; reject: (err: unknown) => void };
}

type State = 'open' | 'committing' | 'committed' | 'aborted' | 'failed';

/**
 * The request body. NodeHttpHandler pipes a Readable body into the request; this one takes the request over instead
 * of being read, so that each slice is written with its own callback (which says when the socket took it).
 */
class RequestBody extends Readable {
  readonly #onRequest: (request: Writable) => void;

  constructor(onRequest: (request: Writable) => void) {
    super();
    this.#onRequest = onRequest;
  }

  override _read(): void {}

  override pipe<T extends NodeJS.WritableStream>(destination: T): T {
    this.#onRequest(destination as unknown as Writable);
    return destination;
  }
}

export class S3StreamWriter implements ShardWriter {
  readonly #node: S3Node;
  readonly #policy: RetryPolicy;
  readonly #key: string;
  readonly #bytes: number;
  #state: State = 'open';
  #failure: Error | null = null;
  /** Bytes accepted by write(). */
  #written = 0;
  /** The held-back last byte (a copy), sent by commit(). */
  #tail: Buffer | null = null;
  /** Slices not yet acknowledged to the caller, in body order; [0, #next) are written to the current request. */
  #slices: Slice[] = [];
  #next = 0;
  /** Some write resolved: its bytes are the caller's again, so the body can no longer be sent a second time. */
  #acknowledged = false;
  /** Requests sent, and the id of the live one (0 while none is: before the first write, or waiting to retry). */
  #attempts = 0;
  #current = 0;
  #request: Writable | null = null;
  #controller: AbortController | null = null;
  /** Settles (never rejects) when the current attempt's PutObject has. */
  #sending: Promise<void> | null = null;
  #ended = false;
  #lastWrite: Promise<void> = Promise.resolve();
  #answer: { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } = deferred();
  #lastProgress = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(node: S3Node, policy: RetryPolicy, key: string, bytes: number) {
    this.#node = node;
    this.#policy = policy;
    this.#key = key;
    this.#bytes = bytes;
    this.#answer.promise.catch(() => {}); // awaited by commit; a failure before it is thrown by the next call
  }

  async write(bytes: Uint8Array): Promise<void> {
    bytesArg(bytes, 'bytes');
    this.#check('write');
    if (bytes.length === 0) return;
    if (this.#written + bytes.length > this.#bytes) {
      throw this.#fail(new RangeError(`bytes: the writer was opened for ${this.#bytes} bytes (options.bytes); this write would make ${this.#written + bytes.length}`));
    }
    this.#written += bytes.length;
    const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    const isLast = this.#written === this.#bytes;
    // The last byte waits for commit: copied, so the caller's buffer is free as soon as the rest is flushed.
    if (isLast) this.#tail = Buffer.from(view.subarray(view.length - 1));
    const body = isLast ? view.subarray(0, view.length - 1) : view;
    if (body.length === 0) return;
    const done = new Promise<void>((resolve, reject) => {
      for (let at = 0; at < body.length; at += SLICE_BYTES) {
        const end = Math.min(body.length, at + SLICE_BYTES);
        this.#slices.push({ bytes: body.subarray(at, end), flushed: false, ...(end === body.length ? { done: { resolve, reject } } : {}) });
      }
    });
    this.#lastWrite = done.catch(() => {});
    this.#progress();
    if (this.#attempts === 0) this.#start();
    else this.#pump();
    await done;
  }

  /** Surfaces a failure and waits for the written bytes to reach the socket; they become durable with the commit. */
  async flush(): Promise<void> {
    this.#check('flush');
    await this.#lastWrite;
    this.#check('flush');
  }

  async commit(): Promise<void> {
    this.#check('commit');
    if (this.#written !== this.#bytes) {
      throw this.#fail(new RangeError(`bytes: the writer was opened for ${this.#bytes} bytes (options.bytes), ${this.#written} were written`));
    }
    this.#state = 'committing';
    if (this.#bytes === 0) {
      // Nothing to stream: one plain PUT, retried as any request.
      const n = this.#node;
      try {
        await s3Request(n, this.#policy, deadline(this.#policy), 'commit/PutObject', (abortSignal) =>
          n.client.send('PutObject', { Bucket: n.bucket, Key: this.#key, Body: new Uint8Array(0) }, { abortSignal }));
      } catch (err) {
        throw this.#fail(err);
      }
      this.#state = 'committed';
      return;
    }
    this.#slices.push({ bytes: this.#tail as Buffer, flushed: false });
    this.#tail = null;
    this.#progress();
    if (this.#attempts === 0) this.#start(); // a 1-byte blob: its byte was held back, nothing sent yet
    else this.#pump();
    await this.#answer.promise;
  }

  async abort(): Promise<void> {
    if (this.#state === 'committed') return;
    if (this.#state !== 'failed') {
      this.#state = 'aborted';
      this.#stop(new Error('ShardWriter: the writer is aborted'));
    }
    await this.#sending; // no request outlives the call
  }

  #check(what: string): void {
    if (this.#failure !== null) throw this.#failure;
    if (this.#state !== 'open') throw new Error(`ShardWriter.${what}: the writer is ${this.#state}`);
  }

  /** Sends the PutObject; the handler hands the request to #attach once it may carry the body. */
  #start(): void {
    const attempt = ++this.#attempts;
    this.#current = attempt;
    const controller = new AbortController();
    this.#controller = controller;
    this.#request = null;
    this.#next = 0;
    this.#ended = false;
    for (const slice of this.#slices) slice.flushed = false;
    const n = this.#node;
    const Body = new RequestBody((request) => this.#attach(attempt, request));
    // requestTimeout 0: the handler's timer bounds a request's total duration; this one's deadline is progress (#check).
    this.#sending = n.client.send('PutObject', { Bucket: n.bucket, Key: this.#key, Body, ContentLength: this.#bytes }, {
      abortSignal: controller.signal, requestTimeout: 0,
    }).then(
      () => this.#answered(attempt),
      (err: unknown) => this.#attemptFailed(attempt, err),
    );
  }

  #attach(attempt: number, request: Writable): void {
    if (attempt !== this.#current) {
      request.destroy();
      return;
    }
    this.#request = request;
    this.#progress();
    this.#pump();
  }

  /** Writes every slice not yet written to the request (the request holds them, no copy); ends it after the tail. */
  #pump(): void {
    const request = this.#request;
    if (request === null) return;
    const attempt = this.#current;
    while (this.#next < this.#slices.length) {
      const slice = this.#slices[this.#next++]!;
      request.write(slice.bytes, (err) => this.#flushed(attempt, slice, err));
    }
    if (this.#state === 'committing' && this.#tail === null && !this.#ended) {
      this.#ended = true;
      request.end();
    }
  }

  #flushed(attempt: number, slice: Slice, err: Error | null | undefined): void {
    // A write that fails means the request failed: that comes through send(), with the node's answer when it gave
    // one (a 403 sent before the node stopped reading says more than the EPIPE of the next write).
    if (attempt !== this.#current || this.#failure !== null || err) return;
    slice.flushed = true;
    this.#progress();
    // Callbacks come in order on one socket. A write whose slices are all flushed resolves and its slices leave;
    // until then they stay, so that a retry can send them again.
    for (let i = 0; i < this.#slices.length && this.#slices[i]!.flushed; i++) {
      const done = this.#slices[i]!.done;
      if (done === undefined) continue;
      this.#slices.splice(0, i + 1);
      this.#next -= i + 1;
      i = -1;
      this.#acknowledged = true;
      done.resolve();
    }
  }

  #answered(attempt: number): void {
    if (attempt !== this.#current || this.#failure !== null || this.#state === 'aborted') return;
    if (!this.#ended) {
      // An answer before the body ended: not one this writer can trust to hold the whole blob.
      this.#fail(storeError(this.#node, 'write/PutObject', 'EarlyAnswer'));
      return;
    }
    this.#state = 'committed';
    this.#clearTimer();
    this.#slices = [];
    this.#controller = null;
    this.#answer.resolve();
  }

  #attemptFailed(attempt: number, err: unknown): void {
    if (attempt !== this.#current || this.#failure !== null || this.#state === 'aborted' || this.#state === 'committed') return;
    const { reason, status } = describe(err);
    const op = this.#state === 'committing' ? 'commit/PutObject' : 'write/PutObject';
    if (!(err instanceof StoreError) && !this.#acknowledged && this.#attempts < this.#policy.maxAttempts && isRetryable(reason, status)) {
      // Every byte given so far is still in #slices (none acknowledged): send them again on a new request, unless a
      // write starts one first. The progress deadline keeps running meanwhile (the slices are outstanding).
      this.#controller?.abort();
      this.#controller = null;
      this.#request = null;
      this.#current = 0;
      void sleep(backoffMs(attempt)).then(() => {
        if (this.#failure === null && this.#current === 0 && (this.#state === 'open' || this.#state === 'committing')) this.#start();
      });
      return;
    }
    this.#fail(err instanceof StoreError ? err : storeError(this.#node, op, reason, status));
  }

  /** Fails the writer for good: the request is destroyed one byte short, so the node publishes nothing. */
  #fail(err: unknown): Error {
    if (this.#failure === null) {
      this.#failure = err instanceof Error ? err : storeError(this.#node, 'write/PutObject', describe(err).reason);
      this.#state = 'failed';
      this.#stop(this.#failure);
    }
    return this.#failure;
  }

  #stop(err: Error): void {
    this.#clearTimer();
    this.#controller?.abort();
    this.#controller = null;
    this.#request = null;
    this.#current = 0;
    for (const slice of this.#slices) slice.done?.reject(err);
    this.#slices = [];
    this.#answer.reject(err);
  }

  /** Bytes moved (or were handed over to move): the deadline counts from now while there is work outstanding. */
  #progress(): void {
    this.#lastProgress = performance.now();
    this.#timer ??= setTimeout(this.#watch, this.#policy.timeoutMs);
  }

  readonly #watch = (): void => {
    this.#timer = undefined;
    if (this.#failure !== null || (this.#state !== 'open' && this.#state !== 'committing')) return;
    // Idle because the caller has not written: not the node's delay; the next write starts the clock again.
    if (this.#slices.length === 0 && this.#state === 'open') return;
    const idleMs = performance.now() - this.#lastProgress;
    if (idleMs >= this.#policy.timeoutMs) {
      const op = this.#state === 'committing' ? 'commit/PutObject' : 'write/PutObject';
      this.#fail(storeError(this.#node, op, 'Timeout', undefined, `no progress within ${this.#policy.timeoutMs} ms`));
      return;
    }
    this.#timer = setTimeout(this.#watch, this.#policy.timeoutMs - idleMs);
  };

  #clearTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: unknown) => void } {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
