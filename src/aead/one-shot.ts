// Whole sealed objects in one buffer: encrypt (fresh DEK, header, every segment) and decrypt (header, key
// commitment, every segment), on the calling thread below POOL_MIN_BYTES, else spread over the worker pool.
import { constants as bufferConstants } from 'node:buffer';
import { DecryptionError } from '../errors.js';
import { bytesArg, signalArg } from '../validate.js';
import { canonicalContext } from './context.js';
import {
  checkObjectSize, headerLengthFor, MAX_WRAPPED_DEK_BYTES, parseHeader, payloadLength, plaintextLength, segmentCount, type Header,
} from './header.js';
import { newObject, openObjectKey } from './object-keys.js';
import {
  checkOptionsObject, POOL_MIN_BYTES, resolveKeyId, type CipherSettings, type DecryptOptions, type EncryptOptions,
} from './options.js';
import { allocOutput } from './native-batch.js';
import { runPooled } from './pooled.js';
import { openSegments, sealSegments } from './segment.js';
import { TASK_OPEN, TASK_SEAL } from './tasks.js';

/** Seals `plaintext` under a fresh DEK wrapped by root key `options.keyId`. The input is never modified. */
export async function encryptObject(settings: CipherSettings, plaintext: Uint8Array, options: EncryptOptions): Promise<Buffer> {
  bytesArg(plaintext, 'plaintext');
  checkOptionsObject(options);
  const keyId = resolveKeyId(options.keyId);
  const context = canonicalContext(options.context);
  signalArg(options.signal);
  const S = settings.segmentBytes;
  checkObjectSize(plaintext.length, S);
  if (payloadLength(plaintext.length, S) + headerLengthFor(MAX_WRAPPED_DEK_BYTES) > bufferConstants.MAX_LENGTH) {
    throw new RangeError('plaintext is too large for a one-shot sealed buffer; use createEncryptStream');
  }
  options.signal?.throwIfAborted();
  const object = await newObject(settings.keys, keyId, S, context);
  try {
    const total = object.header.length + payloadLength(plaintext.length, S);
    const count = segmentCount(plaintext.length, S);
    const schedule = { noncePrefix: object.noncePrefix, segmentBytes: S };
    const sealed = allocOutput(total);
    sealed.set(object.header, 0);
    const payload = sealed.subarray(object.header.length);
    if (plaintext.length < POOL_MIN_BYTES || count === 1) {
      sealSegments(object.payloadKey, schedule, 0, plaintext, payload, true);
      return sealed;
    }
    await runPooled(settings, { kind: TASK_SEAL, key: object.payloadKey, schedule, firstIndex: 0, count, endsObject: true, src: plaintext, dst: payload, signal: options.signal });
    return sealed;
  } finally {
    object.payloadKey.fill(0);
  }
}

/** Parses the header and unwraps, derives and commitment-checks the payload key (caller zeroes it). */
export async function openSealed(
  settings: CipherSettings, sealed: Uint8Array, options: DecryptOptions,
): Promise<{ header: Header; plainLength: number; key: Uint8Array }> {
  const context = canonicalContext(options.context);
  signalArg(options.signal);
  options.signal?.throwIfAborted();
  const header = parseHeader(sealed);
  const plainLength = plaintextLength(sealed.length - header.length, header.segmentBytes);
  return { header, plainLength, key: await openObjectKey(settings.keys, header, context) };
}

/** Opens a sealed object; DecryptionError for anything wrong with it or the context. */
export async function decryptObject(settings: CipherSettings, sealed: Uint8Array, options: DecryptOptions): Promise<Buffer> {
  bytesArg(sealed, 'sealed');
  checkOptionsObject(options);
  const { header, plainLength, key } = await openSealed(settings, sealed, options);
  const S = header.segmentBytes;
  try {
    const count = segmentCount(plainLength, S);
    const payload = sealed.subarray(header.length);
    const schedule = { noncePrefix: header.noncePrefix, segmentBytes: S };
    const plain = allocOutput(plainLength);
    if (plainLength < POOL_MIN_BYTES || count === 1) {
      if (openSegments(key, schedule, 0, payload, plain, true) >= 0) throw new DecryptionError();
      return plain;
    }
    if (!(await runPooled(settings, { kind: TASK_OPEN, key, schedule, firstIndex: 0, count, endsObject: true, src: payload, dst: plain, signal: options.signal }))) {
      plain.fill(0);
      throw new DecryptionError();
    }
    return plain;
  } finally {
    key.fill(0);
  }
}
