// Import tokens for bring-your-own-key: an RSA-4096 pair generated in the HSM whose public half the customer
// uses to RSA-OAEP-encrypt key material; C_UnwrapKey turns it straight into a non-extractable root key version,
// so the material never exists in this process. Tokens are session objects of this engine (they vanish with it),
// bounded by time and uses, like Key Protect's.
import { createPublicKey, randomUUID } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { DecryptionError, KeyNotFoundError, KeyStateError } from '../errors.js';
import { positiveIntegerArg, optionsArg } from '../validate.js';
import { generateTokenKey, type TokenCapabilities } from './capabilities.js';
import { CKR, ckrOf, toHsmError, unwrapKeyFailure } from './ckr.js';
import type { Pkcs11 } from './module.js';
import type { SessionPool } from './session-pool.js';
import {
  aesCbcPad, aesGcm, CBC_IV_BYTES, GCM_IV_BYTES, importKeyPairTemplates, importedRootKeyTemplate, RSA_KEY_PAIR_GEN, rsaOaep, type OaepHash,
} from './templates.js';

export interface ImportToken {
  id: string;
  publicKeyPem: string;
  oaepHash: OaepHash;
  expiresAt: Date;
  remainingUses: number;
}

export interface ImportTokenOptions {
  ttlMs?: number;
  maxUses?: number;
}

export const DEFAULT_IMPORT_TOKEN_TTL_MS = 10 * 60_000;
export const DEFAULT_IMPORT_TOKEN_USES = 1;
const AES_KEY_LENGTHS_BYTES = [16, 24, 32];

interface Entry {
  token: ImportToken;
  publicKey: Buffer;
  privateKey: Buffer;
  /** The RSA modulus: a ciphertext that is not a number below it is garbage, whatever the token would answer. */
  modulus: Buffer;
  /** Its HSM objects are gone; the entry stays until expiry so a late use says "used up", not "not found". */
  destroyed: boolean;
}

export function resolveImportTokenOptions(options?: ImportTokenOptions): Required<ImportTokenOptions> {
  const given = optionsArg(options);
  return {
    ttlMs: positiveIntegerArg(given.ttlMs ?? DEFAULT_IMPORT_TOKEN_TTL_MS, 'options.ttlMs'),
    maxUses: positiveIntegerArg(given.maxUses ?? DEFAULT_IMPORT_TOKEN_USES, 'options.maxUses'),
  };
}

export class ImportTokens {
  readonly #module: Pkcs11;
  readonly #sessions: SessionPool;
  readonly #tokens = new Map<string, Entry>();
  readonly #caps: TokenCapabilities;

  constructor(module: Pkcs11, sessions: SessionPool, caps: TokenCapabilities) {
    this.#module = module;
    this.#sessions = sessions;
    this.#caps = caps;
  }

