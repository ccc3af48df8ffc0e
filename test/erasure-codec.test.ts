// ReedSolomon's contract: ISA-L-identical parity, every erasure pattern recovered, verify, argument errors.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { ReedSolomon, ReferenceReedSolomon, availableKernels } from '../dist/erasure/index.js';
import { ErasureError } from '../dist/errors.js';
import { hex, rng, shardsOf, subsetsUpTo, xorshiftBytes } from './erasure-helpers.js';

const vectors = JSON.parse(readFileSync(new URL('./vectors/isal-cauchy.json', import.meta.url), 'utf8'));

for (const kernel of availableKernels()) {
  t.test(`kernel ${kernel}: parity bit-identical to ISA-L ec_encode_data (vendored vectors)`, async (t) => {
    for (const v of vectors.vectors) {
      const seed = (0x9e3779b9 ^ (v.k << 16) ^ (v.m << 8) ^ v.len) >>> 0;
      const shards = [...shardsOf(xorshiftBytes(seed, v.k * v.len), v.k, v.len), ...Array.from({ length: v.m }, () => new Uint8Array(v.len))];
      new ReedSolomon({ dataShards: v.k, parityShards: v.m, kernel }).encode(shards);
      t.same(shards.slice(v.k).map(hex), v.parity, `${v.k}+${v.m} × ${v.len}`);
    }
  });
}

function encoded(k: number, m: number, len: number, seed: number): Uint8Array[] {
  const shards = [...shardsOf(xorshiftBytes(seed, k * len), k, len), ...Array.from({ length: m }, () => new Uint8Array(len))];
  new ReferenceReedSolomon({ dataShards: k, parityShards: m }).encode(shards);
  return shards;
}

/** Reconstructs each pattern with `rs` and counts shards that differ from the originals. */
function tryPatterns(rs: { reconstruct(s: (Uint8Array | null)[]): void }, original: Uint8Array[], patterns: number[][]): number {
  let bad = 0;
  for (const lost of patterns) {
    const work = original.map((s, i) => (lost.includes(i) ? null : s));
    rs.reconstruct(work);
    for (let i = 0; i < original.length; i++) if (!work[i] || Buffer.compare(work[i]!, original[i]) !== 0) bad++;
  }
  return bad;
}

t.test('every erasure pattern of up to m shards: 4+2 and 10+4 (each kernel for 4+2)', async (t) => {
  for (const [k, m] of [[4, 2], [10, 4]]) {
    const original = encoded(k, m, 203, k * 100 + m);
    const patterns = subsetsUpTo(k + m, m);
    const kernels = k === 4 ? availableKernels() : [undefined];
    for (const kernel of kernels) {
      const rs = new ReedSolomon({ dataShards: k, parityShards: m, kernel, decodeCacheSize: 8 });
      t.equal(tryPatterns(rs, original, patterns), 0, `${k}+${m} kernel ${kernel ?? 'default'}: ${patterns.length} patterns`);
    }
    t.equal(tryPatterns(new ReferenceReedSolomon({ dataShards: k, parityShards: m }), original, patterns), 0, `${k}+${m} reference codec`);
  }
});

t.test('random erasure patterns: 17+3 and 200+56', async (t) => {
  const rand = rng(42);
  for (const [k, m, len, trials] of [[17, 3, 1000, 60], [200, 56, 97, 12]]) {
    const original = encoded(k, m, len, k + m);
    const patterns = Array.from({ length: trials }, () => {
      const count = 1 + Math.floor(rand() * m);
      const idx = Array.from({ length: k + m }, (_, i) => i).sort(() => rand() - 0.5);
      return idx.slice(0, count);
    });
    const rs = new ReedSolomon({ dataShards: k, parityShards: m });
    t.equal(tryPatterns(rs, original, patterns), 0, `${k}+${m}: ${trials} patterns`);
  }
});

t.test('reconstruct with dataOnly leaves parity missing; with nothing missing it is a no-op', async (t) => {
  const original = encoded(6, 3, 50, 9);
  const rs = new ReedSolomon({ dataShards: 6, parityShards: 3 });
  const work: (Uint8Array | null)[] = original.map((s, i) => (i === 1 || i === 7 ? null : s));
  rs.reconstruct(work, { dataOnly: true });
  t.same(work[1], original[1]);
  t.equal(work[7], null);
  const full = original.slice();
  rs.reconstruct(full);
  t.ok(full.every((s, i) => s === original[i]), 'same objects');
});

t.test('verify detects any single corrupted byte', async (t) => {
  const original = encoded(10, 4, 64, 5);
  const rs = new ReedSolomon({ dataShards: 10, parityShards: 4 });
  t.ok(rs.verify(original));
  let missed = 0;
  for (let s = 0; s < 14; s++) {
    const copy = original.map((x) => x.slice());
    copy[s][s * 3] ^= 0x40;
    if (rs.verify(copy)) missed++;
  }
  t.equal(missed, 0);
  const zero = new ReedSolomon({ dataShards: 3, parityShards: 0 });
  t.ok(zero.verify([new Uint8Array(4), new Uint8Array(4), new Uint8Array(4)]), 'm = 0 always verifies');
});

