// ObjectCipher: envelope encryption of whole objects, ranges and streams in the sealed format (README, "Sealed
// format"). A thin public class: options resolved once (options.ts), then each call delegates to its module —
// one-shot.ts (encrypt/decrypt), range.ts, rewrap-header.ts, streams.ts — over a DataKeyProvider and the pool.
import { signalArg } from '../validate.js';
import { canonicalContext } from './context.js';
import { headerLengthFor, payloadLength } from './header.js';
import { decryptObject, encryptObject } from './one-shot.js';
import {
  checkOptionsObject, resolveKeyId, resolveObjectCipherOptions, type CipherSettings, type DecryptOptions, type DecryptRangeOptions,
  type DecryptStreamOptions, type EncryptOptions, type EncryptStreamOptions, type ObjectCipherOptions, type RewrapHeaderOptions,
} from './options.js';
import { decryptRange } from './range.js';
import { rewrapHeader } from './rewrap-header.js';
import { DecryptStream, EncryptStream } from './streams.js';
import { iterateRecycled, OutputRing } from './chunk-iterators.js';

function checkSource(source: unknown): void {
  const s = source as { [Symbol.asyncIterator]?: unknown; [Symbol.iterator]?: unknown } | null;
  if (s === null || typeof s !== 'object' || (typeof s[Symbol.asyncIterator] !== 'function' && typeof s[Symbol.iterator] !== 'function'))
    throw new TypeError('source must be an iterable or async iterable of Uint8Array');
}

export { DEFAULT_BATCH_BYTES, POOL_MIN_BYTES } from './options.js';
export type {
  DecryptOptions, DecryptRangeOptions, DecryptStreamOptions, EncryptOptions, EncryptStreamOptions, ObjectCipherOptions, RewrapHeaderOptions,
} from './options.js';

export class ObjectCipher {
  readonly #settings: CipherSettings;

  constructor(options: ObjectCipherOptions) {
    this.#settings = resolveObjectCipherOptions(options);
  }

  /** Plaintext bytes per segment of objects this cipher seals. */
  get segmentBytes(): number {
    return this.#settings.segmentBytes;
  }

  /** Sealed length of a plaintext of `plaintextBytes` under a wrapped DEK of `wrappedBytes`. */
  sealedLength(plaintextBytes: number, wrappedBytes: number): number {
    return headerLengthFor(wrappedBytes) + payloadLength(plaintextBytes, this.#settings.segmentBytes);
  }

  /** Seals `plaintext` under a fresh DEK wrapped by root key `keyId`. The input is never modified. */
  encrypt(plaintext: Uint8Array, options: EncryptOptions): Promise<Buffer> {
    return encryptObject(this.#settings, plaintext, options);
  }

  /** Opens a sealed object; DecryptionError for anything wrong with it or the context. */
  decrypt(sealed: Uint8Array, options: DecryptOptions = {}): Promise<Buffer> {
    return decryptObject(this.#settings, sealed, options);
  }

  /** Plaintext bytes [offset, offset + length) of a sealed object, opening only the segments that hold them. */
  decryptRange(sealed: Uint8Array, options: DecryptRangeOptions): Promise<Buffer> {
    return decryptRange(this.#settings, sealed, options);
  }

  /** Rewraps the object's DEK under the newest version of its root key; only the wrapped-DEK bytes change. */
  rewrapHeader(sealed: Uint8Array, options: RewrapHeaderOptions = {}): Promise<Buffer> {
    return rewrapHeader(this.#settings, sealed, options);
  }

  /** Transform: plaintext in, sealed object out (header first). Memory stays bounded whatever the size. */
  createEncryptStream(options: EncryptStreamOptions): EncryptStream {
    return this.#encryptStream(options, undefined);
  }

  /**
   * The sealed object of `source`'s bytes, as an async iterable of chunks (header first). Each chunk is valid until
   * the next step of the iteration: its memory is then reused (copy what you keep). The same bytes as
   * createEncryptStream, without a fresh Buffer per batch for V8 to collect (chunk-iterators.ts).
   */
  encryptChunks(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: EncryptStreamOptions): AsyncGenerator<Buffer, void, undefined> {
    checkSource(source);
    const ring = new OutputRing(false);
    return iterateRecycled(this.#encryptStream(options, ring), ring, source);
  }

  /**
   * The plaintext of the sealed object `source` yields, as createDecryptStream gives it (a segment only after its
   * tag verified; DecryptionError for anything wrong, truncation included), in chunks valid until the next step.
   * The reused memory is zeroed when the iteration ends.
   */
  decryptChunks(source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>, options: DecryptStreamOptions = {}): AsyncGenerator<Buffer, void, undefined> {
    checkSource(source);
    const ring = new OutputRing(true);
    return iterateRecycled(this.#decryptStream(options, ring), ring, source);
  }

  /** Transform: sealed object in, plaintext out; emits a segment only after its tag verified. */
  createDecryptStream(options: DecryptStreamOptions = {}): DecryptStream {
    return this.#decryptStream(options, undefined);
  }

  #encryptStream(options: EncryptStreamOptions, ring: OutputRing | undefined): EncryptStream {
    checkOptionsObject(options);
    const keyId = resolveKeyId(options.keyId);
    const context = canonicalContext(options.context);
    signalArg(options.signal);
    return new EncryptStream(this.#settings, keyId, context, options.signal, ring);
  }

  #decryptStream(options: DecryptStreamOptions, ring: OutputRing | undefined): DecryptStream {
    checkOptionsObject(options);
    const context = canonicalContext(options.context);
    signalArg(options.signal);
    return new DecryptStream(this.#settings, context, options.signal, ring);
  }
}
