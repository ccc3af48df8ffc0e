// Finds an object's shards in a store and decides which are trustworthy, before any chunk is read:
// the shard headers are grouped by their bytes (less the shard index), the largest group whose wrapped DEK
// unwraps for this object id and whose geometry MAC verifies wins, and its trailers give the plaintext length.
// Shards that are missing, unreadable, of another group (stale, corrupt), of the wrong size or with a bad
// trailer are reported as bad; the rest are candidates (their chunks are still checked one by one).
import { timingSafeEqual } from 'node:crypto';
import { DecryptionError, ErasureError, ObjectNotFoundError } from '../errors.js';
import type { ObjectKeyProvider } from './deps.js';
import {
  deriveShardKeys, geometry, geometryMac, objectAad, parseShardHeader, parseTrailer, SHARD_HEADER_PROBE_BYTES, TRAILER_BYTES,
  withShardIndex, type Geometry, type ShardHeader, type ShardKeys,
} from './format.js';
import type { ShardReader, ShardStore } from './shard-store.js';

export interface Discovered {
  header: ShardHeader;
  /** The winning shard header with index 0 (a rewrite sets each shard's index). */
  headerBytes: Buffer;
  geometry: Geometry;
  keys: ShardKeys;
  /** The object's DEK (caller zeroes it, and the keys). */
  dek: Uint8Array;
  /** Shards that passed every check so far. */
  good: Set<number>;
  /** Open readers of the shards found (close with closeReaders). */
  readers: Map<number, ShardReader>;
  missing: Set<number>;
  corrupt: Set<number>;
}

interface Probe {
  index: number;
  reader: ShardReader;
  size: number;
  header: ShardHeader | undefined;
  bytes: Uint8Array;
}

async function probe(store: ShardStore, objectId: string, index: number): Promise<Probe | undefined> {
  let reader: ShardReader | null = null;
  try {
    reader = await store.openReader(objectId, index);
    if (!reader) return undefined;
    const bytes = new Uint8Array(Math.min(reader.size, SHARD_HEADER_PROBE_BYTES));
    const view = bytes.subarray(0, await reader.read(0, bytes));
    return { index, reader, size: reader.size, header: parseShardHeader(view), bytes: view };
  } catch {
    await reader?.close().catch(() => {});
    return undefined; // an unreachable node is a lost shard
  }
}

export async function closeReaders(d: { readers: Map<number, ShardReader> }): Promise<void> {
  await Promise.all([...d.readers.values()].map((r) => r.close().catch(() => {})));
  d.readers.clear();
}

/** Probes shard indexes 0..nodes-1 first, then further blocks of `nodes` until the shard count is known. */
async function probeAll(store: ShardStore, objectId: string): Promise<Map<number, Probe>> {
  const probes = new Map<number, Probe>();
  let total: number | undefined;
  for (let from = 0; from < (total ?? 256); from += store.nodes) {
    const to = Math.min(total ?? 256, from + store.nodes);
    const found = await Promise.all(Array.from({ length: to - from }, (_, i) => probe(store, objectId, from + i)));
    for (const p of found) {
      if (!p) continue;
      probes.set(p.index, p);
      if (p.header && total === undefined) total = p.header.k + p.header.m;
    }
  }
  return probes;
}

export async function discover(keys: ObjectKeyProvider, store: ShardStore, objectId: string): Promise<Discovered> {
  const probes = await probeAll(store, objectId);
  try {
    return await decide(keys, objectId, probes);
  } catch (err) {
    await closeReaders({ readers: new Map([...probes].map(([i, p]) => [i, p.reader])) });
    throw err;
  }
}

