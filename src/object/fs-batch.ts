// FsShardStore's small file-system calls, batched (native/fs-batch.cc): folder reads, opens of shards, and a small
// blob's create, write + fdatasync, publish (close, mkdir -p, rename) and folder fsync. The calls queued in one turn
// of the event loop go to the addon as one job and come back with one completion, where node:fs makes a
// thread-pool round trip of each (a 4 KiB get made 18, a put of 6 shards about 60). Without the addon (not built,
// or HSM_FS_NATIVE=0) each call goes through node:fs, with the same results.
import { mkdir, rename, rmdir, unlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { closeFd, fdatasyncFd, fstatFd, fsyncFd, openFd, readdirTyped, readFd, writeAllFd } from './fs-calls.js';

/** A file opened by `readHead`: whole when it was no longer than asked, else open for reading through `fd`. */
export type Head = { bytes: Buffer } | { fd: number; size: number };

interface FsAddon {
  batch(
    kinds: Uint8Array, paths: string[], fds: Int32Array, bytes: (Uint8Array | Uint8Array[] | undefined)[], maxBytes: number,
    callback: (results: unknown[]) => void,
  ): void;
}

const ADDON_PATH = '../../native/build/Release/hsm_fs.node'; // from dist/object/ to the package root
const LIST = 0;
const READ = 1;
const CREATE = 2;
const WRITE = 3;
const PUBLISH = 4;
const SYNC_FOLDER = 5;
const APPEND = 6;
const REMOVE = 7;

function load(): FsAddon | null {
  if (process.env.HSM_FS_NATIVE === '0' || process.platform === 'win32') return null;
  try {
    return createRequire(import.meta.url)(ADDON_PATH) as FsAddon;
  } catch {
    return null;
  }
}
const addon = load();

/** Whether calls are batched natively (for tests and benchmarks). */
export const nativeFsBatch = addon !== null;

interface Queued {
  kind: number;
  path: string;
  fd: number;
  bytes: Uint8Array | Uint8Array[] | undefined;
  maxBytes: number;
  resolve: (result: unknown) => void;
}
let queue: Queued[] = [];

/** Sends what was queued this turn: one job per read size asked (a get asks one), lists with the first. */
function flush(): void {
  const ops = queue;
  queue = [];
  let anySize = 0; // only reads care: the rest join the group of the first read's size
  let oneSize = true;
  for (const op of ops) {
    if (op.kind !== READ) continue;
    if (anySize === 0) anySize = op.maxBytes;
    else if (op.maxBytes !== anySize) oneSize = false;
  }
  if (anySize === 0) anySize = 1;
  if (oneSize) return send(ops, anySize);
  const bySize = new Map<number, Queued[]>();
  for (const op of ops) {
    const size = op.kind === READ ? op.maxBytes : anySize;
    bySize.get(size)?.push(op) ?? bySize.set(size, [op]);
  }
  for (const [maxBytes, group] of bySize) send(group, maxBytes);
}

/** One batch: plain loops (typed-array `from` with a mapper took a tenth of this thread's time in a put). */
function send(group: Queued[], maxBytes: number): void {
  const n = group.length;
  const kinds = new Uint8Array(n);
  const fds = new Int32Array(n);
  const paths = new Array<string>(n);
  const bytes = new Array<Uint8Array | Uint8Array[] | undefined>(n);
  for (let i = 0; i < n; i++) {
    const op = group[i]!;
    kinds[i] = op.kind;
    fds[i] = op.fd;
    paths[i] = op.path;
    bytes[i] = op.bytes;
  }
  addon!.batch(kinds, paths, fds, bytes, maxBytes, (results) => {
    for (let i = 0; i < n; i++) group[i]!.resolve(results[i]);
  });
}

function enqueue(kind: number, path: string, maxBytes = 1, fd = -1, bytes?: Uint8Array | Uint8Array[]): Promise<unknown> {
  return new Promise((resolve) => {
    if (queue.length === 0) queueMicrotask(flush);
    queue.push({ kind, path, fd, bytes, maxBytes, resolve });
  });
}

/** A numeric result, or the errno error it stands for. */
async function numeric(result: Promise<unknown>, syscall: string): Promise<number> {
  const n = (await result) as number;
  if (n < 0) throw errnoError(n, syscall);
  return n;
}

/** Linux errno numbers of the codes callers tell apart (others are reported as EIO, their number in the message). */
const ERRNO_CODES: Record<number, string> = { 2: 'ENOENT', 13: 'EACCES', 17: 'EEXIST', 20: 'ENOTDIR', 21: 'EISDIR', 28: 'ENOSPC', 30: 'EROFS', 39: 'ENOTEMPTY' };

function errnoError(code: number, syscall: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${syscall} failed: errno ${-code}`);
  err.errno = code;
  err.code = ERRNO_CODES[-code] ?? 'EIO';
  err.syscall = syscall;
  return err;
}

/**
 * A folder's files and folders (folders with a trailing '/'), only those whose name starts with `startsWith`, in no
 * particular order; rejects when unreadable.
 */
export async function listFolder(dir: string, startsWith = ''): Promise<string[]> {
  if (!addon) return viaNodeFs.listFolder(dir, startsWith);
  const result = await enqueue(LIST, dir, 1, -1, startsWith === '' ? undefined : Buffer.from(startsWith, 'utf8'));
  if (typeof result === 'number') throw errnoError(result, 'scandir');
  return result as string[];
}

const ENOENT = 2;
const ENOTDIR = 20;

/**
 * As listFolder, but null when the folder does not exist (ENOENT, or a file on the way: ENOTDIR). Every put of a new
 * name lists folders that are not there yet; an Error per node, with its stack, cost more than the listing.
 */
export async function listFolderIfAny(dir: string, startsWith = ''): Promise<string[] | null> {
  if (!addon) {
    return viaNodeFs.listFolder(dir, startsWith).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return null;
      throw err;
    });
  }
  const result = await enqueue(LIST, dir, 1, -1, startsWith === '' ? undefined : Buffer.from(startsWith, 'utf8'));
  if (result === -ENOENT || result === -ENOTDIR) return null;
  if (typeof result === 'number') throw errnoError(result, 'scandir');
  return result as string[];
}

/** Opens `path` and reads up to `maxBytes` (≥ 1) of it; rejects when it cannot be opened or read. */
export async function readHead(path: string, maxBytes: number): Promise<Head> {
  if (!addon) return viaNodeFs.readHead(path, maxBytes);
  const result = await enqueue(READ, path, maxBytes);
  if (typeof result === 'number') throw errnoError(result, 'open');
  if (Array.isArray(result)) return { fd: result[0] as number, size: result[1] as number };
  return { bytes: result as Buffer };
}

/** A new file (mode 0600; fails when it exists) open for writing: its descriptor. */
export function createFile(path: string): Promise<number> {
  return addon ? numeric(enqueue(CREATE, path), 'open') : viaNodeFs.createFile(path);
}

/** Appends all of `parts`, in order, to the file at `fd` (one writev), then fdatasync. */
export async function writeDurably(fd: number, parts: Uint8Array[]): Promise<void> {
  if (!addon) return viaNodeFs.writeDurably(fd, parts);
  await numeric(enqueue(WRITE, '', 1, fd, parts), 'write');
}

/** Appends all of `parts`, in order, to the file at `fd` (one writev, no sync). */
export async function append(fd: number, parts: Uint8Array[]): Promise<void> {
  if (!addon) return viaNodeFs.append(fd, parts);
  await numeric(enqueue(APPEND, '', 1, fd, parts), 'write');
}

/**
 * Closes `fd` (unless -1), makes the final path's folder (mkdir -p) and renames `temp` to `final`: resolves with the
 * number of folders made. A folder pruned meanwhile by a remove is made again (three times at most).
 */
export async function publishFile(fd: number, temp: string, final: string): Promise<number> {
  if (!addon) return viaNodeFs.publishFile(fd, temp, final);
  return numeric(enqueue(PUBLISH, temp, 1, fd, Buffer.from(final, 'utf8')), 'rename');
}

/**
 * Unlinks `path` (a missing file is no error), then removes the folders it leaves empty up to, not including,
 * `root` (a racing writer re-creates what it needs).
 */
export async function removeFile(path: string, root: string): Promise<void> {
  if (!addon) return viaNodeFs.removeFile(path, root);
  await numeric(enqueue(REMOVE, path, 1, -1, Buffer.from(root, 'utf8')), 'unlink');
}

/** fsync of a folder (a new name in it survives a crash). */
export async function syncFolderNow(dir: string): Promise<void> {
  if (!addon) return viaNodeFs.syncFolderNow(dir);
  await numeric(enqueue(SYNC_FOLDER, dir), 'fsync');
}

/** The same calls through node:fs (no addon); exported for the tests that hold both paths to the same results. */
export const viaNodeFs = {
  async listFolder(dir: string, startsWith = ''): Promise<string[]> {
    const dirents = await readdirTyped(dir);
    return dirents
      .filter((d) => d.name.startsWith(startsWith) && (d.isDirectory() || d.isFile()))
      .map((d) => (d.isDirectory() ? `${d.name}/` : d.name));
  },
  readHead: readHeadFs,
  createFile: (path: string): Promise<number> => openFd(path, 'wx', 0o600),
  append: (fd: number, parts: Uint8Array[]): Promise<void> => writeAllFd(fd, parts),
  async writeDurably(fd: number, parts: Uint8Array[]): Promise<void> {
    await writeAllFd(fd, parts);
    await fdatasyncFd(fd);
  },
  async publishFile(fd: number, temp: string, final: string): Promise<number> {
    if (fd >= 0) await closeFd(fd);
    const parent = dirname(final);
    let made = 0;
    for (let attempt = 0; ; attempt++) {
      const created = await mkdir(parent, { recursive: true });
      if (created !== undefined) for (let dir = parent, top = dirname(created); dir !== top; dir = dirname(dir)) made++;
      try {
        await rename(temp, final);
        return made;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 3) throw err;
      }
    }
  },
  async removeFile(path: string, root: string): Promise<void> {
    try {
      await unlink(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (let dir = dirname(path); dir.length > root.length && dir.startsWith(root); dir = dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        break; // not empty, or gone
      }
    }
  },
  async syncFolderNow(dir: string): Promise<void> {
    const fd = await openFd(dir, 'r');
    try {
      await fsyncFd(fd);
    } finally {
      await closeFd(fd);
    }
  },
};

async function readHeadFs(path: string, maxBytes: number): Promise<Head> {
  const fd = await openFd(path, 'r');
  try {
    const first = Buffer.allocUnsafe(maxBytes);
    const bytesRead = await readFd(fd, first, 0, maxBytes, 0);
    const size = bytesRead < maxBytes ? bytesRead : (await fstatFd(fd)).size;
    if (size === bytesRead) {
      await closeFd(fd);
      return { bytes: Buffer.from(first.subarray(0, bytesRead)) };
    }
    return { fd, size };
  } catch (err) {
    await closeFd(fd).catch(() => {});
    throw err;
  }
}
