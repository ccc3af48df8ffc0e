// Writes chunks that are valid only until the next step (getObjectChunks) to a file or standard output: each
// write's callback is awaited before the next chunk is asked for, since the chunk's memory is reused then.
// (pipeline() only waits for 'drain', so it could hand back memory a write still reads.)
import type { Writable } from 'node:stream';

export async function writeChunks(chunks: AsyncIterable<Uint8Array>, out: Writable, { end = true } = {}): Promise<void> {
  let failure: Error | undefined;
  const onError = (err: Error) => (failure ??= err);
  out.on('error', onError); // an EPIPE on standard output must not become an uncaught 'error' event
  let finished = false;
  try {
    for await (const chunk of chunks) {
      await new Promise<void>((resolve, reject) => out.write(chunk, (err) => (err ? reject(err) : resolve())));
      if (failure) throw failure;
    }
    if (end) await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    if (failure) throw failure;
    finished = true;
  } finally {
    out.off('error', onError);
    if (!finished && end) out.destroy(); // a failed get or write: close the file (standard output stays open)
  }
}
