// Root keys as token objects, and their lifecycle (create, versions, disable/enable, destroy).
//
// In the token, a root key with id I (16 random bytes, shown as a UUID) is:
//   - one AES secret-key object per version: CKA_ID = I, CKA_LABEL = "hce-root/<I hex>/v<version>/<created ms>";
//   - one private data object (CKA_APPLICATION "hsm-crypto-engine"), CKA_LABEL = "hce-meta/<I hex>", whose value is
//     JSON {alias, createdAt, imported[, destroyedAt]}. It is never modified, only replaced (some tokens refuse
//     to modify CKA_VALUE); a destroyed key keeps this record as a tombstone so its blobs fail as "destroyed".
// State lives in the key objects themselves: disabled = CKA_ENCRYPT and CKA_DECRYPT false on every version, so the
// HSM enforces it for every process using the token, and it survives restarts.
import { randomUUID } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { KeyNotFoundError, KeyStateError } from '../errors.js';
import { toHsmError } from './ckr.js';
import type { Pkcs11 } from './module.js';
import type { SessionPool } from './session-pool.js';
import { AES_KEY_GEN, METADATA_APPLICATION, metadataTemplate, rootKeyTemplate } from './templates.js';

export interface RootKeyInfo {
  id: string;
  alias: string;
  version: number;
  state: 'active' | 'disabled';
  createdAt: Date;
  rotatedAt?: Date;
  imported: boolean;
}

export interface KeyVersion {
  version: number;
  handle: Buffer;
  createdAt: Date;
}

/** What this process knows of one root key, as read from the token at `loadedAt`. */
export interface KeyRecord {
  id: string;
  idBytes: Buffer;
  alias: string;
  createdAt: Date;
  imported: boolean;
  destroyed: boolean;
  state: 'active' | 'disabled';
  versions: Map<number, KeyVersion>;
  newest: number;
  loadedAt: number;
}

const ROOT_LABEL_PREFIX = 'hce-root/';
const META_LABEL_PREFIX = 'hce-meta/';
/** Aliases: what Key Protect allows (2–90 chars, letters, digits, '-', '_', '.', '/'), not a UUID. */
const ALIAS_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]{1,89}$/;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const FIND_BATCH = 256;
/** Reads that find objects: a logged-out session finds no private object, which must not read as "no key". */
const VERIFY_LOGIN = { verifyLogin: true };

export const idToBytes = (id: string) => Buffer.from(id.replace(/-/g, ''), 'hex');
export const bytesToId = (bytes: Buffer) => {
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
};
export const isKeyId = (value: string) => UUID_PATTERN.test(value);

export function validateAlias(alias: unknown): string {
  if (typeof alias !== 'string' || !ALIAS_PATTERN.test(alias) || UUID_PATTERN.test(alias)) {
    throw new TypeError(
      'options.alias must be 2-90 characters of letters, digits, ".", "_", "-" or "/", starting with a letter or digit, and not a UUID',
    );
  }
  return alias;
}

export function toInfo(record: KeyRecord): RootKeyInfo {
  const newest = record.versions.get(record.newest);
  const info: RootKeyInfo = {
    id: record.id,
    alias: record.alias,
    version: record.newest,
    state: record.state,
    createdAt: new Date(record.createdAt),
    imported: record.imported,
  };
  if (record.newest > 1 && newest) info.rotatedAt = new Date(newest.createdAt);
  return info;
}

/** Token-side operations on root keys. Every call borrows a session from the pool. */
export class RootKeyStore {
  readonly #module: Pkcs11;
  readonly #sessions: SessionPool;

  constructor(module: Pkcs11, sessions: SessionPool) {
    this.#module = module;
    this.#sessions = sessions;
  }

