// Shared helpers for the erasure tests: a deterministic PRNG (the one test/vectors was generated with).

/** xorshift32 (Marsaglia 2003); the low byte of each step. */
export function xorshiftBytes(seed: number, n: number): Uint8Array {
  let x = seed >>> 0 || 1;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export function shardsOf(bytes: Uint8Array, count: number, len: number): Uint8Array[] {
  return Array.from({ length: count }, (_, i) => bytes.slice(i * len, (i + 1) * len));
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}

/** All subsets of {0..n-1} of size ≤ max. */
export function subsetsUpTo(n: number, max: number): number[][] {
  const out: number[][] = [[]];
  const rec = (start: number, cur: number[]) => {
    for (let i = start; i < n; i++) {
      const next = [...cur, i];
      out.push(next);
      if (next.length < max) rec(i + 1, next);
    }
  };
  if (max > 0) rec(0, []);
  return out;
}

/** A small seeded PRNG for choosing test cases (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
