// What a token can do, probed once per process per token when an engine opens: token info, the mechanism list,
// and known-answer checks with throwaway session keys (a mechanism number alone proves nothing: 0x210A is RFC 5649
// on SoftHSM and something else on NSS; p11-kit lists GCM and drops its parameters). From it: the wrap mechanism,
// which v2.40 attributes templates may carry, where key records can live, the OAEP hash for BYOK, and how the
// token says "disabled" and "bad tag" (ckr.ts profiles).
import { createCipheriv, constants as cryptoConstants, publicEncrypt, createPublicKey, randomBytes } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { HsmError } from '../errors.js';
import { ckrOf, ckrProfileFor, isTemplateRefused, isUnsupportedMechanism, toHsmError, type CkrProfile } from './ckr.js';
import type { Pkcs11 } from './module.js';
import {
  aesGcm, CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD, GCM_IV_BYTES, rsaOaep, type OaepHash, type TemplateOptions,
} from './templates.js';

export const WRAP_MECHANISMS = ['AES-GCM', 'AES-KWP', 'AES-CBC-PAD+HMAC-SHA256'] as const;
export type WrapMechanismName = (typeof WRAP_MECHANISMS)[number];

export interface TokenCapabilities {
  library: string;
  manufacturer: string;
  model: string;
  tokenLabel: string;
  /** Cryptoki version the module implements, e.g. 2.40. */
  cryptoki: number;
  profile: CkrProfile;
  /** AES-GCM with v2.40 parameters, checked against node:crypto. */
  gcm: boolean;
  /** The CKM that does RFC 5649 (KWP) through C_Encrypt/C_Decrypt, checked against node:crypto. */
  kwp: number | undefined;
  /** AES-CBC-PAD encrypt/decrypt, HMAC-SHA-256 sign and generic-secret key generation. */
  cbcHmac: boolean;
  /** Token secret keys accept CKA_COPYABLE / CKA_DESTROYABLE (learnt on first key creation when not known). */
  v240Attributes: boolean | undefined;
  /** Token CKO_DATA objects accepted (NSS refuses them): where key records live. */
  dataObjects: boolean;
  oaepHash: OaepHash;
  wrapMechanism: WrapMechanismName;
}

const PROBED = new Map<string, TokenCapabilities>();

/**
 * The token's capabilities (probed on first use in this process; shared by its engines, so what one learns the
 * others know), and the wrap mechanism chosen, or `wanted` when the token offers it.
 */
export function tokenCapabilities(
  module: Pkcs11, slot: Buffer, session: Buffer, library: string, loginKey: string, wanted?: WrapMechanismName,
): { caps: TokenCapabilities; wrapMechanism: WrapMechanismName } {
  let caps = PROBED.get(loginKey);
  if (!caps) {
    const probed = probe(module, slot, session, library);
    caps = { ...probed, wrapMechanism: chooseWrapMechanism(probed) };
    PROBED.set(loginKey, caps);
  }
  return { caps, wrapMechanism: chooseWrapMechanism(caps, wanted) };
}

/**
 * Creates a token key from a template built for what the token accepts. Whether it takes the v2.40 attributes is
 * learnt here on first use: a refusal with them is retried once without, and remembered.
 */
export async function generateTokenKey(
  caps: TokenCapabilities, generate: (options: TemplateOptions) => Promise<Buffer> | Buffer,
): Promise<Buffer> {
  if (caps.v240Attributes !== undefined) return generate({ v240Attributes: caps.v240Attributes });
  try {
    const handle = await generate({ v240Attributes: true });
    caps.v240Attributes = true;
    return handle;
  } catch (err) {
    if (!isTemplateRefused(err)) throw err;
    const handle = await generate({ v240Attributes: false });
    caps.v240Attributes = false;
    return handle;
  }
}

