// Bucket test fixtures: node folders (v2 blob store) in a temp dir, and stream collection.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { FsShardStore } from '../../dist/object/fs-blob-store.js';

export function bucketStore(count: number): { root: string; dirs: string[]; store: FsShardStore } {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const root = mkdtempSync(join(base, 'hce-buckets-'));
  const dirs = Array.from({ length: count }, (_, i) => join(root, `node${i}`));
  for (const dir of dirs) mkdirSync(dir);
  process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  return { root, dirs, store: new FsShardStore(dirs) };
}

export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