t.test('encode writes only the parity shards the caller passed', async (t) => {
  const rs = new ReedSolomon({ dataShards: 3, parityShards: 2 });
  const data = [Uint8Array.of(1, 2, 3), Uint8Array.of(4, 5, 6), Uint8Array.of(7, 8, 9)];
  const copies = data.map((d) => d.slice());
  const shards = [...data, new Uint8Array(3), new Uint8Array(3)];
  rs.encode(shards);
  t.same(data, copies, 'data unchanged');
  t.ok(shards[3].some((b) => b !== 0), 'parity written');
});

t.test('bad arguments: typed errors naming the violated condition', async (t) => {
  const ctor = (o: unknown) => () => new ReedSolomon(o as never);
  const table: [string, () => unknown, new (...a: never[]) => Error, RegExp][] = [
    ['no options', ctor(undefined), TypeError, /options must be an object/],
    ['k = 0', ctor({ dataShards: 0, parityShards: 2 }), RangeError, /dataShards must be an integer ≥ 1/],
    ['k fractional', ctor({ dataShards: 2.5, parityShards: 2 }), RangeError, /dataShards must be an integer/],
    ['k string', ctor({ dataShards: '4', parityShards: 2 }), TypeError, /dataShards must be a number/],
    ['m negative', ctor({ dataShards: 4, parityShards: -1 }), RangeError, /parityShards must be an integer ≥ 0/],
    ['m NaN', ctor({ dataShards: 4, parityShards: NaN }), RangeError, /parityShards must be an integer/],
    ['k+m = 257', ctor({ dataShards: 200, parityShards: 57 }), RangeError, /dataShards \+ parityShards must be ≤ 256/],
    ['unknown kernel', ctor({ dataShards: 4, parityShards: 2, kernel: 'mmx' }), RangeError, /options.kernel must be one of/],
    ['bad cache size', ctor({ dataShards: 4, parityShards: 2, decodeCacheSize: 0 }), RangeError, /decodeCacheSize/],
  ];
  const rs = new ReedSolomon({ dataShards: 10, parityShards: 4 });
  const ok = () => Array.from({ length: 14 }, () => new Uint8Array(8));
  const with_ = (i: number, v: unknown) => {
    const s: unknown[] = ok();
    s[i] = v;
    return s as Uint8Array[];
  };
  table.push(
    ['shards not an array', () => rs.encode('x' as never), TypeError, /shards must be an array/],
    ['13 shards', () => rs.encode(ok().slice(1)), RangeError, /shards\.length must equal dataShards \+ parityShards \(14\)/],
    ['15 shards', () => rs.reconstruct([...ok(), new Uint8Array(8)]), RangeError, /shards\.length must equal dataShards \+ parityShards \(14\)/],
    ['unequal lengths', () => rs.encode(with_(5, new Uint8Array(7))), RangeError, /same length: shards\[5\]\.length \(7\)/],
    ['number[] shard', () => rs.encode(with_(2, [1, 2, 3])), TypeError, /shards\[2\] must be a Uint8Array/],
    ['Uint16Array shard', () => rs.verify(with_(0, new Uint16Array(8))), TypeError, /shards\[0\] must be a Uint8Array/],
    ['null in encode', () => rs.encode(with_(12, null)), TypeError, /shards\[12\] must be a Uint8Array/],
    ['5 missing of m = 4', () => rs.reconstruct(ok().map((s, i) => (i < 5 ? null : s))), ErasureError, /too many shards missing: 5 > parityShards \(4\)/],
    ['reconstructInto target present', () => rs.reconstructInto(with_(0, null), [1], [new Uint8Array(8)]), RangeError, /must be the index of a missing shard/],
    ['reconstructInto short output', () => rs.reconstructInto(with_(0, null), [0], [new Uint8Array(7)]), RangeError, /outputs\[0\]\.length must equal the shard length/],
  );
  for (const [name, fn, type, msg] of table) t.throws(fn, type as never, name) && t.throws(fn, { message: msg }, `${name}: message`);
  const err = (() => { try { rs.reconstruct(ok().map((s, i) => (i < 5 ? null : s))); } catch (e) { return e; } })() as ErasureError;
  t.equal(err.code, 'ERR_ERASURE');
  t.doesNotThrow(() => new ReedSolomon({ dataShards: 200, parityShards: 56 }), 'k+m = 256 accepted');
  t.doesNotThrow(() => new ReedSolomon({ dataShards: 1, parityShards: 0 }).encode([new Uint8Array(0)]), 'k=1, m=0, empty');
});
