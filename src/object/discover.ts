// Finds an object's current generation in a store and decides which of its shards are trustworthy, before any
// chunk is read. Candidates are only generations listed under the object (layout.ts); they are tried newest first,
// and the first with at least k verified shards wins (an older one never mixes in). Inside a generation a shard
// counts only if its header names this object and its key's index, its geometry MAC verifies under the DEK (which
// binds namespace, name and generation), and its trailer verifies (decide.ts). The DEK comes from the newest rewrap
// record that verifies, else from the header's embedded wrapped DEK.
// A get opens only k shards of a generation (mode 'k': data shards first), the others only when those do not make
// k good ones, or later (openSpare) when one goes bad: the same generation wins as if every shard had been opened,
// since a group of k verified shards is the generation's one authentic header.
//
// A get that knows a bound M on the parity shards of every generation of the name (a bucket's geometry; the
// caller's `shards` option) first lists only nodes 0..M and opens shards by name (byName below). Why that is the
// choice a full listing makes:
// - A generation with k+m shards (m ≤ M) has at least m+1 of its slots (j % nodes) on nodes 0..M (one per node
//   while k+m ≤ nodes; more when shards wrap). A readable generation has ≥ k verified shards on reachable nodes,
//   so at most m of its slots are lost: at least one verified shard of it is on a listed node that answered (a
//   listed node that failed counts as lost, as in a full listing, and is not read by name either). So every
//   generation a full listing could pick is seen, and the newest seen is tried first.
// - Its shards are opened by key (j on node j % nodes; a missing blob opens as null, one request: S3 answers
//   NoSuchKey to the GET): the listed ones, and on unlisted nodes the slots below k+m of the first header read
//   (unauthenticated: it only decides what to open; the MAC decides what is read). If these give k verified
//   shards, it is the generation's one authentic header, and being the newest seen it is the newest readable:
//   the full listing's choice. The DEK is the one its MAC verified, whichever record (on the listed nodes) or the
//   embedded wrapped DEK unwrapped it: every record of a generation wraps the same DEK.
// - Anything else (no generation seen, the newest seen not giving k verified shards, a header with m > M, an
//   unwrap failing, a key state error) ends the first look: the other nodes are listed and the generations decided
//   as always, so corrupt, missing, cut-short and interrupted cases end exactly as before. An interrupted rewrap
//   whose record reached only unlisted nodes is found then if the records the listed nodes hold cannot unwrap.
// - Pipelined: as each listed node answers, the shards below the expected k of the newest generation it lists
//   are opened (its own, and once per generation those on unlisted nodes), so the k opens overlap the listing.
// Repair and rewrap (open 'all') list every node.
import { MAX_TOTAL_SHARDS } from '../erasure/validate.js';
import { ErasureError, ObjectNotFoundError } from '../errors.js';
import type { OpenReaderOptions, ShardStore } from './blob-store.js';
import type { ObjectKeyProvider } from './deps.js';
import {
  closeReaders, decide, list, probe, trailerLength, type Discovered, type Failures, type Probe,
} from './decide.js';
import { withShardIndex, type ObjectRef } from './format.js';
import { groupListing, listNodeKeys, listObjectKeys, type Generation, type NodeKeys, type ObjectListing } from './listing.js';
import { objectPrefix, parseObjectKey, shardKey } from './layout.js';

export { closeReaders, readSmallBlob, type Discovered } from './decide.js';

export interface DiscoverOptions {
  /**
   * 'all' (repair, rewrap): every listed shard of a generation is opened and checked. 'k' (get): the lowest listed
   * one, then as many more as its header's k asks (lowest indexes first: data shards, which need no decoding); the
   * rest only when those do not give k good shards.
   */
  open: 'all' | 'k';
  /** What readers are opened with (a whole-object get reads each shard it opens from its start). */
  reader?: OpenReaderOptions | undefined;
  /**
   * Mode 'k' only: every generation of the name has at most `parityShards` parity shards (and, expected, this many
   * data shards: what is opened while the listing runs). The first look lists only parityShards + 1 nodes.
   */
  shards?: { dataShards: number; parityShards: number } | undefined;
}

export async function discover(keys: ObjectKeyProvider, store: ShardStore, ref: ObjectRef, options: DiscoverOptions = { open: 'all' }): Promise<Discovered> {
  let known: Map<number, NodeKeys> | undefined;
  if (options.open === 'k' && options.shards && options.shards.parityShards + 1 < store.nodes) {
    const first = await byName(keys, store, ref, options, options.shards);
    if ('found' in first) return first.found;
    known = first.lists;
  }
  const listing = await listObjectKeys(store, ref, known);
  if (listing.gens.length === 0) {
    // No node could be listed (bad credentials, every node down): that is the store failing, not a missing object.
    if (listing.failedNodes.length === store.nodes && listing.firstFailure !== undefined) throw listing.firstFailure;
    throw new ObjectNotFoundError(`no shard of object "${ref.name}" in the store`);
  }
  const failures: Failures = {};
  for (const gen of listing.gens) {
    const found = await decideGeneration(keys, store, ref, listing, gen, failures, options);
    if (found) return found;
  }
  if (failures.erasure !== undefined) throw new ErasureError(failures.erasure);
  if (failures.decryption) throw failures.decryption;
  throw new ErasureError(`object "${ref.name}": no generation has a readable shard header`);
}

