// HMAC-SHA256 computed inside the HSM, for records the engine keeps outside its key objects (bucket bindings in the
// store, registrations in the token): a changed byte is detected whatever the state of the root keys involved.
//
// The MAC key is a token object (templates.ts hmacKeyTemplate, made the way the token takes it: capabilities.ts):
// CKK_GENERIC_SECRET, 32 bytes, sensitive, never extractable, sign/verify only, CKA_LABEL "hce-bucket-record-mac",
// CKA_ID 16 random bytes. Created on first need; should two processes race to create it, both keys stay valid (each
// MAC names its key id) and new MACs use the lowest id.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { generateTokenKey, type TokenCapabilities } from './capabilities.js';
import { toHsmError } from './ckr.js';
import type { Pkcs11 } from './module.js';
import type { SessionPool } from './session-pool.js';
import { GENERIC_SECRET_KEY_GEN, HMAC_SHA256, hmacKeyTemplate } from './templates.js';

const MAC_KEY_LABEL = 'hce-bucket-record-mac';
export const RECORD_MAC_BYTES = 32;

export interface RecordMacValue {
  /** The MAC key's CKA_ID, hex. */
  key: string;
  /** HMAC-SHA256, hex. */
  mac: string;
}

export class RecordMac {
  readonly #module: Pkcs11;
  readonly #sessions: SessionPool;
  readonly #caps: TokenCapabilities;
  /** MAC keys by id (hex); the preferred one for new MACs. */
  readonly #handles = new Map<string, Buffer>();
  #preferred: string | undefined;
  #creating: Promise<string> | undefined;

  constructor(module: Pkcs11, sessions: SessionPool, caps: TokenCapabilities) {
    this.#module = module;
    this.#sessions = sessions;
    this.#caps = caps;
  }

  async sign(data: Uint8Array): Promise<RecordMacValue> {
    const key = await this.#preferredKey();
    return { key, mac: (await this.#hmac(this.#handles.get(key)!, data)).toString('hex') };
  }

  /** True when `value` is the MAC of `data` under the key it names (false for an unknown key or a bad MAC). */
  async verify(data: Uint8Array, value: RecordMacValue): Promise<boolean> {
    if (typeof value?.key !== 'string' || typeof value.mac !== 'string' || !/^[0-9a-f]{64}$/.test(value.mac)) return false;
    let handle = this.#handles.get(value.key);
    if (!handle) {
      await this.#loadKeys();
      handle = this.#handles.get(value.key);
      if (!handle) return false;
    }
    return timingSafeEqual(await this.#hmac(handle, data), Buffer.from(value.mac, 'hex'));
  }

  #hmac(handle: Buffer, data: Uint8Array): Promise<Buffer> {
    return this.#sessions.use((session) => {
      try {
        this.#module.C_SignInit(session, HMAC_SHA256, handle);
        return Buffer.from(this.#module.C_Sign(session, Buffer.from(data), Buffer.alloc(RECORD_MAC_BYTES)));
      } catch (err) {
        throw toHsmError('C_Sign', err);
      }
    });
  }

  async #preferredKey(): Promise<string> {
    if (this.#preferred) return this.#preferred;
    await this.#loadKeys();
    if (this.#preferred) return this.#preferred;
    this.#creating ??= this.#create().finally(() => (this.#creating = undefined));
    return this.#creating;
  }

  async #create(): Promise<string> {
    const id = randomBytes(16);
    await this.#sessions.use((session) =>
      generateTokenKey(this.#caps, (options) => {
        try {
          return this.#module.C_GenerateKey(session, GENERIC_SECRET_KEY_GEN, hmacKeyTemplate(id, MAC_KEY_LABEL, options));
        } catch (err) {
          throw toHsmError('C_GenerateKey', err);
        }
      }),
    );
    await this.#loadKeys(); // another process may have created one too: the lowest id wins for both
    return this.#preferred!;
  }

  async #loadKeys(): Promise<void> {
    await this.#sessions.use((session) => {
      try {
        this.#module.C_FindObjectsInit(session, [
          { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
          { type: pkcs11js.CKA_LABEL, value: MAC_KEY_LABEL },
        ]);
        let handles: Buffer[];
        try {
          handles = this.#module.C_FindObjects(session, 64);
        } finally {
          this.#module.C_FindObjectsFinal(session);
        }
        for (const handle of handles) {
          const [attr] = this.#module.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_ID }]);
          this.#handles.set((attr!.value as Buffer).toString('hex'), handle);
        }
      } catch (err) {
        throw toHsmError('C_FindObjects', err);
      }
    });
    this.#preferred = [...this.#handles.keys()].sort()[0];
  }
}
