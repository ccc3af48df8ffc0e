// The three ways a DEK is wrapped inside the HSM under one root key version, one pair of functions each: seal (a
// blob laid out by wrapped-key.ts) and open (the plaintext, or DecryptionError for a blob that fails its check).
// Failures of the HSM calls are thrown as pkcs11js raised them (ckr.ts maps them, with the token's profile).
import { createHash, timingSafeEqual } from 'node:crypto';
import { DecryptionError, HsmError } from '../errors.js';
import { fillRandom } from '../random.js';
import type { CallScheduler } from './call-scheduler.js';
import type { WrapMechanismName } from './capabilities.js';
import type { KeyVersion } from './root-key-store.js';
import { aesCbcPad, aesGcm, CBC_IV_BYTES, GCM_IV_BYTES, HMAC_SHA256 } from './templates.js';
import {
  cbcPadLength, COMMON_HEADER_BYTES, encodeCommonHeader, HMAC_BYTES, KWP_DIGEST_BYTES, layoutWrapped, MECHANISM_AES_CBC_HMAC,
  MECHANISM_AES_GCM, MECHANISM_AES_KWP, wrappedGcmAad, wrappedLength, type WrapMechanismByte, type WrappedKeyParts,
} from './wrapped-key.js';

export const MECHANISM_BYTES: Record<WrapMechanismName, WrapMechanismByte> = {
  'AES-GCM': MECHANISM_AES_GCM,
  'AES-KWP': MECHANISM_AES_KWP,
  'AES-CBC-PAD+HMAC-SHA256': MECHANISM_AES_CBC_HMAC,
};

export interface WrapContext {
  calls: CallScheduler;
  /** The CKM that does RFC 5649 on this token (capabilities.ts), for KWP. */
  kwp: number | undefined;
}

/** Wraps `plaintext` (the caller zeroes it) under `version` of the key `keyId`; `aad` is the encoded caller aad. */
export async function seal(ctx: WrapContext, mechanism: WrapMechanismByte, keyId: Buffer, version: KeyVersion, plaintext: Buffer, aad: Buffer): Promise<Buffer> {
  switch (mechanism) {
    case MECHANISM_AES_GCM: {
      const iv = fillRandom(Buffer.allocUnsafe(GCM_IV_BYTES));
      const { blob, gcmAad, sealed } = layoutWrapped(keyId, version.version, iv, aad, plaintext.byteLength);
      await ctx.calls.crypt('C_Encrypt', version.handle, aesGcm(iv, gcmAad), plaintext, sealed);
      return blob;
    }
    case MECHANISM_AES_KWP: {
      const blob = Buffer.alloc(wrappedLength(mechanism, plaintext.length));
      encodeCommonHeader(mechanism, keyId, version.version, blob);
      const input = Buffer.concat([kwpDigest(blob.subarray(0, COMMON_HEADER_BYTES), aad), plaintext]);
      try {
        await ctx.calls.crypt('C_Encrypt', version.handle, { mechanism: ctx.kwp! }, input, blob.subarray(COMMON_HEADER_BYTES));
      } finally {
        input.fill(0);
      }
      return blob;
    }
    case MECHANISM_AES_CBC_HMAC: {
      const macKey = macKeyOf(version);
      const blob = Buffer.alloc(wrappedLength(mechanism, plaintext.length));
      encodeCommonHeader(mechanism, keyId, version.version, blob);
      const iv = fillRandom(blob.subarray(COMMON_HEADER_BYTES, COMMON_HEADER_BYTES + CBC_IV_BYTES));
      const macAt = blob.length - HMAC_BYTES;
      await ctx.calls.crypt('C_Encrypt', version.handle, aesCbcPad(Buffer.from(iv)), plaintext, blob.subarray(COMMON_HEADER_BYTES + CBC_IV_BYTES, macAt));
      await ctx.calls.crypt('C_Sign', macKey, HMAC_SHA256, Buffer.concat([blob.subarray(0, macAt), aad]), blob.subarray(macAt));
      return blob;
    }
  }
}

/** Unwraps a parsed blob under `version`; a failed integrity check of our own is a DecryptionError. */
export async function open(ctx: WrapContext, parts: WrappedKeyParts, version: KeyVersion, aad: Buffer): Promise<Buffer> {
  switch (parts.mechanism) {
    case MECHANISM_AES_GCM:
      return ctx.calls.crypt('C_Decrypt', version.handle, aesGcm(parts.iv, wrappedGcmAad(parts, aad)), parts.sealed, Buffer.alloc(parts.sealed.length));
    case MECHANISM_AES_KWP: {
      if (ctx.kwp === undefined) throw noMechanism('AES-KWP');
      const output = Buffer.alloc(parts.sealed.length);
      const opened = await ctx.calls.crypt('C_Decrypt', version.handle, { mechanism: ctx.kwp }, parts.sealed, output);
      try {
        const digest = kwpDigest(parts.header, aad);
        if (opened.length <= KWP_DIGEST_BYTES || !timingSafeEqual(opened.subarray(0, KWP_DIGEST_BYTES), digest)) throw new DecryptionError();
        return Buffer.from(opened.subarray(KWP_DIGEST_BYTES));
      } finally {
        output.fill(0);
      }
    }
    case MECHANISM_AES_CBC_HMAC: {
      const mac = await ctx.calls.crypt('C_Sign', macKeyOf(version), HMAC_SHA256, Buffer.concat([parts.header, aad]), Buffer.alloc(HMAC_BYTES));
      if (!timingSafeEqual(mac, parts.mac)) throw new DecryptionError();
      const output = Buffer.alloc(parts.sealed.length);
      const opened = await ctx.calls.crypt('C_Decrypt', version.handle, aesCbcPad(parts.iv), parts.sealed, output);
      if (opened.length === 0 || cbcPadLength(opened.length) !== parts.sealed.length) {
        output.fill(0);
        throw new DecryptionError();
      }
      return opened;
    }
  }
}

/** KWP has no AAD: the digest of the header and the caller's aad goes inside the wrapped bytes instead. */
function kwpDigest(header: Buffer, aad: Buffer): Buffer {
  return createHash('sha256').update(header).update(aad).digest();
}

function macKeyOf(version: KeyVersion): Buffer {
  if (!version.macHandle) throw new HsmError('C_SignInit', 'CKR_KEY_HANDLE_INVALID', 'this root key version has no HMAC key (made under another wrap mechanism)');
  return version.macHandle;
}

const noMechanism = (name: string) => new HsmError('C_DecryptInit', 'CKR_MECHANISM_INVALID', `the token does not offer ${name}`);
