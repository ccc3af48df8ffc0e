// Bucket registrations (Key Protect's model): which buckets a root key protects, kept next to the key in the token
// so every process sees them, and so destroy can refuse while any remain.
//
// One token record per registration (token-records.ts, kind "registration": a private data object, or a tiny key
// object on tokens that refuse data objects, such as NSS), authenticated by the in-token record MAC: record key id
// = the root key's, name = the bucket, value = JSON { v: 2, store, createdAt, gen }. A record whose MAC fails is not
// ours and is ignored, like every token record. Immutable: added at bucket creation, removed at bucket deletion.
//
// Registrations written before (v1: a CKO_DATA object, CKA_APPLICATION "hsm-crypto-engine/registration", CKA_VALUE
// JSON MACed by record-mac.ts) are still read, counted and removed, never written; a v1 one whose MAC fails is a
// BucketRecordError, as it always was.
import { createHash } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { BucketRecordError } from '../errors.js';
import { destroyObject, findObjects, readAttributes } from './find.js';
import type { Pkcs11 } from './module.js';
import type { RecordMac, RecordMacValue } from './record-mac.js';
import { idToBytes } from './root-key-store.js';
import type { SessionPool } from './session-pool.js';
import type { TokenRecord, TokenRecords } from './token-records.js';

const KIND = 'registration';
const V1_APPLICATION = 'hsm-crypto-engine/registration';
const V1_LABEL_PREFIX = 'hce-reg/';
const V1_MAC_DOMAIN = 'hce/registration/v1';
/** Longer store ids (many long folder paths) are kept as a prefix and a hash: a token record holds 1 KiB. */
const MAX_STORE_CHARS = 640;

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

type Match = Pick<RegistrationRecord, 'bucket' | 'store' | 'gen'>;

/** The store id as recorded (and compared): itself, or for a very long one a prefix and a hash of the whole. */
export function recordedStoreId(store: string): string {
  if (store.length <= MAX_STORE_CHARS) return store;
  return `${store.slice(0, MAX_STORE_CHARS - 48)}…#sha256:${createHash('sha256').update(store).digest('hex').slice(0, 40)}`;
}

interface Found {
  record: RegistrationRecord | undefined;
  remove: () => Promise<void>;
}

export class Registrations {
  readonly #module: Pkcs11;
  readonly #sessions: SessionPool;
  readonly #records: TokenRecords;
  readonly #v1Mac: RecordMac;
  readonly #dataObjects: boolean;

  constructor(module: Pkcs11, sessions: SessionPool, records: TokenRecords, v1Mac: RecordMac, dataObjects: boolean) {
    this.#module = module;
    this.#sessions = sessions;
    this.#records = records;
    this.#v1Mac = v1Mac;
    this.#dataObjects = dataObjects;
  }

  async add(record: RegistrationRecord): Promise<void> {
    const value = { v: 2, store: recordedStoreId(record.store), createdAt: record.createdAt, gen: record.gen };
    await this.#records.put(KIND, idToBytes(record.keyId), record.bucket, Buffer.from(JSON.stringify(value)));
  }

  /** Every registration of a root key, oldest first; BucketRecordError when a v1 one fails its integrity check. */
  async list(keyId: string): Promise<RegistrationRecord[]> {
    const out: RegistrationRecord[] = [];
    for (const { record } of await this.#find(keyId)) {
      if (!record) throw new BucketRecordError('a bucket registration of this root key fails its integrity check');
      out.push(record);
    }
    return out.sort((a, b) => a.createdAt - b.createdAt || (a.bucket < b.bucket ? -1 : 1));
  }

  /**
   * Removes registrations of a key: those of one bucket creation (`match`), or all (destroy with force).
   * Damaged ones are removed only when removing all.
   */
  async remove(keyId: string, match?: Match): Promise<void> {
    const store = match && recordedStoreId(match.store);
    for (const { record, remove } of await this.#find(keyId)) {
      if (!match || (record && record.bucket === match.bucket && record.store === store && record.gen === match.gen)) await remove();
    }
  }

  async #find(keyId: string): Promise<Found[]> {
    const current = (await this.#records.list(KIND, idToBytes(keyId))).map((r) => ({
      record: parseRecord(keyId, r),
      remove: () => this.#records.remove(r),
    }));
    return [...current, ...(this.#dataObjects ? await this.#findV1(keyId) : [])];
  }

  async #findV1(keyId: string): Promise<Found[]> {
    const raw = await this.#sessions.use((session) =>
      findObjects(this.#module, session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_DATA },
        { type: pkcs11js.CKA_APPLICATION, value: V1_APPLICATION },
        { type: pkcs11js.CKA_LABEL, value: V1_LABEL_PREFIX + keyId.replace(/-/g, '').toLowerCase() },
      ]).map((handle) => ({ handle, value: readAttributes(this.#module, session, handle, [pkcs11js.CKA_VALUE])[0]! })),
    );
    return Promise.all(
      raw.map(async ({ handle, value }) => ({
        record: await this.#verifyV1(keyId, value),
        remove: () => this.#sessions.use((session) => destroyObject(this.#module, session, handle)),
      })),
    );
  }

  async #verifyV1(keyId: string, value: Buffer): Promise<RegistrationRecord | undefined> {
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
    const input = Buffer.from(JSON.stringify([V1_MAC_DOMAIN, keyId, bucket, store, createdAt, gen]));
    return (await this.#v1Mac.verify(input, mac)) ? record : undefined;
  }
}

/** A v2 record's fields (its MAC already verified by token-records); undefined if the value is not one. */
function parseRecord(keyId: string, r: TokenRecord): RegistrationRecord | undefined {
  try {
    const value = JSON.parse(r.value.toString('utf8')) as { v?: unknown; store?: unknown; createdAt?: unknown; gen?: unknown };
    if (value.v !== 2 || typeof value.store !== 'string' || typeof value.createdAt !== 'number' || typeof value.gen !== 'string') return undefined;
    return { keyId, bucket: r.name, store: value.store, createdAt: value.createdAt, gen: value.gen };
  } catch {
    return undefined;
  }
}
