// Typed mechanism parameters and attribute templates: every object the engine creates in the token is built here.
import pkcs11js from 'pkcs11js';

type Template = pkcs11js.Template;
type Mechanism = pkcs11js.Mechanism;

/** GCM tag length used for every HSM wrap (NIST SP 800-38D §5.2.1.2: 128 bits). */
export const GCM_TAG_BITS = 128;
/** GCM IV length (NIST SP 800-38D §5.2.1.1: 96 bits is the recommended, deterministic-length IV). */
export const GCM_IV_BYTES = 12;
export const ROOT_KEY_BYTES = 32;
export const IMPORT_KEY_MODULUS_BITS = 4096;

/** What the token accepts in templates (capabilities.ts). */
export interface TemplateOptions {
  /** CKA_COPYABLE / CKA_DESTROYABLE (PKCS#11 v2.40): refused by Cryptoki 2.20 tokens and by NSS. */
  v240Attributes: boolean;
}

/** AES-256 root key version: in the token, sensitive, never extractable, only encrypt/decrypt (the DEK wrap). */
export function rootKeyTemplate(id: Buffer, label: string, options: TemplateOptions): Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    { type: pkcs11js.CKA_VALUE_LEN, value: ROOT_KEY_BYTES },
    ...rootKeyPolicy(id, label, options),
  ];
}

/** The attributes every root key version carries, generated or imported. */
export function rootKeyPolicy(id: Buffer, label: string, options: TemplateOptions): Template {
  return [
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    // Modifiable only so disable/enable can flip CKA_ENCRYPT/CKA_DECRYPT; PKCS#11 forbids turning
    // CKA_EXTRACTABLE back on or CKA_SENSITIVE off whatever CKA_MODIFIABLE says.
    { type: pkcs11js.CKA_MODIFIABLE, value: true },
    ...v240(options),
    { type: pkcs11js.CKA_ENCRYPT, value: true },
    { type: pkcs11js.CKA_DECRYPT, value: true },
    { type: pkcs11js.CKA_WRAP, value: false },
    { type: pkcs11js.CKA_UNWRAP, value: false },
    { type: pkcs11js.CKA_SIGN, value: false },
    { type: pkcs11js.CKA_VERIFY, value: false },
    { type: pkcs11js.CKA_DERIVE, value: false },
    { type: pkcs11js.CKA_ID, value: id },
    { type: pkcs11js.CKA_LABEL, value: label },
  ];
}

const v240 = (options: TemplateOptions): Template =>
  options.v240Attributes
    ? [
        { type: pkcs11js.CKA_COPYABLE, value: false },
        { type: pkcs11js.CKA_DESTROYABLE, value: true },
      ]
    : [];

/** Template for C_UnwrapKey of imported key material into a root key version (length comes from the material). */
export function importedRootKeyTemplate(id: Buffer, label: string, options: TemplateOptions): Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    ...rootKeyPolicy(id, label, options),
  ];
}

export const HMAC_KEY_BYTES = 32;

/**
 * A generic secret for HMAC-SHA-256 inside the token (sign/verify only, sensitive, never extractable): the MAC
 * half of a root key version under AES-CBC-PAD+HMAC, and the key that authenticates key records.
 */
export function hmacKeyTemplate(id: Buffer, label: string, options: TemplateOptions): Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
    { type: pkcs11js.CKA_VALUE_LEN, value: HMAC_KEY_BYTES },
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    ...v240(options),
    { type: pkcs11js.CKA_SIGN, value: true },
    { type: pkcs11js.CKA_VERIFY, value: true },
    { type: pkcs11js.CKA_ENCRYPT, value: false },
    { type: pkcs11js.CKA_DECRYPT, value: false },
    { type: pkcs11js.CKA_WRAP, value: false },
    { type: pkcs11js.CKA_UNWRAP, value: false },
    { type: pkcs11js.CKA_DERIVE, value: false },
    { type: pkcs11js.CKA_ID, value: id },
    { type: pkcs11js.CKA_LABEL, value: label },
  ];
}

/**
 * A key record where the token takes no data objects (NSS): a token secret key object whose CKA_ID carries the
 * record's bytes. Tiny, sensitive, usable for nothing; found by its label.
 */
