// The sealed format's per-object key setup, in one place for the sealed-object cipher (aead/) and objects as
// shards (object/): a new object's header core, payload key and commitment from a fresh DEK; and, to open one,
// the payload key derived from the DEK and checked against the header's key commitment before any segment is read.
import { DecryptionError } from '../errors.js';
import { fillRandom } from '../random.js';
import type { DataKeyProvider } from './data-key-provider.js';
import { dekAad, encodeHeader, encodeHeaderCore, NONCE_PREFIX_BYTES, SALT_BYTES, SEALED_DEK_AAD, type Header } from './header.js';
import { commitmentMatches, deriveObjectKeys } from './key-schedule.js';

export interface NewObjectKeys {
  /** Header bytes [0, 49): magic … nonce prefix. */
  core: Uint8Array;
  salt: Uint8Array;
  noncePrefix: Uint8Array;
  /** Caller zeroes it. */
  payloadKey: Buffer;
  commitment: Buffer;
}

/** Draws salt and nonce prefix and derives the keys of a new object under `dek` (not modified). */
export function newObjectKeys(dek: Uint8Array, segmentBytes: number, context: Uint8Array): NewObjectKeys {
  const random = fillRandom(new Uint8Array(SALT_BYTES + NONCE_PREFIX_BYTES));
  const salt = random.subarray(0, SALT_BYTES);
  const noncePrefix = random.subarray(SALT_BYTES);
  const core = encodeHeaderCore(segmentBytes, salt, noncePrefix);
  const { payloadKey, commitment } = deriveObjectKeys(dek, salt, core, context);
  return { core, salt, noncePrefix, payloadKey, commitment };
}

/**
 * The payload key of a sealed header under `dek` and `context`, after a constant-time check of the key
 * commitment (wrong context, or a header made for another DEK → DecryptionError). Zeroes `dek`; caller zeroes the result.
 */
export function openPayloadKey(dek: Uint8Array, header: Pick<Header, 'salt' | 'core' | 'commitment'>, context: Uint8Array): Buffer {
  let derived;
  try {
    derived = deriveObjectKeys(dek, header.salt, header.core, context);
  } catch (cause) {
    throw new DecryptionError({ cause });
  } finally {
    dek.fill(0);
  }
  if (!commitmentMatches(derived.commitment, header.commitment)) {
    derived.payloadKey.fill(0);
    throw new DecryptionError();
  }
  return derived.payloadKey;
}

/** Everything a fresh sealed object needs: its header and payload key (caller zeroes `payloadKey`). */
export interface NewObject {
  header: Uint8Array;
  payloadKey: Uint8Array;
  noncePrefix: Uint8Array;
}

/**
 * Generates a DEK (wrapped with the fixed version-2 AAD: the context is bound by the key derivation and the key
 * commitment, so a rewrap needs no context), draws salt and nonce prefix, derives the keys and builds the header.
 */
export async function newObject(keys: DataKeyProvider, keyId: string, segmentBytes: number, context: Uint8Array): Promise<NewObject> {
  const { plaintext: dek, wrapped } = await keys.generateDataKey(keyId, { aad: SEALED_DEK_AAD });
  try {
    const { core, noncePrefix, payloadKey, commitment } = newObjectKeys(dek, segmentBytes, context);
    return { header: encodeHeader(core, commitment, wrapped), payloadKey, noncePrefix };
  } finally {
    dek.fill(0);
  }
}

/**
 * Unwraps the header's DEK (AAD: fixed in version 2, the context in version 1), derives the payload key and
 * checks the key commitment (which binds the context) in constant time, before any segment is touched. Caller
 * zeroes the result.
 */
export async function openObjectKey(keys: DataKeyProvider, header: Header, context: Uint8Array): Promise<Uint8Array> {
  const dek = await keys.unwrap(new Uint8Array(header.wrappedDek), { aad: dekAad(header.version, context) });
  return openPayloadKey(dek, header, context);
}
