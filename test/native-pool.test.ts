// The native thread pool (native/executor.cc) behind bulk AES-GCM batches and erasure calls: byte-identical to
// the per-segment path and the worker pool, input read in place across chunk boundaries and never modified,
// tampering and aborts, typed errors from the JS checks and again from the C++ ones; every ObjectCipher and
// ErasureService operation run on both paths (native pool and piscina workers).
import t from 'tap';
import { createCipheriv, randomBytes } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import { nativeGcm } from '../dist/aead/native-gcm.js';
import { nativePoolEnabled, openBatch, sealBatch, setNativePool } from '../dist/aead/native-batch.js';
import { native as nativeEc } from '../dist/erasure/native.js';
import { ErasureService, setNativeErasurePool } from '../dist/erasure/service.js';
import { ReedSolomon } from '../dist/erasure/index.js';
import { allocShared } from '../dist/pool/shared-memory.js';
import { openSegments, sealSegments } from '../dist/index.js';
import { fixture, pseudoRandom } from './helpers/aead-fixture.js';

const f = fixture(2);
t.teardown(() => f.close());
const haveNative = !!nativeGcm?.sealBatch;

if (!haveNative && process.env.HSM_GCM_NATIVE !== '0') t.fail('native GCM addon with sealBatch did not load; set HSM_GCM_NATIVE=0 to test without it');

/** Splits `buf` into pieces at random points (views, no copies). */
function pieces(buf: Uint8Array, seed: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  let x = seed;
  for (let at = 0; at < buf.length; ) {
    x = (x * 1103515245 + 12345) >>> 0;
    const n = Math.min(buf.length - at, 1 + (x % 300_000));
    out.push(buf.subarray(at, at + n));
    at += n;
  }
  return out;
}

// Each of the addon's AES-GCM kernels (OpenSSL; intel-ipsec-mb where built and the CPU has VAES) against the
// segments sealed by the OpenSSL one: spans that split blocks anywhere must give the same bytes.
const kernels = nativeGcm?.kernels ?? ['openssl'];
const initialKernel = nativeGcm?.kernel?.();
for (const kernel of kernels)
t.test(`${kernel}: sealBatch/openBatch equal sealSegments/openSegments, input split anywhere, never modified`, { skip: !haveNative && 'no native addon' }, async (t) => {
  t.teardown(() => void (initialKernel && nativeGcm!.setKernel!(initialKernel)));
  const key = randomBytes(32);
  for (const [S, len, last] of [[4096, 4096 * 37 + 5, true], [65536, 65536 * 8, false], [262144, 3 * 262144 + 1, true], [100, 0, true], [16, 16 * 5000, true]] as const) {
    const schedule = { noncePrefix: randomBytes(7), segmentBytes: S };
    const plain = pseudoRandom(len, len + 1);
    const copy = Buffer.from(plain);
    const count = last ? Math.max(1, Math.ceil(len / S)) : len / S;
    const expected = Buffer.alloc(len + 16 * count);
    nativeGcm?.setKernel?.('openssl');
    sealSegments(key, schedule, 7, plain, expected, last);
    nativeGcm?.setKernel?.(kernel);
    const sealed = Buffer.alloc(expected.length);
    await sealBatch(key, schedule, 7, last, pieces(plain, S), sealed, 2);
    t.ok(sealed.equals(expected), `seal S=${S} len=${len}`);
    t.ok(plain.equals(copy), 'input untouched');
    const opened = Buffer.alloc(len);
    t.equal(await openBatch(key, schedule, 7, last, pieces(sealed, len), opened, 2), -1, 'every tag verifies');
    t.ok(opened.equals(plain), `open S=${S}`);
    const check = Buffer.alloc(len);
    t.equal(openSegments(key, schedule, 7, sealed, check, last), -1);
    if (len > 2 * S) {
      const bad = Buffer.from(sealed);
      bad[S + 16 + 3] ^= 1; // segment 1 of the batch
      const out = Buffer.alloc(len, 0xee);
      t.equal(await openBatch(key, schedule, 7, last, [bad], out, 2), 8, 'lowest failing segment index reported');
      t.ok(out.every((b) => b === 0), 'no plaintext left behind');
      t.equal(await openBatch(key, { ...schedule, noncePrefix: randomBytes(7) }, 7, last, [sealed], out, 2) >= 0, true, 'other nonce prefix refused');
      t.equal(await openBatch(key, schedule, 8, last, [sealed], out, 1) >= 0, true, 'other index refused');
    }
  }
});

