// Unwrapped DEKs kept for a bounded time, count and size, so hot objects don't cost an HSM round trip per read.
// Entries of a root key are dropped (and zeroed) the moment that key is disabled or destroyed in this process;
// `maxAgeMs` bounds how long a change made by another process can go unnoticed. Every DEK leaving the cache
// (expiry, eviction, replacement, drop, clear) is zeroed by the dispose hook.
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';

export interface DataKeyCacheOptions {
  maxAgeMs: number;
  maxEntries: number;
  /** Bound on what entries hold: DEK bytes plus their 32-byte cache keys. Default 8 MiB. */
  maxBytes: number;
}

interface Entry {
  dek: Buffer;
  keyId: string;
  /** Set (after zeroing) when the entry leaves the cache: a HeldKey over it stops being live. */
  dropped: boolean;
}

/**
 * A cached DEK used in place (no copy) by a caller that keeps it across calls (a bucket key): `key` is the
 * cache's own memory, zeroed when the entry leaves the cache, so check `live()` before each synchronous use and
 * never keep `key` across an await.
 */
export interface HeldKey {
  readonly key: Uint8Array;
  live(): boolean;
  /** Done with it: a key that was not cached (cache off or full) is zeroed; a cached one stays the cache's. */
  release(): void;
}

/** The cache key's size: a SHA-256 digest as a one-byte-per-char string, whatever the AAD's length (up to 64 KiB). */
const CACHE_KEY_BYTES = 32;

export class DataKeyCache {
  readonly #entries: LRUCache<string, Entry>;
  readonly #maxBytes: number;

  /** `onDropped` sees each DEK after it was zeroed (tests check the zeroing; nothing else needs it). */
  constructor(options: DataKeyCacheOptions, onDropped?: (dek: Buffer) => void) {
    this.#maxBytes = options.maxBytes;
    this.#entries = new LRUCache<string, Entry>({
      max: options.maxEntries,
      maxSize: options.maxBytes,
      sizeCalculation: (entry) => entry.dek.byteLength + CACHE_KEY_BYTES,
      ttl: options.maxAgeMs,
      // Expired DEKs are purged (and zeroed) when they expire, not left in memory until the next lookup.
      ttlAutopurge: true,
      dispose: (entry) => {
        entry.dek.fill(0);
        entry.dropped = true;
        onDropped?.(entry.dek);
      },
    });
  }

  /**
   * The cache key of (wrapped, encoded aad): both must match for a hit. The blob's length goes first, so bytes
   * moved from the end of the blob to the start of the aad give another key.
   */
  static keyOf(wrapped: Uint8Array, aad: Buffer): string {
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(wrapped.byteLength);
    return createHash('sha256').update(length).update(wrapped).update(aad).digest().toString('latin1');
  }

  /** A copy of the cached DEK (the caller owns and zeroes it), or undefined. */
  get(cacheKey: string): Buffer | undefined {
    const entry = this.#entries.get(cacheKey);
    return entry ? Buffer.from(entry.dek) : undefined;
  }

  set(cacheKey: string, keyId: string, dek: Uint8Array): void {
    if (dek.byteLength + CACHE_KEY_BYTES > this.#maxBytes) return; // would be refused: never copy it
    // Own memory, not a slice of Buffer's shared pool, so zeroing it wipes exactly this DEK.
    const copy = Buffer.allocUnsafeSlow(dek.byteLength);
    copy.set(dek);
    this.#entries.set(cacheKey, { dek: copy, keyId, dropped: false });
  }

  /** The entry itself, held in place (see HeldKey); undefined when absent. */
  hold(cacheKey: string): HeldKey | undefined {
    const entry = this.#entries.get(cacheKey);
    return entry && heldEntry(entry);
  }

  /** Drops (and zeroes) every entry of one root key. */
  dropKey(keyId: string): void {
    const doomed: string[] = [];
    for (const [cacheKey, entry] of this.#entries.entries()) if (entry.keyId === keyId) doomed.push(cacheKey);
    for (const cacheKey of doomed) this.#entries.delete(cacheKey);
  }

  clear(): void {
    this.#entries.clear();
  }

  get size(): number {
    return this.#entries.size;
  }
}

function heldEntry(entry: Entry): HeldKey {
  return { key: entry.dek, live: () => !entry.dropped, release: () => {} };
}

/** A DEK not kept by any cache, held by one caller until it releases it (then zeroed). */
export function heldOnce(dek: Uint8Array): HeldKey {
  let released = false;
  return {
    key: dek,
    live: () => !released,
    release: () => {
      released = true;
      dek.fill(0);
    },
  };
}
