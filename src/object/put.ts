// putObject: seals an object in the sealed-object format, erasure codes each stripe into k+m chunks and appends
// them to k+m shard writers of a fresh generation, publishes every shard, and only then removes the older
// generations (README "Objects as shards"): killed before, the old version still reads; killed after k commits, the
// new one does. One listing per put: it runs while the DEK is made and the first stripes are sealed (neither needs the
// generation), gives the new generation a place above every listed one, and names what to remove once it is whole.
// The main thread only moves bytes and keeps order; each stripe's sealing, coding and tagging is one native job
// (native-stripe.ts), or one worker task without the addon (tasks.ts). Memory is bounded by the stripes in flight,
// taken from the service's budget.
import { encodeHeader } from '../aead/header.js';
import { newObjectKeys } from '../aead/object-keys.js';
import { OrderedWindow } from '../concurrency.js';
import { copyToShared } from '../pool/shared-memory.js';
import type { ObjectDeps } from './deps.js';
import {
  CHUNK_TAG_BYTES, deriveShardKeys, encodeShardHeader, encodeTrailer, geometry, geometryMac, objectAad, withShardIndex,
} from './format.js';
import type { ShardStore, ShardWriter } from './blob-store.js';
import { BudgetHolder } from './budget.js';
import type { ObjectRef } from './format.js';
import { wrappedKeyInfo } from './key-info.js';
import { newGeneration, shardKey } from './layout.js';
import { keysOf, listObjectKeys, type ObjectListing } from './listing.js';
import { fittedSegmentBytes, resolvePutObjectOptions, type ObjectInfo, type ObjectSource, type PutObjectOptions } from './options.js';
import { chunksOf } from './source.js';
import { nativeStripeAvailable, sealStripeNatively } from './native-stripe.js';
import { INLINE_STRIPE_BYTES, sealStripe, stripeBufferBytes, TASK_SEAL_STRIPE, type SealStripeTask } from './tasks.js';

interface Sealed {
  buffer: Uint8Array;
  /** The staged plaintext slab, or undefined when the stripe was read from the caller's bytes. */
  plain: Uint8Array | undefined;
  chunkBytes: number;
  /** The object's last stripe: its chunks go out with the shard trailers and the flush. */
  isLast: boolean;
}

