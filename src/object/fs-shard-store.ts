// ShardStore over local folders, one per node. Writes go to a temp file in the node's folder, are fsynced, then
// renamed into place and the folder fsynced, so a crash never leaves a shard that looks complete.
import { createHash, randomBytes } from 'node:crypto';
import { open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { ShardReader, ShardStore, ShardWriter } from './shard-store.js';

const MAX_PLAIN_NAME_CHARS = 180;
const TEMP_PREFIX = '.tmp-';

export function validateObjectId(objectId: unknown): string {
  if (typeof objectId !== 'string' || objectId.length === 0 || objectId.length > 1024) {
    throw new TypeError('objectId must be a string of 1 to 1024 characters');
  }
  return objectId;
}

/** File name of a shard: the object id URI-encoded (no '/' left), hashed when too long for a file name. */
export function shardFileName(objectId: string, shardIndex: number): string {
  const encoded = encodeURIComponent(objectId).replace(/^\./, '%2E');
  const base = encoded.length <= MAX_PLAIN_NAME_CHARS ? encoded : `h-${createHash('sha256').update(objectId).digest('hex')}`;
  return `${base}.${shardIndex}.shard`;
}

export class FsShardStore implements ShardStore {
  readonly dirs: readonly string[];

  constructor(dirs: readonly string[]) {
    if (!Array.isArray(dirs) || dirs.length === 0) throw new TypeError('dirs must be a non-empty array of folder paths');
    for (const dir of dirs) if (typeof dir !== 'string' || dir.length === 0) throw new TypeError('dirs must contain non-empty strings');
    if (dirs.length > 256) throw new RangeError('dirs must have at most 256 folders');
    this.dirs = [...dirs];
  }

  get nodes(): number {
    return this.dirs.length;
  }

  path(objectId: string, shardIndex: number): string {
    return join(this.dirs[shardIndex % this.dirs.length]!, shardFileName(objectId, shardIndex));
  }

  async openWriter(objectId: string, shardIndex: number): Promise<ShardWriter> {
    const dir = this.dirs[shardIndex % this.dirs.length]!;
    const final = this.path(objectId, shardIndex);
    const temp = join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    const handle = await open(temp, 'wx', 0o600);
    return new FsShardWriter(handle, temp, final, dir);
  }

  async openReader(objectId: string, shardIndex: number): Promise<ShardReader | null> {
    let handle: FileHandle;
    try {
      handle = await open(this.path(objectId, shardIndex), 'r');
    } catch {
      return null; // missing file, missing or unreadable folder: a lost shard
    }
    try {
      return new FsShardReader(handle, (await handle.stat()).size);
    } catch {
      await handle.close().catch(() => {});
      return null;
    }
  }

  async overwrite(objectId: string, shardIndex: number, offset: number, bytes: Uint8Array): Promise<void> {
    const handle = await open(this.path(objectId, shardIndex), 'r+');
    try {
      await handle.write(bytes, 0, bytes.length, offset);
      await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  async remove(objectId: string, shardIndex: number): Promise<void> {
    await rm(this.path(objectId, shardIndex), { force: true });
  }

  /**
   * Removes temp files older than `olderThanMs` left by writers that never finished (a crashed process): they are
   * never read, only take space. Returns how many were removed. Run it at start-up or from a periodic job.
   */
  async sweepTempFiles(olderThanMs = 60 * 60_000): Promise<number> {
    let removed = 0;
    const cutoff = Date.now() - olderThanMs;
    for (const dir of new Set(this.dirs)) {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        continue; // a missing node folder has nothing to sweep
      }
      for (const name of names.filter((n) => n.startsWith(TEMP_PREFIX))) {
        const path = join(dir, name);
        try {
          if ((await stat(path)).mtimeMs <= cutoff) {
            await rm(path, { force: true });
            removed++;
          }
        } catch {
          // gone meanwhile (its writer finished or aborted)
        }
      }
    }
    return removed;
  }
}

class FsShardReader implements ShardReader {
  readonly size: number;
  readonly #handle: FileHandle;

  constructor(handle: FileHandle, size: number) {
    this.#handle = handle;
    this.size = size;
  }

  async read(offset: number, target: Uint8Array): Promise<number> {
    let done = 0;
    while (done < target.length) {
      const { bytesRead } = await this.#handle.read(target, done, target.length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }
}

class FsShardWriter implements ShardWriter {
  readonly #handle: FileHandle;
  readonly #temp: string;
  readonly #final: string;
  readonly #dir: string;
  #closed = false;

  constructor(handle: FileHandle, temp: string, final: string, dir: string) {
    this.#handle = handle;
    this.#temp = temp;
    this.#final = final;
    this.#dir = dir;
  }

  async write(bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.#handle.write(bytes, done, bytes.length - done);
      done += bytesWritten;
    }
  }

  async flush(): Promise<void> {
    await this.#handle.datasync();
  }

  async commit(): Promise<void> {
    await this.#close();
    await rename(this.#temp, this.#final);
    await syncDir(this.#dir);
  }

  async abort(): Promise<void> {
    await this.#close().catch(() => {});
    await rm(this.#temp, { force: true }).catch(() => {});
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#handle.close();
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
