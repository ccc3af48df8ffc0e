// Reading S3 response bodies: whole into a buffer (readInto), or piece by piece in order (BodyCursor), so that one
// streamed GET serves many reads without a request each.
import type { Readable } from 'node:stream';
import { storeError, type S3Node } from './s3-request.js';

/**
 * Copies a response body into target[0, want); fails on a short body, and on a long one unless `truncate` (then the
 * rest is dropped with the connection); the deadline destroys the stream.
 */
export async function readInto(body: Readable, target: Uint8Array, want: number, signal: AbortSignal, n: S3Node, truncate = false): Promise<void> {
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

/** A leftover this small is read and dropped when a cursor closes, so that its connection is reused; more is cut. */
const DRAIN_BYTES = 64 * 1024;

/** The body of a GET of blob bytes [position, end), taken from in order; paused (TCP backpressure) in between. */
export class BodyCursor {
  position: number;
  readonly end: number;
  readonly #body: Readable;
  readonly #wakeUp = (): void => {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  };
  #wake: (() => void) | undefined;
  #failure: unknown;
  #ended = false;

  constructor(body: Readable, position: number, end: number) {
    this.#body = body;
    this.position = position;
    this.end = end;
    body.on('readable', this.#wakeUp);
    body.on('error', (err: unknown) => {
      this.#failure ??= err;
      this.#wakeUp();
    });
    for (const event of ['end', 'close']) {
      body.on(event, () => {
        this.#ended = true;
        this.#wakeUp();
      });
    }
  }

  /** Moves `n` bytes on, copying them into `into` when given; rejects when the body fails or ends short, or on `signal`. */
  async take(n: number, into: Uint8Array | undefined, signal: AbortSignal): Promise<void> {
    for (let at = 0; at < n; ) {
      if (this.#failure !== undefined) throw this.#failure;
      const chunk = this.#body.read() as Buffer | null;
      if (chunk === null) {
        if (this.#ended) throw new Error('the body ended short');
        if (signal.aborted) throw signal.reason;
        await new Promise<void>((resolve) => {
          const onAbort = (): void => resolve();
          signal.addEventListener('abort', onAbort, { once: true });
          this.#wake = () => {
            signal.removeEventListener('abort', onAbort);
            resolve();
          };
        });
        continue;
      }
      const count = Math.min(chunk.length, n - at);
      into?.set(chunk.subarray(0, count), at);
      if (count < chunk.length) this.#body.unshift(chunk.subarray(count));
      at += count;
    }
    this.position += n;
  }

  /** Lets the body go: read to its end when little is left (the connection is reused), else cut off. */
  close(): void {
    if (this.#ended) return;
    if (this.#failure === undefined && this.end - this.position <= DRAIN_BYTES) {
      this.#body.off('readable', this.#wakeUp);
      this.#body.resume();
    } else {
      this.#body.destroy();
    }
  }
}
