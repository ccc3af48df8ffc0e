// Unwrapped DEKs kept for a bounded time and count, so hot objects don't cost an HSM round trip per read.
// Entries of a root key are dropped (and zeroed) the moment that key is disabled or destroyed in this process;
// `maxAgeMs` bounds how long a change made by another process can go unnoticed.
export interface DataKeyCacheOptions {
  maxAgeMs: number;
  maxEntries: number;
}

interface Entry {
  dek: Buffer;
  keyId: string;
  expiresAt: number;
}

export class DataKeyCache {
  readonly #maxAgeMs: number;
  readonly #maxEntries: number;
  readonly #entries = new Map<string, Entry>();

  constructor(options: DataKeyCacheOptions) {
    this.#maxAgeMs = options.maxAgeMs;
    this.#maxEntries = options.maxEntries;
  }

  /** The cache key of (wrapped, encoded aad): both must match for a hit. */
  static keyOf(wrapped: Uint8Array, aad: Buffer): string {
    return `${wrapped.byteLength}:${Buffer.from(wrapped.buffer, wrapped.byteOffset, wrapped.byteLength).toString('latin1')}${aad.toString('latin1')}`;
  }

  /** A copy of the cached DEK (the caller owns and zeroes it), or undefined. */
  get(cacheKey: string): Buffer | undefined {
    const entry = this.#entries.get(cacheKey);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      this.#delete(cacheKey, entry);
      return undefined;
    }
    return Buffer.from(entry.dek);
  }

  set(cacheKey: string, keyId: string, dek: Uint8Array): void {
    const old = this.#entries.get(cacheKey);
    if (old) this.#delete(cacheKey, old);
    while (this.#entries.size >= this.#maxEntries) {
      const [oldestKey, oldest] = this.#entries.entries().next().value as [string, Entry];
      this.#delete(oldestKey, oldest);
    }
    // Own memory, not a slice of Buffer's shared pool, so zeroing it wipes exactly this DEK.
    const copy = Buffer.allocUnsafeSlow(dek.byteLength);
    copy.set(dek);
    this.#entries.set(cacheKey, { dek: copy, keyId, expiresAt: Date.now() + this.#maxAgeMs });
  }

  /** Drops every entry of one root key. */
  dropKey(keyId: string): void {
    for (const [cacheKey, entry] of this.#entries) if (entry.keyId === keyId) this.#delete(cacheKey, entry);
  }

  clear(): void {
    for (const [cacheKey, entry] of this.#entries) this.#delete(cacheKey, entry);
  }

  get size(): number {
    return this.#entries.size;
  }

  #delete(cacheKey: string, entry: Entry): void {
    entry.dek.fill(0);
    this.#entries.delete(cacheKey);
  }
}
