// putObject / getObject / repairObject / rewrapObject: objects encrypted in the sealed-object format, erasure coded
// into k+m self-describing shards (format.ts), written to a ShardStore, and read back from any k good shards.
// The main thread only moves bytes between the store and shared stripe buffers and keeps order; each stripe's
// crypto and coding is one worker task (tasks.ts). Memory is bounded by the stripes in flight, whatever the size.
import { Readable } from 'node:stream';
import { canonicalContext, type EncryptionContext } from '../aead/context.js';
import {
  DEFAULT_SEGMENT_BYTES, encodeHeader, encodeHeaderCore, MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES, NONCE_PREFIX_BYTES,
  OFFSET_WRAPPED, SALT_BYTES, TAG_BYTES,
} from '../aead/header.js';
import { commitmentMatches, deriveObjectKeys } from '../aead/key-schedule.js';
import { DecryptionError, ErasureError } from '../errors.js';
import { fillRandom } from '../random.js';
import type { KeyService } from '../hsm/key-service.js';
import type { WorkerPool } from '../pool/pool.js';
import { resolveShape } from '../erasure/validate.js';
import { assertEnough, closeReaders, discover, type Discovered } from './discover.js';
import {
  CHUNK_TAG_BYTES, deriveShardKeys, encodeShardHeader, encodeTrailer, geometry, geometryMac, MAX_OBJECT_ID_BYTES, objectAad,
  stripeChunkBytes, stripeOffset, withShardIndex, type Geometry,
} from './format.js';
import type { ShardStore, ShardWriter } from './shard-store.js';
import { SharedBuffers } from './shared-buffers.js';
import { stripeBufferBytes, TASK_OPEN_STRIPE, TASK_SEAL_STRIPE, type OpenStripeResult, type OpenStripeTask, type SealStripeTask } from './tasks.js';

export type ObjectSource = Uint8Array | AsyncIterable<Uint8Array | string> | Iterable<Uint8Array>;
export type Progress = (done: number, total: number) => void;

export interface PutObjectOptions {
  keyId: string;
  context?: EncryptionContext;
  dataShards: number;
  parityShards: number;
  store: ShardStore;
  /** Plaintext bytes per segment (and so per data chunk); default 256 KiB. */
  segmentBytes?: number;
  /** Expected size, only for onProgress's total when the source is a stream. */
  size?: number;
  signal?: AbortSignal;
  onProgress?: Progress;
}

export interface ObjectInfo {
  objectId: string;
  size: number;
  dataShards: number;
  parityShards: number;
  segmentBytes: number;
  stripes: number;
  shardBytes: number;
  keyId: string;
  keyVersion: number;
}

export interface GetObjectOptions {
  store: ShardStore;
  context?: EncryptionContext;
  range?: { offset: number; length: number };
  signal?: AbortSignal;
  onProgress?: Progress;
}

export interface RepairObjectOptions {
  store: ShardStore;
  signal?: AbortSignal;
  onProgress?: Progress;
}

export interface RepairReport {
  objectId: string;
  shards: number;
  /** Shards that were not there (or not readable). */
  missing: number[];
  /** Shards that were there but wrong: header, size, trailer or a chunk failing its tag. */
  corrupt: number[];
  /** Shards rewritten (byte-identical to what put wrote). */
  repaired: number[];
  stripes: number;
}

export interface RewrapObjectOptions {
  store: ShardStore;
  signal?: AbortSignal;
}

export interface RewrapReport {
  objectId: string;
  keyId: string;
  keyVersion: number;
  /** Shards whose header was rewritten. */
  rewrapped: number[];
  /** Shards left alone because they were missing or bad (repair them, then rewrap again). */
  skipped: number[];
}

export interface ObjectServiceDeps {
  keys: KeyService;
  pool(): WorkerPool;
  threads: number;
  segmentBytes?: number;
}

function checkObjectId(objectId: unknown): string {
  if (typeof objectId !== 'string' || objectId.length === 0 || Buffer.byteLength(objectId) > MAX_OBJECT_ID_BYTES) {
    throw new TypeError(`objectId must be a non-empty string of at most ${MAX_OBJECT_ID_BYTES} UTF-8 bytes`);
  }
  return objectId;
}

