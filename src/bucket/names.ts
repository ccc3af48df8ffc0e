// Argument checks for bucket and object names: S3's bucket naming rules, and object names of 1..1024 bytes of
// well-formed UTF-8 (one encoding each, so one store key and one AAD per name).
import { isWellFormed } from '../validate.js';

/** S3 general-purpose bucket rules: 3-63 chars of [a-z0-9.-], starting and ending with a letter or digit. */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
export const MAX_OBJECT_NAME_BYTES = 1024;

export function bucketNameArg(value: unknown, name = 'name'): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string`);
  if (!BUCKET_NAME.test(value)) {
    throw new RangeError(
      `${name} must be 3 to 63 characters of lowercase letters, digits, "-" and ".", starting and ending with a letter or digit`,
    );
  }
  return value;
}

export function objectNameArg(value: unknown, name = 'name'): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string`);
  if (!isWellFormed(value)) throw new RangeError(`${name} must be well-formed UTF-8 (no lone surrogates)`);
  const bytes = Buffer.byteLength(value, 'utf8');
  if (bytes < 1 || bytes > MAX_OBJECT_NAME_BYTES) throw new RangeError(`${name} must be 1 to ${MAX_OBJECT_NAME_BYTES} bytes of UTF-8`);
  return value;
}

/** A listing prefix or startAfter: like an object name, but may be empty. */
export function namePrefixArg(value: unknown, name: string): string {
  if (value === undefined || value === '') return '';
  return objectNameArg(value, name);
}
