// Deciding one generation from the shards opened of it (discover.ts picks the generation and what to open): the
// headers are grouped (identical less the index), a group of at least its k is unwrapped (the newest rewrap record
// that verifies, else the header's embedded wrapped DEK) and its geometry MAC checked, then each shard's trailer and
// size. A group of k MAC-verified shards is the generation's one authentic header.
import { timingSafeEqual } from 'node:crypto';
import { DecryptionError } from '../errors.js';
import type { OpenReaderOptions, ShardReader, ShardStore } from './blob-store.js';
import type { ObjectKeyProvider } from './deps.js';
import {
  deriveShardKeys, geometry, geometryMac, MAX_RECORD_BYTES, objectAad, parseRecord, parseShardHeader, parseTrailer, recordMacMatches,
  SHARD_HEADER_PROBE_BYTES, TRAILER_BYTES, withShardIndex, type Geometry, type ObjectRef, type ShardHeader, type ShardKeys,
} from './format.js';
import type { Generation, ObjectListing } from './listing.js';
import { recordKey } from './layout.js';

export interface Discovered {
  ref: ObjectRef;
  store: ShardStore;
  readerOptions: OpenReaderOptions | undefined;
  listing: ObjectListing;
  /** The winning generation. */
  gen: Generation;
  header: ShardHeader;
  /** The winning shard header with index 0 (a rewrite sets each shard's index). */
  headerBytes: Buffer;
  geometry: Geometry;
  keys: ShardKeys;
  /** The object's DEK (caller zeroes it, and the keys). */
  dek: Uint8Array;
  /** The wrapped DEK that opened it (the newest verified record's, or the header's). */
  wrapped: Uint8Array;
  /** Shards that passed every check so far. */
  good: Set<number>;
  /** Open readers of the shards found (close with closeReaders). */
  readers: Map<number, ShardReader>;
  missing: Set<number>;
  corrupt: Set<number>;
  /**
   * Shards that passed discovery and later had a bad chunk (tag) in some stripe: corrupt there, and still tried in
   * other stripes when the good ones are not enough (a bit flip spoils one chunk, not the whole shard).
   */
  degraded: Set<number>;
  /** Listed shards of the winning generation not opened yet (index → node), lowest first: openSpare opens them. */
  spare: Map<number, number>;
  /** An openSpare in progress (one at a time: stripes in flight may all ask). */
  opening?: Promise<void> | undefined;
}


export interface Probe {
  index: number;
  reader: ShardReader;
  size: number;
  header: ShardHeader | undefined;
  bytes: Uint8Array;
}

export async function probe(store: ShardStore, node: number, key: string, index: number, options: OpenReaderOptions | undefined): Promise<Probe | undefined> {
  let reader: ShardReader | null = null;
  try {
    reader = await (options ? store.openReader(node, key, options) : store.openReader(node, key));
    if (!reader) return undefined;
    const bytes = new Uint8Array(Math.min(reader.size, SHARD_HEADER_PROBE_BYTES));
    const view = bytes.subarray(0, await reader.read(0, bytes));
    return { index, reader, size: reader.size, header: parseShardHeader(view), bytes: view };
  } catch {
    await reader?.close().catch(() => {});
    return undefined; // an unreachable node is a lost shard
  }
}

export const list = (s: Set<number>) => ([...s].sort((a, b) => a - b).join(', ') || 'none');

export async function closeReaders(d: { readers: Map<number, ShardReader> }): Promise<void> {
  await Promise.all([...d.readers.values()].map((r) => r.close().catch(() => {})));
  d.readers.clear();
}

/** Why generations were passed over, to report the most telling cause when none wins. */
export interface Failures {
  decryption?: unknown;
  erasure?: string;
}


/** The winning group of `probes` (identical headers, less the index), or undefined: readers stay open either way. */
export async function decide(
  keys: ObjectKeyProvider, store: ShardStore, ref: ObjectRef, listing: ObjectListing, gen: Generation, probes: Map<number, Probe>,
  spare: Map<number, number>, failures: Failures,
): Promise<Omit<Discovered, 'readers' | 'readerOptions'> | undefined> {
  const groups = new Map<string, Probe[]>();
  for (const p of probes.values()) {
    if (!p.header || p.header.index !== p.index) continue;
    if (p.header.objectId !== ref.name) {
      // A well-formed shard made for another name (copied or renamed here): an authentication failure, not a loss.
      failures.decryption ??= new DecryptionError();
      continue;
    }
    const key = withShardIndex(p.bytes.subarray(0, p.header.length), 0).toString('latin1');
    groups.get(key)?.push(p) ?? groups.set(key, [p]);
  }
  for (const group of [...groups.values()].sort((a, b) => b.length - a.length)) {
    const header = group[0]!.header!;
    if (group.length < header.k) {
      failures.erasure ??= `object "${ref.name}" cannot be read: ${group.length} good shards of ${header.k} needed in its newest generation`;
      continue; // cannot win whatever its MAC says: spare the unwrap
    }
    const opened = await openGeneration(keys, store, ref, listing, gen, header, failures);
    if (!opened) continue;
    const found = await finish(ref, store, listing, gen, header, group, probes, spare, opened.dek, opened.keys, opened.wrapped);
    if (found.good.size >= header.k) return found;
    failures.erasure ??= `object "${ref.name}" cannot be read: ${found.good.size} good shards of ${header.k} needed (missing: ${list(found.missing)}; corrupt: ${list(found.corrupt)})`;
    opened.dek.fill(0);
    opened.keys.metaKey.fill(0);
    opened.keys.chunkKey.fill(0);
  }
  return undefined;
}

