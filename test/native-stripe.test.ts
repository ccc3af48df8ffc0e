// Stripes on the native pool (native/stripe-seal.cc) against the worker tasks they stand in for (tasks.ts): a put's
// seal gives the same chunks and tags byte for byte, a get's open the same plaintext and result, for every stripe
// shape; damage goes back to the worker; bad arguments are refused.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { nativeGcm } from '../dist/aead/native-gcm.js';
import { setNativePool } from '../dist/aead/native-batch.js';
import { chunkTag } from '../dist/object/format.js';
import { openStripeNatively, sealStripeNatively } from '../dist/object/native-stripe.js';
import {
  openStripe, sealStripe, stripeBufferBytes, TASK_OPEN_STRIPE, TASK_SEAL_STRIPE, type OpenStripeTask, type SealStripeTask,
} from '../dist/object/tasks.js';
import { allocShared } from '../dist/pool/shared-memory.js';
import { ReedSolomon } from '../dist/erasure/reed-solomon.js';

const skip = nativeGcm?.sealStripe ? false : 'hsm_gcm addon not built';
const payloadKey = randomBytes(32);
const chunkKey = randomBytes(32);
const noncePrefix = randomBytes(7);

function task(k: number, m: number, segmentBytes: number, stripe: number, isLast: boolean, plain: Uint8Array, plainBytes: number): SealStripeTask {
  const buffer = allocShared(stripeBufferBytes(k, m, segmentBytes));
  buffer.set(randomBytes(buffer.length)); // whatever a recycled slab held before
  return { kind: TASK_SEAL_STRIPE, k, m, segmentBytes, stripe, isLast, plain, plainBytes, buffer, payloadKey, noncePrefix, chunkKey };
}

// Each AES-GCM kernel of the addon seals the native stripe; the worker task's bytes come from the OpenSSL one.
const kernels = nativeGcm?.kernels ?? ['openssl'];
const initialKernel = nativeGcm?.kernel?.();
for (const kernel of kernels)
t.test(`${kernel}: the same chunks and tags as the worker task, for every stripe shape`, { skip }, async (t) => {
  t.teardown(() => void (initialKernel && nativeGcm!.setKernel!(initialKernel)));
  // [k, m, segment bytes, plaintext bytes, last, stripe index]
  const shapes: [number, number, number, number, boolean, number][] = [
    [10, 4, 1000, 10_000, false, 0], // full, not last
    [10, 4, 1000, 10_000, true, 3], // full and last
    [10, 4, 1000, 9_995, true, 0], // short last stripe: segments straddle chunks
    [10, 4, 104_858, 1 << 20, true, 0], // a 1 MiB object with fitted segments
    [4, 2, 4096, 0, true, 0], // the empty object
    [1, 0, 100, 50, true, 0], // no parity
    [3, 5, 257, 3 * 257 - 1, true, 9],
    [16, 16, 65_536, 16 * 65_536, false, 70_000], // a large stripe index
    [2, 1, 1, 1, true, 0],
    [10, 4, 4096, 3000, true, 0], // one segment (and its tag) across all ten data chunks
    [7, 3, 100, 150, true, 2], // chunks of 26 bytes: a chunk boundary inside the first segment's tag
  ];
  for (const [k, m, S, n, last, stripe] of shapes) {
    const plain = randomBytes(Math.max(n, 1));
    const worker = task(k, m, S, stripe, last, plain, n);
    const native = task(k, m, S, stripe, last, plain, n);
    nativeGcm!.setKernel?.('openssl');
    const expected = sealStripe(worker);
    nativeGcm!.setKernel?.(kernel);
    const got = await sealStripeNatively(native, 2);
    t.same(got, expected, `${k}+${m} S=${S} n=${n}: chunk size`);
    const slots = (k + m) * (expected.chunkBytes + 16);
    t.ok(Buffer.from(native.buffer.subarray(0, slots)).equals(Buffer.from(worker.buffer.subarray(0, slots))), `${k}+${m} S=${S} n=${n} last=${last}: same bytes`);
  }
});

t.test('many stripes at once (a put pipeline): each its own bytes', { skip }, async (t) => {
  const plains = Array.from({ length: 32 }, () => randomBytes(8 * 4096));
  const natives = plains.map((p, i) => task(8, 3, 4096, i, false, p, p.length));
  const results = await Promise.all(natives.map((x) => sealStripeNatively(x, 2)));
  for (const [i, p] of plains.entries()) {
    const worker = task(8, 3, 4096, i, false, p, p.length);
    const { chunkBytes } = sealStripe(worker);
    t.equal(results[i]!.chunkBytes, chunkBytes);
    const slots = 11 * (chunkBytes + 16);
    if (!Buffer.from(natives[i]!.buffer.subarray(0, slots)).equals(Buffer.from(worker.buffer.subarray(0, slots)))) t.fail(`stripe ${i} differs`);
  }
});

