// repairObject: scrubs every chunk of every candidate shard of the generation that reads against its tag, then
// rebuilds the shards found missing or bad into that same generation, stripe by stripe, byte-identical to what
// put wrote, publishes them (each publish atomic), and only then removes the other generations: older ones, and
// newer ones that could not be read once they are older than staleAfterMs (a put that died).
import { ErasureError } from '../errors.js';
import { copyToShared } from '../pool/shared-memory.js';
import type { ObjectDeps } from './deps.js';
import type { ShardWriter } from './blob-store.js';
import { BudgetHolder } from './budget.js';
import { assertEnough, closeReaders, discover, type Discovered } from './discover.js';
import { CHUNK_TAG_BYTES, encodeTrailer, stripeBufferBytes, stripeChunkBytes, withShardIndex } from './format.js';
import { shardKey } from './layout.js';
import { resolveRepairObjectOptions, type RepairObjectOptions, type RepairReport } from './options.js';
import { removeOlderGenerations } from './put.js';
import { badShards, markBad, readSlots } from './stripe-io.js';
import { TASK_OPEN_STRIPE, type OpenStripeResult, type OpenStripeTask } from './tasks.js';

/** `onOpened` (engine-internal: the bucket layer) sees the wrapped DEK that opened the object. */
export async function repairObject(
  deps: ObjectDeps, objectId: string, options: RepairObjectOptions, onOpened?: (wrapped: Uint8Array) => void,
): Promise<RepairReport> {
  const { ref, store, signal, onProgress, staleAfterMs } = resolveRepairObjectOptions(objectId, options);
  signal?.throwIfAborted();
  const d = await discover(deps.keys, store, ref);
  onOpened?.(d.wrapped);
  const holder = new BudgetHolder();
  d.dek.fill(0);
  // Workers read the chunk key from a shared slot; every task is awaited before the slot is zeroed.
  const chunkKey = copyToShared(d.keys.chunkKey);
  d.keys.chunkKey.fill(0);
  const g = d.geometry;
  const total = g.k + g.m;
  try {
    assertEnough(objectId, d);
    // Scrub: every chunk of every candidate shard is checked against its tag.
    for (let t = 0; t < g.stripes; t++) {
      signal?.throwIfAborted();
      await repairStripe(deps, objectId, d, chunkKey, holder, t, [], undefined);
      onProgress?.(t + 1, g.stripes * 2);
    }
    assertEnough(objectId, d);
    const bad = badShards(d);
    const report: RepairReport = {
      objectId, size: g.plaintextBytes, shards: total, missing: [...d.missing].sort((a, b) => a - b), corrupt: [...d.corrupt].sort((a, b) => a - b), repaired: [], stripes: g.stripes,
      generation: d.gen.id, removedGenerations: [],
    };
    const cleanUp = async () => {
      const cutoff = Date.now() - staleAfterMs;
      report.removedGenerations = await removeOlderGenerations(store, ref, d.gen.id, (gen) => parseInt(gen.slice(0, 12), 16) <= cutoff);
    };
    if (bad.length === 0) {
      await cleanUp();
      return report;
    }
    const writers = new Map<number, ShardWriter>();
    try {
      // The geometry gives the rebuilt shard's length (header, stripes, trailer): told to the store, as a put does.
      const hint = { bytes: g.shardBytes };
      for (const j of bad) writers.set(j, await store.openWriter(j % store.nodes, shardKey(d.listing.prefix, d.gen.id, j), hint));
      await Promise.all(bad.map((j) => writers.get(j)!.write(withShardIndex(d.headerBytes, j))));
      for (let t = 0; t < g.stripes; t++) {
        signal?.throwIfAborted();
        await repairStripe(deps, objectId, d, chunkKey, holder, t, bad, writers);
        onProgress?.(g.stripes + t + 1, g.stripes * 2);
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
    await cleanUp();
    return report;
  } finally {
    chunkKey.fill(0);
    d.keys.metaKey.fill(0);
    await closeReaders(d);
    if (holder.held > 0) deps.budget.give(holder, holder.held);
  }
}

/** Verifies stripe t on every good shard; with `writers`, rebuilds the `targets` chunks and appends them to their writers. */
async function repairStripe(
  deps: ObjectDeps, objectId: string, d: Discovered, chunkKey: Uint8Array, holder: BudgetHolder, t: number, targets: number[],
  writers: Map<number, ShardWriter> | undefined,
): Promise<void> {
  const g = d.geometry;
  const Cx = stripeChunkBytes(g, t);
  const slot = Cx + CHUNK_TAG_BYTES;
  const bufferBytes = stripeBufferBytes(g.k, g.m, g.segmentBytes);
  await deps.budget.take(holder, bufferBytes);
  const buffer = deps.buffers.acquire(bufferBytes);
  try {
    for (;;) {
      assertEnough(objectId, d);
      const read = await readSlots(d, t, [...d.good].filter((j) => !targets.includes(j)), buffer);
      const task: OpenStripeTask = {
        kind: TASK_OPEN_STRIPE, k: g.k, m: g.m, stripe: t, chunkBytes: Cx, short: t >= g.fullStripes, buffer,
        present: read, rebuild: targets, tagRebuilt: true, chunkKey,
      };
      const result = await deps.pool().run<OpenStripeResult>(task);
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
    deps.buffers.release(buffer);
    deps.budget.give(holder, bufferBytes);
  }
}
