// Shard folders in a temp dir, and a ShardStore wrapper that counts the bytes read.
import { mkdirSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsShardStore } from '../../dist/index.js';

/** Prefers tmpfs (/dev/shm) when present: shard I/O is not what these tests measure. */
export function shardDirs(count: number): { root: string; dirs: string[]; store: FsShardStore; remove(): void } {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const root = mkdtempSync(join(base, 'hce-shards-'));
  const dirs = Array.from({ length: count }, (_, i) => join(root, `node${i}`));
  for (const dir of dirs) mkdirSync(dir);
  const remove = () => rmSync(root, { recursive: true, force: true });
  process.once('exit', remove);
  return { root, dirs, store: new FsShardStore(dirs), remove };
}

export class CountingStore {
  bytesRead = 0;
  reads = 0;
  readonly inner: FsShardStore;
  constructor(inner: FsShardStore) {
    this.inner = inner;
  }
  get nodes() {
    return this.inner.nodes;
  }
  openWriter(id: string, i: number) {
    return this.inner.openWriter(id, i);
  }
  async openReader(id: string, i: number) {
    const reader = await this.inner.openReader(id, i);
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
  overwrite(id: string, i: number, offset: number, bytes: Uint8Array) {
    return this.inner.overwrite(id, i, offset, bytes);
  }
  remove(id: string, i: number) {
    return this.inner.remove(id, i);
  }
}

export async function collect(readable: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of readable) parts.push(Buffer.from(part));
  return Buffer.concat(parts);
}