/**
 * The first look of a get (module comment): nodes 0..M listed, the newest generation seen decided from shards opened
 * by name. The winner, or what was listed (for the full listing to go on from).
 */
async function byName(
  keys: ObjectKeyProvider, store: ShardStore, ref: ObjectRef, options: DiscoverOptions, shards: { dataShards: number; parityShards: number },
): Promise<{ found: Discovered } | { lists: Map<number, NodeKeys> }> {
  const prefix = objectPrefix(ref.ns, ref.name);
  const N = store.nodes;
  const near = shards.parityShards + 1;
  const lists = new Map<number, NodeKeys>();
  // Probes started while the listing runs, by generation then index.
  const early = new Map<string, Map<number, Promise<Probe | undefined>>>();
  const start = (gen: string, j: number) => {
    let byIndex = early.get(gen);
    if (!byIndex) early.set(gen, (byIndex = new Map()));
    if (!byIndex.has(j)) byIndex.set(j, probe(store, j % N, shardKey(prefix, gen, j), j, options.reader));
  };
  await Promise.all(Array.from({ length: near }, (_, node) => listNodeKeys(store, node, prefix).then((keys) => {
    lists.set(node, { keys });
    let newest: string | undefined;
    const own: number[] = [];
    for (const key of keys) {
      const parsed = parseObjectKey(prefix, key);
      if (!parsed || !('shard' in parsed) || parsed.shard % N !== node || parsed.shard >= shards.dataShards) continue;
      if (newest === undefined || parsed.gen > newest) {
        newest = parsed.gen;
        own.length = 0;
      }
      if (parsed.gen === newest) own.push(parsed.shard);
    }
    if (newest === undefined) return;
    const unseen = !early.has(newest);
    for (const j of own) start(newest, j);
    if (unseen) for (let j = 0; j < shards.dataShards; j++) if (j % N >= near) start(newest, j);
  }, (failure: unknown) => void lists.set(node, { failure }))));
  const listing = groupListing(N, prefix, lists);
  const gen = listing.gens[0];
  const probes = new Map<number, Probe>();
  // Early probes of `gen` are where deciding starts; those of other generations are closed when they settle.
  for (const [id, byIndex] of early) {
    if (id !== gen?.id) for (const pending of byIndex.values()) void pending.then((p) => p?.reader.close().catch(() => {}));
  }
  for (const p of await Promise.all(early.get(gen?.id ?? '')?.values() ?? [])) if (p) probes.set(p.index, p);
  let handedOver = false;
  try {
    if (!gen) return { lists };
    const tried = new Set(early.get(gen.id)?.keys() ?? []);
    const found = await decideByName(keys, store, ref, listing, gen, probes, tried, options, shards.parityShards).catch(() => undefined);
    if (!found) return { lists };
    handedOver = true;
    if (found.header.m > shards.parityShards) {
      // The premise does not hold for this name: the full listing decides.
      await release(found);
      return { lists };
    }
    return { found };
  } finally {
    if (!handedOver) await closeReaders({ readers: new Map([...probes].map(([j, p]) => [j, p.reader])) });
  }
}

/** `gen` decided from its shards opened by name: listed ones, and the unlisted nodes' slots of the first header's k+m. */
async function decideByName(
  keys: ObjectKeyProvider, store: ShardStore, ref: ObjectRef, listing: ObjectListing, gen: Generation, probes: Map<number, Probe>,
  tried: Set<number>, options: DiscoverOptions, maxParity: number,
): Promise<Discovered | undefined> {
  const N = store.nodes;
  const near = maxParity + 1;
  const openSome = async (indexes: number[]): Promise<void> => {
    for (const j of indexes) tried.add(j);
    await Promise.all(indexes.map(async (j) => {
      const p = await probe(store, j % N, shardKey(listing.prefix, gen.id, j), j, options.reader);
      if (p) probes.set(j, p);
    }));
  };
  const listed = [...gen.shards.keys()].sort((a, b) => a - b);
  const firstHeader = () => [...probes.values()].sort((a, b) => a.index - b.index)
    .find((p) => p.header && p.header.index === p.index && p.header.objectId === ref.name)?.header;
  if (!firstHeader()) await openSome(listed.filter((j) => !tried.has(j)).slice(0, 1));
  const first = firstHeader();
  if (!first || first.m > maxParity) return undefined;
  const slots = Array.from({ length: Math.min(first.k + first.m, MAX_TOTAL_SHARDS) }, (_, j) => j).filter((j) => j % N >= near);
  const candidates = [...new Set([...listed, ...slots, ...tried])].sort((a, b) => a - b);
  const untried = () => candidates.filter((j) => !tried.has(j));
  const decideNow = async (): Promise<Discovered | undefined> => {
    const spare = new Map(untried().map((j) => [j, j % N]));
    const found = await decide(keys, store, ref, listing, gen, probes, spare, {});
    return found && { ...found, readerOptions: options.reader, readers: new Map([...probes].map(([j, p]) => [j, p.reader])) };
  };
  await openSome(untried().slice(0, Math.max(0, first.k - probes.size)));
  const found = await decideNow();
  if (found) return found;
  await openSome(untried());
  return decideNow();
}