function checkStore(store: unknown): ShardStore {
  const s = store as ShardStore;
  if (!s || typeof s !== 'object' || typeof s.openWriter !== 'function' || typeof s.openReader !== 'function' || !Number.isInteger(s.nodes)) {
    throw new TypeError('options.store must be a ShardStore');
  }
  return s;
}

function checkCommon(options: { signal?: unknown; onProgress?: unknown }): void {
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw new TypeError('options.signal must be an AbortSignal');
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function') throw new TypeError('options.onProgress must be a function');
}

function checkOptions<T>(options: T): T {
  if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
  return options;
}

/** The checks every object call starts with; returns the store. */
function checkCall(objectId: unknown, options: { store?: unknown; signal?: unknown; onProgress?: unknown }): ShardStore {
  checkObjectId(objectId);
  checkOptions(options);
  const store = checkStore(options.store);
  checkCommon(options);
  return store;
}

async function* chunksOf(source: ObjectSource): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    yield source;
    return;
  }
  if (source && (typeof (source as any)[Symbol.asyncIterator] === 'function' || typeof (source as any)[Symbol.iterator] === 'function')) {
    for await (const chunk of source as AsyncIterable<unknown>) {
      if (!(chunk instanceof Uint8Array)) throw new TypeError('source must yield Uint8Array chunks (a binary stream)');
      yield chunk;
    }
    return;
  }
  throw new TypeError('source must be a Uint8Array, a Readable or an async iterable of Uint8Array');
}

/** Runs promises with at most `limit` in flight, delivering results in order. */
class OrderedWindow<T> {
  readonly #limit: number;
  readonly #queue: Promise<T>[] = [];
  constructor(limit: number) {
    this.#limit = limit;
  }
  get full(): boolean {
    return this.#queue.length >= this.#limit;
  }
  get size(): number {
    return this.#queue.length;
  }
  push(job: Promise<T>): void {
    job.catch(() => {}); // observed when shifted; avoids an unhandled rejection while waiting in line
    this.#queue.push(job);
  }
  shift(): Promise<T> {
    return this.#queue.shift()!;
  }
}

export class ObjectService {
  readonly #deps: ObjectServiceDeps;
  readonly #buffers = new SharedBuffers();

  constructor(deps: ObjectServiceDeps) {
    this.#deps = deps;
  }

