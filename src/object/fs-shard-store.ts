// ShardStore over local folders, one per node. A key's '/'-separated segments are nested folders under the node's
// folder. Writes go to a temp file in the node's folder, are fsynced, then renamed into place and the folder
// fsynced, so a crash never leaves a blob that looks complete. Listing walks the folders in key byte order.
import { randomHex } from '../random.js';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join, normalize, resolve } from 'node:path';
import { StoreError } from '../errors.js';
import { nonNegativeIntegerArg } from '../validate.js';
import {
  keyArg, listArg, nodeArg, openWriterArg, type ListOptions, type OpenReaderOptions, type OpenWriterOptions, type ShardReader, type ShardStore, type ShardWriter,
} from './blob-store.js';
import { append, createFile, listFolderIfAny, publishFile, removeFile, syncFolderNow, writeDurably } from './fs-batch.js';
import { closeFd } from './fs-calls.js';
import { openFsReader } from './fs-shard-reader.js';

const TEMP_PREFIX = '.tmp-';
/** Sorted folder listings kept between list() pages, keyed by path and checked against the folder's mtime. */
const LISTING_CACHE_ENTRIES = 64;
/** Folders with at least this many entries are cached (smaller ones are read again: one readdir, no stat). */
const CACHED_FOLDER_ENTRIES = 64;
/**
 * Writes are gathered up to this many bytes and go out together (with the next large write, in one writev, or at
 * flush/commit): a small shard's header, chunk and trailer are one write call instead of three.
 */
const GATHER_BYTES = 64 * 1024;
/**
 * The gather buffer starts this small (a slice of Node's shared pool) and doubles as needed. A fresh 64 KiB Buffer
 * per writer was external memory, which V8 answers with a full mark-compact every ~16 MiB: every ~20 puts of 1 MiB
 * as 10+4, and each of those dropped the optimized code of the put's closures (measured: 1.5 ms of CPU per put).
 */
const GATHER_START_BYTES = 1024;
export interface FsShardStoreOptions {
  /** Create missing node folders on first write. Default false: a missing folder is a lost node (an unmounted disk). */
  createFolders?: boolean;
}

/** Temp files of writers still open in this process: never swept, whatever the age asked for. */
const liveTempFiles = new Set<string>();

export class FsShardStore implements ShardStore {
  readonly dirs: readonly string[];
  readonly #createFolders: boolean;
  readonly #listings = new Map<string, { mtimeMs: number; entries: string[] }>();

  constructor(dirs: readonly string[], options: FsShardStoreOptions = {}) {
    if (!Array.isArray(dirs) || dirs.length === 0) throw new TypeError('dirs must be a non-empty array of folder paths');
    for (const dir of dirs) if (typeof dir !== 'string' || dir.length === 0) throw new TypeError('dirs must contain non-empty strings');
    if (dirs.length > 256) throw new RangeError('dirs must have at most 256 folders');
    if (options === null || typeof options !== 'object') throw new TypeError('options must be an object');
    if (options.createFolders !== undefined && typeof options.createFolders !== 'boolean') throw new TypeError('options.createFolders must be a boolean');
    this.dirs = [...dirs];
    this.#createFolders = options.createFolders ?? false;
  }

  get nodes(): number {
    return this.dirs.length;
  }

  /** 'fs:' and the node folders (absolute), comma-separated: the same folders give the same id from any process. */
  get id(): string {
    return 'fs:' + this.dirs.map((dir) => resolve(dir)).join(',');
  }

  /** The file a key maps to on a node. */
  path(node: number, key: string): string {
    return join(this.dirs[nodeArg(node, this.nodes)]!, keyArg(key)); // a valid key has no empty, '.' or '..' segment
  }