async function decide(keys: ObjectKeyProvider, objectId: string, probes: Map<number, Probe>): Promise<Discovered> {
  if (probes.size === 0) throw new ObjectNotFoundError(`no shard of object "${objectId}" in the store`);

  const groups = new Map<string, Probe[]>();
  for (const p of probes.values()) {
    if (!p.header || p.header.objectId !== objectId || p.header.index !== p.index) continue;
    const key = withShardIndex(p.bytes.subarray(0, p.header.length), 0).toString('latin1');
    groups.get(key)?.push(p) ?? groups.set(key, [p]);
  }
  let decryptionFailure: unknown;
  for (const group of [...groups.values()].sort((a, b) => b.length - a.length)) {
    const header = group[0]!.header!;
    let dek: Uint8Array;
    try {
      dek = await keys.unwrap(header.sealed.wrappedDek, { aad: objectAad(objectId) });
    } catch (err) {
      if (err instanceof DecryptionError) {
        decryptionFailure = err;
        continue;
      }
      throw err;
    }
    const shardKeys = deriveShardKeys(dek, header.sealed.salt, header.sealed.core);
    const expectedMac = geometryMac(shardKeys.metaKey, header.k, header.m, objectId, header.sealedBytes);
    if (!timingSafeEqual(expectedMac, header.mac)) {
      dek.fill(0);
      shardKeys.metaKey.fill(0);
      shardKeys.chunkKey.fill(0);
      decryptionFailure = new DecryptionError();
      continue;
    }
    return finish(objectId, header, group, probes, dek, shardKeys);
  }
  if (decryptionFailure) throw decryptionFailure;
  throw new ErasureError(`no shard of object "${objectId}" has a readable header (${probes.size} found)`);
}

async function finish(
  objectId: string, header: ShardHeader, group: Probe[], probes: Map<number, Probe>, dek: Uint8Array, keys: ShardKeys,
): Promise<Discovered> {
  const total = header.k + header.m;
  const good = new Set<number>();
  const missing = new Set<number>();
  const corrupt = new Set<number>();
  for (let i = 0; i < total; i++) if (!probes.has(i)) missing.add(i);
  for (const p of probes.values()) if (p.index < total && !group.includes(p)) corrupt.add(p.index);

  // Trailers: every shard of the group should vouch for the same length.
  const lengths = new Map<number, number>();
  await Promise.all(group.map(async (p) => {
    const trailer = new Uint8Array(TRAILER_BYTES);
    const read = await p.reader.read(p.size - TRAILER_BYTES, trailer).catch(() => null);
    const length = read === TRAILER_BYTES ? parseTrailer(keys.metaKey, trailer) : undefined;
    if (length === undefined) corrupt.add(p.index);
    else lengths.set(p.index, length);
  }));
  const votes = new Map<number, number>();
  for (const length of lengths.values()) votes.set(length, (votes.get(length) ?? 0) + 1);
  const plaintextBytes = [...votes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
  if (plaintextBytes === undefined) {
    throw new ErasureError(`object "${objectId}": no shard has an authentic trailer (bad shards: ${[...corrupt, ...missing].sort((a, b) => a - b).join(', ')})`);
  }
  const g = geometry(header.k, header.m, header.sealed.segmentBytes, plaintextBytes, header.length);
  for (const [index, length] of lengths) {
    const p = probes.get(index)!;
    if (length !== plaintextBytes || p.size !== g.shardBytes) corrupt.add(index);
    else good.add(index);
  }
  const readers = new Map([...probes].map(([i, p]) => [i, p.reader]));
  return { header, headerBytes: withShardIndex(group[0]!.bytes.subarray(0, header.length), 0), geometry: g, keys, dek, good, readers, missing, corrupt };
}

/** Throws ErasureError when fewer than k shards are still usable, naming the bad ones. */
export function assertEnough(objectId: string, d: Pick<Discovered, 'geometry' | 'good' | 'missing' | 'corrupt'>): void {
  if (d.good.size >= d.geometry.k) return;
  const list = (s: Set<number>) => ([...s].sort((a, b) => a - b).join(', ') || 'none');
  throw new ErasureError(
    `object "${objectId}" cannot be read: ${d.good.size} good shards of ${d.geometry.k} needed (missing: ${list(d.missing)}; corrupt: ${list(d.corrupt)})`,
  );
}
