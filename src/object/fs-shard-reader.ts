// FsShardStore's readers: a blob read through its open file, or (OpenReaderOptions.readAheadBytes) a small blob
// read whole at open with its file closed at once. Opens go through fs-batch.ts (batched with the turn's others).
import type { ShardReader } from './blob-store.js';
import { readHead } from './fs-batch.js';
import { closeFd, readFd } from './fs-calls.js';

/**
 * The most read with the open when the caller asks. Small: it saves thread-pool round trips for small shards (read
 * whole, no fstat), and bytes held from open cost memory (with 1 MiB, 16 concurrent 8 MiB gets held whole shards:
 * peak RSS 421–470 MiB against 367–380).
 */
const MAX_READ_AHEAD_BYTES = 64 * 1024;

/**
 * A reader of `path`: its first `readAheadBytes` (at most MAX_READ_AHEAD_BYTES) read with the open, and the file
 * closed at once when that was all of it; else reads go through the open file (closed by the reader). A first read
 * that comes back short has reached the end (a published blob never changes; were a read ever cut short, the shard
 * would just look truncated, which its size and trailer checks catch): no fstat then. Rejects when the file cannot
 * be opened.
 */
export async function openFsReader(path: string, readAheadBytes = 0): Promise<ShardReader> {
  // Larger than the read-ahead: its first bytes are not kept (holding them for every open shard of concurrent
  // large gets measured 376–407 MiB peak RSS in bench/put-pipeline.mjs against 330–355).
  const head = await readHead(path, Math.max(1, Math.min(readAheadBytes, MAX_READ_AHEAD_BYTES)));
  return 'bytes' in head ? new BufferReader(head.bytes) : new FsShardReader(head.fd, head.size);
}

/** A blob read whole at open. */
class BufferReader implements ShardReader {
  readonly size: number;
  readonly #bytes: Buffer;

  constructor(bytes: Buffer) {
    this.#bytes = bytes;
    this.size = bytes.length;
  }

  async read(offset: number, target: Uint8Array): Promise<number> {
    if (offset >= this.size) return 0;
    return this.#bytes.copy(target, 0, offset, Math.min(this.size, offset + target.length));
  }

  async close(): Promise<void> {}
}

class FsShardReader implements ShardReader {
  readonly size: number;
  readonly #fd: number;
  #closed = false;

  constructor(fd: number, size: number) {
    this.#fd = fd;
    this.size = size;
  }

  async read(offset: number, target: Uint8Array): Promise<number> {
    if (this.#closed) throw new Error('ShardReader.read: the reader is closed');
    let done = 0;
    while (done < target.length) {
      const bytesRead = await readFd(this.#fd, target, done, target.length - done, offset + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  }

  async close(): Promise<void> {
    if (this.#closed) return; // a descriptor number is reused at once: closing it twice could close another file
    this.#closed = true;
    await closeFd(this.#fd);
  }
}
