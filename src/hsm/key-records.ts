// What this process knows of root keys: records by id, by alias and by the raw 16-byte id a wrapped blob carries,
// each trusted for `maxAgeMs` after it was read from the token, then used while one background re-read refreshes it.
import { KeyNotFoundError, KeyStateError } from '../errors.js';
import { bytesToId, idToBytes, isKeyId, type KeyRecord, type RootKeyStore } from './root-key-store.js';

export class KeyRecords {
  readonly #store: RootKeyStore;
  readonly #maxAgeMs: number;
  readonly #byId = new Map<string, KeyRecord>();
  /** The same records by raw id (latin1), so the unwrap path does no UUID formatting. */
  readonly #byRawId = new Map<string, KeyRecord>();
  /** Keys ('*' for all) with a background re-read under way. */
  readonly #revalidating = new Set<string>();
  readonly #reloading = new Map<string, { generation: number; promise: Promise<KeyRecord | undefined> }>();
  /** The session pool's generation: a re-read begun before sessions or the login were lost may hold stale handles. */
  readonly #generation: () => number;

  constructor(store: RootKeyStore, maxAgeMs: number, generation: () => number = () => 0) {
    this.#store = store;
    this.#maxAgeMs = maxAgeMs;
    this.#generation = generation;
  }

  /** The live record for an id or alias, re-read first when `fresh`; KeyNotFoundError when unknown or destroyed. */
  async resolve(ref: string, fresh: boolean): Promise<KeyRecord> {
    if (isKeyId(ref)) {
      const id = ref.toLowerCase();
      let record = this.#byId.get(id);
      if (!record || fresh || this.#staleRefusal(record)) record = await this.reload(id);
      else if (this.#isStale(record)) this.#revalidate(() => this.reload(id), id);
      if (!record || record.destroyed) throw new KeyNotFoundError();
      return record;
    }
    let record = this.#byAlias(ref);
    if (!record || fresh || this.#staleRefusal(record)) {
      await this.reloadAll();
      record = this.#byAlias(ref);
    } else if (this.#isStale(record)) this.#revalidate(() => this.reloadAll(), '*');
    if (!record) throw new KeyNotFoundError();
    return record;
  }

  /**
   * The record a wrapped blob names (raw id and version), destroyed ones included; undefined when the token never
   * had it. Re-read at once when the version is unknown here (a rotation by another process).
   */
  async forBlob(rawId: Buffer, version: number): Promise<KeyRecord | undefined> {
    const record = this.#byRawId.get(rawId.toString('latin1'));
    if (!record || !record.versions.has(version) || this.#staleRefusal(record)) return this.reload(record?.id ?? bytesToId(rawId));
    if (this.#isStale(record)) this.#revalidate(() => this.reload(record.id), record.id);
    return record;
  }

  /** Every record not destroyed, read afresh, oldest first. */
  async all(): Promise<KeyRecord[]> {
    await this.reloadAll();
    return [...this.#byId.values()].filter((record) => !record.destroyed).sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  }

  /** KeyStateError when a live key already has `alias` (read afresh). */
  async assertAliasFree(alias: string): Promise<void> {
    await this.reloadAll();
    if (this.#byAlias(alias)) throw new KeyStateError('alias is already in use');
  }

  /**
   * Re-reads one key; forgets it when the token has no metadata for it. Concurrent re-reads of one key share one
   * read, unless it began before the session pool last lost sessions or the login (its handles may be stale).
   */
  reload(id: string): Promise<KeyRecord | undefined> {
    const generation = this.#generation();
    const pending = this.#reloading.get(id);
    if (pending && pending.generation >= generation) return pending.promise;
    const entry = { generation, promise: this.#reload(id) };
    this.#reloading.set(id, entry);
    void entry.promise.then(
      () => this.#reloading.get(id) === entry && this.#reloading.delete(id),
      () => this.#reloading.get(id) === entry && this.#reloading.delete(id),
    );
    return entry.promise;
  }

  async #reload(id: string): Promise<KeyRecord | undefined> {
    const record = await this.#store.load(id);
    if (record) this.remember(record);
    else {
      this.#byId.delete(id);
      this.#byRawId.delete(idToBytes(id).toString('latin1'));
    }
    return record;
  }

  async reloadAll(): Promise<void> {
    const records = await this.#store.loadAll();
    this.#byId.clear();
    this.#byRawId.clear();
    for (const record of records) this.remember(record);
  }

  remember(record: KeyRecord): KeyRecord {
    this.#byId.set(record.id, record);
    this.#byRawId.set(record.idBytes.toString('latin1'), record);
    return record;
  }

  /**
   * A stale record that would refuse the call (disabled): the HSM enforces a disable by itself, but not an enable
   * done elsewhere, so re-read it before refusing.
   */
  #staleRefusal(record: KeyRecord): boolean {
    return record.state === 'disabled' && this.#isStale(record);
  }

  #isStale(record: KeyRecord): boolean {
    return Date.now() - record.loadedAt > this.#maxAgeMs;
  }

  /**
   * Stale metadata is still used (the HSM enforces disable and destroy by itself) while one background re-read
   * per key refreshes it: concurrent callers must not each re-read the token.
   */
  #revalidate(reload: () => Promise<unknown>, key: string): void {
    if (this.#revalidating.has(key)) return;
    this.#revalidating.add(key);
    reload()
      .catch(() => undefined)
      .finally(() => this.#revalidating.delete(key));
  }

  #byAlias(alias: string): KeyRecord | undefined {
    for (const record of this.#byId.values()) if (record.alias === alias && !record.destroyed) return record;
    return undefined;
  }
}
