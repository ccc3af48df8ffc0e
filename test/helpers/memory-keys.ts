// In-memory test double of the HSM side (DataKeyProvider): root keys with versions, rotation and a disabled
// state, DEKs wrapped with node:crypto AES-256-GCM and the caller's aad bound. Only the HSM is faked here; the
// AEAD code under test is the real one. The HSM-backed provider is tested against a real SoftHSM token elsewhere.
//
// Wrapped DEK (67 + key id bytes): 0x01 ‖ u8 id length ‖ id ‖ u32be version ‖ iv (12) ‖ ciphertext (32) ‖ tag (16).
// GCM AAD = everything before the iv ‖ caller aad (raw bytes as given; a list of strings, as objects as shards
// bind their id, as 0x01 ‖ (u32be length ‖ UTF-8)* — a form raw-byte AADs of the sealed format never take, since
// a canonical context starts with its u32be pair count).
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { DataKeyAad, DataKeyProvider, WrappedKeyInfo } from '../../dist/index.js';
import { DecryptionError, KeyNotFoundError, KeyStateError } from '../../dist/index.js';

interface RootKey {
  versions: Buffer[];
  enabled: boolean;
}

function aadBytes(aad: DataKeyAad): Buffer {
  if (aad instanceof Uint8Array) return Buffer.from(aad);
  const parts = aad.map((item) => {
    const utf8 = Buffer.from(item, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(utf8.length);
    return Buffer.concat([length, utf8]);
  });
  return Buffer.concat([Buffer.of(0x01), ...parts]);
}

export class MemoryKeyProvider implements DataKeyProvider<DataKeyAad> {
  readonly #roots = new Map<string, RootKey>();
  readonly #seed: Buffer | undefined;
  calls = { generateDataKey: 0, unwrap: 0, rewrap: 0 };

  /** With a seed, root key versions are derived from it (two processes with one seed share their keys). */
  constructor(options: { seed?: Uint8Array } = {}) {
    this.#seed = options.seed ? Buffer.from(options.seed) : undefined;
  }

  #material(id: string, version: number): Buffer {
    if (!this.#seed) return randomBytes(32);
    return createHmac('sha256', this.#seed).update(`${id}\0${version}`).digest();
  }

  createKey(id: string): string {
    if (this.#roots.has(id)) throw new KeyStateError('duplicate key id');
    this.#roots.set(id, { versions: [this.#material(id, 1)], enabled: true });
    return id;
  }

  rotate(id: string): number {
    const root = this.#root(id);
    root.versions.push(this.#material(id, root.versions.length + 1));
    return root.versions.length;
  }

  /** Forgets a root key version (what retiring it after a rewrap looks like): DEKs wrapped under it no longer open. */
  retire(id: string, version: number): void {
    const root = this.#root(id);
    root.versions[version - 1] = Buffer.alloc(0);
  }

  disable(id: string): void {
    this.#root(id).enabled = false;
  }

  enable(id: string): void {
    this.#root(id).enabled = true;
  }

  /** Version (1-based) a wrapped DEK was made under. */
  versionOf(wrapped: Uint8Array): number {
    return this.#parse(wrapped).version;
  }

  async generateDataKey(keyId: string, opts: { aad: DataKeyAad }): Promise<{ plaintext: Uint8Array; wrapped: Uint8Array }> {
    this.calls.generateDataKey++;
    const plaintext = randomBytes(32);
    return { plaintext, wrapped: this.#wrap(keyId, plaintext, aadBytes(opts.aad)) };
  }

  async unwrap(wrapped: Uint8Array, opts: { aad: DataKeyAad }): Promise<Uint8Array> {
    this.calls.unwrap++;
    return this.#unwrap(wrapped, aadBytes(opts.aad));
  }

  async rewrap(wrapped: Uint8Array, opts: { aad: DataKeyAad }): Promise<Uint8Array> {
    this.calls.rewrap++;
    const aad = aadBytes(opts.aad);
    const dek = this.#unwrap(wrapped, aad);
    try {
      return this.#wrap(this.#parse(wrapped).id, dek, aad);
    } finally {
      dek.fill(0);
    }
  }

  /** The root key id and version a wrapped DEK names (what putObject and rewrapObject report). */
  describeWrapped(wrapped: Uint8Array): WrappedKeyInfo {
    const { id, version } = this.#parse(wrapped);
    return { keyId: id, keyVersion: version };
  }

  #root(id: string): RootKey {
    const root = this.#roots.get(id);
    if (!root) throw new KeyNotFoundError();
    return root;
  }

  #wrap(id: string, dek: Uint8Array, aad: Uint8Array): Uint8Array {
    const root = this.#root(id);
    if (!root.enabled) throw new KeyStateError('root key is disabled');
    const idBytes = Buffer.from(id, 'utf8');
    const head = Buffer.alloc(6 + idBytes.length);
    head[0] = 1;
    head[1] = idBytes.length;
    idBytes.copy(head, 2);
    head.writeUInt32BE(root.versions.length, 2 + idBytes.length);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', root.versions[root.versions.length - 1], iv);
    cipher.setAAD(Buffer.concat([head, aad]));
    const ct = Buffer.concat([cipher.update(dek), cipher.final()]);
    return Buffer.concat([head, iv, ct, cipher.getAuthTag()]);
  }

  #parse(wrapped: Uint8Array): { id: string; version: number; headLength: number } {
    const w = Buffer.from(wrapped.buffer, wrapped.byteOffset, wrapped.length);
    if (w.length < 2 || w[0] !== 1 || w.length !== 2 + w[1] + 4 + 12 + 32 + 16) throw new DecryptionError();
    const id = w.subarray(2, 2 + w[1]).toString('utf8');
    return { id, version: w.readUInt32BE(2 + w[1]), headLength: 6 + w[1] };
  }

  #unwrap(wrapped: Uint8Array, aad: Uint8Array): Uint8Array {
    const { id, version, headLength } = this.#parse(wrapped);
    const root = this.#root(id);
    if (!root.enabled) throw new KeyStateError('root key is disabled');
    const key = root.versions[version - 1];
    if (!key || key.length === 0) throw new DecryptionError();
    const w = Buffer.from(wrapped.buffer, wrapped.byteOffset, wrapped.length);
    const iv = w.subarray(headLength, headLength + 12);
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(Buffer.concat([w.subarray(0, headLength), aad]));
    decipher.setAuthTag(w.subarray(headLength + 44));
    try {
      return Buffer.concat([decipher.update(w.subarray(headLength + 12, headLength + 44)), decipher.final()]);
    } catch {
      throw new DecryptionError();
    }
  }
}

/**
 * The object layer on a MemoryKeyProvider with one key and a 2-thread worker pool, both closed in `t`'s teardown:
 * the set-up of the tests that exercise objects without an HSM.
 */
export async function memoryObjects(t: { teardown(fn: () => unknown): void }, keyName: string) {
  const { ObjectService } = await import('../../dist/object/object-service.js');
  const { WorkerPool } = await import('../../dist/pool/pool.js');
  const { WORKER_ENTRY } = await import('../../dist/worker-entry.js');
  const keys = new MemoryKeyProvider();
  const keyId = keys.createKey(keyName);
  const pool = new WorkerPool(2, { entry: WORKER_ENTRY });
  const objects = new ObjectService({ keys, pool: () => pool, threads: 2 });
  t.teardown(async () => {
    objects.close();
    await pool.close();
  });
  return { keys, keyId, pool, objects };
}
