// Shard folders in a temp dir, where a shard's file is (newest generation), and a ShardStore wrapper that counts
// the bytes read.
import { mkdirSync, mkdtempSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsShardStore, type ListOptions, type ShardStore } from '../../dist/index.js';
import { objectPrefix } from '../../dist/object/layout.js';

/** Roots still to remove at exit: one exit listener for all (one per call warned past ten calls a file). */
const leftAtExit = new Set<string>();
process.once('exit', () => leftAtExit.forEach((root) => rmSync(root, { recursive: true, force: true })));

/** Prefers tmpfs (/dev/shm) when present: shard I/O is not what these tests measure. */
export function shardDirs(count: number): { root: string; dirs: string[]; store: FsShardStore; remove(): void } {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const root = mkdtempSync(join(base, 'hce-shards-'));
  const dirs = Array.from({ length: count }, (_, i) => join(root, `node${i}`));
  for (const dir of dirs) mkdirSync(dir);
  const remove = () => {
    leftAtExit.delete(root);
    rmSync(root, { recursive: true, force: true });
  };
  leftAtExit.add(root);
  return { root, dirs, store: new FsShardStore(dirs), remove };
}

/** The folder holding an object's generations on a node (`<ns>/<enc(name)>`). */
export function objectFolder(dir: string, id: string, ns = 'o'): string {
  return join(dir, ...objectPrefix(ns, id).slice(0, -2).split('/'));
}

/** Generations of an object present on a node's folder, oldest first. */
export function generationsOn(dir: string, id: string, ns = 'o'): string[] {
  const folder = objectFolder(dir, id, ns);
  if (!existsSync(folder)) return [];
  return readdirSync(folder).filter((n) => n.startsWith('-')).map((n) => n.slice(1)).sort();
}

/** The file of shard i of an object's newest generation found on any node (or of `gen`). */
export function shardPath(dirs: string[], id: string, i: number, gen?: string, ns = 'o'): string {
  const g = gen ?? dirs.flatMap((d) => generationsOn(d, id, ns)).sort().at(-1);
  if (!g) throw new Error(`no generation of ${id}`);
  return join(objectFolder(dirs[i % dirs.length]!, id, ns), `-${g}`, String(i));
}

export class CountingStore implements ShardStore {
  bytesRead = 0;
  reads = 0;
  readonly inner: FsShardStore;
  constructor(inner: FsShardStore) {
    this.inner = inner;
  }
  get nodes() {
    return this.inner.nodes;
  }
  openWriter(node: number, key: string, options?: { bytes?: number }) {
    return this.inner.openWriter(node, key, options);
  }
  async openReader(node: number, key: string) {
    const reader = await this.inner.openReader(node, key);
    if (!reader) return null;
    return {
      size: reader.size,
      read: async (offset: number, target: Uint8Array) => {
        const n = await reader.read(offset, target);
        this.reads++;
        this.bytesRead += n;
        return n;
      },
      close: () => reader.close(),
    };
  }
  remove(node: number, key: string) {
    return this.inner.remove(node, key);
  }
  list(node: number, options: ListOptions) {
    return this.inner.list(node, options);
  }
}

export async function collect(readable: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of readable) parts.push(Buffer.from(part));
  return Buffer.concat(parts);
}

/** Writes `data` as one blob in pieces of `chunk` (with the length announced when `bytes` is given), then commits. */
export async function putBlob(
  s: ShardStore, node: number, key: string, data: Uint8Array, { bytes, chunk = 1024 * 1024 + 13 }: { bytes?: number; chunk?: number } = {},
): Promise<void> {
  const w = await s.openWriter(node, key, bytes === undefined ? undefined : { bytes });
  for (let at = 0; at < data.length; at += chunk) await w.write(data.subarray(at, at + chunk));
  await w.commit();
}

/** A blob read whole, or null when there is none. */
export async function getBlob(s: ShardStore, node: number, key: string): Promise<Buffer | null> {
  const r = await s.openReader(node, key);
  if (r === null) return null;
  const out = Buffer.alloc(r.size);
  const n = await r.read(0, out);
  await r.close();
  return out.subarray(0, n);
}
