// Canonical bytes for the `aad` option of wrap/unwrap: an array of strings or raw bytes.
// Absent, [] and empty bytes all mean "no AAD". Otherwise a domain byte keeps the two forms from colliding:
//   0x00 ‖ bytes                       for raw bytes
//   0x01 ‖ (u32be length ‖ UTF-8)*     for an array of strings (length-prefixed, so ["ab","c"] ≠ ["a","bc"])
export type Aad = readonly string[] | Uint8Array;

export const MAX_AAD_BYTES = 64 * 1024;

export function encodeAad(aad: Aad | undefined, name = 'options.aad'): Buffer {
  if (aad === undefined || aad === null) return Buffer.alloc(0);
  if (aad instanceof Uint8Array) {
    if (aad.byteLength === 0) return Buffer.alloc(0);
    if (aad.byteLength > MAX_AAD_BYTES) throw new RangeError(`${name} must be at most ${MAX_AAD_BYTES} bytes`);
    return Buffer.concat([Buffer.from([0x00]), aad]);
  }
  if (!Array.isArray(aad)) throw new TypeError(`${name} must be an array of strings or a Uint8Array`);
  if (aad.length === 0) return Buffer.alloc(0);
  // Measure, then write once: this runs on every wrap/unwrap, cached ones included.
  let total = 1;
  for (const item of aad) {
    if (typeof item !== 'string') throw new TypeError(`${name} must be an array of strings or a Uint8Array`);
    total += 4 + Buffer.byteLength(item, 'utf8');
  }
  if (total > MAX_AAD_BYTES) throw new RangeError(`${name} must encode to at most ${MAX_AAD_BYTES} bytes`);
  const out = Buffer.allocUnsafe(total);
  out[0] = 0x01;
  let offset = 1;
  for (const item of aad) {
    const length = out.write(item, offset + 4, 'utf8');
    out.writeUInt32BE(length, offset);
    offset += 4 + length;
  }
  return out;
}
