// Small records replicated on every node of a store: written to all nodes (each publish atomic and durable), read
// from any copy that verifies, listed as the union of what the nodes answer. A node that fails is a lost copy.
import { StoreError } from '../errors.js';
import type { ShardStore } from '../object/blob-store.js';

const LIST_PAGE = 1000;

/** Writes `bytes` under `key` on every node; resolves with the nodes that failed (empty when all are durable). */
export function writeEverywhere(store: ShardStore, key: string, bytes: Uint8Array): Promise<number[]> {
  return writeOn(store, store.nodes, key, bytes);
}

/** Writes `bytes` under `key` on nodes 0..count-1; resolves with the nodes that failed. */
export async function writeOn(store: ShardStore, count: number, key: string, bytes: Uint8Array): Promise<number[]> {
  const failed: number[] = [];
  await Promise.all(
    Array.from({ length: count }, async (_, node) => {
      let writer;
      try {
        writer = await store.openWriter(node, key);
        await writer.write(bytes);
        await writer.commit();
      } catch {
        await writer?.abort().catch(() => {});
        failed.push(node);
      }
    }),
  );
  return failed.sort((a, b) => a - b);
}

/** Removes `key` on every node (best effort: a node that fails keeps a copy, which readers verify as any other). */
export async function removeEverywhere(store: ShardStore, key: string): Promise<void> {
  await Promise.all(Array.from({ length: store.nodes }, (_, node) => store.remove(node, key).catch(() => {})));
}

async function readBlob(store: ShardStore, node: number, key: string, maxBytes: number): Promise<Buffer | undefined> {
  const reader = await store.openReader(node, key).catch(() => null);
  if (!reader) return undefined;
  try {
    if (reader.size > maxBytes) return undefined;
    const out = Buffer.alloc(reader.size);
    let done = 0;
    while (done < out.length) {
      const n = await reader.read(done, out.subarray(done));
      if (n <= 0) return undefined;
      done += n;
    }
    return out;
  } catch {
    return undefined;
  } finally {
    await reader.close().catch(() => {});
  }
}

/**
 * The first copy of `key` (nodes in order) that `accept` turns into a value; undefined when no copy does. `accept`
 * returns undefined for a copy that fails its check; errors it throws (a disabled key, a failing HSM) propagate.
 */
export async function readVerified<T>(
  store: ShardStore, key: string, maxBytes: number, accept: (bytes: Buffer) => Promise<T | undefined>,
): Promise<{ value: T | undefined; copies: number }> {
  let copies = 0;
  for (let node = 0; node < store.nodes; node++) {
    const bytes = await readBlob(store, node, key, maxBytes);
    if (!bytes) continue;
    copies++;
    const value = await accept(bytes);
    if (value !== undefined) return { value, copies };
  }
  return { value: undefined, copies };
}

/** Reads one blob from the first node that has it (no verification: the caller checks what it reads). */
export async function readAny(store: ShardStore, key: string, maxBytes: number): Promise<Buffer | undefined> {
  for (let node = 0; node < store.nodes; node++) {
    const bytes = await readBlob(store, node, key, maxBytes);
    if (bytes) return bytes;
  }
  return undefined;
}

/** Every key under `prefix` on any node, sorted, deduplicated. StoreError when no node answers. */
export async function listUnion(store: ShardStore, prefix: string): Promise<string[]> {
  const keys = new Set<string>();
  let answered = 0;
  let lastError: unknown;
  await Promise.all(
    Array.from({ length: store.nodes }, async (_, node) => {
      try {
        for await (const key of listNode(store, node, prefix)) keys.add(key);
        answered++;
      } catch (err) {
        lastError = err;
      }
    }),
  );
  if (answered === 0) throw lastError instanceof StoreError ? lastError : new StoreError(0, 'list', 'no node answered', { cause: lastError });
  return [...keys].sort();
}

/** One node's keys under `prefix`, in order, fetched a page at a time. */
export async function* listNode(store: ShardStore, node: number, prefix: string, startAfter?: string): AsyncGenerator<string> {
  let after = startAfter;
  for (;;) {
    const page = await store.list(node, { prefix, limit: LIST_PAGE, ...(after !== undefined ? { startAfter: after } : {}) });
    yield* page;
    if (page.length < LIST_PAGE) return;
    after = page[page.length - 1]!;
  }
}

/** True when no node holds any key under `prefix`; a node that cannot answer is a StoreError (not "empty"). */
export async function isEmptyEverywhere(store: ShardStore, prefix: string): Promise<boolean> {
  const answers = await Promise.all(
    Array.from({ length: store.nodes }, (_, node) => store.list(node, { prefix, limit: 1 }).then((keys) => keys.length === 0)),
  );
  return answers.every(Boolean);
}
