// rewrapObject: rewraps the DEK of the generation that reads under the newest version of its root key and writes
// it as a rewrap record (`…/-<gen>/w<rgen>`, MACed under the DEK's meta key) to every node; once every node has
// it, older records of that generation are removed. No shard is touched, so a rewrap cut short leaves the old
// record (or the header's embedded wrapped DEK) and any new one: both unwrap to the same DEK, so the object reads.
import { StoreError } from '../errors.js';
import type { ObjectDeps } from './deps.js';
import { discover, release } from './discover.js';
import { encodeRecord, objectAad } from './format.js';
import { wrappedKeyInfo } from './key-info.js';
import { newGeneration, recordKey } from './layout.js';
import { resolveRewrapObjectOptions, type RewrapObjectOptions, type RewrapReport } from './options.js';
import { badShards } from './stripe-io.js';

export async function rewrapObject(deps: ObjectDeps, objectId: string, options: RewrapObjectOptions): Promise<RewrapReport> {
  const { ref, store, signal } = resolveRewrapObjectOptions(objectId, options);
  signal?.throwIfAborted();
  const d = await discover(deps.keys, store, ref);
  try {
    const wrapped = await deps.keys.rewrap(d.wrapped, { aad: objectAad(ref) });
    const rgen = newGeneration(d.gen.records.keys());
    const record = encodeRecord(d.keys.metaKey, ref, d.gen.id, rgen, wrapped);
    const key = recordKey(d.listing.prefix, d.gen.id, rgen);
    signal?.throwIfAborted();
    const results = await Promise.allSettled(Array.from({ length: store.nodes }, async (_, node) => {
      const w = await store.openWriter(node, key);
      try {
        await w.write(record);
        await w.flush();
        await w.commit();
      } catch (err) {
        await w.abort();
        throw err;
      }
    }));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    // Some nodes lack the record: keep the older ones (readers may need them), and say so. A new rewrap completes it.
    if (failed) throw failed.reason instanceof StoreError ? failed.reason : new StoreError(results.indexOf(failed), 'write', 'rewrap record not written', { cause: failed.reason });
    await Promise.all([...d.gen.records].flatMap(([old, nodes]) =>
      nodes.map((node) => store.remove(node, recordKey(d.listing.prefix, d.gen.id, old)).catch(() => {}))));
    const good = [...d.good].sort((a, b) => a - b);
    return { objectId, ...wrappedKeyInfo(deps.keys, wrapped), rewrapped: good, skipped: badShards(d), generation: d.gen.id };
  } finally {
    await release(d);
  }
}
