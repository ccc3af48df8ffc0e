// Listing keys: one object's blobs grouped by generation (what discover, put, repair, rewrap and delete start
// from), and the names in a namespace, in name order, merged from every node and paged underneath.
import type { ShardStore } from './blob-store.js';
import type { ObjectRef } from './format.js';
import { parseShardHeader, SHARD_HEADER_PROBE_BYTES } from './format.js';
import { decodeName, encodeName, matchesHashed, objectPrefix, parseObjectKey, PLAIN_NAME_BYTES } from './layout.js';

/** Keys per list() call. */
export const LIST_PAGE_KEYS = 1000;
/** An object has at most 256 shards and a few records per generation: more keys than this under one name is not ours. */
const MAX_OBJECT_KEYS_PER_NODE = 64 * 1024;

export interface Generation {
  id: string;
  /** Shard index → the node that lists it (only on its own node, j % nodes). */
  shards: Map<number, number>;
  /** Rewrap record id → nodes that list it, newest record first. */
  records: Map<string, number[]>;
}

export interface ObjectListing {
  prefix: string;
  /** Newest first. */
  gens: Generation[];
  /** Nodes whose listing failed (their shards count as lost), ascending. */
  failedNodes: number[];
  /** Nodes not listed (none, except in a get's first look: discover.ts). */
  unlisted: number[];
  /** The first of those failures (a StoreError from the store), to report when no node could be listed. */
  firstFailure?: unknown;
}

/** Every key under `prefix` on one node, page by page (a node that fails rejects). */
export async function listNodeKeys(store: ShardStore, node: number, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (let startAfter: string | undefined; ; ) {
    const page = await store.list(node, { prefix, startAfter, limit: LIST_PAGE_KEYS });
    out.push(...page);
    if (page.length < LIST_PAGE_KEYS || out.length >= MAX_OBJECT_KEYS_PER_NODE) return out;
    startAfter = page[page.length - 1];
  }
}

/** What listing one node gave: its keys, or the failure (a lost node). */
export type NodeKeys = { keys: string[] } | { failure: unknown };

/** Lists these nodes in parallel; a node that fails is recorded as failed. */
export async function listNodes(store: ShardStore, prefix: string, nodes: number[]): Promise<Map<number, NodeKeys>> {
  const out = new Map<number, NodeKeys>();
  await Promise.all(nodes.map((node) => listNodeKeys(store, node, prefix).then(
    (keys) => void out.set(node, { keys }),
    (failure: unknown) => void out.set(node, { failure }),
  )));
  return out;
}

/**
 * The listing of the nodes in `lists`, by generation (a shard counts only on its own node, j % nodes). Nodes not
 * in `lists` are `unlisted` (a get's first look lists only some: discover.ts).
 */
export function groupListing(nodes: number, prefix: string, lists: Map<number, NodeKeys>): ObjectListing {
  const failedNodes: number[] = [];
  const unlisted: number[] = [];
  let firstFailure: unknown;
  const byGen = new Map<string, Generation>();
  for (let node = 0; node < nodes; node++) {
    const listed = lists.get(node);
    if (!listed) {
      unlisted.push(node);
      continue;
    }
    if ('failure' in listed) {
      failedNodes.push(node);
      firstFailure ??= listed.failure;
      continue;
    }
    for (const key of listed.keys) {
      const parsed = parseObjectKey(prefix, key);
      if (!parsed) continue;
      let gen = byGen.get(parsed.gen);
      if (!gen) byGen.set(parsed.gen, (gen = { id: parsed.gen, shards: new Map(), records: new Map() }));
      if ('shard' in parsed) {
        if (parsed.shard % nodes === node) gen.shards.set(parsed.shard, node);
      } else {
        gen.records.get(parsed.record)?.push(node) ?? gen.records.set(parsed.record, [node]);
      }
    }
  }
  const gens = [...byGen.values()].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  for (const gen of gens) gen.records = new Map([...gen.records].sort((a, b) => (a[0] < b[0] ? 1 : a[0] > b[0] ? -1 : 0)));
  return { prefix, gens, failedNodes, unlisted, firstFailure };
}

/**
 * Every key of one object on every node (in parallel; a node that fails is a lost node), by generation. `known`:
 * nodes listed already (their answers are kept, the others are listed).
 */
export async function listObjectKeys(store: ShardStore, ref: ObjectRef, known?: Map<number, NodeKeys>): Promise<ObjectListing> {
  const prefix = objectPrefix(ref.ns, ref.name);
  const rest = Array.from({ length: store.nodes }, (_, node) => node).filter((node) => !known?.has(node));
  const lists = await listNodes(store, prefix, rest);
  for (const [node, listed] of known ?? []) lists.set(node, listed);
  return groupListing(store.nodes, prefix, lists);
}

/** Every key of one generation, shards first (what put's cleanup and delete remove). */
export function keysOf(listing: ObjectListing, gen: Generation): Array<{ node: number; key: string }> {
  const out: Array<{ node: number; key: string }> = [];
  for (const [j, node] of gen.shards) out.push({ node, key: `${listing.prefix}${gen.id}/${j}` });
  for (const [rgen, where] of gen.records) for (const node of where) out.push({ node, key: `${listing.prefix}${gen.id}/w${rgen}` });
  return out;
}

