// getObject: finds the object's generation from k of its shards (discover.ts, data shards first), checks the key
// commitment, then reads stripe by stripe only the chunks that hold the wanted segments (k good ones to rebuild
// from once one of those is lost or bad, opening spare shards then); each stripe's verification, rebuilding and
// decryption is one worker task. Plaintext is emitted strictly in order.
import { Readable } from 'node:stream';
import { openPayloadKey } from '../aead/object-keys.js';
import { OrderedWindow } from '../concurrency.js';
import { DecryptionError, ErasureError } from '../errors.js';
import { copyToShared } from '../pool/shared-memory.js';
import type { ObjectDeps } from './deps.js';
import { BudgetHolder } from './budget.js';
import { assertEnough, discover, openSpare, release, type Discovered } from './discover.js';
import { stripeBufferBytes, stripeChunkBytes } from './format.js';
import { resolveGetObjectOptions, type GetObjectOptions, type ResolvedGet } from './options.js';
import { markBad, neededChunks, pickShards, readSlots, segmentsPlainBytes, shardSpans } from './stripe-io.js';
import { openStripeNatively } from './native-stripe.js';
import { allocStreamOutput, nativePoolEnabled } from '../aead/native-batch.js';
import { nativeGcm } from '../aead/native-gcm.js';
import { INLINE_STRIPE_BYTES, openStripe, TASK_OPEN_STRIPE, type OpenStripeResult, type OpenStripeTask } from './tasks.js';

interface Opened {
  out: Uint8Array;
  segLo: number;
  plainBytes: number;
  /** `out` is fresh memory of its own (handed to the consumer), not a pooled buffer. */
  own: boolean;
}

/** Keys in shared slots, read by the workers and zeroed once every task has settled. */
interface StripeKeys {
  payloadKey: Uint8Array;
  chunkKey: Uint8Array;
}

/** What a whole-object get asks to come with each open: all of a shard up to this size (its trailer included). */
const WHOLE_GET_READ_AHEAD_BYTES = 1024 * 1024;

export function getObject(deps: ObjectDeps, objectId: string, options: GetObjectOptions): Readable {
  const resolved = resolveGetObjectOptions(objectId, options);
  return Readable.from(read(deps, objectId, resolved, false), { objectMode: false });
}

/**
 * The same bytes as getObject, as an async iterable of chunks valid until the next step: each is a view of the
 * stripe's own buffer, which goes back to the pool when the consumer asks for more (no copy, and no fresh Buffer
 * per segment for V8 to collect; see aead/chunk-iterators.ts).
 */
export function getObjectChunks(deps: ObjectDeps, objectId: string, options: GetObjectOptions): AsyncGenerator<Buffer, void, undefined> {
  const resolved = resolveGetObjectOptions(objectId, options);
  return read(deps, objectId, resolved, true);
}