t.test('the native pool switched off: no native stripe (the caller uses a worker)', { skip }, async (t) => {
  const before = setNativePool(false);
  try {
    t.equal(sealStripeNatively(task(2, 1, 16, 0, true, randomBytes(8), 8), 2), undefined);
  } finally {
    setNativePool(before);
  }
});

t.test('the addon checks its arguments', { skip }, async (t) => {
  const rs = new ReedSolomon({ dataShards: 4, parityShards: 2 });
  const tables = rs.nativeEncodeTables()!;
  const S = 64;
  const buffer = allocShared(stripeBufferBytes(4, 2, S));
  const plain = randomBytes(4 * S);
  const call = (over: Partial<Record<string, unknown>>) => () => {
    const a = { payloadKey, noncePrefix, chunkKey, S, k: 4, m: 2, stripe: 0, isLast: false, plain, plainBytes: 4 * S, buffer, tables, kernel: rs.kernel, ...over };
    nativeGcm!.sealStripe!(a.payloadKey as Uint8Array, a.noncePrefix as Uint8Array, a.chunkKey as Uint8Array, a.S as number, a.k as number, a.m as number, a.stripe as number, a.isLast as boolean, a.plain as Uint8Array, a.plainBytes as number, a.buffer as Uint8Array, a.tables as Uint8Array, a.kernel as string, () => {});
  };
  t.throws(call({ payloadKey: randomBytes(16) }), RangeError, 'a short key');
  t.throws(call({ noncePrefix: randomBytes(12) }), RangeError, 'a nonce prefix of the wrong length');
  t.throws(call({ plainBytes: 4 * S - 1 }), RangeError, 'not last and not whole');
  t.throws(call({ plainBytes: 4 * S + 1 }), RangeError, 'more than the plain buffer');
  t.throws(call({ buffer: allocShared(100) }), RangeError, 'a buffer shorter than the layout');
  t.throws(call({ tables: new Uint8Array(10) }), RangeError, 'tables of the wrong size');
  t.throws(call({ kernel: 'nonesuch' }), RangeError, 'an unknown kernel');
  t.throws(call({ k: 200, m: 100 }), RangeError, 'k + m over 256');
  t.throws(call({ plain: buffer.subarray(0, 4 * S) }), RangeError, 'plain inside the stripe buffer');
  t.throws(call({ stripe: 2 ** 31 }), RangeError, 'segment index past 2^32');
  t.throws(call({ plain: 'x' }), TypeError, 'plain not a Uint8Array');
});

// ---- a get's healthy stripe

/** A sealed stripe as a get reads it, and an open task for segments lo..hi of an object of `total` bytes. */
function sealedStripe(k: number, m: number, S: number, stripe: number, total: number) {
  const stripes = Math.max(1, Math.ceil(total / (k * S)));
  const isLast = stripe === stripes - 1;
  const n = isLast ? total - stripe * k * S : k * S;
  const seal = task(k, m, S, stripe, isLast, randomBytes(Math.max(n, 1)), n);
  const { chunkBytes } = sealStripe(seal);
  const segments = Math.max(1, Math.ceil(total / S));
  const open = (lo: number, hi: number, present: number[], rebuild: number[]): OpenStripeTask => {
    let plainBytes = 0;
    for (let i = lo; i <= hi; i++) plainBytes += i === segments - 1 ? total - i * S : S;
    return {
      kind: TASK_OPEN_STRIPE, k, m, stripe, chunkBytes, short: chunkBytes !== S + 16, buffer: Uint8Array.from(seal.buffer) as Uint8Array,
      present, rebuild, tagRebuilt: false, chunkKey,
      decrypt: { payloadKey, noncePrefix, segmentBytes: S, firstSegment: lo, lastSegment: hi, segments, plaintextBytes: total, out: new Uint8Array(plainBytes) },
    };
  };
  return { seal, chunkBytes, open, plain: seal.plain.subarray(0, n) };
}
const shared = (t: OpenStripeTask): OpenStripeTask => {
  const b = allocShared(t.buffer.length);
  b.set(t.buffer);
  return { ...t, buffer: b };
};

