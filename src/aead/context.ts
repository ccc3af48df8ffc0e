// Canonical bytes of an encryption context (a string map): the same map always gives the same bytes, and two
// different maps never do. These bytes are the HSM AAD of the wrapped DEK and are mixed into the object's key
// derivation, so an object opens only under exactly the context it was sealed with.
//
// Encoding (all integers big-endian):
//   u32 entry count ‖ for each entry, sorted by the UTF-8 bytes of its key:
//     u32 key byte length ‖ key (UTF-8) ‖ u32 value byte length ‖ value (UTF-8)
// The empty map encodes as 00 00 00 00.

/** Encryption context: free-form string pairs bound to an object (bucket, object name, tenant, ...). */
export type EncryptionContext = Record<string, string>;

/** Upper bound of the canonical encoding, so a context stays a reasonable HSM AAD. */
export const MAX_CONTEXT_BYTES = 65_536;

/** A lone surrogate (in a /u pattern paired surrogates are one code point and do not match). */
const LONE_SURROGATE = /\p{Cs}/u;
const EMPTY_CONTEXT = new Uint8Array(4);

/**
 * Canonical encoding of `context` (see the module comment). `undefined` means the empty map.
 * Throws TypeError for a non-object, non-string values or strings that are not well-formed UTF-16 (a lone
 * surrogate would encode as U+FFFD and make two different maps collide), RangeError if the encoding exceeds
 * MAX_CONTEXT_BYTES.
 */
export function canonicalContext(context: EncryptionContext | undefined, name = 'options.context'): Uint8Array {
  if (context === undefined) return EMPTY_CONTEXT.slice();
  if (context === null || typeof context !== 'object' || Array.isArray(context)) {
    throw new TypeError(`${name} must be an object mapping strings to strings`);
  }
  const keys = Object.keys(context);
  if (keys.length === 0) return EMPTY_CONTEXT.slice();
  let total = 4;
  const keyBytes: number[] = [];
  for (const key of keys) {
    const value = (context as Record<string, unknown>)[key];
    if (typeof value !== 'string') throw new TypeError(`${name}.${key} must be a string`);
    if (LONE_SURROGATE.test(key)) throw new TypeError(`${name} has a key that is not well-formed UTF-16`);
    if (LONE_SURROGATE.test(value)) throw new TypeError(`${name}.${key} must be well-formed UTF-16`);
    const k = Buffer.byteLength(key, 'utf8');
    keyBytes.push(k);
    total += 8 + k + Buffer.byteLength(value, 'utf8');
    if (total > MAX_CONTEXT_BYTES) throw new RangeError(`${name} must encode to at most ${MAX_CONTEXT_BYTES} bytes`);
  }
  // Sort by UTF-8 bytes of the key (not UTF-16 code units: they order astral characters differently).
  const order = keys.map((_, i) => i);
  if (keys.length > 1) {
    const encoded = keys.map((k) => Buffer.from(k, 'utf8'));
    order.sort((a, b) => Buffer.compare(encoded[a], encoded[b]));
  }
  const out = Buffer.allocUnsafeSlow(total);
  out.writeUInt32BE(keys.length, 0);
  let at = 4;
  for (const i of order) {
    const key = keys[i];
    const value = (context as Record<string, string>)[key];
    out.writeUInt32BE(keyBytes[i], at);
    at += 4;
    at += out.write(key, at, 'utf8');
    const v = Buffer.byteLength(value, 'utf8');
    out.writeUInt32BE(v, at);
    at += 4;
    at += out.write(value, at, 'utf8');
  }
  return new Uint8Array(out.buffer, out.byteOffset, total);
}
