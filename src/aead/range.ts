// decryptRange: plaintext bytes [offset, offset + length) of a sealed object, opening only the segments that
// hold them. The object's length is implied by the sealed length and authenticated by the last segment's flag:
// a range that reaches the last segment verifies it; a range past the end is a RangeError once the end is verified.
import { DecryptionError } from '../errors.js';
import { bytesArg } from '../validate.js';
import { segmentCount, TAG_BYTES } from './header.js';
import { openSealed } from './one-shot.js';
import { checkOptionsObject, POOL_MIN_BYTES, type CipherSettings, type DecryptRangeOptions } from './options.js';
import { runPooled } from './pooled.js';
import { openSegments } from './segment.js';
import { TASK_OPEN } from './tasks.js';

export async function decryptRange(settings: CipherSettings, sealed: Uint8Array, options: DecryptRangeOptions): Promise<Buffer> {
  bytesArg(sealed, 'sealed');
  checkOptionsObject(options);
  const { offset, length } = options;
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) throw new TypeError('options.offset must be a non-negative integer');
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) throw new TypeError('options.length must be a non-negative integer');
  const { header, plainLength, key } = await openSealed(settings, sealed, options);
  const S = header.segmentBytes;
  try {
    const total = segmentCount(plainLength, S);
    const schedule = { noncePrefix: header.noncePrefix, segmentBytes: S };
    const payload = sealed.subarray(header.length);
    if (offset + length > plainLength) {
      // Authenticate the end before blaming the caller: a truncated object must fail as DecryptionError.
      const lastFrom = (total - 1) * (S + TAG_BYTES);
      const scratch = new Uint8Array(payload.length - lastFrom - TAG_BYTES);
      const ok = openSegments(key, schedule, total - 1, payload.subarray(lastFrom), scratch, true) < 0;
      scratch.fill(0);
      if (!ok) throw new DecryptionError();
      throw new RangeError(`options.offset + options.length must not exceed the object's ${plainLength} bytes`);
    }
    // Empty ranges still prove the context and key (above); segments [first, last] hold the rest.
    if (length === 0) return Buffer.alloc(0);
    const first = Math.floor(offset / S);
    const last = Math.floor((offset + length - 1) / S);
    const count = last - first + 1;
    const endsObject = last === total - 1;
    const src = payload.subarray(first * (S + TAG_BYTES), endsObject ? payload.length : (last + 1) * (S + TAG_BYTES));
    const plainBytes = src.length - count * TAG_BYTES;
    const skip = offset - first * S;
    const scratch = Buffer.allocUnsafeSlow(plainBytes);
    if (plainBytes < POOL_MIN_BYTES || count === 1) {
      if (openSegments(key, schedule, first, src, scratch, endsObject) >= 0) throw new DecryptionError();
    } else if (!(await runPooled(settings, { kind: TASK_OPEN, key, schedule, firstIndex: first, count, endsObject, src, dst: scratch, signal: options.signal }))) {
      scratch.fill(0);
      throw new DecryptionError();
    }
    if (skip === 0 && length === plainBytes) return scratch;
    const part = Buffer.from(scratch.subarray(skip, skip + length));
    scratch.fill(0);
    return part;
  } finally {
    key.fill(0);
  }
}