async function decideGeneration(
  keys: ObjectKeyProvider, store: ShardStore, ref: ObjectRef, listing: ObjectListing, gen: Generation, failures: Failures, options: DiscoverOptions,
): Promise<Discovered | undefined> {
  const probes = new Map<number, Probe>();
  const listed = [...gen.shards.keys()].sort((a, b) => a - b);
  const tried = new Set<number>();
  const openSome = async (indexes: number[]): Promise<void> => {
    for (const j of indexes) tried.add(j);
    await Promise.all(indexes.map(async (j) => {
      const p = await probe(store, gen.shards.get(j)!, shardKey(listing.prefix, gen.id, j), j, options.reader);
      if (p) probes.set(j, p);
    }));
  };
  const untried = () => listed.filter((j) => !tried.has(j));
  let handedOver = false;
  try {
    const decideNow = async (into: Failures): Promise<Discovered | undefined> => {
      const spare = new Map(untried().map((j) => [j, gen.shards.get(j)!]));
      const found = await decide(keys, store, ref, listing, gen, probes, spare, into);
      if (!found) return undefined;
      handedOver = true;
      return { ...found, readerOptions: options.reader, readers: new Map([...probes].map(([j, p]) => [j, p.reader])) };
    };
    if (options.open === 'k' && listed.length > 0) {
      // The first header tells k (unauthenticated: it only decides how many to open, never what is read).
      await openSome(listed.slice(0, 1));
      const first = probes.get(listed[0]!)?.header;
      if (first && first.index === listed[0] && first.objectId === ref.name) {
        await openSome(untried().slice(0, first.k - 1));
        const found = await decideNow({}); // a miss here is no verdict: the rest are opened and all decide
        if (found) return found;
      }
    }
    await openSome(untried());
    return await decideNow(failures);
  } finally {
    if (!handedOver) await closeReaders({ readers: new Map([...probes].map(([j, p]) => [j, p.reader])) });
  }
}

/**
 * Opens spare shards of the winning generation until `want` are good or none is left (a get whose shards went bad
 * needs k good ones to rebuild from). A spare counts only with the winning header (less the index), its own index,
 * the winning length in its trailer and the winning size.
 */
export async function openSpare(d: Discovered, want: number): Promise<void> {
  while (d.good.size < want && (d.spare.size > 0 || d.opening)) {
    if (!d.opening) {
      const batch = [...d.spare].slice(0, want - d.good.size);
      for (const [j] of batch) d.spare.delete(j);
      d.opening = Promise.all(batch.map(async ([j, node]) => {
        const p = await probe(d.store, node, shardKey(d.listing.prefix, d.gen.id, j), j, d.readerOptions);
        if (!p) return void d.missing.add(j);
        d.readers.set(j, p.reader);
        const ok = p.header !== undefined && p.header.index === j && p.size === d.geometry.shardBytes
          && withShardIndex(p.bytes.subarray(0, p.header.length), 0).equals(d.headerBytes)
          && (await trailerLength(p, d.keys.metaKey)) === d.geometry.plaintextBytes;
        (ok ? d.good : d.corrupt).add(j);
      })).then(() => undefined).finally(() => {
        d.opening = undefined;
      });
    }
    await d.opening;
  }
}

/** Throws ErasureError when fewer than k shards are still usable, naming the bad ones. */
export function assertEnough(name: string, d: Pick<Discovered, 'geometry' | 'good' | 'missing' | 'corrupt'>): void {
  if (d.good.size >= d.geometry.k) return;
  throw new ErasureError(
    `object "${name}" cannot be read: ${d.good.size} good shards of ${d.geometry.k} needed (missing: ${list(d.missing)}; corrupt: ${list(d.corrupt)})`,
  );
}

/** Zeroes the discovered keys and closes the readers. */
export async function release(d: Discovered): Promise<void> {
  d.dek.fill(0);
  d.keys.metaKey.fill(0);
  d.keys.chunkKey.fill(0);
  await closeReaders(d);
}
