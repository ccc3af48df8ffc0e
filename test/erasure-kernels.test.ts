// Every native kernel this CPU supports, forced in turn, against the TypeScript reference: sizes 0..300,
// byte offsets 0..7, guard bytes around every output, and shapes needing several row groups and chunks.
import t from 'tap';
import { ReedSolomon, ReferenceReedSolomon, availableKernels, bestKernel, getKernel, setKernel } from '../dist/erasure/index.js';
import { referenceMul } from '../dist/erasure/reference.js';
import { native } from '../dist/erasure/native.js';
import { xorshiftBytes } from './erasure-helpers.js';

const GUARD_BYTES = 16;
const GUARD = 0xa5;
const kernels = availableKernels().filter((k) => k !== 'reference');

t.test('kernel introspection', async (t) => {
  t.ok(native, 'native addon loaded');
  t.ok(kernels.includes('scalar'), 'scalar always available');
  t.equal(availableKernels().at(-1), 'reference');
  t.equal(bestKernel(), kernels[0]);
  const before = getKernel();
  setKernel('scalar');
  t.equal(getKernel(), 'scalar');
  t.equal(new ReedSolomon({ dataShards: 2, parityShards: 1 }).kernel, 'scalar');
  t.equal(new ReedSolomon({ dataShards: 2, parityShards: 1, kernel: 'reference' }).kernel, 'reference');
  setKernel('auto');
  t.equal(getKernel(), bestKernel());
  setKernel(before);
  t.throws(() => setKernel('mmx' as never), RangeError);
});

/** Shards placed at `offset` (+ i) inside larger buffers with guard bytes on both sides. */
function layout(count: number, len: number, offset: number, fill: (i: number) => Uint8Array | null) {
  const backing = Array.from({ length: count }, () => new Uint8Array(GUARD_BYTES + 8 + len + GUARD_BYTES).fill(GUARD));
  const shards = backing.map((b, i) => {
    const at = GUARD_BYTES + ((offset + i) % 8);
    const s = b.subarray(at, at + len);
    const src = fill(i);
    if (src) s.set(src);
    return s;
  });
  const guardsIntact = () =>
    backing.every((b, i) => {
      const at = GUARD_BYTES + ((offset + i) % 8);
      for (let j = 0; j < at; j++) if (b[j] !== GUARD) return false;
      for (let j = at + len; j < b.length; j++) if (b[j] !== GUARD) return false;
      return true;
    });
  return { shards, guardsIntact };
}

