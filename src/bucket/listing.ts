// A bucket's object listing: one small entry per object, `bi/<bucket>/<enc(name)>-<info>`, written
// after the object's shards (so a listed object was completely written), removed after them. The key carries what
// BucketObjectInfo needs — info = <createdAt 12 hex>.<size 12 hex>.<bucket key id 20 hex>.<mac 32 hex> — so listing
// reads keys only (no blob is opened, except the body of a name too long for its key). The MAC (under a key derived
// from the bucket key, bucket-keys.ts) covers bucket, creation, name, createdAt, size and bucket key id: an entry
// with a changed byte is skipped. Entries live on the first m+1 nodes; listing merges their keys page by page, so a
// listing survives the loss of m nodes and never holds more than a page per node.
import { timingSafeEqual } from 'node:crypto';
import { StoreError } from '../errors.js';
import type { ShardStore } from '../object/blob-store.js';
import type { BucketKeyring } from './bucket-keys.js';
import {
  encodeOrdered, HASHED_AFTER_BYTES, indexBase, indexKey, indexPrefix, indexStartAfter, isHashedNameKey, nameOfKey, parseIndexKey,
} from './layout.js';
import type { Manifest } from './manifest.js';
import { listNode, readAny, writeOn } from './replicated.js';

const INFO_PATTERN = /^([0-9a-f]{12})\.([0-9a-f]{12})\.([0-9a-f]{20})\.([0-9a-f]{32})$/;
const VERIFY_BATCH = 256;

export interface IndexEntry {
  name: string;
  createdAt: number;
  size: number;
  bkid: string;
}

const macInput = (m: Manifest, e: IndexEntry) => Buffer.from(JSON.stringify(['hce/bucket-index/v1', m.name, m.gen, e.name, e.createdAt, e.size, e.bkid]));
const hex12 = (n: number) => n.toString(16).padStart(12, '0');

export class ObjectIndex {
  readonly #store: ShardStore;
  readonly #manifest: Manifest;
  readonly #keyring: BucketKeyring;

  constructor(store: ShardStore, manifest: Manifest, keyring: BucketKeyring) {
    this.#store = store;
    this.#manifest = manifest;
    this.#keyring = keyring;
  }