  async create(options: ImportTokenOptions): Promise<ImportToken> {
    const { ttlMs, maxUses } = resolveImportTokenOptions(options);
    const templates = importKeyPairTemplates();
    // Session objects (CKA_TOKEN false): no token object is written, so the (slow) RSA generation shares the
    // module with crypt calls instead of pausing them (module-gate.ts).
    const pair = await this.#sessions.use(
      async (session) => {
        try {
          return await this.#module.C_GenerateKeyPairAsync(session, RSA_KEY_PAIR_GEN, templates.publicKey, templates.privateKey);
        } catch (err) {
          throw toHsmError('C_GenerateKeyPair', err);
        }
      },
      { shared: true },
    );
    const { publicKeyPem, modulusBytes } = await this.#sessions.use((session) => {
      let modulus: pkcs11js.Attribute | undefined;
      let exponent: pkcs11js.Attribute | undefined;
      try {
        [modulus, exponent] = this.#module.C_GetAttributeValue(session, pair.publicKey, [
          { type: pkcs11js.CKA_MODULUS },
          { type: pkcs11js.CKA_PUBLIC_EXPONENT },
        ]);
      } catch (err) {
        throw toHsmError('C_GetAttributeValue', err);
      }
      const jwk = { kty: 'RSA', n: (modulus!.value as Buffer).toString('base64url'), e: (exponent!.value as Buffer).toString('base64url') };
      const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }) as string;
      return { publicKeyPem: pem, modulusBytes: modulus!.value as Buffer };
    });
    const token: ImportToken = {
      id: randomUUID(),
      publicKeyPem,
      oaepHash: this.#caps.oaepHash,
      expiresAt: new Date(Date.now() + ttlMs),
      remainingUses: maxUses,
    };
    this.#prune();
    this.#tokens.set(token.id, { token, publicKey: pair.publicKey, privateKey: pair.privateKey, modulus: modulusBytes, destroyed: false });
    return { ...token };
  }

  /**
   * Unwraps `encryptedKey` inside the HSM into a new root key version with the given id and label.
   * Counts one use of the token whether or not the material turns out valid.
   */
  async unwrapInto(importTokenId: string, encryptedKey: Uint8Array, versionId: Buffer, label: string): Promise<void> {
    const entry = this.#tokens.get(importTokenId);
    if (!entry) throw new KeyNotFoundError('import token not found');
    if (entry.token.expiresAt.getTime() <= Date.now() || entry.token.remainingUses <= 0) {
      this.#destroyObjects(entry);
      throw new KeyStateError('import token has expired or is used up');
    }
    entry.token.remainingUses -= 1;
    const wrapped = Buffer.from(encryptedKey); // our copy: the caller's buffer is not held across the async call
    // Tokens answer a ciphertext of the wrong size or ≥ the modulus in their own ways (NSS: CKR_ARGUMENTS_BAD):
    // it is bad material, so DecryptionError here, before the token is asked.
    if (wrapped.length !== entry.modulus.length || Buffer.compare(wrapped, entry.modulus) >= 0) {
      if (entry.token.remainingUses === 0) this.#destroyObjects(entry);
      throw new DecryptionError();
    }
    try {
      await this.#sessions.use(async (session) => {
        const handle = await generateTokenKey(this.#caps, async (options) => {
          try {
            return await this.#module.C_UnwrapKeyAsync(session, rsaOaep(entry.token.oaepHash), entry.privateKey, wrapped, importedRootKeyTemplate(versionId, label, options));
          } catch (err) {
            throw unwrapKeyFailure(err, this.#caps.profile);
          }
        });
        // AES key material must be 16, 24 or 32 bytes. Tokens that leave CKA_VALUE_LEN unset on unwrapped keys
        // (SoftHSM 2.6 reads 0) are checked by a trial encryption, which a bad key length fails.
        let sized: boolean;
        try {
          sized = this.#hasAesKeyLength(session, handle);
        } catch (err) {
          this.#destroyQuietly(session, handle);
          throw err;
        }
        if (!sized) {
          this.#destroyQuietly(session, handle);
          throw new RangeError('imported key material must be 16, 24 or 32 bytes');
        }
      });
    } finally {
      if (entry.token.remainingUses === 0) this.#destroyObjects(entry);
    }
  }

  /** Whether the unwrapped key has an AES length; a failing HSM call (other than "bad key size") is an HsmError naming it. */
  #hasAesKeyLength(session: Buffer, handle: Buffer): boolean {
    let length: pkcs11js.Attribute | undefined;
    try {
      [length] = this.#module.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_VALUE_LEN }]);
    } catch (err) {
      throw toHsmError('C_GetAttributeValue', err);
    }
    const bytes = Number((length!.value as Buffer).readBigUInt64LE(0));
    if (bytes !== 0) return AES_KEY_LENGTHS_BYTES.includes(bytes);
    const mechanism = this.#caps.gcm ? aesGcm(Buffer.alloc(GCM_IV_BYTES), Buffer.alloc(0)) : aesCbcPad(Buffer.alloc(CBC_IV_BYTES));
    let fn = 'C_EncryptInit';
    try {
      this.#module.C_EncryptInit(session, mechanism, handle);
      fn = 'C_Encrypt';
      this.#module.C_Encrypt(session, Buffer.alloc(16), Buffer.alloc(48));
      return true;
    } catch (err) {
      const ckr = ckrOf(err);
      if (ckr === CKR.KEY_SIZE_RANGE || ckr === CKR.KEY_TYPE_INCONSISTENT) return false;
      // SoftHSM 2.6 answers an AES key of a length OpenSSL has no cipher for with CKR_MECHANISM_INVALID.
      if (this.#caps.profile.name === 'softhsm' && ckr === CKR.MECHANISM_INVALID) return false;
      throw toHsmError(fn, err);
    }
  }

  #destroyQuietly(session: Buffer, handle: Buffer): void {
    try {
      this.#module.C_DestroyObject(session, handle);
    } catch {
      // Best effort: the failure being reported matters more.
    }
  }

  /** Destroys every token's objects (engine close). */
  async close(): Promise<void> {
    for (const entry of this.#tokens.values()) this.#destroyObjects(entry);
    this.#tokens.clear();
  }

  /** Forgets tokens past their expiry. */
  #prune(): void {
    const now = Date.now();
    for (const [id, entry] of this.#tokens) {
      if (entry.token.expiresAt.getTime() <= now) {
        this.#destroyObjects(entry);
        this.#tokens.delete(id);
      }
    }
  }

  #destroyObjects(entry: Entry): void {
    if (entry.destroyed) return;
    entry.destroyed = true;
    void this.#sessions
      .use((session) => {
        for (const handle of [entry.privateKey, entry.publicKey]) {
          try {
            this.#module.C_DestroyObject(session, handle);
          } catch {
            // Session objects also go when their session closes.
          }
        }
      })
      .catch(() => {});
  }

}