  /** `options.bytes` is checked and otherwise unused (a file grows as it is written; nothing to preallocate for). */
  async openWriter(node: number, key: string, options?: OpenWriterOptions): Promise<ShardWriter> {
    openWriterArg(options);
    const final = this.path(node, key);
    const dir = this.dirs[node]!;
    if (this.#createFolders) await mkdir(dir, { recursive: true });
    const temp = join(dir, `${TEMP_PREFIX}${randomHex(8)}`);
    let fd: number;
    try {
      fd = await createFile(temp);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new StoreError(node, 'write', `node ${node}: write failed: folder ${dir} does not exist`, { cause: err, reason: 'ENOENT' });
      }
      throw fsError(node, 'write', err);
    }
    liveTempFiles.add(temp);
    return new FsShardWriter(node, fd, temp, final, dir);
  }

  async openReader(node: number, key: string, options?: OpenReaderOptions): Promise<ShardReader | null> {
    const path = this.path(node, key);
    try {
      // A caller that will read all of a small blob gets it with the open, and the file closed at once: a get's
      // header, trailer and chunk reads then cost no call into the thread pool.
      return await openFsReader(path, options?.readAheadBytes);
    } catch {
      return null; // missing file, missing or unreadable folder: a lost shard
    }
  }

  async remove(node: number, key: string): Promise<void> {
    const path = this.path(node, key);
    try {
      // Empty folders left behind go too, up to the node's folder (as the path spells it: normalized).
      await removeFile(path, normalize(this.dirs[node]!).replace(/(.)\/+$/, '$1'));
    } catch (err) {
      throw fsError(node, 'remove', err);
    }
  }

  async list(node: number, options: ListOptions): Promise<string[]> {
    const { prefix, startAfter, limit } = listArg(options);
    nodeArg(node, this.nodes);
    const out: string[] = [];
    // Start at the deepest folder the prefix names whole; its last partial segment filters entries there.
    const cut = prefix.lastIndexOf('/');
    const base = cut < 0 ? '' : prefix.slice(0, cut + 1);
    if (base !== '' && !isValidFolderPrefix(base)) return out;
    const dir = join(this.dirs[node]!, ...base.split('/').filter(Boolean));
    await this.#walk(dir, base, prefix, startAfter, limit, out, prefix.slice(base.length));
    return out;
  }