// The native threads each keep the last key they expanded: batches under many keys at once, on every thread,
// must each be sealed under their own (checked segment by segment against node:crypto).
t.test('concurrent batches under different keys: each sealed and opened under its own', { skip: !haveNative && 'no native addon' }, async (t) => {
  const S = 4096;
  const jobs = Array.from({ length: 24 }, (_, i) => ({ key: randomBytes(32), schedule: { noncePrefix: randomBytes(7), segmentBytes: S }, plain: randomBytes(S * (3 + (i % 5)) + i) }));
  const sealed = await Promise.all(jobs.map(async (j) => {
    const count = Math.ceil(j.plain.length / S);
    const out = Buffer.alloc(j.plain.length + 16 * count);
    await sealBatch(j.key, j.schedule, 0, true, [j.plain], out, 2);
    return out;
  }));
  for (const [i, j] of jobs.entries()) {
    const count = Math.ceil(j.plain.length / S);
    for (let s = 0; s < count; s++) {
      const nonce = Buffer.concat([j.schedule.noncePrefix, Buffer.from([0, 0, 0, s, s === count - 1 ? 1 : 0])]);
      const c = createCipheriv('aes-256-gcm', j.key, nonce);
      const piece = j.plain.subarray(s * S, (s + 1) * S);
      const expected = Buffer.concat([c.update(piece), c.final(), c.getAuthTag()]);
      if (!sealed[i]!.subarray(s * (S + 16), s * (S + 16) + expected.length).equals(expected)) t.fail(`job ${i} segment ${s}`);
    }
  }
  const opened = await Promise.all(jobs.map(async (j, i) => {
    const out = Buffer.alloc(j.plain.length);
    return { failed: await openBatch(j.key, j.schedule, 0, true, [sealed[i]!], out, 2), out };
  }));
  for (const [i, o] of opened.entries()) {
    t.equal(o.failed, -1, `job ${i} verifies`);
    if (!o.out.equals(jobs[i]!.plain)) t.fail(`job ${i} plaintext`);
  }
  const crossed = Buffer.alloc(jobs[0]!.plain.length);
  t.ok((await openBatch(jobs[1]!.key, jobs[0]!.schedule, 0, true, [sealed[0]!], crossed, 2)) >= 0, "another job's key is refused");
});

t.test('native batch arguments: typed errors from JS, and again from C++', { skip: !haveNative && 'no native addon' }, async (t) => {
  const key = randomBytes(32);
  const schedule = { noncePrefix: randomBytes(7), segmentBytes: 1024 };
  const src = randomBytes(2048);
  const dst = Buffer.alloc(2048 + 32);
  t.throws(() => sealBatch(key.subarray(1), schedule, 0, true, [src], dst, 2), RangeError);
  t.throws(() => sealBatch(key, { ...schedule, noncePrefix: randomBytes(6) }, 0, true, [src], dst, 2), RangeError);
  t.throws(() => sealBatch(key, schedule, -1, true, [src], dst, 2), RangeError);
  t.throws(() => sealBatch(key, schedule, 0, true, [src, 'x' as any], dst, 2), TypeError);
  t.throws(() => sealBatch(key, schedule, 0, true, [src], dst, 0), RangeError);
  const g = nativeGcm!;
  const cb = () => {};
  t.throws(() => g.sealBatch!(key, schedule.noncePrefix, 1024, 0, true, [src], dst, 2, undefined, 5 as any), TypeError, 'C++: callback');
  t.throws(() => g.sealBatch!(key.subarray(2), schedule.noncePrefix, 1024, 0, true, [src], dst, 2, undefined, cb), RangeError, 'C++: key');
  t.throws(() => g.sealBatch!(key, schedule.noncePrefix, 1024, 0, true, [src], dst.subarray(1), 2, undefined, cb), RangeError, 'C++: dst length');
  t.throws(() => g.sealBatch!(key, schedule.noncePrefix, 1024, 0, false, [src.subarray(1)], Buffer.alloc(2047 + 32), 2, undefined, cb), RangeError, 'C++: not whole segments');
  t.throws(() => g.sealBatch!(key, schedule.noncePrefix, 1024, 0xffff_ffff, true, [src], dst, 2, undefined, cb), RangeError, 'C++: index overflow');
  t.throws(() => g.sealBatch!(key, schedule.noncePrefix, 1024, 0, true, [dst.subarray(0, 2048)], dst, 2, undefined, cb), RangeError, 'C++: overlap');
  t.throws(() => g.sealBatch!(key, schedule.noncePrefix, 1024, 0, true, [{} as any], dst, 2, undefined, cb), TypeError, 'C++: part type');
  t.throws(() => g.openBatch!(key, schedule.noncePrefix, 1024, 0, true, [src.subarray(0, 10)], Buffer.alloc(0), 2, undefined, cb), RangeError, 'C++: short sealed');
  t.throws(() => g.openBatch!(key, schedule.noncePrefix, 1024, 0, true, [src], dst, 2, new Uint8Array(0), cb), RangeError, 'C++: cancel');
  t.throws(() => (g.setThreads as any)(0), RangeError, 'C++: threads');
  t.throws(() => (g.allocBytes as any)(-1), RangeError, 'C++: alloc length');
});

