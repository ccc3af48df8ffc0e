// Reading one stripe's slots (chunk ‖ tag) from the shards of a discovered object, and the bookkeeping of which
// shards are still good: shared by get (read, rebuild if needed, decrypt) and repair (scrub, rebuild, rewrite).
import type { Discovered } from './discover.js';
import { CHUNK_TAG_BYTES, stripeChunkBytes, stripeOffset, type Geometry } from './format.js';

/** Moves shard j from good to missing or corrupt (once: the first reason found is the one reported). */
export function markBad(d: Discovered, j: number, why: 'missing' | 'corrupt'): void {
  if (!d.good.delete(j)) return;
  (why === 'missing' ? d.missing : d.corrupt).add(j);
}

/** Reads into `buffer` the slots (chunk ‖ tag) of stripe t of the shards given; returns those read whole. */
export async function readSlots(d: Discovered, t: number, shards: number[], buffer: Uint8Array): Promise<number[]> {
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

/** Good shards to read for a stripe: the needed data chunks that are good, then other data, then parity, to k. */
export function pickShards(d: Discovered, g: Geometry, needed: number[]): number[] {
  const order = [...needed, ...Array.from({ length: g.k + g.m }, (_, j) => j).filter((j) => !needed.includes(j))];
  return order.filter((j) => d.good.has(j)).slice(0, Math.max(g.k, 1));
}

/** Shard indexes 0..k+m-1 that are not good, ascending. */
export function badShards(d: Discovered): number[] {
  return Array.from({ length: d.geometry.k + d.geometry.m }, (_, j) => j).filter((j) => !d.good.has(j));
}
