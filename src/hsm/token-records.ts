// Small records next to a key, stored in the token in a form every token accepts, and tamper-evident: a private
// token data object where the token takes them, else (NSS refuses every token CKO_DATA) a tiny sensitive
// generic-secret key object whose CKA_ID carries the record. Each record is authenticated by HMAC-SHA-256 under a
// token key that never leaves the token ("hce-record-mac"); a record whose MAC does not verify is not ours and is
// ignored. Root key metadata lives here (kind "meta"); bucket registrations can move here too (kind of their own).
//
// Record bytes: "HR" ‖ 1 ‖ record id (16) ‖ key id (16) ‖ name length (1) ‖ name ‖ value length (2, BE) ‖ value
// ‖ MAC (32) over the object's label ‖ 0x00 ‖ every byte before the MAC. Records are never modified: put + remove.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { generateTokenKey, type TokenCapabilities } from './capabilities.js';
import { toHsmError } from './ckr.js';
import { destroyObject, findObjects, readAttributes } from './find.js';
import type { Pkcs11 } from './module.js';
import type { SessionPool } from './session-pool.js';
import { GENERIC_SECRET_KEY_GEN, HMAC_SHA256, hmacKeyTemplate, recordDataTemplate, recordKeyTemplate } from './templates.js';

export interface TokenRecord {
  recordId: Buffer;
  keyId: Buffer;
  name: string;
  value: Buffer;
  /** The token object holding it (for remove). */
  handle: Buffer;
}

const MAGIC = Buffer.from('HR\x01', 'latin1');
const MAC_BYTES = 32;
const MAC_KEY_LABEL = 'hce-record-mac';
const KIND_PATTERN = /^[a-z0-9-]{1,32}$/;
export const MAX_RECORD_VALUE_BYTES = 1024;

const labelOf = (kind: string) => `hce-rec/${kind}`;

export class TokenRecords {
  readonly #module: Pkcs11;
  readonly #sessions: SessionPool;
  readonly #caps: TokenCapabilities;

  constructor(module: Pkcs11, sessions: SessionPool, caps: TokenCapabilities) {
    this.#module = module;
    this.#sessions = sessions;
    this.#caps = caps;
  }

  // ---- the small API (each call borrows a session) ---------------------------------------------------------

  /** Stores one record of `kind` next to the key `keyId` (16 bytes). */
  put(kind: string, keyId: Buffer, name: string, value: Buffer): Promise<void> {
    return this.#sessions.use((session) => this.putIn(session, kind, keyId, name, value));
  }

  /** The authentic records of `kind` (of one key, or of all). */
  list(kind: string, keyId?: Buffer): Promise<TokenRecord[]> {
    return this.#sessions.use((session) => this.listIn(session, kind, keyId), { verifyLogin: true });
  }

  remove(record: TokenRecord): Promise<void> {
    return this.#sessions.use((session) => this.removeIn(session, record));
  }

  // ---- the same within a session the caller holds ----------------------------------------------------------