export function recordKeyTemplate(label: string, bytes: Buffer, options: TemplateOptions): Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
    { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_GENERIC_SECRET },
    { type: pkcs11js.CKA_VALUE_LEN, value: 16 },
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true },
    { type: pkcs11js.CKA_EXTRACTABLE, value: false },
    ...v240(options),
    { type: pkcs11js.CKA_SIGN, value: false },
    { type: pkcs11js.CKA_VERIFY, value: false },
    { type: pkcs11js.CKA_DERIVE, value: false },
    { type: pkcs11js.CKA_ID, value: bytes },
    { type: pkcs11js.CKA_LABEL, value: label },
  ];
}

/** A key record as a private token data object (where the token takes them). */
export function recordDataTemplate(label: string, bytes: Buffer): Template {
  return [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_DATA },
    { type: pkcs11js.CKA_TOKEN, value: true },
    { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_MODIFIABLE, value: false },
    { type: pkcs11js.CKA_APPLICATION, value: METADATA_APPLICATION },
    { type: pkcs11js.CKA_LABEL, value: label },
    { type: pkcs11js.CKA_VALUE, value: bytes },
  ];
}

export const METADATA_APPLICATION = 'hsm-crypto-engine';

/** RSA-4096 import-token pair: session objects (they live with the engine), private half unwrap-only and non-extractable. */
export function importKeyPairTemplates(): { publicKey: Template; privateKey: Template } {
  return {
    publicKey: [
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_MODULUS_BITS, value: IMPORT_KEY_MODULUS_BITS },
      { type: pkcs11js.CKA_PUBLIC_EXPONENT, value: Buffer.from([0x01, 0x00, 0x01]) },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_WRAP, value: true },
    ],
    privateKey: [
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_UNWRAP, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: false },
      { type: pkcs11js.CKA_SIGN, value: false },
    ],
  };
}

export const AES_KEY_GEN: Mechanism = { mechanism: pkcs11js.CKM_AES_KEY_GEN };
export const GENERIC_SECRET_KEY_GEN: Mechanism = { mechanism: pkcs11js.CKM_GENERIC_SECRET_KEY_GEN };
export const HMAC_SHA256: Mechanism = { mechanism: pkcs11js.CKM_SHA256_HMAC };
/** PKCS#11 v2.40: CKM_AES_KEY_WRAP_PAD (0x210A) and v3.0: CKM_AES_KEY_WRAP_KWP (0x210B); which is RFC 5649 varies. */
export const CKM_AES_KEY_WRAP_PAD = 0x210a;
export const CKM_AES_KEY_WRAP_KWP = 0x210b;
export const CBC_IV_BYTES = 16;

export function aesCbcPad(iv: Buffer): Mechanism {
  return { mechanism: pkcs11js.CKM_AES_CBC_PAD, parameter: iv };
}
export const RSA_KEY_PAIR_GEN: Mechanism = { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN };

/**
 * AES-GCM with the v2.40 parameter struct (ulIvBits set): pkcs11js's CK_PARAMS_AES_GCM leaves ulIvBits
 * uninitialised, which SoftHSM ignores and NSS rejects. pIv points at `iv` itself.
 */
export function aesGcm(iv: Buffer, aad: Buffer): Mechanism {
  return {
    mechanism: pkcs11js.CKM_AES_GCM,
    parameter: { type: pkcs11js.CK_PARAMS_AES_GCM_v240, iv, ivBits: GCM_IV_BYTES * 8, aad, tagBits: GCM_TAG_BITS } as pkcs11js.GcmParams,
  };
}

/** PKCS#11 v2.40 §2.1.8: the OAEP encoding parameter (label) is given explicitly (empty here). */
const CKZ_DATA_SPECIFIED = 1;

export type OaepHash = 'sha256' | 'sha1';
export function rsaOaep(hash: OaepHash): Mechanism {
  return {
    mechanism: pkcs11js.CKM_RSA_PKCS_OAEP,
    parameter: {
      type: pkcs11js.CK_PARAMS_RSA_OAEP,
      hashAlg: hash === 'sha256' ? pkcs11js.CKM_SHA256 : pkcs11js.CKM_SHA_1,
      mgf: hash === 'sha256' ? pkcs11js.CKG_MGF1_SHA256 : pkcs11js.CKG_MGF1_SHA1,
      source: CKZ_DATA_SPECIFIED,
    } as pkcs11js.RsaOAEP,
  };
}