  /** `partial`: the prefix's last segment, which only entries of this (the top) folder starting with it can match. */
  async #walk(
    dir: string, keyPrefix: string, prefix: string, startAfter: string, limit: number, out: string[], partial = '',
  ): Promise<void> {
    for (const entry of await (partial === '' ? this.#sortedEntries(dir) : this.#matchingEntries(dir, partial))) {
      if (out.length >= limit) return;
      const isDir = entry.endsWith('/');
      const key = keyPrefix + entry;
      // Entries are compared as keys: a folder "a" sorts as "a/", below a file "a0" and above "a-x".
      if (!(key.startsWith(prefix) || prefix.startsWith(key))) continue;
      if (isDir) {
        if (startAfter >= key && !startAfter.startsWith(key)) continue; // every key below it is ≤ startAfter
        await this.#walk(join(dir, entry.slice(0, -1)), key, prefix, startAfter, limit, out);
      } else if (key > startAfter && key.startsWith(prefix)) {
        out.push(key);
      }
    }
  }

  /**
   * The entries starting with `partial` (a name's entries among a bucket's many), in key byte order: the folder is
   * filtered where it is read (only the matches become strings), and neither cached nor stat'ed.
   */
  async #matchingEntries(dir: string, partial: string): Promise<string[]> {
    const cached = this.#listings.get(dir);
    if (cached) return this.#sortedEntries(dir); // a folder being paged through: its cached listing is cheaper
    let names;
    try {
      names = (await listFolderIfAny(dir, partial)) ?? [];
    } catch {
      return [];
    }
    return names.filter((name) => !name.startsWith(TEMP_PREFIX)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** A folder's entries (folders with a trailing '/'), temp files left out, in key byte order. */
  async #sortedEntries(dir: string): Promise<string[]> {
    const cached = this.#listings.get(dir);
    if (cached) {
      try {
        if ((await stat(dir)).mtimeMs === cached.mtimeMs) return cached.entries;
      } catch {
        this.#listings.delete(dir);
        return [];
      }
    }
    let names;
    try {
      names = (await listFolderIfAny(dir)) ?? [];
    } catch {
      return [];
    }
    const entries = names
      .filter((name) => !name.startsWith(TEMP_PREFIX))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    // Large folders (a namespace's names, read page by page) are cached, small ones (an object's generations and
    // shards: what every get lists) cost a readdir and no stat. The mtime is taken after the readdir, and only a
    // folder unchanged for a moment is cached: then it did not change since the readdir either (mtime granularity
    // must not hide an entry added meanwhile).
    if (entries.length >= CACHED_FOLDER_ENTRIES) {
      const mtimeMs = await stat(dir).then((st) => st.mtimeMs, () => undefined);
      if (mtimeMs !== undefined && Date.now() - mtimeMs > 2000) {
        if (this.#listings.size >= LISTING_CACHE_ENTRIES) this.#listings.delete(this.#listings.keys().next().value!);
        this.#listings.set(dir, { mtimeMs, entries });
      } else {
        this.#listings.delete(dir);
      }
    } else if (cached) {
      this.#listings.delete(dir);
    }
    return entries;
  }

  /**
   * Removes temp files older than `olderThanMs` left by writers that never finished (a crashed process): they are
   * never read, only take space. Temp files of this process's open writers are never removed. Returns the count.
   */
  async sweepTempFiles(olderThanMs = 60 * 60_000): Promise<number> {
    nonNegativeIntegerArg(olderThanMs, 'olderThanMs');
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
        if (liveTempFiles.has(path)) continue;
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

function isValidFolderPrefix(base: string): boolean {
  return base.split('/').filter(Boolean).every((s) => s !== '.' && s !== '..' && /^[A-Za-z0-9._~%+=-]+$/.test(s));
}

function fsError(node: number, operation: string, err: unknown): StoreError {
  const e = err as NodeJS.ErrnoException;
  const reason = e?.code ?? 'IO';
  return new StoreError(node, operation, `node ${node}: ${operation} failed: ${reason} (${e?.syscall ?? 'fs'})`, { cause: err, reason });
}

class FsShardWriter implements ShardWriter {
  readonly #node: number;
  readonly #fd: number;
  readonly #temp: string;
  readonly #final: string;
  readonly #root: string;
  #closed = false;
  #done = false;
  /** Bytes written but not yet handed to the file (copies: the caller may reuse its buffer once write resolves). */
  #gathered: Buffer | undefined;
  #gatheredBytes = 0;

  constructor(node: number, fd: number, temp: string, final: string, root: string) {
    this.#node = node;
    this.#fd = fd;
    this.#temp = temp;
    this.#final = final;
    this.#root = root;
  }

  async write(bytes: Uint8Array): Promise<void> {
    this.#checkOpen('write');
    if (bytes.length === 0) return;
    const need = this.#gatheredBytes + bytes.length;
    if (need > GATHER_BYTES) return this.#writeOut(bytes);
    if ((this.#gathered?.length ?? 0) < need) this.#grow(need);
    this.#gathered!.set(bytes, this.#gatheredBytes);
    this.#gatheredBytes = need;
  }

  #grow(need: number): void {
    let size = this.#gathered?.length ?? GATHER_START_BYTES;
    while (size < need) size *= 2;
    const next = Buffer.allocUnsafe(Math.min(size, GATHER_BYTES));
    if (this.#gatheredBytes > 0) next.set(this.#gathered!.subarray(0, this.#gatheredBytes));
    this.#gathered = next;
  }

  /** The gathered bytes as parts of the next write; the buffer goes with them (the file call reads it meanwhile). */
  #takeGathered(): Uint8Array[] {
    const gathered = this.#gathered?.subarray(0, this.#gatheredBytes);
    this.#gathered = undefined;
    this.#gatheredBytes = 0;
    return gathered && gathered.length > 0 ? [gathered] : [];
  }

  /** The gathered bytes, then `more`, to the file in one call. */
  async #writeOut(more?: Uint8Array): Promise<void> {
    const parts = this.#takeGathered();
    if (more) parts.push(more);
    try {
      await append(this.#fd, parts);
    } catch (err) {
      throw fsError(this.#node, 'write', err);
    }
  }

  async flush(): Promise<void> {
    this.#checkOpen('flush');
    try {
      await writeDurably(this.#fd, this.#takeGathered()); // the rest and the fdatasync: one batched call
    } catch (err) {
      throw fsError(this.#node, 'flush', err);
    }
  }

  async writeFinal(parts: readonly Uint8Array[]): Promise<void> {
    this.#checkOpen('flush');
    const all = this.#takeGathered();
    for (const part of parts) if (part.length > 0) all.push(part);
    try {
      await writeDurably(this.#fd, all); // the last bytes and the fdatasync: one batched call
    } catch (err) {
      throw fsError(this.#node, 'flush', err);
    }
  }

  async commit(): Promise<void> {
    try {
      if (this.#closed) throw new Error(`ShardWriter.commit: the writer is ${this.#done ? 'committed' : 'closed'}`);
      if (this.#gatheredBytes > 0) await this.#writeOut(); // committed without a flush: written, not synced
      this.#closed = true; // publishFile closes the descriptor first
      const made = await publishFile(this.#fd, this.#temp, this.#final);
      // The new name, and every folder made for it, must survive a crash: fsync each folder from the new name's
      // parent up to the parent of the first folder made. All at once (one batch of file calls): commit resolves
      // only when every one is done, and until then the shard does not count as published.
      const parent = dirname(this.#final);
      let top = parent;
      for (let i = 0; i < made; i++) top = dirname(top);
      const syncs: Promise<void>[] = [];
      for (let dir = parent; ; dir = dirname(dir)) {
        syncs.push(syncFolder(dir));
        if (dir === top || dir.length <= this.#root.length) break;
      }
      const synced = await Promise.allSettled(syncs);
      const failed = synced.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
      this.#done = true;
      liveTempFiles.delete(this.#temp);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw fsError(this.#node, 'commit', err);
    }
  }

  async abort(): Promise<void> {
    if (this.#done) return;
    await this.#close().catch(() => {});
    await rm(this.#temp, { force: true }).catch(() => {});
    liveTempFiles.delete(this.#temp);
  }

  /** A descriptor number is reused at once: once closed, this writer's number may be another file's. */
  #checkOpen(what: string): void {
    if (this.#closed) throw new Error(`ShardWriter.${what}: the writer is ${this.#done ? 'committed' : 'closed'}`);
  }

  async #close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await closeFd(this.#fd);
  }
}

interface FolderSync {
  tail: Promise<void>;
  /** A sync asked for but not started yet: a caller arriving now is covered by it. */
  queued: Promise<void> | undefined;
}
const folderSyncs = new Map<string, FolderSync>();

/**
 * fsync of a folder shared by concurrent callers (group commit): each caller waits for a sync that starts after it
 * asked, so many puts publishing into one folder (a bucket's listing, a namespace gaining object folders) cost one
 * sync per round instead of one each.
 */
function syncFolder(dir: string): Promise<void> {
  let state = folderSyncs.get(dir);
  if (state?.queued) return state.queued;
  if (!state) folderSyncs.set(dir, (state = { tail: Promise.resolve(), queued: undefined }));
  const s = state;
  const run = s.tail.then(() => {
    s.queued = undefined; // from here on a new caller needs a newer sync
    return syncFolderNow(dir);
  });
  s.queued = run;
  const tail = run.then(() => {}, () => {});
  s.tail = tail;
  void tail.then(() => {
    if (s.tail === tail && !s.queued) folderSyncs.delete(dir);
  });
  return run;
}


