// ErasureService: Reed-Solomon in parallel. Large inputs are split into column ranges (every shard's bytes [a, b)).
// With the native addon they run on its own threads, reading and writing the shards in place; a call of up to
// HELP_MAX_BYTES runs with this thread taking a share and returns without any completion round trip (a 10+4
// stripe of 64 KiB shards is ~25 µs of work: a message to a worker and back costs 60-80 µs). Otherwise (or
// with HSM_NATIVE_POOL=0 / the 'reference' kernel) the ranges go to the piscina workers; shards live in
// SharedArrayBuffers, so tasks carry offsets only. Caller buffers are never modified: encode/decode copy into
// the engine's shared memory first.
import type { WorkerPool } from '../pool/pool.js';
import { allocShared, isShared } from '../pool/shared-memory.js';
import { getKernel, native, resolveKernel, type KernelName, type PreparedMul } from './native.js';
import { ReedSolomon } from './reed-solomon.js';
import type { StripeTask } from './tasks.js';
import { checkRecoverable, checkShards, resolveShape, type ShapeOptions } from './validate.js';

export interface ErasureServiceOptions {
  /** Below this many data bytes a call runs on the calling thread (a worker round trip costs 60-80 µs). */
  inlineBelowBytes?: number;
  /** Data bytes per task at least (PERF-NOTES: give workers ≥ 1 MiB) and at most. */
  minTaskBytes?: number;
  maxTaskBytes?: number;
  /** Kernel used in the workers; default: the calling thread's current kernel at each call. */
  kernel?: KernelName | 'auto';
}

export interface ErasureCallOptions extends ShapeOptions {
  signal?: AbortSignal;
}
export interface ErasureDecodeOptions extends ErasureCallOptions {
  /** Byte length of the original data (the shards hold ceil(size / dataShards) bytes each). */
  size: number;
}

const DEFAULT_INLINE_BELOW_BYTES = 1 << 20;
/** Native pool: calls with at most this many data bytes run with the calling thread helping (≤ ~0.2 ms). */
const HELP_MAX_BYTES = 16 << 20;
/** Native pool: data bytes per column-range item at most (fine enough to balance, coarse enough to be cheap). */
const NATIVE_ITEM_BYTES = 2 << 20;
/** Native pool: items per thread at least, and the narrowest item (bytes of each shard). Many small items mean a
 * helper that is slow to start (or preempted) holds up the call by one small item at most. */
const NATIVE_ITEMS_PER_THREAD = 8;
const NATIVE_MIN_ITEM_COLUMNS = 4096;
let nativePool = process.env.HSM_NATIVE_POOL !== '0';

/** @internal Switches the native pool for erasure calls on or off (tests run both paths); returns the previous state. */
export function setNativeErasurePool(on: boolean): boolean {
  const before = nativePool;
  nativePool = on;
  return before;
}
const DEFAULT_MIN_TASK_BYTES = 1 << 20;
const DEFAULT_MAX_TASK_BYTES = 32 << 20;
/** Column ranges start on cache-line boundaries so two workers never write the same line. */
const RANGE_ALIGN_BYTES = 64;

/** One encode or reconstruct over shared shard buffers, split into column ranges. */
interface SpreadJob {
  k: number;
  m: number;
  shards: readonly (Uint8Array | null | undefined)[];
  shardBytes: number;
  /** encodeShards: the caller's shards array, under which the checked call is kept for the next one. */
  reuseKey?: object;
  /** Rows to compute (reconstruct), else the parity rows. */
  targets?: number[];
  outputs?: Uint8Array[];
  signal?: AbortSignal;
}

/**
 * An encodeShards call checked once, for a caller that encodes the same stripe buffers again and again (as the
 * method asks): identical shards (the same views, the same length) and shape skip every check and go to the addon
 * with a handle instead of 14 views to unpack. A 64 KiB stripe's call cost 3 µs of fixed overhead on the calling
 * thread, before the pool thread could take its share (measured: half of what splitting the stripe gains).
 */
interface PreparedEncode {
  k: number;
  m: number;
  shardBytes: number;
  kernel: KernelName;
  views: Uint8Array[];
  handle: PreparedMul;
  threads: number;
  itemBytes: number;
}