  /** Every key record in the token (tombstones included). */
  loadAll(): Promise<KeyRecord[]> {
    return this.#sessions.use((session) => {
      const metas = this.#find(session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_DATA },
        { type: pkcs11js.CKA_APPLICATION, value: METADATA_APPLICATION },
      ]);
      const byId = new Map<string, KeyRecord>();
      for (const handle of metas) {
        const record = this.#readRecord(session, handle);
        if (record && !byId.get(record.id)?.destroyed) byId.set(record.id, record);
      }
      return [...byId.values()];
    }, VERIFY_LOGIN);
  }

  /** One key record by id, or undefined when the token has no metadata for it. */
  load(id: string): Promise<KeyRecord | undefined> {
    return this.#sessions.use((session) => {
      // During a destroy the old metadata and its tombstone coexist for a moment: the tombstone wins.
      const records = this.#findMeta(session, idToBytes(id)).map((handle) => this.#readRecord(session, handle));
      return records.find((record) => record?.destroyed) ?? records.find((record) => record);
    }, VERIFY_LOGIN);
  }

  /** Generates version 1 of a new key inside the token and records its metadata. */
  async create(alias: string): Promise<KeyRecord> {
    const idBytes = idToBytes(randomUUID());
    const createdAt = Date.now();
    await this.#sessions.use(async (session) => {
      try {
        await this.#module.C_GenerateKeyAsync(session, AES_KEY_GEN, rootKeyTemplate(idBytes, versionLabel(idBytes, 1, createdAt)));
      } catch (err) {
        throw toHsmError('C_GenerateKey', err);
      }
      this.#writeMeta(session, idBytes, { alias, createdAt, imported: false });
    });
    return (await this.load(bytesToId(idBytes)))!;
  }

  /** Records metadata for a key whose version 1 was just created by import (see ImportTokens). */
  async recordImported(idBytes: Buffer, alias: string, createdAt: number): Promise<KeyRecord> {
    await this.#sessions.use((session) => this.#writeMeta(session, idBytes, { alias, createdAt, imported: true }));
    return (await this.load(bytesToId(idBytes)))!;
  }

  /** Adds version newest+1, generated in the token. */
  async rotate(record: KeyRecord): Promise<KeyRecord> {
    const version = record.newest + 1;
    await this.#sessions.use(async (session) => {
      try {
        await this.#module.C_GenerateKeyAsync(session, AES_KEY_GEN, rootKeyTemplate(record.idBytes, versionLabel(record.idBytes, version, Date.now())));
      } catch (err) {
        throw toHsmError('C_GenerateKey', err);
      }
    });
    return (await this.load(record.id))!;
  }

  /** Flips CKA_ENCRYPT/CKA_DECRYPT on every version (newest first when disabling, so new wraps stop first). */
  async setEnabled(record: KeyRecord, enabled: boolean): Promise<KeyRecord> {
    const versions = [...record.versions.values()].sort((a, b) => (enabled ? a.version - b.version : b.version - a.version));
    await this.#sessions.use((session) => {
      for (const { handle } of versions) {
        try {
          this.#module.C_SetAttributeValue(session, handle, [
            { type: pkcs11js.CKA_ENCRYPT, value: enabled },
            { type: pkcs11js.CKA_DECRYPT, value: enabled },
          ]);
        } catch (err) {
          throw toHsmError('C_SetAttributeValue', err);
        }
      }
    });
    return (await this.load(record.id))!;
  }

  /** Destroys every version in the token, then replaces the metadata with a tombstone. */
  async destroy(record: KeyRecord): Promise<void> {
    await this.#sessions.use((session) => {
      for (const handle of this.#findVersions(session, record.idBytes)) {
        try {
          this.#module.C_DestroyObject(session, handle);
        } catch (err) {
          throw toHsmError('C_DestroyObject', err);
        }
      }
      const metas = this.#findMeta(session, record.idBytes);
      this.#writeMeta(session, record.idBytes, {
        alias: record.alias,
        createdAt: record.createdAt.getTime(),
        imported: record.imported,
        destroyedAt: Date.now(),
      });
      for (const handle of metas) {
        try {
          this.#module.C_DestroyObject(session, handle);
        } catch (err) {
          throw toHsmError('C_DestroyObject', err);
        }
      }
    });
  }

  #readRecord(session: Buffer, metaHandle: Buffer): KeyRecord | undefined {
    let label: string;
    let value: Buffer;
    try {
      const attrs = this.#module.C_GetAttributeValue(session, metaHandle, [{ type: pkcs11js.CKA_LABEL }, { type: pkcs11js.CKA_VALUE }]);
      label = (attrs[0]!.value as Buffer).toString('utf8');
      value = attrs[1]!.value as Buffer;
    } catch (err) {
      throw toHsmError('C_GetAttributeValue', err);
    }
    if (!label.startsWith(META_LABEL_PREFIX)) return undefined;
    const idBytes = Buffer.from(label.slice(META_LABEL_PREFIX.length), 'hex');
    if (idBytes.length !== 16) return undefined;
    let meta: { alias?: unknown; createdAt?: unknown; imported?: unknown; destroyedAt?: unknown };
    try {
      meta = JSON.parse(value.toString('utf8'));
    } catch {
      return undefined; // not ours, or damaged: invisible rather than fatal
    }
    if (typeof meta.alias !== 'string' || typeof meta.createdAt !== 'number') return undefined;
    const versions = new Map<number, KeyVersion>();
    let enabled = true;
    let newest = 0;
    if (meta.destroyedAt === undefined) {
      for (const handle of this.#findVersions(session, idBytes)) {
        let attrs: pkcs11js.Attribute[];
        try {
          attrs = this.#module.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_LABEL }, { type: pkcs11js.CKA_ENCRYPT }]);
        } catch (err) {
          throw toHsmError('C_GetAttributeValue', err);
        }
        const parsed = parseVersionLabel((attrs[0]!.value as Buffer).toString('utf8'));
        if (!parsed) continue;
        versions.set(parsed.version, { version: parsed.version, handle, createdAt: new Date(parsed.createdAt) });
        if (parsed.version > newest) {
          newest = parsed.version;
          enabled = (attrs[1]!.value as Buffer)[0] === 1;
        }
      }
    }
    return {
      id: bytesToId(idBytes),
      idBytes,
      alias: meta.alias,
      createdAt: new Date(meta.createdAt),
      imported: meta.imported === true,
      // Metadata with no version left (a destroy cut short) is as destroyed as a tombstone.
      destroyed: meta.destroyedAt !== undefined || versions.size === 0,
      state: enabled ? 'active' : 'disabled',
      versions,
      newest,
      loadedAt: Date.now(),
    };
  }

  #writeMeta(session: Buffer, idBytes: Buffer, meta: object): void {
    try {
      this.#module.C_CreateObject(session, metadataTemplate(META_LABEL_PREFIX + idBytes.toString('hex'), Buffer.from(JSON.stringify(meta))));
    } catch (err) {
      throw toHsmError('C_CreateObject', err);
    }
  }

  #findMeta(session: Buffer, idBytes: Buffer): Buffer[] {
    return this.#find(session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_DATA },
      { type: pkcs11js.CKA_LABEL, value: META_LABEL_PREFIX + idBytes.toString('hex') },
    ]);
  }

  #findVersions(session: Buffer, idBytes: Buffer): Buffer[] {
    return this.#find(session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_ID, value: idBytes },
    ]);
  }

  #find(session: Buffer, template: pkcs11js.Template): Buffer[] {
    const found: Buffer[] = [];
    try {
      this.#module.C_FindObjectsInit(session, template);
      try {
        for (;;) {
          const batch = this.#module.C_FindObjects(session, FIND_BATCH);
          found.push(...batch);
          if (batch.length < FIND_BATCH) break;
        }
      } finally {
        this.#module.C_FindObjectsFinal(session);
      }
    } catch (err) {
      throw toHsmError('C_FindObjects', err);
    }
    return found;
  }
}

export function versionLabel(idBytes: Buffer, version: number, createdAt: number): string {
  return `${ROOT_LABEL_PREFIX}${idBytes.toString('hex')}/v${version}/${createdAt}`;
}

function parseVersionLabel(label: string): { version: number; createdAt: number } | undefined {
  const match = /^hce-root\/[0-9a-f]{32}\/v(\d+)\/(\d+)$/.exec(label);
  return match ? { version: Number(match[1]), createdAt: Number(match[2]) } : undefined;
}

/** The error for an operation on a key that exists but may not be used. */
export function assertUsable(record: KeyRecord | undefined): KeyRecord {
  if (!record) throw new KeyNotFoundError();
  if (record.destroyed) throw new KeyStateError('root key has been destroyed');
  if (record.state === 'disabled') throw new KeyStateError('root key is disabled');
  return record;
}
