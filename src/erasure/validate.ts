// Argument checks shared by every codec entry point. They run before anything reaches C++ (which checks
// again), and each message names the condition that was violated.
import { ErasureError } from '../errors.js';

/** GF(2^8) has 256 elements, so a Cauchy code has at most 256 distinct rows (ISA-L's limit too). */
export const MAX_TOTAL_SHARDS = 256;

export interface ShapeOptions {
  dataShards: number;
  parityShards: number;
}

export function resolveShape(options: unknown, name = 'options'): ShapeOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError(`${name} must be an object`);
  const { dataShards, parityShards } = options as Record<string, unknown>;
  if (typeof dataShards !== 'number') throw new TypeError(`${name}.dataShards must be a number`);
  if (typeof parityShards !== 'number') throw new TypeError(`${name}.parityShards must be a number`);
  if (!Number.isInteger(dataShards) || dataShards < 1)
    throw new RangeError(`${name}.dataShards must be an integer ≥ 1 (got ${dataShards})`);
  if (!Number.isInteger(parityShards) || parityShards < 0)
    throw new RangeError(`${name}.parityShards must be an integer ≥ 0 (got ${parityShards})`);
  if (dataShards + parityShards > MAX_TOTAL_SHARDS)
    throw new RangeError(`dataShards + parityShards must be ≤ ${MAX_TOTAL_SHARDS} (got ${dataShards + parityShards})`);
  return { dataShards, parityShards };
}

/**
 * Checks a shard list of exactly `total` entries; when `allowMissing`, null/undefined entries are allowed
 * (and returned in `missing`), but at least one shard must be present to give the length.
 */
export function checkShards(
  shards: unknown,
  total: number,
  allowMissing: boolean,
): { shardBytes: number; missing: number[] } {
  if (!Array.isArray(shards)) throw new TypeError('shards must be an array');
  if (shards.length !== total)
    throw new RangeError(`shards.length must equal dataShards + parityShards (${total}), got ${shards.length}`);
  let shardBytes = -1;
  let first = -1;
  const missing: number[] = [];
  for (let i = 0; i < total; i++) {
    const s: unknown = shards[i];
    if (s === null || s === undefined) {
      if (!allowMissing) throw new TypeError(`shards[${i}] must be a Uint8Array (missing shards are not allowed here)`);
      missing.push(i);
      continue;
    }
    if (!(s instanceof Uint8Array)) throw new TypeError(`shards[${i}] must be a Uint8Array or null`);
    if (shardBytes < 0) {
      shardBytes = s.length;
      first = i;
    } else if (s.length !== shardBytes) {
      throw new RangeError(`all shards must have the same length: shards[${i}].length (${s.length}) ≠ shards[${first}].length (${shardBytes})`);
    }
  }
  if (shardBytes < 0) shardBytes = 0;
  return { shardBytes, missing };
}

export function checkRecoverable(missing: number, parityShards: number): void {
  if (missing > parityShards)
    throw new ErasureError(`too many shards missing: ${missing} > parityShards (${parityShards})`);
}
