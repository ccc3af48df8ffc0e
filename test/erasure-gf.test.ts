// GF(2^8) tables and matrices: exhaustive against bitwise arithmetic, and the Cauchy matrix against ISA-L.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { GF_INV, GF_MUL, gfMulBitwise, GF_EXP, GF_LOG } from '../dist/erasure/gf.js';
import { cauchy1Matrix, invertMatrix, multiplyMatrices, selectRows } from '../dist/erasure/matrix.js';
import { hex, rng } from './erasure-helpers.js';

const vectors = JSON.parse(readFileSync(new URL('./vectors/isal-cauchy.json', import.meta.url), 'utf8'));

t.test('multiplication table equals bitwise carry-less multiply mod 0x11D, all 65536 pairs', async (t) => {
  let bad = 0;
  for (let a = 0; a < 256; a++) for (let b = 0; b < 256; b++) if (GF_MUL[a * 256 + b] !== gfMulBitwise(a, b)) bad++;
  t.equal(bad, 0);
});

t.test('inverse table: a·inv(a) = 1 for every a ≠ 0, inv(0) = 0 (ISA-L convention)', async (t) => {
  let bad = 0;
  for (let a = 1; a < 256; a++) if (gfMulBitwise(a, GF_INV[a]) !== 1) bad++;
  t.equal(bad, 0);
  t.equal(GF_INV[0], 0);
});

t.test('2 generates the multiplicative group (exp/log are a bijection)', async (t) => {
  const seen = new Set<number>();
  for (let i = 0; i < 255; i++) seen.add(GF_EXP[i]);
  t.equal(seen.size, 255);
  t.notOk(seen.has(0));
  let bad = 0;
  for (let a = 1; a < 256; a++) if (GF_EXP[GF_LOG[a]] !== a) bad++;
  t.equal(bad, 0);
});

t.test('cauchy1Matrix equals ISA-L gf_gen_cauchy1_matrix (vendored rows) with identity on top', async (t) => {
  for (const v of vectors.vectors) {
    const a = cauchy1Matrix(v.k + v.m, v.k);
    t.equal(hex(a.subarray(v.k * v.k)), v.cauchyParityRows, `${v.k}+${v.m}`);
    let identity = true;
    for (let i = 0; i < v.k; i++) for (let j = 0; j < v.k; j++) if (a[i * v.k + j] !== (i === j ? 1 : 0)) identity = false;
    t.ok(identity, `${v.k}+${v.m} identity`);
  }
});

t.test('inverting random k-row selections of the Cauchy matrix gives M·M⁻¹ = I', async (t) => {
  const rand = rng(7);
  for (const [k, m] of [[4, 2], [10, 4], [17, 3], [64, 64], [200, 56]]) {
    const full = cauchy1Matrix(k + m, k);
    for (let trial = 0; trial < 5; trial++) {
      const rows = Array.from({ length: k + m }, (_, i) => i).sort(() => rand() - 0.5).slice(0, k).sort((a, b) => a - b);
      const sub = selectRows(full, k, rows);
      const inv = invertMatrix(sub, k);
      t.ok(inv, `${k}+${m} invertible`);
      const id = multiplyMatrices(sub, k, k, inv!, k);
      let ok = true;
      for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) if (id[i * k + j] !== (i === j ? 1 : 0)) ok = false;
      t.ok(ok, `${k}+${m} product is identity`);
    }
  }
  t.equal(invertMatrix(Uint8Array.of(1, 2, 1, 2), 2), null, 'singular → null');
});
