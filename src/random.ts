// Random values (salt, nonce prefix, wrap IVs, DEKs) drawn from a small buffer of CSPRNG output refilled 4 KiB at
// a time: one randomFillSync call costs ~2 µs whatever its size, a large share of sealing a 4 KiB object. Bytes
// handed out are zeroed in the buffer at once, so none is ever used twice and a DEK's bytes live only where the
// caller keeps them. Node's randomUUID() caches randomness the same way.
import { randomFillSync } from 'node:crypto';

const REFILL_BYTES = 4096;
let buffer = new Uint8Array(0);
let used = 0;

/** Fills `out` with fresh random bytes (never the same bytes twice). */
export function fillRandom<T extends Uint8Array>(out: T): T {
  if (out.length > REFILL_BYTES) return randomFillSync(out);
  if (used + out.length > buffer.length) {
    buffer = randomFillSync(new Uint8Array(REFILL_BYTES));
    used = 0;
  }
  const from = buffer.subarray(used, used + out.length);
  out.set(from);
  from.fill(0);
  used += out.length;
  return out;
}

/** `bytes` random bytes as hex, for names (temp files, generation ids): one refill serves hundreds of them. */
export function randomHex(bytes: number): string {
  return Buffer.from(fillRandom(new Uint8Array(bytes)).buffer).toString('hex');
}