/** The DEK under the newest rewrap record that verifies, else under the header's wrapped DEK. */
async function openGeneration(
  keys: ObjectKeyProvider, store: ShardStore, ref: ObjectRef, listing: ObjectListing, gen: Generation, header: ShardHeader, failures: Failures,
): Promise<{ dek: Uint8Array; keys: ShardKeys; wrapped: Uint8Array } | undefined> {
  const tried = new Set<string>();
  const attempt = async (wrapped: Uint8Array, record?: { rgen: string; mac: Uint8Array }) => {
    const id = Buffer.from(wrapped).toString('latin1');
    if (tried.has(id) && !record) return undefined;
    tried.add(id);
    let dek: Uint8Array;
    try {
      dek = await keys.unwrap(wrapped, { aad: objectAad(ref) });
    } catch (err) {
      if (err instanceof DecryptionError) {
        failures.decryption ??= err;
        return undefined;
      }
      throw err; // a disabled or missing root key, a failing HSM: the real cause
    }
    const shardKeys = deriveShardKeys(dek, header.sealed.salt, header.sealed.core);
    const macOk = timingSafeEqual(geometryMac(shardKeys.metaKey, header.k, header.m, ref, gen.id, header.sealedBytes), header.mac)
      && (!record || recordMacMatches(shardKeys.metaKey, ref, gen.id, record.rgen, wrapped, record.mac));
    if (!macOk) {
      dek.fill(0);
      shardKeys.metaKey.fill(0);
      shardKeys.chunkKey.fill(0);
      failures.decryption ??= new DecryptionError();
      return undefined;
    }
    return { dek, keys: shardKeys, wrapped };
  };
  for (const [rgen, nodes] of gen.records) {
    for (const node of nodes) {
      const bytes = await readSmallBlob(store, node, recordKey(listing.prefix, gen.id, rgen));
      const record = bytes && parseRecord(bytes);
      if (!record) continue;
      const opened = await attempt(record.wrapped, { rgen, mac: record.mac });
      if (opened) return opened;
    }
  }
  return attempt(header.sealed.wrappedDek);
}

/** A whole blob of at most MAX_RECORD_BYTES, or undefined (missing, unreadable, too long). */
export async function readSmallBlob(store: ShardStore, node: number, key: string): Promise<Uint8Array | undefined> {
  let reader: ShardReader | null = null;
  try {
    reader = await store.openReader(node, key);
    if (!reader || reader.size > MAX_RECORD_BYTES) return undefined;
    const bytes = new Uint8Array(reader.size);
    return (await reader.read(0, bytes)) === bytes.length ? bytes : undefined;
  } catch {
    return undefined;
  } finally {
    await reader?.close().catch(() => {});
  }
}

async function finish(
  ref: ObjectRef, store: ShardStore, listing: ObjectListing, gen: Generation, header: ShardHeader, group: Probe[], probes: Map<number, Probe>,
  spare: Map<number, number>, dek: Uint8Array, keys: ShardKeys, wrapped: Uint8Array,
): Promise<Omit<Discovered, 'readers' | 'readerOptions'>> {
  const total = header.k + header.m;
  const good = new Set<number>();
  const missing = new Set<number>();
  const corrupt = new Set<number>();
  for (let i = 0; i < total; i++) if (!probes.has(i) && !spare.has(i)) missing.add(i);
  for (const p of probes.values()) if (p.index < total && !group.includes(p)) corrupt.add(p.index);

  // Trailers: every shard of the group should vouch for the same length (identical trailers: one MAC check).
  const lengths = new Map<number, number>();
  const checked = new Map<string, number | undefined>();
  await Promise.all(group.map(async (p) => {
    const length = await trailerLength(p, keys.metaKey, checked);
    if (length === undefined) corrupt.add(p.index);
    else lengths.set(p.index, length);
  }));
  const votes = new Map<number, number>();
  for (const length of lengths.values()) votes.set(length, (votes.get(length) ?? 0) + 1);
  const plaintextBytes = [...votes.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 0;
  const g = geometry(header.k, header.m, header.sealed.segmentBytes, plaintextBytes, header.length);
  for (const [index, length] of lengths) {
    const p = probes.get(index)!;
    if (length !== plaintextBytes || p.size !== g.shardBytes) corrupt.add(index);
    else good.add(index);
  }
  return {
    ref, store, listing, gen, header, headerBytes: withShardIndex(group[0]!.bytes.subarray(0, header.length), 0), geometry: g, keys, dek, wrapped,
    good, missing, corrupt, degraded: new Set(), spare: new Map([...spare].filter(([j]) => j < total)),
  };
}

/**
 * The length a shard's trailer vouches for under the meta key, or undefined when it does not verify. `checked`
 * keeps the answers for trailer bytes already verified under this key (one generation's trailers are identical).
 */
export async function trailerLength(p: Probe, metaKey: Uint8Array, checked?: Map<string, number | undefined>): Promise<number | undefined> {
  const trailer = new Uint8Array(TRAILER_BYTES);
  const read = p.size >= TRAILER_BYTES ? await p.reader.read(p.size - TRAILER_BYTES, trailer).catch(() => null) : null;
  if (read !== TRAILER_BYTES) return undefined;
  if (!checked) return parseTrailer(metaKey, trailer);
  const id = Buffer.from(trailer).toString('latin1');
  if (!checked.has(id)) checked.set(id, parseTrailer(metaKey, trailer));
  return checked.get(id);
}

