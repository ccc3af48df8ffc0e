// Reading one stripe's slots (chunk ‖ tag) from the shards of a discovered object, and the bookkeeping of which
// shards are still good: shared by get (read, rebuild if needed, decrypt) and repair (scrub, rebuild, rewrite).
import type { Discovered } from './discover.js';
import { TAG_BYTES } from '../aead/header.js';
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

/**
 * Shards to read for a stripe: the needed data chunks that are usable, then other data, then parity, to k; good
 * shards first, then (when those are not enough) degraded ones that `usable` still allows here.
 */
export function pickShards(d: Discovered, g: Geometry, needed: number[], usable: (j: number) => boolean): number[] {
  const order = [...needed, ...Array.from({ length: g.k + g.m }, (_, j) => j).filter((j) => !needed.includes(j))];
  const good = order.filter((j) => d.good.has(j));
  return [...good, ...order.filter((j) => !d.good.has(j) && usable(j))].slice(0, Math.max(g.k, 1));
}

/** Shard indexes 0..k+m-1 that are not good, ascending. */
export function badShards(d: Discovered): number[] {
  return Array.from({ length: d.geometry.k + d.geometry.m }, (_, j) => j).filter((j) => !d.good.has(j));
}

/** Plaintext bytes of segments segLo..segHi. */
export function segmentsPlainBytes(g: Geometry, segLo: number, segHi: number): number {
  return Math.min((segHi + 1) * g.segmentBytes, g.plaintextBytes) - segLo * g.segmentBytes;
}

/** The data chunks of stripe t that hold the sealed bytes of segments segLo..segHi (one per segment in a full stripe). */
export function neededChunks(g: Geometry, t: number, segLo: number, segHi: number): number[] {
  const Cx = stripeChunkBytes(g, t);
  const payloadOffset = (segLo - t * g.k) * g.chunkBytes;
  const payloadEnd = payloadOffset + segmentsPlainBytes(g, segLo, segHi) + (segHi - segLo + 1) * TAG_BYTES;
  const needed: number[] = [];
  for (let j = Math.floor(payloadOffset / Cx); j <= Math.floor((payloadEnd - 1) / Cx); j++) needed.push(j);
  return needed;
}

/**
 * Where a read of segments first..last reads each data shard: one span of consecutive stripe slots per shard (the
 * stripes between the first and the last need every data chunk), for ShardReader.willRead.
 */
export function shardSpans(g: Geometry, first: number, last: number): Map<number, { offset: number; length: number }> {
  const tFirst = Math.floor(first / g.k);
  const tLast = Math.floor(last / g.k);
  const inFirst = neededChunks(g, tFirst, first, Math.min(last, tFirst * g.k + g.k - 1));
  const inLast = neededChunks(g, tLast, Math.max(first, tLast * g.k), last);
  const end = (t: number) => stripeOffset(g, t) + stripeChunkBytes(g, t) + CHUNK_TAG_BYTES;
  const spans = new Map<number, { offset: number; length: number }>();
  for (let j = 0; j < g.k; j++) {
    const from = inFirst.includes(j) ? tFirst : tFirst + 1;
    const to = inLast.includes(j) ? tLast : tLast - 1;
    if (from <= to && (tFirst < tLast || inFirst.includes(j))) spans.set(j, { offset: stripeOffset(g, from), length: end(to) - stripeOffset(g, from) });
  }
  return spans;
}