t.test('a healthy stripe opens natively to what the worker task gives', { skip }, async (t) => {
  // [k, m, S, object bytes, stripe, first, last]
  const cases: [number, number, number, number, number, number, number][] = [
    [10, 4, 1000, 25_000, 0, 0, 9], [10, 4, 1000, 25_000, 1, 13, 15], [10, 4, 1000, 25_000, 2, 20, 24], // full, then short last
    [10, 4, 104_858, 1 << 20, 0, 0, 9], [10, 4, 104_858, 1 << 20, 0, 4, 4], // fitted 1 MiB: a short stripe
    [4, 2, 4096, 0, 0, 0, 0], [1, 0, 100, 250, 2, 2, 2], [3, 5, 257, 5000, 6, 18, 19],
    [7, 3, 100, 150, 0, 0, 1], [7, 3, 100, 150, 0, 1, 1], // chunks of 26 bytes: a tag across a chunk boundary
    [10, 4, 4096, 3000, 0, 0, 0], // one segment over all ten data chunks
  ];
  for (const [k, m, S, total, stripe, lo, hi] of cases) {
    const s = sealedStripe(k, m, S, stripe, total);
    const all = Array.from({ length: k }, (_, j) => j);
    const worker = shared(s.open(lo, hi, all, all));
    const native = shared(s.open(lo, hi, all, all));
    const expected = openStripe(worker);
    const got = await openStripeNatively(native, 2);
    t.same(got, expected, `${k}+${m} S=${S} ${total} B, stripe ${stripe}, segments ${lo}..${hi}: result`);
    t.ok(Buffer.from(native.decrypt!.out).equals(Buffer.from(worker.decrypt!.out)), 'same plaintext');
    const from = (lo - stripe * k) * S;
    t.ok(Buffer.from(native.decrypt!.out).equals(Buffer.from(s.plain.subarray(from, from + native.decrypt!.out.length))), 'the plaintext sealed');
  }
});

t.test('anything to rebuild or a bad chunk tag goes back to the worker; a bad segment is a decrypt failure', { skip }, async (t) => {
  const s = sealedStripe(4, 2, 512, 0, 4 * 512);
  const all = [0, 1, 2, 3];
  t.equal(await openStripeNatively(shared(s.open(0, 3, [0, 1, 2, 4], all)), 2), undefined, 'a needed chunk missing');
  const badTag = shared(s.open(0, 3, all, all));
  badTag.buffer[5] ^= 1;
  t.equal(await openStripeNatively(badTag, 2), undefined, 'a chunk that fails its tag');
  t.same(openStripe(badTag).bad, [0], 'which the worker task then finds');
  const badSegment = shared(s.open(0, 3, all, all));
  const slot = s.chunkBytes + 16;
  badSegment.buffer[slot + 7] ^= 1; // chunk 1 altered, its chunk tag made again: the segment's own tag catches it
  chunkTag(chunkKey, 1, 0, badSegment.buffer.subarray(slot, slot + s.chunkBytes), badSegment.buffer.subarray(slot + s.chunkBytes, 2 * slot));
  t.same(await openStripeNatively(badSegment, 2), { bad: [], ok: true, decryptFailed: true });
  t.ok(badSegment.decrypt!.out.every((b) => b === 0), 'no plaintext released');
});

t.test('openStripe checks its arguments', { skip }, async (t) => {
  const s = sealedStripe(4, 2, 512, 0, 4 * 512);
  const base = shared(s.open(0, 3, [0, 1, 2, 3], [0, 1, 2, 3]));
  const call = (over: Record<string, unknown>) => () => {
    const a = { ckey: chunkKey, k: 4, m: 2, stripe: 0, chunk: s.chunkBytes, short: false, buffer: base.buffer, present: Uint8Array.from([0, 1, 2, 3]), pkey: payloadKey, prefix: noncePrefix, S: 512, lo: 0, hi: 3, segments: 4, total: 2048, out: base.decrypt!.out, ...over };
    nativeGcm!.openStripe!(a.ckey as Uint8Array, a.k as number, a.m as number, a.stripe as number, a.chunk as number, a.short as boolean, a.buffer as Uint8Array, a.present as Uint8Array, a.pkey as Uint8Array, a.prefix as Uint8Array, a.S as number, a.lo as number, a.hi as number, a.segments as number, a.total as number, a.out as Uint8Array, () => {});
  };
  t.throws(call({ ckey: randomBytes(31) }), RangeError, 'a short key');
  t.throws(call({ hi: 4 }), RangeError, 'a segment outside the stripe');
  t.throws(call({ out: new Uint8Array(100) }), RangeError, 'out too short');
  t.throws(call({ present: Uint8Array.from([9]) }), RangeError, 'a shard index out of range');
  t.throws(call({ chunk: 600 }), RangeError, 'a chunk larger than a sealed segment');
  t.throws(call({ buffer: allocShared(64) }), RangeError, 'a buffer shorter than the layout');
  t.throws(call({ out: base.buffer.subarray(0, 2048) }), RangeError, 'out inside the stripe buffer');
  t.throws(call({ total: 5000 }), RangeError, 'an object length that does not fit its segments');
  t.throws(call({ short: 1 }), TypeError, 'short not a boolean');
});
