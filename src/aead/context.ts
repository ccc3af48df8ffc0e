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

const ENCODER = new TextEncoder();
/** A lone surrogate (in a /u pattern paired surrogates are one code point and do not match). */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * Canonical encoding of `context` (see the module comment). `undefined` means the empty map.
 * Throws TypeError for a non-object, non-string values or strings that are not well-formed UTF-16 (a lone
 * surrogate would encode as U+FFFD and make two different maps collide), RangeError if the encoding exceeds
 * MAX_CONTEXT_BYTES.
 */
export function canonicalContext(context: EncryptionContext | undefined, name = 'options.context'): Uint8Array {
  if (context === undefined) return new Uint8Array(4);
  if (context === null || typeof context !== 'object' || Array.isArray(context)) {
    throw new TypeError(`${name} must be an object mapping strings to strings`);
  }
  const entries: Array<[Uint8Array, Uint8Array]> = [];
  let total = 4;
  for (const key of Object.keys(context)) {
    const value = (context as Record<string, unknown>)[key];
    if (typeof value !== 'string') throw new TypeError(`${name}.${key} must be a string`);
    if (LONE_SURROGATE.test(key)) throw new TypeError(`${name} has a key that is not well-formed UTF-16`);
    if (LONE_SURROGATE.test(value)) throw new TypeError(`${name}.${key} must be well-formed UTF-16`);
    const k = ENCODER.encode(key);
    const v = ENCODER.encode(value);
    total += 8 + k.length + v.length;
    if (total > MAX_CONTEXT_BYTES) {
      throw new RangeError(`${name} must encode to at most ${MAX_CONTEXT_BYTES} bytes`);
    }
    entries.push([k, v]);
  }
  entries.sort((a, b) => Buffer.compare(a[0], b[0]));
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, entries.length);
  let at = 4;
  for (const [k, v] of entries) {
    view.setUint32(at, k.length);
    out.set(k, at + 4);
    at += 4 + k.length;
    view.setUint32(at, v.length);
    out.set(v, at + 4);
    at += 4 + v.length;
  }
  return out;
}
