// A put's stripe on the native pool (native/stripe-seal.cc) against the worker task it stands in for
// (tasks.ts sealStripe): the same chunks and tags, byte for byte, for every stripe shape; bad arguments refused.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { nativeGcm } from '../dist/aead/native-gcm.js';
import { setNativePool } from '../dist/aead/native-batch.js';
import { sealStripeNatively } from '../dist/object/native-stripe.js';
import { sealStripe, stripeBufferBytes, TASK_SEAL_STRIPE, type SealStripeTask } from '../dist/object/tasks.js';
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

t.test('the same chunks and tags as the worker task, for every stripe shape', { skip }, async (t) => {
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
  ];
  for (const [k, m, S, n, last, stripe] of shapes) {
    const plain = randomBytes(Math.max(n, 1));
    const worker = task(k, m, S, stripe, last, plain, n);
    const native = task(k, m, S, stripe, last, plain, n);
    const expected = sealStripe(worker);
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
