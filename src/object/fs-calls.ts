// node:fs's callback API on plain file descriptors: what FsShardStore's readers use for large shards and what
// fs-batch.ts falls back to without its addon. fs/promises' FileHandle costs about twice the CPU per call (a handle
// object per open, promise plumbing per call): open, read and close of a 4 KiB file on tmpfs, 64 in flight, took
// 38–47 µs of CPU against 22–24 µs here. A descriptor is not closed by the GC: every open has its close on every
// path of the caller.
import fs from 'node:fs';
import { promisify } from 'node:util';

export const openFd: (path: string, flags: string, mode?: number) => Promise<number> = promisify(fs.open);
export const closeFd: (fd: number) => Promise<void> = promisify(fs.close);
export const fdatasyncFd: (fd: number) => Promise<void> = promisify(fs.fdatasync);
export const fsyncFd: (fd: number) => Promise<void> = promisify(fs.fsync);
export const fstatFd: (fd: number) => Promise<fs.Stats> = promisify(fs.fstat);

/** Reads up to `length` bytes at `position` into target[offset…]; resolves with the count (0 at the end). */
export function readFd(fd: number, target: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, target, offset, length, position, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead)));
  });
}

/** Writes every byte of `parts`, in order, at the file's position: one writev, more only when the kernel takes less. */
export async function writeAllFd(fd: number, parts: Uint8Array[]): Promise<void> {
  let rest = parts.filter((p) => p.length > 0);
  while (rest.length > 0) {
    let written = await new Promise<number>((resolve, reject) => {
      fs.writev(fd, rest as NodeJS.ArrayBufferView[], null, (err, n) => (err ? reject(err) : resolve(n)));
    });
    while (rest.length > 0 && written >= rest[0]!.length) written -= rest.shift()!.length;
    if (written > 0) rest[0] = rest[0]!.subarray(written);
  }
}

/** A folder's entries with their types (no stat per entry: the kernel's d_type). */
export function readdirTyped(dir: string): Promise<fs.Dirent[]> {
  return new Promise((resolve, reject) => {
    fs.readdir(dir, { withFileTypes: true }, (err, entries) => (err ? reject(err) : resolve(entries)));
  });
}
