// The native pool's split of one matrix multiply into column ranges (native/addon.cc MulJob, native/executor.cc):
// a calling thread that helps, pool threads taking guided runs of ranges, and the completion callback path must
// give exactly the TypeScript reference's parity for any length (1 byte, not a multiple of 64, a last range
// shorter than the others), any range width and thread count, and never write past `len`.
import t from 'tap';
import { native } from '../dist/erasure/native.js';
import { referenceMul } from '../dist/erasure/reference.js';
import { ReedSolomon } from '../dist/erasure/index.js';
import { ErasureService, setNativeErasurePool } from '../dist/erasure/service.js';
import { WorkerPool } from '../dist/pool/pool.js';
import { WORKER_ENTRY } from '../dist/worker-entry.js';
import { allocShared } from '../dist/pool/shared-memory.js';
import { xorshiftBytes, rng } from './erasure-helpers.js';

const mp = native?.mulParallel?.bind(native);
const skip = !mp && 'no native erasure addon';

function matrixFor(rows: number, k: number, seed: number): Uint8Array {
  const m = xorshiftBytes(seed, rows * k);
  m[0] = 0; // a zero coefficient too
  return m;
}

function call(kernel: string, tables: Uint8Array, rows: number, k: number, ins: Uint8Array[], outs: Uint8Array[], len: number, par: number, item: number, async: boolean): Promise<void> {
  if (!async) {
    mp!(kernel, tables, rows, k, ins, outs, len, par, item, undefined);
    return Promise.resolve();
  }
  return new Promise((resolve, reject) => mp!(kernel, tables, rows, k, ins, outs, len, par, item, (e) => (e ? reject(e) : resolve())));
}

t.test('mulParallel equals referenceMul: odd lengths, narrow and wide ranges, 1-4 threads, helping and async', { skip }, async (t) => {
  const pick = rng(13);
  const lens = [1, 2, 63, 64, 65, 127, 129, 1000, 4095, 4097, 65_537, 200_003];
  const shapes = [[10, 4], [4, 2], [1, 1], [5, 12], [17, 3]] as const; // 12 rows: more than one register group
  let cases = 0;
  for (const kernel of native!.kernels) {
    for (const [k, rows] of shapes) {
      const matrix = matrixFor(rows, k, k * 31 + rows);
      const tables = native!.expandTables(matrix, rows, k);
      for (const len of lens) {
        const ins = Array.from({ length: k }, (_, j) => xorshiftBytes(len * 7 + j + 1, len));
        const expected = Array.from({ length: rows }, () => new Uint8Array(len));
        referenceMul(matrix, rows, k, ins, expected, len);
        for (const item of [64, 192, 4096]) {
          if (kernel !== native!.bestKernel && item !== 192) continue; // every kernel once; the split on the best one
          for (const par of [1, 2, 4]) {
            for (const async of [false, true]) {
              // Outputs longer than len, filled with a marker: bytes past len must stay as they were.
              const outs = Array.from({ length: rows }, () => new Uint8Array(len + 70).fill(0xa5));
              await call(kernel, tables, rows, k, ins, outs, len, par, item, async);
              const ok = outs.every((o, r) => Buffer.from(o.subarray(0, len)).equals(expected[r]) && o.subarray(len).every((b) => b === 0xa5));
              if (!ok || pick() < 0.01) t.ok(ok, `${kernel} ${k}+${rows} len ${len} item ${item} threads ${par} ${async ? 'async' : 'helping'}`);
              cases++;
            }
          }
        }
      }
    }
  }
  t.ok(cases > 500, `${cases} cases checked`);
});

t.test('every column range runs exactly once, on the caller or a pool thread (poolStats)', { skip: !native?.poolStats && 'no poolStats' }, async (t) => {
  const k = 10;
  const rows = 4;
  const matrix = matrixFor(rows, k, 5);
  const tables = native!.expandTables(matrix, rows, k);
  const len = 64 * 1024 + 3;
  const ins = Array.from({ length: k }, (_, j) => xorshiftBytes(j + 9, len));
  const outs = Array.from({ length: rows }, () => new Uint8Array(len));
  const expected = Array.from({ length: rows }, () => new Uint8Array(len));
  referenceMul(matrix, rows, k, ins, expected, len);
  for (const item of [64, 1024, 4096]) {
    const before = native!.poolStats!();
    for (let i = 0; i < 20; i++) await call(native!.bestKernel, tables, rows, k, ins, outs, len, 2, item, false);
    const after = native!.poolStats!();
    const ranges = Math.ceil(len / item);
    t.equal(after.callerItems + after.poolItems - before.callerItems - before.poolItems, 20 * ranges, `item ${item}: ${ranges} ranges per call, each once`);
    t.equal(after.helped - before.helped, 20, 'every call shared with the pool');
    t.ok(outs.every((o, r) => Buffer.from(o).equals(expected[r])), 'parity exact');
  }
  const s = native!.poolStats!();
  for (const key of ['threads', 'helped', 'callerItems', 'poolItems', 'wakes', 'blocked'] as const) t.type(s[key], 'number', key);
  t.ok(s.threads >= 1);
});