async function* read(deps: ObjectDeps, objectId: string, options: ResolvedGet, views: boolean): AsyncGenerator<Buffer, void, undefined> {
  const { signal, onProgress } = options;
  signal?.throwIfAborted();
  // A whole-object get reads every shard it opens from its start: small ones come whole with the open.
  const reader = options.range === undefined ? { readAheadBytes: WHOLE_GET_READ_AHEAD_BYTES } : undefined;
  const d = await discover(deps.keys, options.store, options.ref, { open: 'k', reader, shards: options.shards });
  const holder = new BudgetHolder();
  let keys: StripeKeys | undefined;
  const window = new OrderedWindow<Opened>(deps.window);
  try {
    const payloadKey = openPayloadKey(d.dek, d.header.sealed, options.context);
    keys = { payloadKey: copyToShared(payloadKey), chunkKey: copyToShared(d.keys.chunkKey) };
    payloadKey.fill(0);
    const g = d.geometry;
    const offset = options.range?.offset ?? 0;
    const length = options.range?.length ?? g.plaintextBytes - offset;
    if (offset + length > g.plaintextBytes) throw new RangeError(`options.range ends past the object's ${g.plaintextBytes} bytes`);
    assertEnough(objectId, d);
    if (length === 0) return;
    const S = g.segmentBytes;
    const first = Math.floor(offset / S);
    const last = Math.floor((offset + length - 1) / S);
    // Each data shard's slots for these stripes follow one another: the store may stream them in one request.
    for (const [j, span] of shardSpans(g, first, last)) if (d.good.has(j)) d.readers.get(j)?.willRead?.(span.offset, span.length);
    let emitted = 0;
    const emit = async function* () {
      const { out, segLo, plainBytes, own } = await window.shift();
      // getObject hands each segment over for good: as a view of the stripe's own fresh memory where the native
      // threads opened it there, else as a copy of at most one segment (small enough for malloc to recycle), so
      // the shared buffer goes back to the pool at once.
      const from = Math.max(offset - segLo * S, 0);
      const to = Math.min(offset + length - segLo * S, plainBytes);
      try {
        if (views) {
          emitted += to - from;
          yield Buffer.from(out.buffer, out.byteOffset + from, to - from);
        } else {
          for (let at = from; at < to; at += S) {
            const end = Math.min(at + S, to);
            const piece = own ? Buffer.from(out.buffer, out.byteOffset + at, end - at) : Buffer.from(out.subarray(at, end));
            emitted += piece.length;
            yield piece;
          }
        }
      } finally {
        if (!own) deps.buffers.release(out);
        deps.budget.give(holder, g.segmentBytes * g.k);
      }
      onProgress?.(emitted, length);
    };
    for (let t = Math.floor(first / g.k); t <= Math.floor(last / g.k); t++) {
      signal?.throwIfAborted();
      if (window.full) yield* emit();
      const segLo = Math.max(first, t * g.k);
      const segHi = Math.min(last, t * g.k + g.k - 1);
      window.push(readStripe(deps, objectId, d, keys, holder, options.signal, t, segLo, segHi, !views));
    }
    while (window.size > 0) yield* emit();
  } finally {
    // Stripes still in flight (the reader stopped early, or one failed) settle before their keys are zeroed.
    while (window.size > 0) {
      const opened = await window.shift().catch(() => undefined);
      if (opened?.own) opened.out.fill(0); // plaintext nobody took
      else if (opened) deps.buffers.release(opened.out);
    }
    if (holder.held > 0) deps.budget.give(holder, holder.held);
    keys?.payloadKey.fill(0);
    keys?.chunkKey.fill(0);
    await release(d);
  }
}

/**
 * Reads, verifies, rebuilds if needed and decrypts segments segLo..segHi of stripe t. With `handOff` (getObject,
 * whose consumer keeps what it is given) and the native stripe path, the plaintext goes into fresh memory that is
 * handed over as is; otherwise into a pooled buffer the caller releases.
 */