function chooseWrapMechanism(caps: Omit<TokenCapabilities, 'wrapMechanism'>, wanted?: WrapMechanismName): WrapMechanismName {
  const offered: Record<WrapMechanismName, boolean> = { 'AES-GCM': caps.gcm, 'AES-KWP': caps.kwp !== undefined, 'AES-CBC-PAD+HMAC-SHA256': caps.cbcHmac };
  if (wanted !== undefined) {
    if (!offered[wanted]) throw new HsmError('C_GetMechanismInfo', 'CKR_MECHANISM_INVALID', `the token "${caps.tokenLabel}" does not offer ${wanted}`);
    return wanted;
  }
  const best = WRAP_MECHANISMS.find((name) => offered[name]);
  if (!best) {
    throw new HsmError(
      'C_GetMechanismInfo',
      'CKR_MECHANISM_INVALID',
      `the token "${caps.tokenLabel}" offers no way to wrap a DEK: it needs CKM_AES_GCM (v2.40 parameters), ` +
        'CKM_AES_KEY_WRAP_KWP/PAD (RFC 5649) with C_Encrypt, or CKM_AES_CBC_PAD with CKM_SHA256_HMAC and CKM_GENERIC_SECRET_KEY_GEN',
    );
  }
  return best;
}

function probe(module: Pkcs11, slot: Buffer, session: Buffer, library: string): Omit<TokenCapabilities, 'wrapMechanism'> {
  const call = <T>(fn: string, run: () => T): T => {
    try {
      return run();
    } catch (err) {
      throw toHsmError(fn, err);
    }
  };
  const info = call('C_GetTokenInfo', () => module.C_GetTokenInfo(slot));
  const moduleInfo = call('C_GetInfo', () => module.C_GetInfo());
  const mechanisms = new Map<number, number>();
  for (const mech of call('C_GetMechanismList', () => module.C_GetMechanismList(slot))) {
    mechanisms.set(mech, call('C_GetMechanismInfo', () => module.C_GetMechanismInfo(slot, mech)).flags);
  }
  const has = (mech: number, ...flags: number[]) => mechanisms.has(mech) && flags.every((f) => (mechanisms.get(mech)! & f) === f);
  const manufacturer = info.manufacturerID.trim();
  const model = info.model.trim();
  const cryptoki = moduleInfo.cryptokiVersion.major + moduleInfo.cryptokiVersion.minor / 100;
  const { ENCRYPT, DECRYPT, SIGN, GENERATE } = { ENCRYPT: pkcs11js.CKF_ENCRYPT, DECRYPT: pkcs11js.CKF_DECRYPT, SIGN: pkcs11js.CKF_SIGN, GENERATE: pkcs11js.CKF_GENERATE };

  // A session AES key with a known value, for the known-answer checks; destroyed at the end.
  const kat = randomBytes(32);
  const katKey = call('C_CreateObject', () =>
    module.C_CreateObject(session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: true },
      { type: pkcs11js.CKA_VALUE, value: kat },
    ]),
  );
  try {
    const plaintext = randomBytes(32);
    const gcm = has(pkcs11js.CKM_AES_GCM, ENCRYPT, DECRYPT) && gcmMatches(module, session, katKey, kat, plaintext);
    let kwp: number | undefined;
    for (const mech of [CKM_AES_KEY_WRAP_KWP, CKM_AES_KEY_WRAP_PAD]) {
      if (kwp === undefined && has(mech, ENCRYPT, DECRYPT) && kwpMatches(module, session, katKey, kat, plaintext, mech)) kwp = mech;
    }
    const cbcHmac = has(pkcs11js.CKM_AES_CBC_PAD, ENCRYPT, DECRYPT) && has(pkcs11js.CKM_SHA256_HMAC, SIGN) && has(pkcs11js.CKM_GENERIC_SECRET_KEY_GEN, GENERATE);
    const profile = ckrProfileFor(manufacturer, model);
    const caps = {
      library, manufacturer, model, tokenLabel: info.label.trim(), cryptoki, profile,
      gcm, kwp, cbcHmac,
      // Cryptoki before 2.40 has no such attributes; a 2.40 token may still refuse them (NSS): learnt on first use.
      v240Attributes: cryptoki < 2.4 ? false : undefined,
      dataObjects: dataObjectsAccepted(module, session),
      oaepHash: oaepHashOf(module, session, has(pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN, pkcs11js.CKF_GENERATE_KEY_PAIR) && has(pkcs11js.CKM_RSA_PKCS_OAEP), profile),
    };
    return caps;
  } finally {
    try {
      module.C_DestroyObject(session, katKey);
    } catch {
      // A session object: it goes with the session anyway.
    }
  }
}

