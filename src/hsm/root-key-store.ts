// Root keys as token objects, and their lifecycle (create, versions, disable/enable, destroy).
//
// In the token, a root key with id I (16 random bytes, shown as a UUID) is:
//   - one AES secret-key object per version: CKA_ID = I ‖ version (u32 BE), unique per version because NSS
//     replaces a key whose CKA_ID another key already has (a rotation would destroy version 1);
//     CKA_LABEL = "hce-root/<I hex>/v<version>/<created ms>";
//   - under AES-CBC-PAD+HMAC-SHA256, a generic-secret MAC key per version too: CKA_ID = I ‖ version ‖ "M";
//   - its metadata, {alias, createdAt, imported[, destroyedAt]}, as an authenticated token record (token-records.ts,
//     kind "meta"). Never modified, only replaced; a destroyed key keeps a tombstone so its blobs fail as "destroyed".
// Keys made before per-version ids (CKA_ID = I for every version, metadata as a private data object labelled
// "hce-meta/<I hex>") are still read, rotated and destroyed.
// State lives in the key objects themselves: disabled = CKA_ENCRYPT and CKA_DECRYPT false on every version, so the
// HSM enforces it for every process using the token, and it survives restarts.
import { randomUUID } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { KeyNotFoundError, KeyStateError } from '../errors.js';
import { generateTokenKey, type TokenCapabilities, type WrapMechanismName } from './capabilities.js';
import { toHsmError } from './ckr.js';
import { destroyObject, findObjects, readAttributes } from './find.js';
import type { Pkcs11 } from './module.js';
import type { SessionPool } from './session-pool.js';
import type { TokenRecords } from './token-records.js';
import { AES_KEY_GEN, GENERIC_SECRET_KEY_GEN, hmacKeyTemplate, METADATA_APPLICATION, rootKeyTemplate } from './templates.js';
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
  /** The HMAC-SHA-256 half of the version (AES-CBC-PAD+HMAC), when it has one. */
  macHandle?: Buffer;
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
/** Aliases: what Key Protect allows (2–90 chars, letters, digits, '-', '_', '.', '/'), not a UUID. */
const ALIAS_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]{1,89}$/;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
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

/** The CKA_ID of one version's AES key (`mac`: of its MAC key). */
export function versionId(idBytes: Buffer, version: number, mac = false): Buffer {
  const id = Buffer.alloc(mac ? 21 : 20);
  idBytes.copy(id, 0);
  id.writeUInt32BE(version, 16);
  if (mac) id[20] = 0x4d;
  return id;
}

interface Meta {
  alias: string;
  createdAt: number;
  imported: boolean;
  destroyedAt?: number;
}

/** Token-side operations on root keys. Every call borrows a session from the pool. */
export class RootKeyStore {
  readonly #module: Pkcs11;
  readonly #sessions: SessionPool;
  readonly #caps: TokenCapabilities;
  readonly #records: TokenRecords;
  readonly #macKeys: boolean;

  constructor(module: Pkcs11, sessions: SessionPool, caps: TokenCapabilities, records: TokenRecords, wrapMechanism: WrapMechanismName) {
    this.#module = module;
    this.#sessions = sessions;
    this.#caps = caps;
    this.#records = records;
    this.#macKeys = wrapMechanism === 'AES-CBC-PAD+HMAC-SHA256';
  }