t.test('allocBytes gives ordinary, writable Buffers', { skip: !haveNative && 'no native addon' }, async (t) => {
  for (const n of [0, 100, 3 << 20]) {
    const b = nativeGcm!.allocBytes!(n);
    t.ok(Buffer.isBuffer(b) && b.length === n && !(b.buffer instanceof SharedArrayBuffer));
    b.fill(7);
    t.ok(b.every((x) => x === 7));
  }
});

for (const native of haveNative ? [true, false] : [false]) {
  const path = native ? 'native pool' : 'worker pool';
  t.test(`ObjectCipher on the ${path}: one-shot, range, streams cross-checked with the other path`, async (t) => {
    const before = setNativePool(native);
    t.teardown(() => void setNativePool(before));
    t.equal(nativePoolEnabled(), native);
    const cipher = f.cipher({ segmentBytes: 64 * 1024, batchBytes: 256 * 1024 });
    const plain = pseudoRandom(5 * 1024 * 1024 + 333, 9);
    const sealed = await cipher.encrypt(plain, { keyId: f.keyId, context: { a: 'b' } });
    setNativePool(!native); // the other path opens it
    t.ok((await cipher.decrypt(sealed, { context: { a: 'b' } })).equals(plain), 'opened by the other path');
    setNativePool(native);
    t.ok((await cipher.decryptRange(sealed, { offset: 70_000, length: 3_000_000, context: { a: 'b' } })).equals(plain.subarray(70_000, 3_070_000)), 'range');
    const bad = Buffer.from(sealed);
    bad[bad.length - 100] ^= 1;
    await t.rejects(cipher.decrypt(bad, { context: { a: 'b' } }), { name: 'DecryptionError' });
    // Streams, with chunk sizes that straddle segment and batch boundaries.
    const parts: Buffer[] = [];
    await pipeline(Readable.from(pieces(plain, 5).map((p) => Buffer.from(p))), cipher.createEncryptStream({ keyId: f.keyId }), new Writable({ write(c, _e, cb) { parts.push(Buffer.from(c)); cb(); } }));
    const streamed = Buffer.concat(parts);
    setNativePool(!native);
    t.ok((await cipher.decrypt(streamed)).equals(plain), 'streamed object opened one-shot by the other path');
    setNativePool(native);
    const out: Buffer[] = [];
    await pipeline(Readable.from(pieces(streamed, 6).map((p) => Buffer.from(p))), cipher.createDecryptStream(), new Writable({ write(c, _e, cb) { out.push(Buffer.from(c)); cb(); } }));
    t.ok(Buffer.concat(out).equals(plain), 'stream decrypt');
    // A writer that reuses one buffer once each write's callback has run: the stream must be done reading it.
    const reuse = Buffer.alloc(300_001);
    const enc = cipher.createEncryptStream({ keyId: f.keyId });
    const sealedParts: Buffer[] = [];
    enc.on('data', (c: Buffer) => sealedParts.push(Buffer.from(c)));
    const ended = new Promise((resolve, reject) => (enc.on('end', resolve), enc.on('error', reject)));
    for (let at = 0; at < plain.length; at += reuse.length) {
      const n = Math.min(reuse.length, plain.length - at);
      plain.copy(reuse, 0, at, at + n);
      await new Promise<void>((resolve, reject) => enc.write(reuse.subarray(0, n), (e) => (e ? reject(e) : resolve())));
      reuse.fill(0xaa); // scribble: must not reach the output
    }
    enc.end();
    await ended;
    t.ok((await cipher.decrypt(Buffer.concat(sealedParts))).equals(plain), 'a reused write buffer is not read after its callback');
    const badStream = Buffer.from(streamed);
    badStream[badStream.length >> 1] ^= 1;
    await t.rejects(pipeline(Readable.from([badStream]), cipher.createDecryptStream(), new Writable({ write(_c, _e, cb) { cb(); } })), { name: 'DecryptionError' });
  });

  t.test(`ErasureService on the ${path}: encode, decode, in place, large and small`, async (t) => {
    const before = setNativeErasurePool(native);
    t.teardown(() => void setNativeErasurePool(before));
    const svc = new ErasureService(f.pool);
    for (const [k, m, len] of [[10, 4, 64 * 1024], [10, 4, (2 << 20) + 64], [4, 2, 3 << 20], [8, 3, 4096 + 7]] as const) {
      const shards = Array.from({ length: k + m }, () => allocShared(len));
      shards.slice(0, k).forEach((s, i) => s.set(pseudoRandom(len, i + 1)));
      await svc.encodeShards(shards, { dataShards: k, parityShards: m });
      const rs = new ReedSolomon({ dataShards: k, parityShards: m });
      t.ok(rs.verify(shards), `${k}+${m} x ${len}: parity verifies`);
      const lost = [0, k, 1].slice(0, Math.min(3, m));
      const survivors = shards.map((s, i) => (lost.includes(i) ? null : s));
      const outputs = lost.map(() => allocShared(len));
      await svc.reconstructShards(survivors, lost, outputs, { dataShards: k, parityShards: m });
      lost.forEach((l, i) => t.ok(Buffer.from(outputs[i]).equals(Buffer.from(shards[l])), `rebuilt shard ${l}`));
      const data = Buffer.concat(shards.slice(0, k).map((s) => Buffer.from(s)));
      const again = await svc.encode(data, { dataShards: k, parityShards: m });
      t.ok(again.every((s, i) => Buffer.from(s).equals(Buffer.from(shards[i]))), 'encode(data)');
      const back = await svc.decode(survivors, { dataShards: k, parityShards: m, size: data.length });
      t.ok(Buffer.from(back).equals(data), 'decode');
    }
  });
}