  /**
   * Publishes the entry on every node, then removes the name's older entries — unless `replaces` is false (the put
   * found no older generation of the object): then the name has no entry but, at most, one a crash left behind,
   * which readers pass over for this newer one and the next overwrite or delete removes. That saves listing the
   * bucket's entries on every new object (a full folder read on FsShardStore).
   */
  async write(entry: IndexEntry, replaces = true): Promise<void> {
    const [mac] = await this.#keyring.indexMacs(entry.bkid, [macInput(this.#manifest, entry)]);
    const info = `${hex12(entry.createdAt)}.${hex12(entry.size)}.${entry.bkid}.${mac!.toString('hex')}`;
    const bucket = this.#manifest.name;
    const key = indexKey(bucket, entry.name, info);
    const body = Buffer.byteLength(entry.name) > HASHED_AFTER_BYTES ? Buffer.from(entry.name, 'utf8') : Buffer.alloc(0);
    await writeOn(this.#store, this.#replicas(), key, body);
    if (replaces) await this.remove(entry.name, key);
  }

  /** Removes the name's entries on every node (but `keep`). */
  async remove(name: string, keep?: string): Promise<void> {
    const base = indexBase(this.#manifest.name, name);
    const keys = new Set<string>();
    await Promise.all(
      Array.from({ length: this.#replicas() }, async (_, node) => {
        try {
          for await (const key of listNode(this.#store, node, base)) keys.add(key);
        } catch {
          /* a lost node keeps its stale copy; readers verify and take the newest */
        }
      }),
    );
    for (const key of keys) {
      if (key !== keep) await Promise.all(Array.from({ length: this.#replicas() }, (_, node) => this.#store.remove(node, key).catch(() => {})));
    }
  }

  /** The name's newest entry that verifies, or undefined. */
  async read(name: string): Promise<IndexEntry | undefined> {
    const base = indexBase(this.#manifest.name, name);
    const keys = new Set<string>();
    await Promise.all(
      Array.from({ length: this.#replicas() }, async (_, node) => {
        try {
          for await (const key of listNode(this.#store, node, base)) keys.add(key);
        } catch {
          /* a lost node: the others have the entry */
        }
      }),
    );
    const [entry] = await this.#verifyGroups([[...keys].sort()], name);
    return entry;
  }

  /** Entries in name order, names starting with `prefix`, after `startAfter`. */
  async *list(prefix: string, startAfter: string): AsyncGenerator<IndexEntry> {
    const bucket = this.#manifest.name;
    // The key prefix every matching name's key starts with: whole 3-byte groups of the prefix (and at most the
    // bytes a hashed name keeps in its key); the rest is checked on the decoded name.
    const prefixBytes = Buffer.from(prefix, 'utf8').subarray(0, HASHED_AFTER_BYTES);
    const whole = prefixBytes.subarray(0, prefixBytes.length - (prefixBytes.length % 3));
    const keyPrefix = indexPrefix(bucket) + segmented(encodeOrdered(whole));
    const after = startAfter ? indexStartAfter(bucket, startAfter) : undefined;
    const startAfterBytes = startAfter ? Buffer.from(startAfter, 'utf8') : undefined;
    const streams = Array.from({ length: this.#replicas() }, (_, node) => peekable(listNode(this.#store, node, keyPrefix, after)));
    let batch: string[][] = [];
    let group: string[] = [];
    let groupName = '';
    for (;;) {
      const key = await nextMerged(streams);
      const parsed = key === undefined ? undefined : parseIndexKey(bucket, key);
      if (key !== undefined && !parsed) continue;
      if (group.length > 0 && (key === undefined || parsed!.nameKey !== groupName)) {
        batch.push(group);
        group = [];
      }
      if (batch.length >= VERIFY_BATCH || (key === undefined && batch.length > 0)) {
        for (const entry of await this.#verifyGroups(batch)) {
          if (!entry.name.startsWith(prefix)) continue;
          if (startAfterBytes && Buffer.compare(Buffer.from(entry.name, 'utf8'), startAfterBytes) <= 0) continue;
          yield entry;
        }
        batch = [];
      }
      if (key === undefined) return;
      groupName = parsed!.nameKey;
      group.push(key);
    }
  }

  /**
   * Nodes holding listing entries, and read by a listing: the first m+1 (the object itself is lost once more than
   * m nodes are, so more copies of its entry would add nothing).
   */
  #replicas(): number {
    return Math.min(this.#store.nodes, this.#manifest.parityShards + 1);
  }

  /** For each group of one name's entry keys: the newest entry that verifies (groups with none are dropped). */
  async #verifyGroups(groups: string[][], knownName?: string): Promise<IndexEntry[]> {
    const bucket = this.#manifest.name;
    const candidates: { entry: IndexEntry; mac: Buffer; group: number }[] = [];
    for (let g = 0; g < groups.length; g++) {
      for (const key of groups[g]!) {
        const parsed = parseIndexKey(bucket, key)!;
        const match = INFO_PATTERN.exec(parsed.info);
        if (!match) continue;
        let name = knownName ?? nameOfKey(parsed.nameKey);
        if (name === undefined && isHashedNameKey(parsed.nameKey)) name = (await readAny(this.#store, key, 4096))?.toString('utf8');
        if (name === undefined) continue;
        const entry = { name, createdAt: parseInt(match[1]!, 16), size: parseInt(match[2]!, 16), bkid: match[3]! };
        candidates.push({ entry, mac: Buffer.from(match[4]!, 'hex'), group: g });
      }
    }
    const byKey = new Map<string, typeof candidates>();
    for (const c of candidates) byKey.set(c.entry.bkid, [...(byKey.get(c.entry.bkid) ?? []), c]);
    const best = new Map<number, IndexEntry>();
    for (const [bkid, list] of byKey) {
      let macs: Buffer[];
      try {
        macs = await this.#keyring.indexMacs(bkid, list.map((c) => macInput(this.#manifest, c.entry)));
      } catch (err) {
        if ((err as { code?: string }).code === 'ERR_DECRYPTION') continue; // unknown or damaged bucket key: not ours
        throw err; // a disabled key, a failing HSM: the listing fails with the real cause
      }
      list.forEach((c, i) => {
        if (!timingSafeEqual(macs[i]!, c.mac)) return;
        const current = best.get(c.group);
        if (!current || c.entry.createdAt > current.createdAt) best.set(c.group, c.entry);
      });
    }
    return [...best.entries()].sort((a, b) => a[0] - b[0]).map(([, e]) => e);
  }
}

function segmented(text: string): string {
  // Same cut points as layout.indexBase (120 chars per segment).
  const parts: string[] = [];
  for (let i = 0; i < text.length; i += 120) parts.push(text.slice(i, i + 120));
  return parts.join('/');
}

interface Peekable {
  head: string | undefined;
  done: boolean;
  it: AsyncGenerator<string>;
  failed: boolean;
}

function peekable(it: AsyncGenerator<string>): Peekable {
  return { head: undefined, done: false, it, failed: false };
}

/** The smallest head over the node streams, consumed from every stream that has it; undefined at the end. */
async function nextMerged(streams: Peekable[]): Promise<string | undefined> {
  await Promise.all(
    streams.map(async (s) => {
      if (s.head !== undefined || s.done) return;
      try {
        const r = await s.it.next();
        if (r.done) s.done = true;
        else s.head = r.value;
      } catch {
        s.done = true; // a lost node: the others hold the same entries
        s.failed = true;
      }
    }),
  );
  if (streams.every((s) => s.failed)) throw new StoreError(0, 'list', 'no node answered the listing');
  let min: string | undefined;
  for (const s of streams) if (s.head !== undefined && (min === undefined || s.head < min)) min = s.head;
  if (min === undefined) return undefined;
  for (const s of streams) if (s.head === min) s.head = undefined;
  return min;
}
