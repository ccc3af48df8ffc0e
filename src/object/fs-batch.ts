// FsShardStore's folder reads and small-file opens, batched (native/fs-batch.cc): the calls queued in one turn of
// the event loop go to the addon as one job and come back with one completion, where node:fs makes a thread-pool
// round trip of each (a 4 KiB get made 18). Without the addon (not built, or HSM_FS_NATIVE=0) each call goes
// through node:fs's callback API, with the same results.
import { createRequire } from 'node:module';
import { closeFd, fstatFd, openFd, readdirTyped, readFd } from './fs-calls.js';

/** A file opened by `readHead`: whole when it was no longer than asked, else open for reading through `fd`. */
export type Head = { bytes: Buffer } | { fd: number; size: number };

interface FsAddon {
  batch(kinds: Uint8Array, paths: string[], maxBytes: number, callback: (results: unknown[]) => void): void;
}

const ADDON_PATH = '../../native/build/Release/hsm_fs.node'; // from dist/object/ to the package root
const LIST = 0;
const READ = 1;

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
  maxBytes: number;
  resolve: (result: unknown) => void;
}
let queue: Queued[] = [];

/** Sends what was queued this turn: one job per read size asked (a get asks one), lists with the first. */
function flush(): void {
  const ops = queue;
  queue = [];
  const bySize = new Map<number, Queued[]>();
  for (const op of ops) {
    const size = op.kind === READ ? op.maxBytes : (ops.find((o) => o.kind === READ)?.maxBytes ?? 1);
    bySize.get(size)?.push(op) ?? bySize.set(size, [op]);
  }
  for (const [maxBytes, group] of bySize) {
    const kinds = Uint8Array.from(group, (op) => op.kind);
    addon!.batch(kinds, group.map((op) => op.path), maxBytes, (results) => {
      for (let i = 0; i < group.length; i++) group[i]!.resolve(results[i]);
    });
  }
}

function enqueue(kind: number, path: string, maxBytes: number): Promise<unknown> {
  return new Promise((resolve) => {
    if (queue.length === 0) queueMicrotask(flush);
    queue.push({ kind, path, maxBytes, resolve });
  });
}

function errnoError(code: number, syscall: string): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error(`${syscall} failed: errno ${-code}`);
  err.errno = code;
  err.code = code === -2 ? 'ENOENT' : code === -20 ? 'ENOTDIR' : code === -13 ? 'EACCES' : 'EIO';
  err.syscall = syscall;
  return err;
}

/** A folder's files and folders (folders with a trailing '/'), in no particular order; rejects when unreadable. */
export async function listFolder(dir: string): Promise<string[]> {
  if (!addon) return viaNodeFs.listFolder(dir);
  const result = await enqueue(LIST, dir, 1);
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

/** The same calls through node:fs (no addon); exported for the tests that hold both paths to the same results. */
export const viaNodeFs = {
  async listFolder(dir: string): Promise<string[]> {
    const dirents = await readdirTyped(dir);
    return dirents.filter((d) => d.isDirectory() || d.isFile()).map((d) => (d.isDirectory() ? `${d.name}/` : d.name));
  },
  readHead: readHeadFs,
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