  get #window(): number {
    return 2 * this.#deps.threads;
  }

  // ---- put ---------------------------------------------------------------------------------------------------

  async putObject(objectId: string, source: ObjectSource, options: PutObjectOptions): Promise<ObjectInfo> {
    const store = checkCall(objectId, options);
    if (typeof options.keyId !== 'string' || options.keyId.length === 0) throw new TypeError('options.keyId must be a non-empty string');
    const { dataShards: k, parityShards: m } = resolveShape(options);
    const segmentBytes = options.segmentBytes ?? this.#deps.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if (!Number.isSafeInteger(segmentBytes) || segmentBytes < MIN_SEGMENT_BYTES || segmentBytes > MAX_SEGMENT_BYTES) {
      throw new RangeError(`options.segmentBytes must be an integer from ${MIN_SEGMENT_BYTES} to ${MAX_SEGMENT_BYTES}`);
    }
    const context = canonicalContext(options.context ?? {});
    const signal = options.signal;
    signal?.throwIfAborted();

    // The DEK is bound to the object id in the HSM; the context is bound through the payload key and commitment.
    const { plaintext: dek, wrapped } = await this.#deps.keys.generateDataKey(options.keyId, { aad: objectAad(objectId) });
    const random = fillRandom(new Uint8Array(SALT_BYTES + NONCE_PREFIX_BYTES));
    const salt = random.subarray(0, SALT_BYTES);
    const noncePrefix = random.subarray(SALT_BYTES);
    const core = encodeHeaderCore(segmentBytes, salt, noncePrefix);
    const { payloadKey, commitment } = deriveObjectKeys(dek, salt, core, context);
    const shardKeys = deriveShardKeys(dek, salt, core);
    dek.fill(0);
    const sealedHeader = encodeHeader(core, commitment, wrapped);
    const mac = geometryMac(shardKeys.metaKey, k, m, objectId, sealedHeader);
    const header = encodeShardHeader(k, m, 0, objectId, mac, sealedHeader);

    const writers: ShardWriter[] = [];
    const stripePlainBytes = k * segmentBytes;
    const bufferBytes = stripeBufferBytes(k, m, segmentBytes);
    const window = new OrderedWindow<{ buffer: Uint8Array; plain: Uint8Array; chunkBytes: number }>(this.#window);
    const writing = new OrderedWindow<void>(this.#window);
    let plaintextBytes = 0;
    let stripe = 0;
    const total = options.size ?? (source instanceof Uint8Array ? source.length : NaN);
    try {
      for (let j = 0; j < k + m; j++) writers.push(await store.openWriter(objectId, j));
      await Promise.all(writers.map((w, j) => w.write(withShardIndex(header, j))));

      // Sealed stripes are written behind: each shard's writes are chained in stripe order, and up to
      // #window stripes may be writing while the next ones are sealed, so workers and disk overlap.
      const chains = writers.map(() => Promise.resolve());
      const writeOut = async () => {
        const { buffer, plain, chunkBytes } = await window.shift();
        const slot = chunkBytes + CHUNK_TAG_BYTES; // chunk ‖ tag, as in the shard file
        const writes = writers.map((w, j) => (chains[j] = chains[j]!.then(() => w.write(buffer.subarray(j * slot, (j + 1) * slot)))));
        while (writing.full) await writing.shift();
        writing.push(Promise.all(writes).then(() => {
          this.#buffers.release(buffer);
          this.#buffers.release(plain);
        }));
      };
      const dispatch = async (plain: Uint8Array, plainBytes: number, isLast: boolean) => {
        signal?.throwIfAborted();
        while (window.full) await writeOut();
        const buffer = this.#buffers.acquire(bufferBytes);
        const task: SealStripeTask = {
          kind: TASK_SEAL_STRIPE, k, m, segmentBytes, stripe, isLast, plain, plainBytes, buffer,
          payloadKey, noncePrefix, chunkKey: shardKeys.chunkKey,
        };
        stripe++;
        window.push(this.#deps.pool().run<{ chunkBytes: number }>(task).then(({ chunkBytes }) => ({ buffer, plain, chunkBytes })));
        plaintextBytes += plainBytes;
        options.onProgress?.(plaintextBytes, Number.isNaN(total) ? plaintextBytes : total);
      };

      // A full stripe is sealed only once a further byte arrives: the stripe holding the last segment must know it.
      let plain = this.#buffers.acquire(stripePlainBytes);
      let filled = 0;
      for await (const chunk of chunksOf(source)) {
        for (let at = 0; at < chunk.length; ) {
          if (filled === stripePlainBytes) {
            await dispatch(plain, filled, false);
            plain = this.#buffers.acquire(stripePlainBytes);
            filled = 0;
          }
          const n = Math.min(chunk.length - at, stripePlainBytes - filled);
          plain.set(chunk.subarray(at, at + n), filled);
          filled += n;
          at += n;
        }
      }
      await dispatch(plain, filled, true);
      while (window.size > 0) await writeOut();
      while (writing.size > 0) await writing.shift();

      const trailer = encodeTrailer(shardKeys.metaKey, plaintextBytes);
      await Promise.all(writers.map(async (w) => {
        await w.write(trailer);
        await w.flush();
      }));
      signal?.throwIfAborted();
      // Every shard is durable under its temp name; publish them all. A failure here unpublishes what was published.
      for (let j = 0; j < writers.length; j++) {
        try {
          await writers[j]!.commit();
        } catch (err) {
          await Promise.all(Array.from({ length: j }, (_, i) => store.remove(objectId, i).catch(() => {})));
          throw err;
        }
      }
      const headerInfo = Buffer.from(wrapped);
      return {
        objectId,
        size: plaintextBytes,
        dataShards: k,
        parityShards: m,
        segmentBytes,
        stripes: stripe,
        shardBytes: geometry(k, m, segmentBytes, plaintextBytes, header.length).shardBytes,
        keyId: formatKeyId(headerInfo.subarray(4, 20)),
        keyVersion: headerInfo.readUInt32BE(20),
      };
    } catch (err) {
      while (window.size > 0) await window.shift().catch(() => {});
      while (writing.size > 0) await writing.shift().catch(() => {});
      await Promise.all(writers.map((w) => w.abort()));
      throw err;
    } finally {
      payloadKey.fill(0);
      shardKeys.metaKey.fill(0);
      shardKeys.chunkKey.fill(0);
    }
  }

  // ---- get ---------------------------------------------------------------------------------------------------

  getObject(objectId: string, options: GetObjectOptions): Readable {
    const store = checkCall(objectId, options);
    const context = canonicalContext(options.context ?? {});
    if (options.range !== undefined) {
      const { offset, length } = options.range ?? ({} as any);
      if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError('options.range.offset must be a non-negative integer');
      if (!Number.isSafeInteger(length) || length < 0) throw new RangeError('options.range.length must be a non-negative integer');
    }
    return Readable.from(this.#read(objectId, store, context, options), { objectMode: false });
  }

  async *#read(objectId: string, store: ShardStore, context: Uint8Array, options: GetObjectOptions): AsyncGenerator<Buffer> {
    const signal = options.signal;
    signal?.throwIfAborted();
    const d = await discover(this.#deps.keys, store, objectId);
    let payloadKey: Buffer | undefined;
    try {
      const { sealed } = d.header;
      const derived = deriveObjectKeys(d.dek, sealed.salt, sealed.core, context);
      d.dek.fill(0);
      if (!commitmentMatches(derived.commitment, sealed.commitment)) {
        derived.payloadKey.fill(0);
        throw new DecryptionError(); // wrong context, or a header made for another DEK
      }
      payloadKey = derived.payloadKey;
      const g = d.geometry;
      const offset = options.range?.offset ?? 0;
      const length = options.range?.length ?? g.plaintextBytes - offset;
      if (offset + length > g.plaintextBytes) throw new RangeError(`options.range ends past the object's ${g.plaintextBytes} bytes`);
      assertEnough(objectId, d);
      if (length === 0) return;
      const S = g.segmentBytes;
      const first = Math.floor(offset / S);
      const last = Math.floor((offset + length - 1) / S);
      const window = new OrderedWindow<{ out: Uint8Array; segLo: number; plainBytes: number }>(this.#window);
      let emitted = 0;
      const key = payloadKey;
      const emit = async function* (this: ObjectService) {
        const { out, segLo, plainBytes } = await window.shift();
        // Copies of at most one segment each: small enough for malloc to recycle (no page faults), and the
        // shared buffer goes back to the pool at once.
        const from = Math.max(offset - segLo * S, 0);
        const to = Math.min(offset + length - segLo * S, plainBytes);
        for (let at = from; at < to; at += S) {
          const piece = Buffer.from(out.subarray(at, Math.min(at + S, to)));
          emitted += piece.length;
          yield piece;
        }
        this.#buffers.release(out);
        options.onProgress?.(emitted, length);
      }.bind(this);
      for (let t = Math.floor(first / g.k); t <= Math.floor(last / g.k); t++) {
        signal?.throwIfAborted();
        if (window.full) yield* emit();
        const segLo = Math.max(first, t * g.k);
        const segHi = Math.min(last, t * g.k + g.k - 1);
        window.push(this.#readStripe(objectId, d, key, t, segLo, segHi));
      }
      while (window.size > 0) yield* emit();
    } finally {
      payloadKey?.fill(0);
      d.dek.fill(0);
      d.keys.metaKey.fill(0);
      d.keys.chunkKey.fill(0);
      await closeReaders(d);
    }
  }

  /** Reads into `buffer` the slots (chunk ‖ tag) of stripe t of the shards given; returns those read whole. */
  async #readSlots(d: Discovered, t: number, shards: number[], buffer: Uint8Array): Promise<number[]> {
    const g = d.geometry;
    const slot = stripeChunkBytes(g, t) + CHUNK_TAG_BYTES;
    const at = stripeOffset(g, t);
    const read: number[] = [];
    await Promise.all(shards.map(async (j) => {
      const reader = d.readers.get(j);
      const n = reader ? await reader.read(at, buffer.subarray(j * slot, (j + 1) * slot)).catch(() => -1) : -1;
      if (n === slot) read.push(j);
      else markBad(d, j, n === -1 ? 'missing' : 'corrupt');
    }));
    return read;
  }

  /** Reads, verifies, rebuilds if needed and decrypts segments segLo..segHi of stripe t. */
  async #readStripe(
    objectId: string, d: Discovered, payloadKey: Uint8Array, t: number, segLo: number, segHi: number,
  ): Promise<{ out: Uint8Array; segLo: number; plainBytes: number }> {
    const g = d.geometry;
    const S = g.segmentBytes;
    const Cx = stripeChunkBytes(g, t);
    const segmentPlain = (i: number) => (i === g.segments - 1 ? g.plaintextBytes - i * S : S);
    let plainBytes = 0;
    for (let i = segLo; i <= segHi; i++) plainBytes += segmentPlain(i);
    // Data chunks holding the wanted segments' sealed bytes (one per segment in a full stripe).
    const payloadOffset = (segLo - t * g.k) * g.chunkBytes;
    const payloadEnd = payloadOffset + plainBytes + (segHi - segLo + 1) * TAG_BYTES;
    const needed: number[] = [];
    for (let j = Math.floor(payloadOffset / Cx); j <= Math.floor((payloadEnd - 1) / Cx); j++) needed.push(j);

    const buffer = this.#buffers.acquire(stripeBufferBytes(g.k, g.m, S));
    const out = this.#buffers.acquire(S * g.k);
    try {
      const read = new Set<number>();
      for (let attempt = 0; attempt <= g.k + g.m; attempt++) {
        // First just the chunks the segments live in; once one of them is lost or bad, k good shards to rebuild from.
        const wanted = needed.every((j) => d.good.has(j)) ? needed : pickShards(d, g, needed);
        if (wanted.length < needed.length) assertEnough(objectId, d);
        for (const j of await this.#readSlots(d, t, wanted.filter((j) => !read.has(j)), buffer)) read.add(j);
        const task: OpenStripeTask = {
          kind: TASK_OPEN_STRIPE, k: g.k, m: g.m, stripe: t, chunkBytes: Cx, short: t >= g.fullStripes, buffer,
          present: [...read].filter((j) => d.good.has(j)), rebuild: needed, tagRebuilt: false, chunkKey: d.keys.chunkKey,
          decrypt: {
            payloadKey, noncePrefix: d.header.sealed.noncePrefix, segmentBytes: S, firstSegment: segLo, lastSegment: segHi,
            segments: g.segments, plaintextBytes: g.plaintextBytes, out: out.subarray(0, plainBytes),
          },
        };
        const result = await this.#deps.pool().run<OpenStripeResult>(task);
        for (const j of result.bad) {
          markBad(d, j, 'corrupt');
          read.delete(j);
        }
        if (result.decryptFailed) throw new DecryptionError();
        if (result.ok) return { out, segLo, plainBytes };
        assertEnough(objectId, d);
      }
      throw new ErasureError(`object "${objectId}": stripe ${t} could not be rebuilt`);
    } catch (err) {
      this.#buffers.release(out);
      throw err;
    } finally {
      this.#buffers.release(buffer);
    }
  }

  // ---- repair ------------------------------------------------------------------------------------------------

  async repairObject(objectId: string, options: RepairObjectOptions): Promise<RepairReport> {
    const store = checkCall(objectId, options);
    const signal = options.signal;
    signal?.throwIfAborted();
    const d = await discover(this.#deps.keys, store, objectId);
    d.dek.fill(0);
    const g = d.geometry;
    const total = g.k + g.m;
    try {
      assertEnough(objectId, d);
      // Scrub: every chunk of every candidate shard is checked against its tag.
      for (let t = 0; t < g.stripes; t++) {
        signal?.throwIfAborted();
        await this.#repairStripe(objectId, d, t, [], undefined);
        options.onProgress?.(t + 1, g.stripes * 2);
      }
      assertEnough(objectId, d);
      const bad = Array.from({ length: total }, (_, j) => j).filter((j) => !d.good.has(j));
      const report: RepairReport = {
        objectId, shards: total, missing: [...d.missing].sort((a, b) => a - b), corrupt: [...d.corrupt].sort((a, b) => a - b), repaired: [], stripes: g.stripes,
      };
      if (bad.length === 0) return report;
      const writers = new Map<number, ShardWriter>();
      try {
        for (const j of bad) writers.set(j, await store.openWriter(objectId, j));
        await Promise.all(bad.map((j) => writers.get(j)!.write(withShardIndex(d.headerBytes, j))));
        for (let t = 0; t < g.stripes; t++) {
          signal?.throwIfAborted();
          await this.#repairStripe(objectId, d, t, bad, writers);
          options.onProgress?.(g.stripes + t + 1, g.stripes * 2);
        }
        const trailer = encodeTrailer(d.keys.metaKey, g.plaintextBytes);
        await Promise.all(bad.map(async (j) => {
          await writers.get(j)!.write(trailer);
          await writers.get(j)!.flush();
        }));
        for (const j of bad) await writers.get(j)!.commit();
      } catch (err) {
        await Promise.all([...writers.values()].map((w) => w.abort()));
        throw err;
      }
      report.repaired = bad;
      return report;
    } finally {
      d.keys.metaKey.fill(0);
      d.keys.chunkKey.fill(0);
      await closeReaders(d);
    }
  }

  /** Verifies stripe t on every good shard; with `targets`, rebuilds those chunks and appends them to their writers. */
  async #repairStripe(objectId: string, d: Discovered, t: number, targets: number[], writers: Map<number, ShardWriter> | undefined): Promise<void> {
    const g = d.geometry;
    const Cx = stripeChunkBytes(g, t);
    const slot = Cx + CHUNK_TAG_BYTES;
    const buffer = this.#buffers.acquire(stripeBufferBytes(g.k, g.m, g.segmentBytes));
    try {
      for (;;) {
        assertEnough(objectId, d);
        const read = await this.#readSlots(d, t, [...d.good].filter((j) => !targets.includes(j)), buffer);
        const task: OpenStripeTask = {
          kind: TASK_OPEN_STRIPE, k: g.k, m: g.m, stripe: t, chunkBytes: Cx, short: t >= g.fullStripes, buffer,
          present: read, rebuild: targets, tagRebuilt: true, chunkKey: d.keys.chunkKey,
        };
        const result = await this.#deps.pool().run<OpenStripeResult>(task);
        for (const j of result.bad) markBad(d, j, 'corrupt');
        if (writers && result.bad.length > 0) {
          // A shard went bad while repairing: it needs a rewrite from stripe 0, which this pass cannot give it.
          throw new ErasureError(`object "${objectId}": shard ${result.bad.join(', ')} went bad during repair; run repair again`);
        }
        if (!result.ok) continue;
        if (writers) for (const j of targets) await writers.get(j)!.write(buffer.subarray(j * slot, (j + 1) * slot));
        return;
      }
    } finally {
      this.#buffers.release(buffer);
    }
  }

  // ---- rewrap ------------------------------------------------------------------------------------------------

  async rewrapObject(objectId: string, options: RewrapObjectOptions): Promise<RewrapReport> {
    const store = checkCall(objectId, options);
    options.signal?.throwIfAborted();
    const d = await discover(this.#deps.keys, store, objectId);
    await closeReaders(d);
    d.dek.fill(0);
    d.keys.metaKey.fill(0);
    d.keys.chunkKey.fill(0);
    const oldWrapped = d.header.sealed.wrappedDek;
    const wrapped = await this.#deps.keys.rewrap(oldWrapped, { aad: objectAad(objectId) });
    if (wrapped.length !== oldWrapped.length) throw new RangeError('the rewrapped DEK has another length; the shard headers cannot be rewritten in place');
    const at = d.header.sealedOffset + OFFSET_WRAPPED;
    const rewrapped: number[] = [];
    for (const j of [...d.good].sort((a, b) => a - b)) {
      options.signal?.throwIfAborted();
      await store.overwrite(objectId, j, at, wrapped);
      rewrapped.push(j);
    }
    const info = Buffer.from(wrapped);
    return {
      objectId,
      keyId: formatKeyId(info.subarray(4, 20)),
      keyVersion: info.readUInt32BE(20),
      rewrapped,
      skipped: Array.from({ length: d.geometry.k + d.geometry.m }, (_, j) => j).filter((j) => !d.good.has(j)),
    };
  }

  close(): void {
    this.#buffers.clear();
  }
}

function markBad(d: Discovered, j: number, why: 'missing' | 'corrupt'): void {
  if (!d.good.delete(j)) return;
  (why === 'missing' ? d.missing : d.corrupt).add(j);
}

/** Good shards to read for a stripe: the needed data chunks that are good, then other data, then parity, to k. */
function pickShards(d: Discovered, g: Geometry, needed: number[]): number[] {
  const order = [...needed, ...Array.from({ length: g.k + g.m }, (_, j) => j).filter((j) => !needed.includes(j))];
  return order.filter((j) => d.good.has(j)).slice(0, Math.max(g.k, 1));
}

function formatKeyId(bytes: Uint8Array): string {
  const h = Buffer.from(bytes).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