  async putIn(session: Buffer, kind: string, keyId: Buffer, name: string, value: Buffer): Promise<void> {
    if (!KIND_PATTERN.test(kind)) throw new TypeError('record kind must be 1-32 of a-z, 0-9, "-"');
    const nameBytes = Buffer.from(name, 'utf8');
    if (nameBytes.length > 255) throw new RangeError('record name must be at most 255 bytes');
    if (value.length > MAX_RECORD_VALUE_BYTES) throw new RangeError(`record value must be at most ${MAX_RECORD_VALUE_BYTES} bytes`);
    const length = Buffer.alloc(2);
    length.writeUInt16BE(value.length);
    const body = Buffer.concat([MAGIC, randomBytes(16), keyId, Buffer.from([nameBytes.length]), nameBytes, length, value]);
    const label = labelOf(kind);
    const [macKey] = await this.#macKeys(session, true);
    const bytes = Buffer.concat([body, this.#mac(session, macKey!, label, body)]);
    if (this.#caps.dataObjects) {
      try {
        this.#module.C_CreateObject(session, recordDataTemplate(label, bytes));
      } catch (err) {
        throw toHsmError('C_CreateObject', err);
      }
      return;
    }
    await generateTokenKey(this.#caps, (options) => {
      try {
        return this.#module.C_GenerateKey(session, GENERIC_SECRET_KEY_GEN, recordKeyTemplate(label, bytes, options));
      } catch (err) {
        throw toHsmError('C_GenerateKey', err);
      }
    });
  }

  async listIn(session: Buffer, kind: string, keyId?: Buffer): Promise<TokenRecord[]> {
    const label = labelOf(kind);
    const handles = findObjects(this.#module, session, [
      { type: pkcs11js.CKA_CLASS, value: this.#caps.dataObjects ? pkcs11js.CKO_DATA : pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_LABEL, value: label },
    ]);
    if (handles.length === 0) return [];
    const macKeys = await this.#macKeys(session, false);
    const out: TokenRecord[] = [];
    for (const handle of handles) {
      const [bytes] = readAttributes(this.#module, session, handle, [this.#caps.dataObjects ? pkcs11js.CKA_VALUE : pkcs11js.CKA_ID]);
      const record = this.#parse(session, macKeys, label, bytes!, handle);
      if (record && (!keyId || record.keyId.equals(keyId))) out.push(record);
    }
    return out;
  }

  removeIn(session: Buffer, record: TokenRecord): void {
    destroyObject(this.#module, session, record.handle);
  }

  #parse(session: Buffer, macKeys: Buffer[], label: string, bytes: Buffer, handle: Buffer): TokenRecord | undefined {
    if (bytes.length < MAGIC.length + 32 + 1 + 2 + MAC_BYTES || !bytes.subarray(0, 3).equals(MAGIC)) return undefined;
    const nameLength = bytes[35]!;
    const valueAt = 36 + nameLength + 2;
    if (bytes.length < valueAt + MAC_BYTES) return undefined;
    const valueLength = bytes.readUInt16BE(36 + nameLength);
    if (bytes.length !== valueAt + valueLength + MAC_BYTES) return undefined;
    const body = bytes.subarray(0, bytes.length - MAC_BYTES);
    const mac = bytes.subarray(bytes.length - MAC_BYTES);
    if (!macKeys.some((key) => timingSafeEqual(this.#mac(session, key, label, body), mac))) return undefined;
    return {
      recordId: Buffer.from(bytes.subarray(3, 19)),
      keyId: Buffer.from(bytes.subarray(19, 35)),
      name: bytes.toString('utf8', 36, 36 + nameLength),
      value: Buffer.from(bytes.subarray(valueAt, valueAt + valueLength)),
      handle,
    };
  }

  #mac(session: Buffer, key: Buffer, label: string, body: Buffer): Buffer {
    try {
      this.#module.C_SignInit(session, HMAC_SHA256, key);
      return this.#module.C_Sign(session, Buffer.concat([Buffer.from(label, 'utf8'), Buffer.from([0]), body]), Buffer.alloc(MAC_BYTES));
    } catch (err) {
      throw toHsmError('C_Sign', err);
    }
  }

  /**
   * The record MAC keys, the one to sign with first (lowest CKA_ID: two engines that raced to create one agree).
   * Made on first use when `create`.
   */
  async #macKeys(session: Buffer, create: boolean): Promise<Buffer[]> {
    const find = () =>
      findObjects(this.#module, session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_LABEL, value: MAC_KEY_LABEL },
      ]);
    let keys = find();
    if (keys.length === 0 && create) {
      const id = randomBytes(16);
      await generateTokenKey(this.#caps, (options) => {
        try {
          return this.#module.C_GenerateKey(session, GENERIC_SECRET_KEY_GEN, hmacKeyTemplate(id, MAC_KEY_LABEL, options));
        } catch (err) {
          throw toHsmError('C_GenerateKey', err);
        }
      });
      keys = find();
    }
    const ids = keys.map((handle) => readAttributes(this.#module, session, handle, [pkcs11js.CKA_ID])[0]!);
    return keys.map((handle, i) => ({ handle, id: ids[i]! })).sort((a, b) => Buffer.compare(a.id, b.id)).map((k) => k.handle);
  }
}
