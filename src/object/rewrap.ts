// rewrapObject: rewraps the object's DEK under the newest version of its root key and rewrites only the
// wrapped-DEK bytes of each good shard's header, in place (the wrapped length is constant for a root key).
import { OFFSET_WRAPPED } from '../aead/header.js';
import type { ObjectDeps } from './deps.js';
import { closeReaders, discover } from './discover.js';
import { objectAad } from './format.js';
import { wrappedKeyInfo } from './key-info.js';
import { resolveRewrapObjectOptions, type RewrapObjectOptions, type RewrapReport } from './options.js';
import { badShards } from './stripe-io.js';

export async function rewrapObject(deps: ObjectDeps, objectId: string, options: RewrapObjectOptions): Promise<RewrapReport> {
  const { store, signal } = resolveRewrapObjectOptions(objectId, options);
  signal?.throwIfAborted();
  const d = await discover(deps.keys, store, objectId);
  await closeReaders(d);
  d.dek.fill(0);
  d.keys.metaKey.fill(0);
  d.keys.chunkKey.fill(0);
  const oldWrapped = d.header.sealed.wrappedDek;
  const wrapped = await deps.keys.rewrap(oldWrapped, { aad: objectAad(objectId) });
  if (wrapped.length !== oldWrapped.length) throw new RangeError('the rewrapped DEK has another length; the shard headers cannot be rewritten in place');
  const at = d.header.sealedOffset + OFFSET_WRAPPED;
  const rewrapped: number[] = [];
  for (const j of [...d.good].sort((a, b) => a - b)) {
    signal?.throwIfAborted();
    await store.overwrite(objectId, j, at, wrapped);
    rewrapped.push(j);
  }
  return { objectId, ...wrappedKeyInfo(deps.keys, wrapped), rewrapped, skipped: badShards(d) };
}
