// Pool execution details: slab reuse, concurrent objects and streams through one cipher, shared inputs and
// outputs, abort, and what workers receive (no cloned buffers, no DEK).
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SlabPool, SLAB_GRANULE_BYTES } from '../dist/pool/slab-pool.js';
import { runBatches } from '../dist/aead/batch-runner.js';
import { allocShared } from '../dist/pool/shared-memory.js';
import { WorkerPool } from '../dist/pool/pool.js';
import { ObjectCipher, sealSegments, openSegments } from '../dist/index.js';
import { setNativePool } from '../dist/aead/native-batch.js';
import { fixture, pseudoRandom } from './helpers/aead-fixture.js';

const f = fixture(2);
t.teardown(() => f.close());

t.test('SlabPool reuses, rounds up, bounds what it keeps, zeroes what it drops', async (t) => {
  const pool = new SlabPool(3 * SLAB_GRANULE_BYTES);
  const a = pool.acquire(10);
  t.equal(a.length, SLAB_GRANULE_BYTES);
  t.ok(a.buffer instanceof SharedArrayBuffer);
  a.fill(7);
  pool.release(a);
  t.equal(pool.acquire(SLAB_GRANULE_BYTES), a, 'same slab back');
  const big = pool.acquire(2 * SLAB_GRANULE_BYTES + 1);
  t.equal(big.length, 3 * SLAB_GRANULE_BYTES);
  pool.release(big);
  pool.release(a); // over the bound: dropped and zeroed
  t.ok(a.every((b) => b === 0), 'dropped slab zeroed');
  pool.clear();
  t.ok(big.every((b) => b === 0), 'clear() zeroes');
});

t.test('runBatches: shared destination is written in place; plain destination via slabs; same bytes', async (t) => {
  const key = randomBytes(32);
  const noncePrefix = randomBytes(7);
  const S = 4096;
  const plain = pseudoRandom(40 * S + 100, 5);
  const count = 41;
  const expected = new Uint8Array(plain.length + count * 16);
  sealSegments(key, { noncePrefix, segmentBytes: S }, 0, plain, expected, true);
  const keySlot = allocShared(32);
  keySlot.set(key);
  for (const shared of [false, true]) {
    const dst = shared ? allocShared(expected.length) : new Uint8Array(expected.length);
    const ok = await runBatches({
      kind: 'aead.seal', pool: f.pool, slabs: new SlabPool(1 << 22), keySlot, noncePrefix, segmentBytes: S,
      firstIndex: 0, segmentCount: count, endsObject: true, src: plain, dst, segmentsPerBatch: 3, maxInFlight: 4,
    });
    t.ok(ok);
    t.same(Buffer.from(dst), Buffer.from(expected), shared ? 'shared dst' : 'plain dst');
    const back = shared ? allocShared(plain.length) : new Uint8Array(plain.length);
    t.ok(await runBatches({
      kind: 'aead.open', pool: f.pool, slabs: new SlabPool(1 << 22), keySlot, noncePrefix, segmentBytes: S,
      firstIndex: 0, segmentCount: count, endsObject: true, src: dst, dst: back, segmentsPerBatch: 5, maxInFlight: 2,
    }));
    t.same(Buffer.from(back), plain);
    const bad = new Uint8Array(back.length);
    const tampered = Buffer.from(expected);
    tampered[7 * (S + 16) + 3] ^= 1;
    t.notOk(await runBatches({
      kind: 'aead.open', pool: f.pool, slabs: new SlabPool(1 << 22), keySlot, noncePrefix, segmentBytes: S,
      firstIndex: 0, segmentCount: count, endsObject: true, src: tampered, dst: bad, segmentsPerBatch: 5, maxInFlight: 2,
    }), 'a bad tag in batch 2 fails the job');
  }
  const direct = new Uint8Array(plain.length);
  t.equal(openSegments(key, { noncePrefix, segmentBytes: S }, 0, expected, direct, true), -1);
});

