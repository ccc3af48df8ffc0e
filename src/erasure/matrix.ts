// Coding matrices over GF(2^8): ISA-L's systematic Cauchy matrix and Gauss-Jordan inversion for decoding.
import { GF_INV, GF_MUL } from './gf.js';

/**
 * ISA-L `gf_gen_cauchy1_matrix(a, m = total, k)` (erasure_code/ec_base.c): a total x k row-major matrix with
 * the k x k identity on top, then rows i = k..total-1 with a[i][j] = inv(i XOR j). Since i ≥ k > j, i XOR j
 * is never 0 and every k x k submatrix is invertible (a Cauchy matrix over x_i = i, y_j = j with x_i ≠ y_j,
 * sums in GF(2^8) being XOR) — valid for total ≤ 256.
 */
export function cauchy1Matrix(total: number, k: number): Uint8Array {
  const a = new Uint8Array(total * k);
  for (let i = 0; i < k; i++) a[i * k + i] = 1;
  for (let i = k; i < total; i++) {
    for (let j = 0; j < k; j++) a[i * k + j] = GF_INV[i ^ j];
  }
  return a;
}

/** Inverse of the n x n row-major matrix `m` (not modified); null when it is singular. */
export function invertMatrix(m: Uint8Array, n: number): Uint8Array | null {
  const a = Uint8Array.from(m);
  const inv = new Uint8Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let col = 0; col < n; col++) {
    // Find a pivot row with a non-zero entry in this column and swap it up.
    let pivot = col;
    while (pivot < n && a[pivot * n + col] === 0) pivot++;
    if (pivot === n) return null;
    if (pivot !== col) {
      swapRows(a, n, pivot, col);
      swapRows(inv, n, pivot, col);
    }
    // Scale the pivot row to make the pivot 1.
    const scale = GF_INV[a[col * n + col]] << 8;
    for (let j = 0; j < n; j++) {
      a[col * n + j] = GF_MUL[scale | a[col * n + j]];
      inv[col * n + j] = GF_MUL[scale | inv[col * n + j]];
    }
    // Eliminate the column from every other row.
    for (let row = 0; row < n; row++) {
      const f = a[row * n + col];
      if (row === col || f === 0) continue;
      const fs = f << 8;
      for (let j = 0; j < n; j++) {
        a[row * n + j] ^= GF_MUL[fs | a[col * n + j]];
        inv[row * n + j] ^= GF_MUL[fs | inv[col * n + j]];
      }
    }
  }
  return inv;
}

/** (rowsA x n) · (n x colsB). */
export function multiplyMatrices(a: Uint8Array, rowsA: number, n: number, b: Uint8Array, colsB: number): Uint8Array {
  const out = new Uint8Array(rowsA * colsB);
  for (let i = 0; i < rowsA; i++) {
    for (let t = 0; t < n; t++) {
      const f = a[i * n + t] << 8;
      if (f === 0) continue;
      for (let j = 0; j < colsB; j++) out[i * colsB + j] ^= GF_MUL[f | b[t * colsB + j]];
    }
  }
  return out;
}

/** The rows listed in `rows` of a row-major matrix with `cols` columns. */
export function selectRows(m: Uint8Array, cols: number, rows: readonly number[]): Uint8Array {
  const out = new Uint8Array(rows.length * cols);
  rows.forEach((r, i) => out.set(m.subarray(r * cols, (r + 1) * cols), i * cols));
  return out;
}

function swapRows(m: Uint8Array, n: number, r1: number, r2: number): void {
  for (let j = 0; j < n; j++) {
    const t = m[r1 * n + j];
    m[r1 * n + j] = m[r2 * n + j];
    m[r2 * n + j] = t;
  }
}