t.test('ErasureService on the native pool equals the reference kernel for shard lengths around the split', { skip }, async (t) => {
  const pool = new WorkerPool(2, { entry: WORKER_ENTRY });
  t.teardown(() => pool.close());
  const before = setNativeErasurePool(true);
  t.teardown(() => void setNativeErasurePool(before));
  const svc = new ErasureService(pool);
  const ref = new ReedSolomon({ dataShards: 10, parityShards: 4, kernel: 'reference' });
  for (const len of [1, 63, 65, 4096 * 16 + 1, 4096 * 16 - 64, 1048576 + 65, 2 * 1048576 - 1]) {
    const shards = Array.from({ length: 14 }, () => allocShared(len));
    shards.slice(0, 10).forEach((s, i) => s.set(xorshiftBytes(len + i + 1, len)));
    await svc.encodeShards(shards, { dataShards: 10, parityShards: 4 });
    const expected = shards.map((s, i) => (i < 10 ? Uint8Array.from(s) : new Uint8Array(len)));
    ref.encode(expected);
    t.ok(shards.slice(10).every((s, i) => Buffer.from(s).equals(expected[10 + i])), `10+4 x ${len}`);
  }
});

t.test('masked head and tail (AVX-512): every start offset within a cache line, outputs at other offsets, guards intact', { skip }, async (t) => {
  const k = 5;
  const rows = 3;
  const matrix = matrixFor(rows, k, 77);
  const tables = native!.expandTables(matrix, rows, k);
  let bad = 0;
  let cases = 0;
  for (const len of [1, 63, 64, 65, 127, 128, 129, 200, 4096 + 17]) {
    const data = Array.from({ length: k }, (_, j) => xorshiftBytes(len + 31 * j + 5, len));
    const expected = Array.from({ length: rows }, () => new Uint8Array(len));
    referenceMul(matrix, rows, k, data, expected, len);
    for (let off = 0; off < 64; off += len > 200 ? 7 : 1) {
      // Inputs and outputs each start at their own offset (out[0] at `off`, the others shifted by 16·r).
      const ins = data.map((d, j) => {
        const b = new Uint8Array(len + 256);
        const v = b.subarray(64 + ((off + 5 * j) % 64), 64 + ((off + 5 * j) % 64) + len);
        v.set(d);
        return v;
      });
      const backing = Array.from({ length: rows }, () => new Uint8Array(len + 256).fill(0x5a));
      const outs = backing.map((b, r) => b.subarray(64 + ((off + 16 * r) % 64), 64 + ((off + 16 * r) % 64) + len));
      for (const kernel of native!.kernels) {
        backing.forEach((b) => b.fill(0x5a));
        native!.mul(kernel, tables, rows, k, ins, outs, len);
        const ok = outs.every((o, r) => Buffer.from(o).equals(expected[r])) &&
          backing.every((b, r) => { const at = 64 + ((off + 16 * r) % 64); return b.subarray(0, at).every((x) => x === 0x5a) && b.subarray(at + len).every((x) => x === 0x5a); });
        if (!ok) { bad++; t.fail(`${kernel} len ${len} offset ${off}`); }
        cases++;
      }
    }
  }
  t.equal(bad, 0, `${cases} placements exact, nothing written outside the outputs`);
});

t.test('allocShared: bulk shared memory starts on a 64-byte boundary, zero-filled, exactly the length asked', { skip: !native?.lineOffset && 'no native addon' }, async (t) => {
  for (const n of [1, 100, 4095, 4096, 65_536, 65_537, 3 << 20]) {
    const a = allocShared(n);
    t.ok(a.buffer instanceof SharedArrayBuffer && a.length === n && a.every((x) => x === 0), `${n} bytes`);
    if (n >= 4096) t.equal(native!.lineOffset!(a), 0, `${n} bytes aligned`);
  }
  t.throws(() => (native!.lineOffset as any)('x'), TypeError);
  t.throws(() => (native!.lineOffset as any)(), TypeError);
});
