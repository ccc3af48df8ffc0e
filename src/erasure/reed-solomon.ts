// The public Reed-Solomon codec: ISA-L-compatible systematic Cauchy code over GF(2^8)/0x11D, computed by the
// native kernels (or the TypeScript reference). Validates in JS, caches decode matrices per erasure pattern.
import { cauchy1Matrix, invertMatrix, multiplyMatrices, selectRows } from './matrix.js';
import { getKernel, native, resolveKernel, type KernelName } from './native.js';
import { equalBytes, referenceMul } from './reference.js';
import { checkRecoverable, checkShards, resolveShape, type ShapeOptions } from './validate.js';

export interface ReedSolomonOptions extends ShapeOptions {
  /** Force a kernel for this codec ('auto' = best for the CPU); default: the thread's current kernel. */
  kernel?: KernelName | 'auto';
  /** Decode programs kept per erasure pattern (LRU). */
  decodeCacheSize?: number;
}

export interface ReconstructOptions {
  /** Rebuild only missing data shards (parity entries stay null): what reading an object needs. */
  dataOnly?: boolean;
}

const DEFAULT_DECODE_CACHE_ENTRIES = 64;

/** A coefficient matrix applied to some shards to produce others. */
interface Program {
  matrix: Uint8Array; // rows x k
  rows: number;
  inputs: number[]; // shard indexes read, k of them
  tables: Uint8Array | null; // native kernel tables, built on first native use
}

export class ReedSolomon {
  readonly dataShards: number;
  readonly parityShards: number;
  readonly totalShards: number;
  readonly #kernel: KernelName | null;
  readonly #matrix: Uint8Array;
  readonly #encode: Program;
  readonly #decodeCache = new Map<string, Program>();
  readonly #decodeCacheSize: number;

