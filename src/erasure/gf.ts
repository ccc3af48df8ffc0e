// GF(2^8) arithmetic for the Reed-Solomon codec: log/exp and full product tables.
// Field polynomial x^8+x^4+x^3+x^2+1 (0x11D) with generator 2, as in ISA-L (erasure_code/ec_base.c) and
// Plank, "A Tutorial on Reed-Solomon Coding for Fault-Tolerance in RAID-like Systems" (1997).

/** Reduction polynomial including the x^8 term. */
export const GF_POLY = 0x11d;
export const GF_ORDER = 256;

/** exp[i] = 2^i, doubled (510 entries used) so exp[log a + log b] needs no modulo. */
export const GF_EXP = new Uint8Array(512);
/** log[a] for a ≠ 0; log[0] is unused. */
export const GF_LOG = new Uint8Array(256);
/** GF_MUL[a * 256 + b] = a·b (64 KiB). */
export const GF_MUL = new Uint8Array(256 * 256);
/** GF_INV[a] = a⁻¹, with GF_INV[0] = 0 as in ISA-L's gf_inv. */
export const GF_INV = new Uint8Array(256);

{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    GF_EXP[i] = x;
    GF_EXP[i + 255] = x;
    GF_LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= GF_POLY;
  }
  GF_EXP[510] = GF_EXP[0];
  GF_EXP[511] = GF_EXP[1];
  for (let a = 1; a < 256; a++) {
    for (let b = 1; b < 256; b++) GF_MUL[a * 256 + b] = GF_EXP[GF_LOG[a] + GF_LOG[b]];
    GF_INV[a] = GF_EXP[255 - GF_LOG[a]];
  }
}

export function gfMul(a: number, b: number): number {
  return GF_MUL[(a << 8) | b];
}

export function gfInv(a: number): number {
  return GF_INV[a];
}

/** Carry-less multiply then reduce, bit by bit: the independent definition the tables are tested against. */
export function gfMulBitwise(a: number, b: number): number {
  let p = 0;
  for (let i = 0; i < 8; i++) {
    if (b & (1 << i)) p ^= a << i;
  }
  for (let bit = 14; bit >= 8; bit--) {
    if (p & (1 << bit)) p ^= GF_POLY << (bit - 8);
  }
  return p;
}