t.test('many objects and streams at once through one cipher', async (t) => {
  const cipher = f.cipher({ segmentBytes: 64 * 1024, batchBytes: 256 * 1024 });
  const inputs = Array.from({ length: 12 }, (_, i) => pseudoRandom(i * 700_000 + 13, i + 1));
  const sealed = await Promise.all(inputs.map((p, i) => cipher.encrypt(p, { keyId: f.keyId, context: { i: String(i) } })));
  const opened = await Promise.all(sealed.map((s, i) => cipher.decrypt(s, { context: { i: String(i) } })));
  opened.forEach((o, i) => t.ok(o.equals(inputs[i]), `object ${i}`));
  const streamed = await Promise.all(
    inputs.map(async (p, i) => {
      const parts: Buffer[] = [];
      await pipeline(Readable.from([p.subarray(0, 99), p.subarray(99)]), cipher.createEncryptStream({ keyId: f.keyId, context: { s: String(i) } }), cipher.createDecryptStream({ context: { s: String(i) } }), new Writable({ write(c, _e, cb) { parts.push(c); cb(); } }));
      return Buffer.concat(parts);
    }),
  );
  streamed.forEach((o, i) => t.ok(o.equals(inputs[i]), `stream ${i}`));
  const ranges = await Promise.all(sealed.map((s, i) => cipher.decryptRange(s, { offset: Math.floor(inputs[i].length / 3), length: Math.floor(inputs[i].length / 3), context: { i: String(i) } })));
  ranges.forEach((r, i) => t.ok(r.equals(inputs[i].subarray(Math.floor(inputs[i].length / 3), 2 * Math.floor(inputs[i].length / 3))), `range ${i}`));
});

t.test('outputs are ordinary Buffers; the DEK never reaches a worker (worker-pool path)', async (t) => {
  // The native pool (when built) runs these segments without any pool task: check the worker path here.
  const before = setNativePool(false);
  t.teardown(() => void setNativePool(before));
  const seen: unknown[] = [];
  const pool = f.pool;
  const spyPool = { threads: pool.threads, run: (task: any, signal?: AbortSignal) => (seen.push(task), pool.run(task, signal)) } as unknown as WorkerPool;
  let dek: Buffer | undefined;
  const cipher = new ObjectCipher({
    keys: { ...f.keys, generateDataKey: async (id: string, o: { aad: Uint8Array }) => { const r = await f.keys.generateDataKey(id, o); dek = Buffer.from(r.plaintext); return r; }, unwrap: f.keys.unwrap.bind(f.keys), rewrap: f.keys.rewrap.bind(f.keys) },
    pool: spyPool,
  });
  const plain = pseudoRandom(5 * 1024 * 1024, 3);
  const sealed = await cipher.encrypt(plain, { keyId: f.keyId });
  t.notOk(sealed.buffer instanceof SharedArrayBuffer, 'sealed is plain memory');
  const back = await cipher.decrypt(sealed);
  t.notOk(back.buffer instanceof SharedArrayBuffer, 'plaintext is plain memory');
  t.ok(seen.length > 2, `${seen.length} tasks`);
  for (const task of seen as any[]) {
    for (const field of ['key', 'src', 'dst']) t.ok(task[field].buffer instanceof SharedArrayBuffer, `${field} is shared (not cloned)`);
    t.ok(task.noncePrefix.buffer.byteLength <= 64, 'nonce prefix is its own small buffer');
    t.notSame(Buffer.from(task.key), dek, 'a task carries the derived payload key, not the DEK');
    t.ok(task.key.every((b: number) => b === 0), 'payload key slot zeroed after the operation');
  }
});

for (const native of [true, false]) {
  t.test(`abort while a large object is on the pool (${native ? 'native pool if built' : 'worker pool'})`, async (t) => {
    const before = setNativePool(native);
    t.teardown(() => void setNativePool(before));
    const cipher = f.cipher();
    const controller = new AbortController();
    const run = cipher.encrypt(pseudoRandom(64 * 1024 * 1024, 1), { keyId: f.keyId, signal: controller.signal });
    setImmediate(() => controller.abort());
    await t.rejects(run, { name: 'AbortError' });
    // The pool still works afterwards.
    const p = pseudoRandom(3 * 1024 * 1024, 2);
    t.ok((await cipher.decrypt(await cipher.encrypt(p, { keyId: f.keyId }))).equals(p));
  });
}