export interface ListNamesOptions {
  ns: string;
  /** Only names starting with this. */
  prefix?: string;
  /** Only names after this one (byte order of UTF-8). */
  startAfter?: string;
  /** Keys per list() call. */
  pageKeys?: number;
}

/** The name part (`enc(name)`) of a key under `<ns>/`. */
function namePart(nsPrefix: string, key: string): string | undefined {
  if (!key.startsWith(nsPrefix)) return undefined;
  const end = key.indexOf('/-', nsPrefix.length);
  return end < 0 ? undefined : key.slice(nsPrefix.length, end);
}

/** The longest key prefix every name starting with `prefix` has (whole 6-bit groups only, with segment cuts). */
function keyPrefixOfNames(nsPrefix: string, prefix: string): string {
  if (prefix === '') return nsPrefix;
  const utf8 = Buffer.from(prefix, 'utf8');
  if (utf8.length > PLAIN_NAME_BYTES) return nsPrefix + encodeName(prefix).split('~')[0]!;
  const full = encodeName(prefix);
  const exact = Math.floor((utf8.length * 8) / 6); // characters fixed by the prefix's bits
  let chars = 0;
  let at = 0;
  for (; at < full.length && chars < exact; at++) if (full[at] !== '/') chars++;
  return nsPrefix + full.slice(0, at);
}

/**
 * Names in a namespace, in order (byte order of their UTF-8, except names over 450 bytes: see layout.ts). Lists
 * every node, merges, and skips past each name's keys; never holds more than a page per node. A node that fails
 * is left out (its names are still found on the others). A name is listed when any blob of it is found.
 */
export async function* listNames(store: ShardStore, options: ListNamesOptions): AsyncGenerator<string> {
  const nsPrefix = `${options.ns}/`;
  const namePrefix = options.prefix ?? '';
  const keyPrefix = keyPrefixOfNames(nsPrefix, namePrefix);
  const pageKeys = options.pageKeys ?? LIST_PAGE_KEYS;
  const start = options.startAfter !== undefined ? objectPrefix(options.ns, options.startAfter) + '~' : undefined;
  interface Cursor { node: number; page: string[]; at: number; after: string | undefined; done: boolean }
  const cursors: Cursor[] = Array.from({ length: store.nodes }, (_, node) => ({ node, page: [], at: 0, after: start, done: false }));
  const fill = async (c: Cursor) => {
    while (!c.done && c.at >= c.page.length) {
      try {
        c.page = await store.list(c.node, { prefix: keyPrefix, startAfter: c.after, limit: pageKeys });
      } catch {
        c.page = [];
        c.done = true;
        return;
      }
      c.at = 0;
      if (c.page.length > 0) c.after = c.page[c.page.length - 1];
      if (c.page.length < pageKeys) c.done = true;
      // Keys that are not an object's (foreign blobs) are passed over.
      while (c.at < c.page.length && namePart(nsPrefix, c.page[c.at]!) === undefined) c.at++;
    }
  };
  for (;;) {
    await Promise.all(cursors.map(fill));
    let smallest: string | undefined;
    for (const c of cursors) {
      if (c.at >= c.page.length) continue;
      const part = namePart(nsPrefix, c.page[c.at]!)!;
      if (smallest === undefined || part < smallest) smallest = part;
    }
    if (smallest === undefined) return;
    const skip = `${nsPrefix}${smallest}/-~`;
    let sample: { node: number; key: string } | undefined;
    for (const c of cursors) {
      if (c.at < c.page.length && namePart(nsPrefix, c.page[c.at]!) === smallest) sample ??= { node: c.node, key: c.page[c.at]! };
      while (c.at < c.page.length && c.page[c.at]! <= skip) c.at++;
      while (c.at < c.page.length && namePart(nsPrefix, c.page[c.at]!) === undefined) c.at++;
      if (c.at >= c.page.length && !c.done && (c.after === undefined || c.after < skip)) c.after = skip;
    }
    const name = await nameOf(store, smallest, sample);
    if (name !== undefined && name.startsWith(namePrefix) && (options.startAfter === undefined || name !== options.startAfter)) yield name;
  }
}

/** The name behind a key part: decoded, or for a hashed one read from a shard header and checked against the hash. */
async function nameOf(store: ShardStore, part: string, sample: { node: number; key: string } | undefined): Promise<string | undefined> {
  const decoded = decodeName(part);
  if (decoded === undefined || typeof decoded === 'string') return decoded;
  if (!sample || !/\/\d+$/.test(sample.key)) return undefined;
  try {
    const reader = await store.openReader(sample.node, sample.key);
    if (!reader) return undefined;
    try {
      const bytes = new Uint8Array(Math.min(reader.size, SHARD_HEADER_PROBE_BYTES));
      const header = parseShardHeader(bytes.subarray(0, await reader.read(0, bytes)));
      return header && matchesHashed(header.objectId, decoded) ? header.objectId : undefined;
    } finally {
      await reader.close().catch(() => {});
    }
  } catch {
    return undefined;
  }
}
