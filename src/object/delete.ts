// deleteObject: removes every blob of an object on every node, generation by generation, shards before rewrap
// records. Cut short, what is left is either still a readable object (the next delete finishes) or fewer than k
// shards of a generation (never read; listed until a delete or a put under the name removes it).
import { ObjectNotFoundError, StoreError } from '../errors.js';
import { keysOf, listObjectKeys } from './listing.js';
import { resolveDeleteObjectOptions, type DeleteObjectOptions, type DeleteReport } from './options.js';

const isRecord = (key: string) => /\/w[0-9a-f]{20}$/.test(key);

export async function deleteObject(objectId: string, options: DeleteObjectOptions): Promise<DeleteReport> {
  const { ref, store, signal } = resolveDeleteObjectOptions(objectId, options);
  signal?.throwIfAborted();
  const listing = await listObjectKeys(store, ref);
  if (listing.gens.length === 0) throw new ObjectNotFoundError(`no shard of object "${ref.name}" in the store`);
  let removed = 0;
  // Oldest generation first: if cut short, the newest (the one that reads) goes last.
  for (const gen of [...listing.gens].reverse()) {
    signal?.throwIfAborted();
    const keys = keysOf(listing, gen);
    await Promise.all(keys.filter((x) => !isRecord(x.key)).map((x) => store.remove(x.node, x.key)));
    await Promise.all(keys.filter((x) => isRecord(x.key)).map((x) => store.remove(x.node, x.key)));
    removed += keys.length;
  }
  // A node that could not be listed may still hold blobs of it: the delete is not done.
  const node = listing.failedNodes[0];
  if (node !== undefined) throw new StoreError(node, 'list', `could not list; object "${ref.name}" may still have blobs there (delete again)`);
  return { objectId, removed };
}