async function readStripe(
  deps: ObjectDeps, objectId: string, d: Discovered, keys: StripeKeys, holder: BudgetHolder, signal: AbortSignal | undefined,
  t: number, segLo: number, segHi: number, handOff: boolean,
): Promise<Opened> {
  const g = d.geometry;
  const S = g.segmentBytes;
  const Cx = stripeChunkBytes(g, t);
  const plainBytes = segmentsPlainBytes(g, segLo, segHi);
  const needed = neededChunks(g, t, segLo, segHi);

  // Both buffers come from the service's budget (the shape was capped when the header was parsed).
  const bufferBytes = stripeBufferBytes(g.k, g.m, S);
  await deps.budget.take(holder, bufferBytes + S * g.k, signal);
  const buffer = deps.buffers.acquire(bufferBytes);
  // Only stripes the native threads open (small ones open inline, where a copy costs less than fresh memory), and
  // only as many bytes as the segments wanted.
  const own = handOff && Cx * g.k > INLINE_STRIPE_BYTES && !!nativeGcm?.openStripe && nativePoolEnabled();
  const out = own ? allocStreamOutput(plainBytes) : deps.buffers.acquire(S * g.k);
  try {
    const read = new Set<number>();
    // Shards whose chunk of this stripe failed here. A shard that went bad in another stripe (d.degraded) is still
    // tried in this one when the good shards are not enough: its chunk here has its own tag. Whether the other
    // stripe had found it first used to decide between bytes and ErasureError (stripes run concurrently).
    let badHere: Set<number> | undefined; // made on the first failure: a healthy stripe allocates nothing more
    const usable = (j: number) => d.good.has(j) || (d.degraded.has(j) && !badHere?.has(j));
    const enoughHere = () => {
      let n = 0;
      for (let j = 0; j < g.k + g.m; j++) if (usable(j)) n++;
      if (n < g.k) assertEnough(objectId, d);
    };
    for (let attempt = 0; attempt <= g.k + g.m; attempt++) {
      // First just the chunks the segments live in; once one of them is lost or bad, k usable shards to rebuild from.
      if (!needed.every((j) => d.good.has(j))) await openSpare(d, g.k);
      const wanted = needed.every((j) => d.good.has(j)) ? needed : pickShards(d, g, needed, usable);
      if (wanted !== needed && wanted.length < g.k) enoughHere();
      const toRead = wanted.filter((j) => !read.has(j));
      for (const j of await readSlots(d, t, toRead, buffer)) read.add(j);
      for (const j of toRead) if (!read.has(j)) (badHere ??= new Set()).add(j);
      const task: OpenStripeTask = {
        kind: TASK_OPEN_STRIPE, k: g.k, m: g.m, stripe: t, chunkBytes: Cx, short: t >= g.fullStripes, buffer,
        present: [...read].filter(usable), rebuild: needed, tagRebuilt: false, chunkKey: keys.chunkKey,
        decrypt: {
          payloadKey: keys.payloadKey, noncePrefix: d.header.sealed.noncePrefix, segmentBytes: S, firstSegment: segLo, lastSegment: segHi,
          segments: g.segments, plaintextBytes: g.plaintextBytes, out: out.subarray(0, plainBytes),
        },
      };
      const result = Cx * g.k <= INLINE_STRIPE_BYTES
        ? openStripe(task)
        : (await openStripeNatively(task, deps.threads)) ?? (await openInWorker(deps, task, own));
      for (const j of result.bad) {
        if (d.good.has(j)) d.degraded.add(j);
        markBad(d, j, 'corrupt');
        (badHere ??= new Set()).add(j);
        read.delete(j);
      }
      if (result.decryptFailed) throw new DecryptionError();
      if (result.ok) return { out, segLo, plainBytes, own };
      await openSpare(d, g.k);
      enoughHere();
    }
    throw new ErasureError(`object "${objectId}": stripe ${t} could not be rebuilt`);
  } catch (err) {
    if (own) out.fill(0); // segments that did verify
    else deps.buffers.release(out);
    deps.budget.give(holder, S * g.k);
    throw err;
  } finally {
    deps.buffers.release(buffer);
    deps.budget.give(holder, bufferBytes);
  }
}

/**
 * The worker task (rebuilds, or no native stripe path for it). Workers write only shared memory: with `own`, the
 * plaintext goes through a pooled buffer into the stripe's own.
 */
async function openInWorker(deps: ObjectDeps, task: OpenStripeTask, own: boolean): Promise<OpenStripeResult> {
  const d = task.decrypt!;
  if (!own) return deps.pool().run<OpenStripeResult>(task);
  const target = d.out;
  const shared = deps.buffers.acquire(target.length);
  try {
    d.out = shared.subarray(0, target.length);
    const result = await deps.pool().run<OpenStripeResult>(task);
    if (result.ok && !result.decryptFailed) target.set(d.out);
    return result;
  } finally {
    d.out = target;
    deps.buffers.release(shared);
  }
}