export async function putObject(deps: ObjectDeps, objectId: string, source: ObjectSource, options: PutObjectOptions): Promise<ObjectInfo> {
  const resolved = resolvePutObjectOptions(objectId, options, deps.segmentBytes);
  const { ref, store, signal, onProgress, keyId, k, m, context, size } = resolved;
  const segmentBytes = source instanceof Uint8Array && options.segmentBytes === undefined
    ? fittedSegmentBytes(resolved.segmentBytes, source.length, k) : resolved.segmentBytes;
  signal?.throwIfAborted();
  const listing = listObjectKeys(store, ref);
  listing.catch(() => {}); // awaited before any shard is written, or dropped with the put's failure

  // The DEK is bound to the namespace and name in the HSM; the context through the payload key and commitment.
  const { plaintext: dek, wrapped } = await deps.keys.generateDataKey(keyId, { aad: objectAad(ref) });
  const { core, salt, noncePrefix, payloadKey: derivedKey, commitment } = newObjectKeys(dek, segmentBytes, context);
  const shardKeys = deriveShardKeys(dek, salt, core);
  dek.fill(0);
  const sealedHeader = encodeHeader(core, commitment, wrapped);
  // Workers read the keys from shared slots, zeroed here once every task has settled.
  const payloadKey = copyToShared(derivedKey);
  const chunkKey = copyToShared(shardKeys.chunkKey);
  derivedKey.fill(0);
  shardKeys.chunkKey.fill(0);

  const buffers = deps.buffers;
  const holder = new BudgetHolder();
  const writers: ShardWriter[] = [];
  const stripePlainBytes = k * segmentBytes;
  const bufferBytes = stripeBufferBytes(k, m, segmentBytes);
  const window = new OrderedWindow<Sealed>(deps.window);
  const writing = new OrderedWindow<void>(deps.window);
  let plaintextBytes = 0;
  let stripe = 0;
  const total = size ?? (source instanceof Uint8Array ? source.length : NaN);
  if (size !== undefined && source instanceof Uint8Array && size !== source.length) {
    throw new RangeError(`options.size must be the source's length (${source.length}) when given with a Uint8Array`);
  }
  // The generation, the shard header (its MAC binds the generation) and the writers wait for the listing: the new
  // generation sorts above every one listed for the name, whatever the clock says. Sealing does not wait for them.
  let before: ObjectListing | undefined;
  let gen = '';
  let header: Buffer | undefined;
  const openShards = async (): Promise<void> => {
    before = await listing;
    gen = newGeneration(before.gens.map((g) => g.id));
    const mac = geometryMac(shardKeys.metaKey, k, m, ref, gen, sealedHeader);
    const h = (header = encodeShardHeader(k, m, 0, ref.name, mac, sealedHeader));
    // A known size gives every shard's length: a store may then send each shard in one request as it is written.
    const hint = Number.isNaN(total) ? undefined : { bytes: geometry(k, m, segmentBytes, total, h.length).shardBytes };
    // All at once: one batch of file calls, not k + m round trips one after another.
    const opened = await Promise.allSettled(Array.from({ length: k + m }, (_, j) => store.openWriter(j % store.nodes, shardKey(before!.prefix, gen, j), hint)));
    for (const o of opened) if (o.status === 'fulfilled') writers.push(o.value); // aborted with the put if one failed
    const failed = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
    await Promise.all(writers.map((w, j) => w.write(withShardIndex(h, j))));
  };
  let opening: Promise<void> | undefined;
  const ready = () => (opening ??= openShards());
  try {

    // Sealed stripes are written behind: each shard's writes are chained in stripe order, and up to
    // deps.window stripes may be writing while the next ones are sealed, so workers and disk overlap.
    const chains = Array.from({ length: k + m }, () => Promise.resolve());
    const writeOut = async () => {
      await ready();
      const { buffer, plain, chunkBytes, isLast } = await window.shift();
      const slot = chunkBytes + CHUNK_TAG_BYTES; // chunk ‖ tag, as in the shard file
      // The last stripe was dispatched (and counted) before it could be shifted: the size is final here.
      const trailer = isLast ? encodeTrailer(shardKeys.metaKey, plaintextBytes) : undefined;
      const writes = writers.map((w, j) => (chains[j] = chains[j]!.then(() => {
        const chunk = buffer.subarray(j * slot, (j + 1) * slot);
        if (!trailer) return w.write(chunk);
        // The last chunk, the trailer and the flush: one file call where the store can.
        return w.writeFinal ? w.writeFinal([chunk, trailer]) : w.write(chunk).then(() => w.write(trailer)).then(() => w.flush());
      })));
      const written = Promise.all(writes).then(() => {
        buffers.release(buffer);
        if (plain) buffers.release(plain);
        deps.budget.give(holder, (plain ? stripePlainBytes : 0) + bufferBytes);
      });
      // Observed before waiting for room: an earlier stripe's failure thrown here would otherwise leave it unobserved.
      written.catch(() => {});
      while (writing.full) await writing.shift();
      writing.push(written);
    };
    const dispatch = async (plain: Uint8Array, plainBytes: number, isLast: boolean, staged = true) => {
      signal?.throwIfAborted();
      while (window.full) await writeOut();
      const buffer = buffers.acquire(bufferBytes);
      const task: SealStripeTask = {
        kind: TASK_SEAL_STRIPE, k, m, segmentBytes, stripe, isLast, plain, plainBytes, buffer, payloadKey, noncePrefix, chunkKey,
      };
      stripe++;
      const sealing = plainBytes <= INLINE_STRIPE_BYTES
        ? Promise.resolve(task).then(sealStripe)
        : sealStripeNatively(task, deps.threads) ?? deps.pool().run<{ chunkBytes: number }>(task);
      window.push(sealing.then(({ chunkBytes }) => ({ buffer, plain: staged ? plain : undefined, chunkBytes, isLast })));
      plaintextBytes += plainBytes;
      onProgress?.(plaintextBytes, Number.isNaN(total) ? plaintextBytes : total);
    };

    // A stripe's plaintext and its sealed buffer are taken from the budget together, when its plaintext is staged.
    // While the budget is short, this call's own stripes in flight are written out first (only this loop drives
    // them, so waiting on them without driving them would wait forever).
    const takeBudget = async (need: number) => {
      while (!deps.budget.fits(holder, need) && (window.size > 0 || writing.size > 0)) {
        if (window.size > 0) await writeOut();
        else await writing.shift();
      }
      await deps.budget.take(holder, need, signal);
    };
    const takePlain = async () => {
      await takeBudget(stripePlainBytes + bufferBytes);
      return buffers.acquire(stripePlainBytes);
    };

    if (source instanceof Uint8Array && nativeStripeAvailable(k, m)) {
      // The native threads read each stripe where the caller's bytes lie: none is copied on this thread.
      for (let at = 0, last = false; !last; ) {
        const n = Math.min(stripePlainBytes, source.length - at);
        last = at + n === source.length;
        await takeBudget(bufferBytes);
        await dispatch(source.subarray(at, at + n), n, last, false);
        at += n;
      }
    } else {
      // A full stripe is sealed only once a further byte arrives: the stripe holding the last segment must know it.
      let plain = await takePlain();
      let filled = 0;
      let received = 0;
      for await (const chunk of chunksOf(source)) {
        received += chunk.length;
        // The shard lengths announced to the store follow from options.size: a source that disagrees fails here.
        if (size !== undefined && received > size) throw new RangeError(`options.size is ${size} but the source gave more bytes`);
        for (let at = 0; at < chunk.length; ) {
          if (filled === stripePlainBytes) {
            await dispatch(plain, filled, false);
            plain = await takePlain();
            filled = 0;
          }
          const n = Math.min(chunk.length - at, stripePlainBytes - filled);
          plain.set(chunk.subarray(at, at + n), filled);
          filled += n;
          at += n;
        }
      }
      if (size !== undefined && received !== size) throw new RangeError(`options.size is ${size} but the source gave ${received} bytes`);
      await dispatch(plain, filled, true);
    }
    // Every shard's last write carries its trailer and flush (writeOut of the last stripe).
    while (window.size > 0) await writeOut();
    while (writing.size > 0) await writing.shift();
    signal?.throwIfAborted();
    // Every shard is durable under its temp name; publish them all. A failure here unpublishes the new generation
    // (best effort: one left behind with fewer than k shards never reads, and repair removes it).
    const commits = await Promise.allSettled(writers.map((w) => w.commit()));
    const failed = commits.find((c): c is PromiseRejectedResult => c.status === 'rejected');
    if (failed) {
      await Promise.all(writers.map((_, j) => store.remove(j % store.nodes, shardKey(before!.prefix, gen, j)).catch(() => {})));
      throw failed.reason;
    }
    // The new generation is whole: the older ones listed go, before the put resolves (so that it leaves one
    // generation). Not listed again: an older one that a concurrent put published meanwhile is stale, never read,
    // and goes with the next put, repair or delete of the name.
    await removeOlderGenerations(store, ref, gen, undefined, before);
    const { keyId: wrappedKeyId, keyVersion } = wrappedKeyInfo(deps.keys, wrapped);
    return {
      objectId,
      generation: gen,
      replacedGenerations: before!.gens.filter((g) => g.id !== gen).length,
      size: plaintextBytes,
      dataShards: k,
      parityShards: m,
      segmentBytes,
      stripes: stripe,
      shardBytes: geometry(k, m, segmentBytes, plaintextBytes, header!.length).shardBytes,
      keyId: wrappedKeyId,
      keyVersion,
    };
  } catch (err) {
    while (window.size > 0) {
      const sealed = await window.shift().catch(() => undefined);
      if (sealed) buffers.release(sealed.buffer), sealed.plain && buffers.release(sealed.plain);
    }
    await writing.drain();
    await opening?.catch(() => {}); // every writer opened is in `writers` before they are aborted
    await Promise.all(writers.map((w) => w.abort()));
    throw err;
  } finally {
    // Every task has settled here (drained above, or awaited on success): nothing reads the key slots any more.
    payloadKey.fill(0);
    chunkKey.fill(0);
    shardKeys.metaKey.fill(0);
    if (holder.held > 0) deps.budget.give(holder, holder.held);
  }
}

/**
 * Removes every blob of the generations older than `gen` (best effort: what is left is stale and never read), as
 * `listed` names them, or as a fresh listing does.
 */
export async function removeOlderGenerations(
  store: ShardStore, ref: ObjectRef, gen: string, also: (g: string) => boolean = () => false, listed?: ObjectListing,
): Promise<string[]> {
  const listing = listed ?? await listObjectKeys(store, ref).catch(() => undefined);
  if (!listing) return [];
  const doomed = listing.gens.filter((g) => g.id < gen || (g.id !== gen && also(g.id)));
  for (const g of doomed) {
    const keys = keysOf(listing, g);
    // Shards first, then records: a generation never loses its key while its shards are still there.
    await Promise.all(keys.filter((x) => !/\/w[0-9a-f]+$/.test(x.key)).map((x) => store.remove(x.node, x.key).catch(() => {})));
    await Promise.all(keys.filter((x) => /\/w[0-9a-f]+$/.test(x.key)).map((x) => store.remove(x.node, x.key).catch(() => {})));
  }
  return doomed.map((g) => g.id);
}