  constructor(options: ReedSolomonOptions) {
    const { dataShards, parityShards } = resolveShape(options);
    const { kernel, decodeCacheSize = DEFAULT_DECODE_CACHE_ENTRIES } = options;
    if (!Number.isInteger(decodeCacheSize) || decodeCacheSize < 1)
      throw new RangeError(`options.decodeCacheSize must be an integer ≥ 1 (got ${decodeCacheSize})`);
    this.dataShards = dataShards;
    this.parityShards = parityShards;
    this.totalShards = dataShards + parityShards;
    this.#kernel = kernel === undefined ? null : resolveKernel(kernel, 'options.kernel');
    this.#decodeCacheSize = decodeCacheSize;
    this.#matrix = cauchy1Matrix(this.totalShards, dataShards);
    this.#encode = {
      matrix: this.#matrix.subarray(dataShards * dataShards),
      rows: parityShards,
      inputs: Array.from({ length: dataShards }, (_, i) => i),
      tables: null,
    };
  }

  /** The kernel this codec's next call will use. */
  get kernel(): KernelName {
    return this.#kernel ?? getKernel();
  }

  /** The parity rows expanded for the native kernels (cached; what other addons' kernels take too), or null without the addon. */
  nativeEncodeTables(): Uint8Array | null {
    if (!native) return null;
    if (this.parityShards === 0) return new Uint8Array(0);
    return (this.#encode.tables ??= native.expandTables(this.#encode.matrix, this.#encode.rows, this.dataShards));
  }

  /** The (k+m) x k coding matrix, row-major (a copy). */
  get matrix(): Uint8Array {
    return Uint8Array.from(this.#matrix);
  }

  /** Computes parity from shards[0..k) into shards[k..k+m) in place; every shard the same length. */
  encode(shards: Uint8Array[]): void {
    const { shardBytes } = checkShards(shards, this.totalShards, false);
    this.#run(this.#encode, shards as Uint8Array[], shards.slice(this.dataShards), shardBytes);
  }

  /** Replaces each null/undefined entry with a new, rebuilt shard. More than parityShards missing → ErasureError. */
  reconstruct(shards: (Uint8Array | null | undefined)[], options?: ReconstructOptions): void {
    const { shardBytes, missing } = checkShards(shards, this.totalShards, true);
    checkRecoverable(missing.length, this.parityShards);
    const targets = options?.dataOnly ? missing.filter((i) => i < this.dataShards) : missing;
    if (targets.length === 0) return;
    const outputs = targets.map(() => new Uint8Array(shardBytes));
    this.#run(this.#decodeProgram(shards, targets), shards, outputs, shardBytes);
    targets.forEach((t, i) => (shards[t] = outputs[i]));
  }

  /**
   * Rebuilds shards `targets` (indexes of null entries of `shards`) into the caller's `outputs`, each as long
   * as the shards: for writing into preallocated or shared memory (the worker pool uses this).
   */
  reconstructInto(shards: (Uint8Array | null | undefined)[], targets: readonly number[], outputs: readonly Uint8Array[]): void {
    const { shardBytes, missing } = checkShards(shards, this.totalShards, true);
    checkRecoverable(missing.length, this.parityShards);
    if (!Array.isArray(targets) || !Array.isArray(outputs)) throw new TypeError('targets and outputs must be arrays');
    if (targets.length !== outputs.length) throw new RangeError('targets.length must equal outputs.length');
    targets.forEach((t, i) => {
      if (!missing.includes(t)) throw new RangeError(`targets[${i}] (${t}) must be the index of a missing shard`);
      if (targets.indexOf(t) !== i) throw new RangeError(`targets[${i}] (${t}) is repeated`);
      const o = outputs[i];
      if (!(o instanceof Uint8Array)) throw new TypeError(`outputs[${i}] must be a Uint8Array`);
      if (o.length !== shardBytes) throw new RangeError(`outputs[${i}].length must equal the shard length (${shardBytes})`);
    });
    if (targets.length === 0) return;
    this.#run(this.#decodeProgram(shards, targets), shards, outputs, shardBytes);
  }

  /** True when the parity shards match the data shards. */
  verify(shards: Uint8Array[]): boolean {
    const { shardBytes } = checkShards(shards, this.totalShards, false);
    const parity = Array.from({ length: this.parityShards }, () => new Uint8Array(shardBytes));
    this.#run(this.#encode, shards, parity, shardBytes);
    return parity.every((p, i) => equalBytes(p, shards[this.dataShards + i]));
  }

  /**
   * @internal For ErasureService's native pool: the kernel tables, row count and input shards of an encode
   * (no targets) or of rebuilding `targets`; null without the native addon. Arguments are the service's, checked.
   */
  nativeProgram(shards: readonly (Uint8Array | null | undefined)[], targets?: readonly number[]): { tables: Uint8Array; rows: number; inputs: Uint8Array[] } | null {
    if (!native) return null;
    const p = targets ? this.#decodeProgram(shards, targets) : this.#encode;
    p.tables ??= native.expandTables(p.matrix, p.rows, this.dataShards);
    return { tables: p.tables, rows: p.rows, inputs: p.inputs.map((i) => shards[i] as Uint8Array) };
  }

  #run(p: Program, shards: readonly (Uint8Array | null | undefined)[], outputs: readonly Uint8Array[], len: number): void {
    if (p.rows === 0) return;
    const inputs = p.inputs.map((i) => shards[i] as Uint8Array);
    const kernel = this.kernel;
    if (kernel === 'reference' || !native) {
      referenceMul(p.matrix, p.rows, this.dataShards, inputs, outputs, len);
      return;
    }
    p.tables ??= native.expandTables(p.matrix, p.rows, this.dataShards);
    native.mul(kernel, p.tables, p.rows, this.dataShards, inputs, outputs, len);
  }

  /** Rows turning the first k present shards into the targets, cached per (present, targets) pattern. */
  #decodeProgram(shards: readonly (Uint8Array | null | undefined)[], targets: readonly number[]): Program {
    const k = this.dataShards;
    const inputs: number[] = [];
    for (let i = 0; i < this.totalShards && inputs.length < k; i++) if (shards[i]) inputs.push(i);
    const key = `${inputs.join(',')}>${targets.join(',')}`;
    const hit = this.#decodeCache.get(key);
    if (hit) {
      this.#decodeCache.delete(key); // re-insert: Map order is the LRU order
      this.#decodeCache.set(key, hit);
      return hit;
    }
    const decode = invertMatrix(selectRows(this.#matrix, k, inputs), k);
    if (!decode) throw new Error('internal: Cauchy submatrix is singular'); // impossible for k+m ≤ 256
    // A lost data shard t is row t of the inverse; a lost parity row is its encode row times the inverse.
    const matrix = new Uint8Array(targets.length * k);
    targets.forEach((t, i) => {
      const row = t < k ? decode.subarray(t * k, (t + 1) * k) : multiplyMatrices(this.#matrix.subarray(t * k, (t + 1) * k), 1, k, decode, k);
      matrix.set(row, i * k);
    });
    const program: Program = { matrix, rows: targets.length, inputs, tables: null };
    this.#decodeCache.set(key, program);
    if (this.#decodeCache.size > this.#decodeCacheSize) this.#decodeCache.delete(this.#decodeCache.keys().next().value as string);
    return program;
  }
}
