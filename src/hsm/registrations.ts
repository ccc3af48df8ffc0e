// Bucket registrations (Key Protect's model): which buckets a root key protects, kept next to the key in the token
// so every process sees them, and so destroy can refuse while any remain.
//
// One private token data object per registration: CKA_APPLICATION "hsm-crypto-engine/registration",
// CKA_LABEL "hce-reg/<root key id hex>", CKA_VALUE = JSON { v, keyId, bucket, store, createdAt, gen, mac } where
// `mac` is the in-HSM HMAC (record-mac.ts) over the other fields: a changed byte is a BucketRecordError, never a
// silently different (or missing) registration. Immutable: added at bucket creation, destroyed at bucket deletion.
import pkcs11js from 'pkcs11js';
import { BucketRecordError } from '../errors.js';
import { toHsmError } from './ckr.js';
import type { Pkcs11 } from './module.js';
import type { RecordMac, RecordMacValue } from './record-mac.js';
import type { SessionPool } from './session-pool.js';

const APPLICATION = 'hsm-crypto-engine/registration';
const LABEL_PREFIX = 'hce-reg/';
const MAC_DOMAIN = 'hce/registration/v1';

export interface Registration {
  bucket: string;
  store: string;
  createdAt: Date;
}

/** What is stored: the public fields plus the bucket's generation (tells two creations of one name apart). */
export interface RegistrationRecord {
  keyId: string;
  bucket: string;
  store: string;
  createdAt: number;
  gen: string;
}

const macInput = (r: RegistrationRecord) => Buffer.from(JSON.stringify([MAC_DOMAIN, r.keyId, r.bucket, r.store, r.createdAt, r.gen]));
const labelOf = (keyId: string) => LABEL_PREFIX + keyId.replace(/-/g, '').toLowerCase();

export class Registrations {
  readonly #module: Pkcs11;
  readonly #sessions: SessionPool;
  readonly #mac: RecordMac;

  constructor(module: Pkcs11, sessions: SessionPool, mac: RecordMac) {
    this.#module = module;
    this.#sessions = sessions;
    this.#mac = mac;
  }

  async add(record: RegistrationRecord): Promise<void> {
    const mac = await this.#mac.sign(macInput(record));
    const value = Buffer.from(JSON.stringify({ v: 1, ...record, mac }));
    await this.#sessions.use((session) => {
      try {
        this.#module.C_CreateObject(session, [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_DATA },
          { type: pkcs11js.CKA_TOKEN, value: true },
          { type: pkcs11js.CKA_PRIVATE, value: true },
          { type: pkcs11js.CKA_MODIFIABLE, value: false },
          { type: pkcs11js.CKA_APPLICATION, value: APPLICATION },
          { type: pkcs11js.CKA_LABEL, value: labelOf(record.keyId) },
          { type: pkcs11js.CKA_VALUE, value },
        ]);
      } catch (err) {
        throw toHsmError('C_CreateObject', err);
      }
    });
  }

  /** Every registration of a root key, oldest first; BucketRecordError when one fails its integrity check. */
  async list(keyId: string): Promise<RegistrationRecord[]> {
    const found = await this.#read(keyId);
    const out: RegistrationRecord[] = [];
    for (const { record } of found) {
      if (!record) throw new BucketRecordError('a bucket registration of this root key fails its integrity check');
      out.push(record);
    }
    return out.sort((a, b) => a.createdAt - b.createdAt || (a.bucket < b.bucket ? -1 : 1));
  }

  /**
   * Removes registrations of a key: those of one bucket creation (`match`), or all (destroy with force).
   * Damaged ones are removed only when removing all.
   */
  async remove(keyId: string, match?: Pick<RegistrationRecord, 'bucket' | 'store' | 'gen'>): Promise<void> {
    const found = await this.#read(keyId);
    const doomed = found.filter(({ record }) =>
      match ? record && record.bucket === match.bucket && record.store === match.store && record.gen === match.gen : true,
    );
    if (doomed.length === 0) return;
    await this.#sessions.use((session) => {
      for (const { handle } of doomed) {
        try {
          this.#module.C_DestroyObject(session, handle);
        } catch (err) {
          throw toHsmError('C_DestroyObject', err);
        }
      }
    });
  }

  /** The key's registration objects, each with its record (undefined when it fails verification). */
  async #read(keyId: string): Promise<{ handle: Buffer; record: RegistrationRecord | undefined }[]> {
    const raw = await this.#sessions.use((session) => {
      try {
        this.#module.C_FindObjectsInit(session, [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_DATA },
          { type: pkcs11js.CKA_APPLICATION, value: APPLICATION },
          { type: pkcs11js.CKA_LABEL, value: labelOf(keyId) },
        ]);
        const handles: Buffer[] = [];
        try {
          for (;;) {
            const batch = this.#module.C_FindObjects(session, 256);
            handles.push(...batch);
            if (batch.length < 256) break;
          }
        } finally {
          this.#module.C_FindObjectsFinal(session);
        }
        return handles.map((handle) => ({
          handle,
          value: this.#module.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_VALUE }])[0]!.value as Buffer,
        }));
      } catch (err) {
        throw toHsmError('C_FindObjects', err);
      }
    });
    return Promise.all(raw.map(async ({ handle, value }) => ({ handle, record: await this.#verify(keyId, value) })));
  }

  async #verify(keyId: string, value: Buffer): Promise<RegistrationRecord | undefined> {
    let parsed: Partial<RegistrationRecord> & { v?: unknown; mac?: RecordMacValue };
    try {
      parsed = JSON.parse(value.toString('utf8'));
    } catch {
      return undefined;
    }
    const { v, bucket, store, createdAt, gen, mac } = parsed;
    if (v !== 1 || parsed.keyId !== keyId || typeof bucket !== 'string' || typeof store !== 'string') return undefined;
    if (typeof createdAt !== 'number' || typeof gen !== 'string' || !mac) return undefined;
    const record = { keyId, bucket, store, createdAt, gen };
    return (await this.#mac.verify(macInput(record), mac)) ? record : undefined;
  }
}