function gcmMatches(module: Pkcs11, session: Buffer, key: Buffer, kat: Buffer, plaintext: Buffer): boolean {
  const iv = randomBytes(GCM_IV_BYTES);
  const aad = randomBytes(20);
  const cipher = createCipheriv('aes-256-gcm', kat, iv);
  cipher.setAAD(aad);
  const expected = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  try {
    module.C_EncryptInit(session, aesGcm(Buffer.from(iv), aad), key);
    return module.C_Encrypt(session, plaintext, Buffer.alloc(plaintext.length + 16)).equals(expected);
  } catch (err) {
    if (isUnsupportedMechanism(err)) return false;
    throw toHsmError('C_Encrypt', err);
  }
}

function kwpMatches(module: Pkcs11, session: Buffer, key: Buffer, kat: Buffer, plaintext: Buffer, mechanism: number): boolean {
  const cipher = createCipheriv('id-aes256-wrap-pad', kat, Buffer.from('A65959A6', 'hex'));
  const expected = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  try {
    module.C_EncryptInit(session, { mechanism }, key);
    return module.C_Encrypt(session, plaintext, Buffer.alloc(plaintext.length + 16)).equals(expected);
  } catch (err) {
    if (isUnsupportedMechanism(err)) return false;
    throw toHsmError('C_Encrypt', err);
  }
}

/** Whether the token takes a token CKO_DATA object: one is made and destroyed at once. */
function dataObjectsAccepted(module: Pkcs11, session: Buffer): boolean {
  let handle: Buffer;
  try {
    handle = module.C_CreateObject(session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_DATA },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_LABEL, value: 'hce-probe' },
      { type: pkcs11js.CKA_VALUE, value: Buffer.from('probe') },
    ]);
  } catch (err) {
    const ckr = ckrOf(err);
    if (ckr === undefined || ckr === pkcs11js.CKR_DEVICE_ERROR || ckr === pkcs11js.CKR_DEVICE_MEMORY) throw toHsmError('C_CreateObject', err);
    return false;
  }
  try {
    module.C_DestroyObject(session, handle);
  } catch (err) {
    throw toHsmError('C_DestroyObject', err);
  }
  return true;
}

/**
 * The OAEP hash BYOK offers: SHA-256 where the token unwraps with it, else SHA-1 — but SHA-1 only when the token
 * answers that SHA-256 is not supported (SoftHSM 2.6: CKR_ARGUMENTS_BAD); any other failure is an HsmError, and
 * nothing is cached (probe() runs again at the next open).
 */
function oaepHashOf(module: Pkcs11, session: Buffer, rsa: boolean, profile: CkrProfile): OaepHash {
  if (!rsa) return 'sha256';
  let pair: pkcs11js.KeyPair;
  try {
    pair = module.C_GenerateKeyPair(session, { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN }, [
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_MODULUS_BITS, value: 1024 },
      { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
    ], [
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_UNWRAP, value: true },
    ]);
  } catch (err) {
    throw toHsmError('C_GenerateKeyPair', err);
  }
  try {
    const [n, e] = module.C_GetAttributeValue(session, pair.publicKey, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]);
    const pem = createPublicKey({ key: { kty: 'RSA', n: (n!.value as Buffer).toString('base64url'), e: (e!.value as Buffer).toString('base64url') }, format: 'jwk' });
    const probe = publicEncrypt({ key: pem, oaepHash: 'sha256', padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING }, randomBytes(32));
    try {
      const handle = module.C_UnwrapKey(session, rsaOaep('sha256'), pair.privateKey, probe, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
        { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_TOKEN, value: false },
      ]);
      module.C_DestroyObject(session, handle);
      return 'sha256';
    } catch (err) {
      if (isUnsupportedMechanism(err, profile)) return 'sha1';
      throw toHsmError('C_UnwrapKey', err);
    }
  } finally {
    for (const handle of [pair.privateKey, pair.publicKey]) {
      try {
        module.C_DestroyObject(session, handle);
      } catch {
        // Session objects: they go with the session anyway.
      }
    }
  }
}

/** Forgets what was probed (tests). */
export function forgetCapabilities(): void {
  PROBED.clear();
}