export class ErasureService {
  readonly #pool: WorkerPool;
  readonly #inlineBelow: number;
  readonly #minTask: number;
  readonly #maxTask: number;
  readonly #kernel: KernelName | null;
  readonly #codecs = new Map<string, ReedSolomon>();
  #lastCodec: ReedSolomon | undefined;
  /** Per shards array: its prepared encode, or null once seen (prepared on the second call: reuse is likely then). */
  readonly #prepared = new WeakMap<object, PreparedEncode | null>();
  // piscina's queue is bounded (maxQueue 'auto' = threads²) and rejects beyond it, so this service keeps its
  // own tasks in flight to ≤ 2 per thread and queues the rest here.
  readonly #maxInFlight: number;
  #inFlight = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(pool: WorkerPool, options: ErasureServiceOptions = {}) {
    if (!pool || typeof pool.run !== 'function') throw new TypeError('pool must be a WorkerPool');
    this.#pool = pool;
    this.#inlineBelow = positiveInt(options.inlineBelowBytes ?? DEFAULT_INLINE_BELOW_BYTES, 'options.inlineBelowBytes', 0);
    this.#minTask = positiveInt(options.minTaskBytes ?? DEFAULT_MIN_TASK_BYTES, 'options.minTaskBytes', 1);
    this.#maxTask = positiveInt(options.maxTaskBytes ?? DEFAULT_MAX_TASK_BYTES, 'options.maxTaskBytes', this.#minTask);
    this.#kernel = options.kernel === undefined ? null : resolveKernel(options.kernel, 'options.kernel');
    this.#maxInFlight = 2 * pool.threads;
  }

  /** Splits `data` into k zero-padded data shards of ceil(size/k) bytes and computes m parity shards. */
  async encode(data: Uint8Array, options: ErasureCallOptions): Promise<Uint8Array[]> {
    if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
    const { dataShards: k, parityShards: m } = resolveShape(options);
    const shardBytes = Math.ceil(data.length / k);
    const inline = data.length < this.#inlineBelow;
    // One allocation holds every shard: data shards are consecutive slices of the input, padding is zeros.
    const all = inline ? new Uint8Array((k + m) * shardBytes) : allocShared((k + m) * shardBytes);
    all.set(data);
    const shards = Array.from({ length: k + m }, (_, i) => all.subarray(i * shardBytes, (i + 1) * shardBytes));
    if (inline) this.#codec(k, m).encode(shards);
    else await this.#spread({ k, m, shards, shardBytes, signal: options.signal });
    return shards;
  }

  /** The original `size` bytes from any k of the k+m shards (null = lost). Inputs are not modified. */
  async decode(shards: (Uint8Array | null | undefined)[], options: ErasureDecodeOptions): Promise<Uint8Array> {
    const { dataShards: k, parityShards: m } = resolveShape(options);
    const { shardBytes, missing } = checkShards(shards, k + m, true);
    const { size } = options;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0)
      throw new RangeError(`options.size must be a non-negative integer (got ${size})`);
    if (Math.ceil(size / k) !== shardBytes)
      throw new RangeError(`options.size must satisfy ceil(size / dataShards) = shard length (${shardBytes}), got size ${size}`);
    checkRecoverable(missing.length, m);
    const lost = missing.filter((i) => i < k);
    const inline = lost.length === 0 || k * shardBytes < this.#inlineBelow;
    const out = inline ? new Uint8Array(k * shardBytes) : allocShared(k * shardBytes);
    const slots = Array.from({ length: k }, (_, i) => out.subarray(i * shardBytes, (i + 1) * shardBytes));
    for (let i = 0; i < k; i++) if (shards[i]) slots[i].set(shards[i]!);
    if (lost.length > 0) {
      // Work on a shallow copy: data shards now point at our copies, parity at the caller's (read only).
      const work: (Uint8Array | null)[] = shards.map((s, i) => (i < k ? (s ? slots[i] : null) : (s ?? null)));
      const outputs = lost.map((i) => slots[i]);
      if (inline) this.#codec(k, m).reconstructInto(work, lost, outputs);
      else {
        // Workers read the first k present shards; parity among them must be in shared memory, the rest is dropped.
        let used = work.filter((s, i) => i < k && s).length;
        for (let i = k; i < k + m; i++) {
          if (!work[i]) continue;
          if (used++ >= k) work[i] = null;
          else if (!isShared(work[i]!)) work[i] = copyShared(work[i]!);
        }
        await this.#spread({ k, m, shards: work, shardBytes, targets: lost, outputs, signal: options.signal });
      }
    }
    return out.subarray(0, size);
  }

  /** Computes parity in place on the pool. Every shard must be a view of a SharedArrayBuffer (reuse them). */
  async encodeShards(shards: Uint8Array[], options: ErasureCallOptions): Promise<void> {
    if (this.#runPrepared(shards, options)) return;
    const { dataShards: k, parityShards: m } = resolveShape(options);
    const { shardBytes } = checkShards(shards, k + m, false);
    requireShared(shards);
    const run = this.#spread({ k, m, shards, shardBytes, signal: options.signal, reuseKey: shards });
    if (run) await run; // a short native call is done already: no extra turn of the microtask queue
  }

  /** Rebuilds missing shards `targets` into `outputs` on the pool; all buffers SharedArrayBuffer views. */
  async reconstructShards(
    shards: (Uint8Array | null | undefined)[],
    targets: number[],
    outputs: Uint8Array[],
    options: ErasureCallOptions,
  ): Promise<void> {
    const { dataShards: k, parityShards: m } = resolveShape(options);
    const { shardBytes, missing } = checkShards(shards, k + m, true);
    checkRecoverable(missing.length, m);
    requireShared(shards);
    requireShared(outputs, 'outputs');
    // Checks targets/outputs the same way the workers will, before any task starts.
    if (!Array.isArray(targets) || targets.length !== outputs.length) throw new RangeError('targets.length must equal outputs.length');
    targets.forEach((t, i) => {
      if (!missing.includes(t)) throw new RangeError(`targets[${i}] (${t}) must be the index of a missing shard`);
      if (outputs[i].length !== shardBytes) throw new RangeError(`outputs[${i}].length must equal the shard length (${shardBytes})`);
    });
    const run = this.#spread({ k, m, shards, shardBytes, targets, outputs, signal: options.signal });
    if (run) await run;
  }

  /** Runs a prepared encode when `shards` and `options` are what it was prepared for; false otherwise. */
  #runPrepared(shards: Uint8Array[], options: ErasureCallOptions): boolean {
    const p = Array.isArray(shards) ? this.#prepared.get(shards) : undefined;
    if (!p || !nativePool || typeof options !== 'object' || options === null) return false;
    if (options.dataShards !== p.k || options.parityShards !== p.m || shards.length !== p.k + p.m) return false;
    if ((this.#kernel ?? getKernel()) !== p.kernel) return false;
    for (let i = 0; i < shards.length; i++) if (shards[i] !== p.views[i] || p.views[i]!.length !== p.shardBytes) return false;
    options.signal?.throwIfAborted();
    native!.mulPrepared!(p.handle, p.threads, p.itemBytes);
    return true;
  }

  #codec(k: number, m: number): ReedSolomon {
    const last = this.#lastCodec; // most calls repeat one shape: no key string per call
    if (last && last.dataShards === k && last.parityShards === m) return last;
    const key = `${k}+${m}`;
    let rs = this.#codecs.get(key);
    if (!rs) this.#codecs.set(key, (rs = new ReedSolomon({ dataShards: k, parityShards: m })));
    return (this.#lastCodec = rs);
  }

  /** Runs the job; undefined when it ran to completion synchronously (a short call on the native pool). */
  #spread(job: SpreadJob): Promise<void> | undefined {
    const native = this.#nativeSpread(job);
    return native === false ? this.#spreadOnWorkers(job) : native;
  }

  async #spreadOnWorkers(job: SpreadJob): Promise<void> {
    const { k, m, shards, shardBytes } = job;
    const dataBytes = k * shardBytes;
    let tasks = Math.min(this.#pool.threads, Math.ceil(dataBytes / this.#minTask));
    if (dataBytes / tasks > this.#maxTask) {
      tasks = Math.ceil(dataBytes / this.#maxTask);
      tasks = Math.ceil(tasks / this.#pool.threads) * this.#pool.threads;
    }
    tasks = Math.max(1, tasks);
    const step = Math.ceil(shardBytes / tasks / RANGE_ALIGN_BYTES) * RANGE_ALIGN_BYTES;
    const base = {
      kind: 'erasure.stripe' as const,
      dataShards: k,
      parityShards: m,
      kernel: this.#kernel ?? getKernel(),
      shardBytes,
      buffers: shards.map((s) => (s ? (s.buffer as SharedArrayBuffer) : null)),
      offsets: shards.map((s) => (s ? s.byteOffset : -1)),
      targets: job.targets,
      targetBuffers: job.outputs?.map((o) => o.buffer as SharedArrayBuffer),
      targetOffsets: job.outputs?.map((o) => o.byteOffset),
    };
    const runs: Promise<unknown>[] = [];
    for (let start = 0; start < shardBytes; start += step) {
      const task: StripeTask = { ...base, start, end: Math.min(shardBytes, start + step) };
      runs.push(this.#submit(task, job.signal));
    }
    // Wait for every task even if one fails: none may still write into the buffers when we return.
    const results = await Promise.allSettled(runs);
    const failed = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
    if (failed) throw failed.reason;
  }

  /**
   * Runs the job on the native pool: undefined once done (a call this thread helps with), a promise for a long
   * call, false when the native pool is not available for it.
   */
  #nativeSpread(job: SpreadJob): Promise<void> | undefined | false {
    const kernel = this.#kernel ?? getKernel();
    if (!nativePool || !native?.mulParallel || kernel === 'reference') return false;
    const { k, m, shards, shardBytes } = job;
    if (m === 0 || job.targets?.length === 0) return undefined; // nothing to compute
    const plan = this.#codec(k, m).nativeProgram(shards, job.targets);
    if (!plan) return false;
    job.signal?.throwIfAborted();
    const outputs = job.outputs ?? (shards.slice(k) as Uint8Array[]);
    const threads = this.#pool.threads;
    const dataBytes = k * shardBytes;
    const items = Math.max(NATIVE_ITEMS_PER_THREAD * threads, Math.ceil(dataBytes / NATIVE_ITEM_BYTES));
    const itemBytes = Math.max(NATIVE_MIN_ITEM_COLUMNS, Math.ceil(shardBytes / items / RANGE_ALIGN_BYTES) * RANGE_ALIGN_BYTES);
    const call = (callback: ((error: Error | null) => void) | undefined) =>
      native!.mulParallel!(kernel, plan.tables, plan.rows, k, plan.inputs, outputs, shardBytes, threads, itemBytes, callback);
    if (dataBytes <= HELP_MAX_BYTES) {
      const key = job.reuseKey;
      if (key && !job.targets && native!.prepareMul && native!.mulPrepared) {
        if (this.#prepared.get(key) === undefined) this.#prepared.set(key, null); // seen once
        else {
          const handle = native!.prepareMul(kernel, plan.tables, plan.rows, k, plan.inputs, outputs, shardBytes);
          this.#prepared.set(key, { k, m, shardBytes, kernel, views: [...shards] as Uint8Array[], handle, threads, itemBytes });
          return void native!.mulPrepared(handle, threads, itemBytes);
        }
      }
      return void call(undefined);
    }
    return new Promise<void>((resolve, reject) => call((error) => (error ? reject(error) : resolve())));
  }

  async #submit(task: StripeTask, signal?: AbortSignal): Promise<unknown> {
    if (this.#inFlight >= this.#maxInFlight) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#inFlight++;
    try {
      signal?.throwIfAborted();
      return await this.#pool.run(task as unknown as { kind: string }, signal);
    } finally {
      this.#inFlight--;
      this.#waiting.shift()?.();
    }
  }
}

function positiveInt(v: unknown, name: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw new RangeError(`${name} must be an integer ≥ ${min}`);
  return v;
}

function requireShared(list: readonly (Uint8Array | null | undefined)[], name = 'shards'): void {
  list.forEach((s, i) => {
    if (s && !isShared(s)) throw new TypeError(`${name}[${i}] must be a view of a SharedArrayBuffer (allocate with allocShared)`);
  });
}

function copyShared(src: Uint8Array): Uint8Array {
  const out = allocShared(src.length);
  out.set(src);
  return out;
}
