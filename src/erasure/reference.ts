// Pure-TypeScript Reed-Solomon: deliberately simple, byte at a time. It is the oracle the native kernels are
// tested against and the fallback when the addon cannot be loaded. Same code as ISA-L's ec_encode_data.
import { GF_MUL } from './gf.js';
import { cauchy1Matrix, invertMatrix, selectRows } from './matrix.js';
import { checkRecoverable, checkShards, resolveShape, type ShapeOptions } from './validate.js';

/** outputs[r][0..len) = Σ_j matrix[r·k + j] · inputs[j][0..len) over GF(2^8). */
export function referenceMul(
  matrix: Uint8Array,
  rows: number,
  k: number,
  inputs: readonly Uint8Array[],
  outputs: readonly Uint8Array[],
  len: number,
): void {
  for (let r = 0; r < rows; r++) {
    const out = outputs[r];
    out.fill(0, 0, len);
    for (let j = 0; j < k; j++) {
      const c = matrix[r * k + j] << 8;
      if (c === 0) continue;
      const src = inputs[j];
      for (let i = 0; i < len; i++) out[i] ^= GF_MUL[c | src[i]];
    }
  }
}

/** The public codec's contract (encode/reconstruct/verify) computed the naive way. */
export class ReferenceReedSolomon {
  readonly dataShards: number;
  readonly parityShards: number;
  readonly totalShards: number;
  readonly #matrix: Uint8Array;

  constructor(options: ShapeOptions) {
    const { dataShards, parityShards } = resolveShape(options);
    this.dataShards = dataShards;
    this.parityShards = parityShards;
    this.totalShards = dataShards + parityShards;
    this.#matrix = cauchy1Matrix(this.totalShards, dataShards);
  }

  /** Fills shards[k..k+m) with parity computed from shards[0..k). */
  encode(shards: Uint8Array[]): void {
    const { shardBytes } = checkShards(shards, this.totalShards, false);
    const k = this.dataShards;
    referenceMul(this.#matrix.subarray(k * k), this.parityShards, k, shards.slice(0, k), shards.slice(k), shardBytes);
  }

  /** Fills every null entry: recovers the data from the first k present shards, then re-encodes parity. */
  reconstruct(shards: (Uint8Array | null | undefined)[]): void {
    const { shardBytes, missing } = checkShards(shards, this.totalShards, true);
    checkRecoverable(missing.length, this.parityShards);
    if (missing.length === 0) return;
    const k = this.dataShards;
    const present: number[] = [];
    for (let i = 0; i < this.totalShards && present.length < k; i++) if (shards[i]) present.push(i);
    const decode = invertMatrix(selectRows(this.#matrix, k, present), k);
    if (!decode) throw new Error('internal: Cauchy submatrix is singular');
    const inputs = present.map((i) => shards[i] as Uint8Array);
    const data = Array.from({ length: k }, (_, i) => shards[i] ?? new Uint8Array(shardBytes));
    const lost = missing.filter((i) => i < k);
    referenceMul(selectRows(decode, k, lost), lost.length, k, inputs, lost.map((i) => data[i]), shardBytes);
    for (const i of lost) shards[i] = data[i];
    const parity = Array.from({ length: this.parityShards }, (_, p) => new Uint8Array(shardBytes));
    referenceMul(this.#matrix.subarray(k * k), this.parityShards, k, data, parity, shardBytes);
    for (const i of missing) if (i >= k) shards[i] = parity[i - k];
  }

  verify(shards: Uint8Array[]): boolean {
    const { shardBytes } = checkShards(shards, this.totalShards, false);
    const k = this.dataShards;
    const parity = Array.from({ length: this.parityShards }, () => new Uint8Array(shardBytes));
    referenceMul(this.#matrix.subarray(k * k), this.parityShards, k, shards.slice(0, k), parity, shardBytes);
    return parity.every((p, i) => equalBytes(p, shards[k + i]));
  }
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
}