for (const kernel of kernels) {
  t.test(`kernel ${kernel}: encode equals the reference for sizes 0..300 at offsets 0..7`, async (t) => {
    for (const [k, m] of [[6, 3], [2, 9]]) {
      const rs = new ReedSolomon({ dataShards: k, parityShards: m, kernel });
      const ref = new ReferenceReedSolomon({ dataShards: k, parityShards: m });
      let mismatches = 0;
      let guardHits = 0;
      let inputChanged = 0;
      for (let len = 0; len <= 300; len++) {
        const data = xorshiftBytes(len * 131 + k, k * len);
        const expected = [...Array.from({ length: k }, (_, i) => data.slice(i * len, (i + 1) * len)), ...Array.from({ length: m }, () => new Uint8Array(len))];
        ref.encode(expected);
        for (let offset = 0; offset < 8; offset++) {
          const { shards, guardsIntact } = layout(k + m, len, offset, (i) => (i < k ? expected[i] : null));
          rs.encode(shards);
          for (let i = 0; i < k + m; i++) if (Buffer.compare(shards[i], expected[i]) !== 0) (i < k ? inputChanged++ : mismatches++);
          if (!guardsIntact()) guardHits++;
        }
      }
      t.equal(mismatches, 0, `${k}+${m}: parity matches`);
      t.equal(inputChanged, 0, `${k}+${m}: data shards untouched`);
      t.equal(guardHits, 0, `${k}+${m}: no byte written outside outputs`);
    }
  });

  t.test(`kernel ${kernel}: long shards, several row groups and cache chunks`, async (t) => {
    for (const [k, m, len] of [[2, 9, 600_001], [10, 4, 1 << 20], [200, 56, 10_007], [3, 20, 70_000]]) {
      const rs = new ReedSolomon({ dataShards: k, parityShards: m, kernel });
      const data = xorshiftBytes(k * 7919 + m, k * len);
      const inputs = Array.from({ length: k }, (_, i) => data.subarray(i * len, (i + 1) * len));
      const expected = Array.from({ length: m }, () => new Uint8Array(len));
      referenceMul(rs.matrix.subarray(k * k), m, k, inputs, expected, len);
      const shards = [...inputs, ...Array.from({ length: m }, () => new Uint8Array(len))];
      rs.encode(shards);
      let bad = 0;
      for (let p = 0; p < m; p++) if (Buffer.compare(shards[k + p], expected[p]) !== 0) bad++;
      t.equal(bad, 0, `${k}+${m} × ${len}`);
    }
  });

  t.test(`kernel ${kernel}: reconstruct at unaligned offsets with guard bytes`, async (t) => {
    const [k, m] = [5, 3];
    const rs = new ReedSolomon({ dataShards: k, parityShards: m, kernel });
    let bad = 0;
    for (const len of [0, 1, 15, 31, 63, 64, 65, 127, 129, 255, 300]) {
      const shards = [...Array.from({ length: k }, (_, i) => xorshiftBytes(len + i * 17 + 1, len)), ...Array.from({ length: m }, () => new Uint8Array(len))];
      new ReferenceReedSolomon({ dataShards: k, parityShards: m }).encode(shards);
      for (let offset = 0; offset < 8; offset++) {
        const lost = [offset % (k + m), (offset + 3) % (k + m), (offset + 6) % (k + m)];
        const { shards: outs, guardsIntact } = layout(lost.length, len, offset, () => null);
        const work = shards.map((s, i) => (lost.includes(i) ? null : s));
        rs.reconstructInto(work, lost, outs);
        lost.forEach((l, i) => Buffer.compare(outs[i], shards[l]) !== 0 && bad++);
        if (!guardsIntact()) bad++;
      }
    }
    t.equal(bad, 0);
  });
}

t.test('the addon re-checks its arguments (no crash, typed errors)', async (t) => {
  const n = native!;
  const tables = n.expandTables(Uint8Array.of(1, 2), 1, 2);
  const a = new Uint8Array(8);
  const b = new Uint8Array(8);
  const o = new Uint8Array(8);
  n.mul('scalar', tables, 1, 2, [a, b], [o], 8);
  t.throws(() => n.mul('scalar', tables, 1, 2, [a, b], [o], 9), RangeError, 'len beyond a buffer');
  t.throws(() => n.mul('scalar', tables, 1, 2, [a], [o], 8), RangeError, 'too few inputs');
  t.throws(() => n.mul('scalar', tables, 1, 2, [a, new Uint16Array(8) as never], [o], 8), TypeError, 'not a Uint8Array');
  t.throws(() => n.mul('scalar', tables, 2, 2, [a, b], [o, o], 8), RangeError, 'tables size mismatch');
  t.throws(() => n.mul('scalar', tables, 1, 2, [a, b], [o], -1), RangeError, 'negative len');
  t.throws(() => n.mul('scalar', tables, 1, 2, [a, b], [o], 1.5), RangeError, 'fractional len');
  t.throws(() => n.mul('nope', tables, 1, 2, [a, b], [o], 8), RangeError, 'unknown kernel');
  t.throws(() => (n.mul as any)('scalar', tables, 1, 2, [a, b], [o]), TypeError, 'missing argument');
  t.throws(() => n.expandTables(Uint8Array.of(1, 2, 3), 1, 2), RangeError, 'matrix size mismatch');
  t.throws(() => n.expandTables(Uint8Array.of(1), 0, 1), RangeError, 'zero rows');
});
