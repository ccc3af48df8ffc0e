// putObject's source adapter: a Uint8Array, a binary Readable or any (async) iterable of Uint8Array chunks.
import type { ObjectSource } from './options.js';

export async function* chunksOf(source: ObjectSource): AsyncGenerator<Uint8Array> {
  if (source instanceof Uint8Array) {
    yield source;
    return;
  }
  if (source && (typeof (source as any)[Symbol.asyncIterator] === 'function' || typeof (source as any)[Symbol.iterator] === 'function')) {
    for await (const chunk of source as AsyncIterable<unknown>) {
      if (!(chunk instanceof Uint8Array)) throw new TypeError('source must yield Uint8Array chunks (a binary stream)');
      yield chunk;
    }
    return;
  }
  throw new TypeError('source must be a Uint8Array, a Readable or an async iterable of Uint8Array');
}