t.test('mulParallel arguments are checked again in C++', { skip: !nativeEc?.mulParallel && 'no native erasure addon' }, async (t) => {
  const mp = nativeEc!.mulParallel!.bind(nativeEc);
  const kernel = nativeEc!.defaultKernel;
  const tables = new Uint8Array(2 * 3 * nativeEc!.coefTableBytes);
  const ins = [new Uint8Array(128), new Uint8Array(128), new Uint8Array(128)];
  const outs = [new Uint8Array(128), new Uint8Array(128)];
  t.throws(() => mp('nope', tables, 2, 3, ins, outs, 128, 2, 64, undefined), RangeError);
  t.throws(() => mp(kernel, tables.subarray(1), 2, 3, ins, outs, 128, 2, 64, undefined), RangeError);
  t.throws(() => mp(kernel, tables, 2, 3, ins, outs, 129, 2, 64, undefined), RangeError, 'len beyond a shard');
  t.throws(() => mp(kernel, tables, 2, 3, ins, outs, 128, 2, 65, undefined), RangeError, 'item not a multiple of 64');
  t.throws(() => mp(kernel, tables, 2, 3, ins, [ins[0], outs[1]], 128, 2, 64, undefined), RangeError, 'overlap');
  t.throws(() => mp(kernel, tables, 2, 3, ins, outs, 128, 0, 64, undefined), RangeError, 'maxParallel');
  t.throws(() => mp(kernel, tables, 2, 3, ins, outs, 128, 2, 64, 7 as any), TypeError, 'callback');
  t.throws(() => (mp as any)(kernel, tables, 2, 3, ins, outs, 128, 2, 64), TypeError, 'arity');
});

t.test('prepareMul / mulPrepared: the same checks once, then only a tagged handle is accepted', { skip: !nativeEc?.prepareMul && 'no native erasure addon' }, async (t) => {
  const ec = nativeEc!;
  const kernel = ec.defaultKernel;
  const tables = new Uint8Array(2 * 3 * ec.coefTableBytes);
  const ins = [new Uint8Array(128), new Uint8Array(128), new Uint8Array(128)];
  const outs = [new Uint8Array(128), new Uint8Array(128)];
  t.throws(() => ec.prepareMul!('nope', tables, 2, 3, ins, outs, 128), RangeError, 'kernel');
  t.throws(() => ec.prepareMul!(kernel, tables, 2, 3, ins, outs, 129), RangeError, 'len beyond a shard');
  t.throws(() => ec.prepareMul!(kernel, tables, 2, 3, ins, [ins[0]!, outs[1]!], 128), RangeError, 'overlap');
  const handle = ec.prepareMul!(kernel, tables, 2, 3, ins, outs, 128);
  t.doesNotThrow(() => ec.mulPrepared!(handle, 2, 64));
  t.throws(() => ec.mulPrepared!({} as never, 2, 64), TypeError, 'not a handle');
  t.throws(() => ec.mulPrepared!(handle, 0, 64), RangeError, 'maxParallel');
  t.throws(() => ec.mulPrepared!(handle, 2, 65), RangeError, 'item not a multiple of 64');
});