  /** Every key record in the token (tombstones included). */
  loadAll(): Promise<KeyRecord[]> {
    return this.#sessions.use(async (session) => {
      const byId = new Map<string, KeyRecord>();
      for (const { idBytes, meta } of await this.#metas(session)) {
        const id = bytesToId(idBytes);
        if (byId.get(id)?.destroyed) continue;
        byId.set(id, this.#readRecord(session, idBytes, meta));
      }
      return [...byId.values()];
    }, VERIFY_LOGIN);
  }

  /** One key record by id, or undefined when the token has no metadata for it. */
  load(id: string): Promise<KeyRecord | undefined> {
    return this.#sessions.use(async (session) => {
      const idBytes = idToBytes(id);
      // During a destroy the old metadata and its tombstone coexist for a moment: the tombstone wins.
      const metas = (await this.#metas(session, idBytes)).map((m) => m.meta);
      const meta = metas.find((m) => m.destroyedAt !== undefined) ?? metas[0];
      return meta && this.#readRecord(session, idBytes, meta);
    }, VERIFY_LOGIN);
  }

  /** Generates version 1 of a new key inside the token and records its metadata. */
  async create(alias: string): Promise<KeyRecord> {
    const idBytes = idToBytes(randomUUID());
    const createdAt = Date.now();
    await this.#sessions.use(async (session) => {
      await this.#generateVersion(session, idBytes, 1, createdAt);
      await this.#writeMeta(session, idBytes, { alias, createdAt, imported: false });
    });
    return (await this.load(bytesToId(idBytes)))!;
  }

  /** Records metadata for a key whose version 1 was just created by import (see ImportTokens). */
  async recordImported(idBytes: Buffer, alias: string, createdAt: number): Promise<KeyRecord> {
    await this.#sessions.use(async (session) => {
      if (this.#macKeys) await this.#generateMacKey(session, idBytes, 1, createdAt);
      await this.#writeMeta(session, idBytes, { alias, createdAt, imported: true });
    });
    return (await this.load(bytesToId(idBytes)))!;
  }

  /** Adds version newest+1, generated in the token. */
  async rotate(record: KeyRecord): Promise<KeyRecord> {
    await this.#sessions.use((session) => this.#generateVersion(session, record.idBytes, record.newest + 1, Date.now()));
    return (await this.load(record.id))!;
  }

  /** Flips CKA_ENCRYPT/CKA_DECRYPT on every version (newest first when disabling, so new wraps stop first). */
  async setEnabled(record: KeyRecord, enabled: boolean): Promise<KeyRecord> {
    await this.#sessions.use((session) => {
      const fresh = this.#findVersions(session, record.idBytes);
      const versions = [...fresh.values()].sort((a, b) => (enabled ? a.version - b.version : b.version - a.version));
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
    await this.#sessions.use(async (session) => {
      for (const version of this.#findVersions(session, record.idBytes).values()) {
        destroyObject(this.#module, session, version.handle);
        if (version.macHandle) destroyObject(this.#module, session, version.macHandle);
      }
      const old = await this.#records.listIn(session, 'meta', record.idBytes);
      const legacy = this.#legacyMetaHandles(session, record.idBytes);
      await this.#writeMeta(session, record.idBytes, {
        alias: record.alias,
        createdAt: record.createdAt.getTime(),
        imported: record.imported,
        destroyedAt: Date.now(),
      });
      for (const meta of old) this.#records.removeIn(session, meta);
      for (const handle of legacy) destroyObject(this.#module, session, handle);
    });
  }

  async #generateVersion(session: Buffer, idBytes: Buffer, version: number, createdAt: number): Promise<void> {
    await generateTokenKey(this.#caps, async (options) => {
      try {
        return await this.#module.C_GenerateKeyAsync(session, AES_KEY_GEN, rootKeyTemplate(versionId(idBytes, version), versionLabel(idBytes, version, createdAt), options));
      } catch (err) {
        throw toHsmError('C_GenerateKey', err);
      }
    });
    if (this.#macKeys) await this.#generateMacKey(session, idBytes, version, createdAt);
  }

  async #generateMacKey(session: Buffer, idBytes: Buffer, version: number, createdAt: number): Promise<void> {
    await generateTokenKey(this.#caps, (options) => {
      try {
        return this.#module.C_GenerateKey(session, GENERIC_SECRET_KEY_GEN, hmacKeyTemplate(versionId(idBytes, version, true), `hce-mac/${idBytes.toString('hex')}/v${version}/${createdAt}`, options));
      } catch (err) {
        throw toHsmError('C_GenerateKey', err);
      }
    });
  }

  /** Every authentic metadata record (of one key, or of all), legacy data objects included. */
  async #metas(session: Buffer, idBytes?: Buffer): Promise<{ idBytes: Buffer; meta: Meta }[]> {
    const out: { idBytes: Buffer; meta: Meta }[] = [];
    for (const record of await this.#records.listIn(session, 'meta', idBytes)) {
      const meta = parseMeta(record.value);
      if (meta) out.push({ idBytes: record.keyId, meta });
    }
    if (this.#caps.dataObjects) {
      const handles = idBytes
        ? this.#legacyMetaHandles(session, idBytes)
        : findObjects(this.#module, session, [
            { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_DATA },
            { type: pkcs11js.CKA_APPLICATION, value: METADATA_APPLICATION },
          ]);
      for (const handle of handles) {
        const [label, value] = readAttributes(this.#module, session, handle, [pkcs11js.CKA_LABEL, pkcs11js.CKA_VALUE]);
        const text = label!.toString('utf8');
        if (!text.startsWith(LEGACY_META_PREFIX)) continue;
        const legacyId = Buffer.from(text.slice(LEGACY_META_PREFIX.length), 'hex');
        const meta = parseMeta(value!);
        if (legacyId.length === 16 && meta) out.push({ idBytes: legacyId, meta });
      }
    }
    return out;
  }

  #legacyMetaHandles(session: Buffer, idBytes: Buffer): Buffer[] {
    if (!this.#caps.dataObjects) return [];
    return findObjects(this.#module, session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_DATA },
      { type: pkcs11js.CKA_LABEL, value: LEGACY_META_PREFIX + idBytes.toString('hex') },
    ]);
  }

  #readRecord(session: Buffer, idBytes: Buffer, meta: Meta): KeyRecord {
    const versions = meta.destroyedAt === undefined ? this.#findVersions(session, idBytes) : new Map<number, KeyVersion>();
    let newest = 0;
    for (const version of versions.keys()) newest = Math.max(newest, version);
    let enabled = true;
    if (newest > 0) {
      const [encrypt] = readAttributes(this.#module, session, versions.get(newest)!.handle, [pkcs11js.CKA_ENCRYPT]);
      enabled = encrypt![0] === 1;
    }
    return {
      id: bytesToId(idBytes),
      idBytes,
      alias: meta.alias,
      createdAt: new Date(meta.createdAt),
      imported: meta.imported,
      // Metadata with no version left (a destroy cut short) is as destroyed as a tombstone.
      destroyed: meta.destroyedAt !== undefined || versions.size === 0,
      state: enabled ? 'active' : 'disabled',
      versions,
      newest,
      loadedAt: Date.now(),
    };
  }

  /** The versions in the token: legacy ones (shared CKA_ID), then per-version ids 1, 2, … up to the first gap. */
  #findVersions(session: Buffer, idBytes: Buffer): Map<number, KeyVersion> {
    const versions = new Map<number, KeyVersion>();
    const add = (handle: Buffer) => {
      const [label] = readAttributes(this.#module, session, handle, [pkcs11js.CKA_LABEL]);
      const parsed = parseVersionLabel(label!.toString('utf8'));
      if (parsed) versions.set(parsed.version, { version: parsed.version, handle, createdAt: new Date(parsed.createdAt) });
    };
    const secretKey = (id: Buffer) => findObjects(this.#module, session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_ID, value: id },
    ]);
    for (const handle of secretKey(idBytes)) add(handle);
    const legacyNewest = Math.max(0, ...versions.keys());
    for (let version = 1; ; version++) {
      const found = secretKey(versionId(idBytes, version));
      if (found.length === 0 && version > legacyNewest) break;
      for (const handle of found) add(handle);
    }
    if (this.#caps.cbcHmac) {
      for (const version of versions.values()) version.macHandle = secretKey(versionId(idBytes, version.version, true))[0];
    }
    return versions;
  }

  async #writeMeta(session: Buffer, idBytes: Buffer, meta: Meta): Promise<void> {
    await this.#records.putIn(session, 'meta', idBytes, '', Buffer.from(JSON.stringify(meta)));
  }
}

const LEGACY_META_PREFIX = 'hce-meta/';

function parseMeta(value: Buffer): Meta | undefined {
  let meta: { alias?: unknown; createdAt?: unknown; imported?: unknown; destroyedAt?: unknown };
  try {
    meta = JSON.parse(value.toString('utf8'));
  } catch {
    return undefined; // not ours, or damaged: invisible rather than fatal
  }
  if (typeof meta.alias !== 'string' || typeof meta.createdAt !== 'number') return undefined;
  return {
    alias: meta.alias,
    createdAt: meta.createdAt,
    imported: meta.imported === true,
    ...(typeof meta.destroyedAt === 'number' ? { destroyedAt: meta.destroyedAt } : {}),
  };
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
