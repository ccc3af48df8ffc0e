// One-shot round trips: sizes 0, 1 and around every segment boundary, main-thread and pool paths, the
// documented format (checked against an independent reference reader), option validation and limits.
import t from 'tap';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import {
  DEFAULT_SEGMENT_BYTES,
  headerLengthFor,
  MAX_SEGMENTS,
  MIN_SEGMENT_BYTES,
  MAX_SEGMENT_BYTES,
  ObjectCipher,
  POOL_MIN_BYTES,
  canonicalContext,
  maxObjectBytes,
  parseHeader,
  payloadLength,
  plaintextLength,
  segmentCount,
  TAG_BYTES,
} from '../dist/index.js';
import { fixture, pseudoRandom } from './helpers/aead-fixture.js';
import { referenceOpen } from './helpers/reference-format.js';

const f = fixture(2);
t.teardown(() => f.close());

t.test('sizes 0, 1 and around every segment boundary (small segments)', async (t) => {
  const S = 64;
  const cipher = f.cipher({ segmentBytes: S });
  const sizes = new Set<number>([0, 1, 2]);
  for (let k = 1; k <= 6; k++) for (const d of [-1, 0, 1]) sizes.add(k * S + d);
  for (const n of sizes) {
    const plain = randomBytes(n);
    const sealed = await cipher.encrypt(plain, { keyId: f.keyId });
    t.equal(sealed.length, headerLengthFor(72) + payloadLength(n, S), `sealed length for ${n}`);
    t.equal(segmentCount(n, S), n === 0 ? 1 : Math.ceil(n / S));
    t.same(await cipher.decrypt(sealed), plain, `round trip ${n}`);
  }
});

t.test('around segment and pool boundaries with the default segment size', async (t) => {
  const cipher = f.cipher();
  const S = DEFAULT_SEGMENT_BYTES;
  const sizes = [S - 1, S, S + 1, POOL_MIN_BYTES - 1, POOL_MIN_BYTES, POOL_MIN_BYTES + 1, 4 * S + 1, 17 * S, 33 * S - 1];
  for (const n of sizes) {
    const plain = pseudoRandom(n, n);
    const context = { bucket: 'b', object: `o${n}` };
    const sealed = await cipher.encrypt(plain, { keyId: f.keyId, context });
    t.same(await cipher.decrypt(sealed, { context }), plain, `round trip ${n}`);
  }
});

t.test('batches: many batch sizes give the same format', async (t) => {
  for (const batchBytes of [64, 64 * 3, 64 * 1000, 1 << 20]) {
    const cipher = f.cipher({ segmentBytes: 64 * 1024, batchBytes });
    const plain = pseudoRandom(3 * 1024 * 1024 + 5, batchBytes);
    const sealed = await cipher.encrypt(plain, { keyId: f.keyId });
    t.same(await cipher.decrypt(sealed), plain, `batchBytes ${batchBytes}`);
    // A cipher with other settings reads it too: the segment size comes from the header.
    t.same(await f.cipher().decrypt(sealed), plain);
  }
});

t.test('matches the reference reader of the sealed format', async (t) => {
  const cipher = f.cipher({ segmentBytes: 100 });
  const keys = f.keys;
  // Capture the DEK by wrapping the provider.
  let dek: Uint8Array | undefined;
  const spy = new ObjectCipher({
    keys: {
      generateDataKey: async (id, o) => {
        const r = await keys.generateDataKey(id, o);
        dek = Buffer.from(r.plaintext);
        return r;
      },
      unwrap: (w, o) => keys.unwrap(w, o),
      rewrap: (w, o) => keys.rewrap(w, o),
    },
    pool: f.pool,
    segmentBytes: 100,
  });
  for (const n of [0, 1, 99, 100, 101, 250, 5000, 2 * 1024 * 1024 + 3]) {
    const plain = pseudoRandom(n, 7 + n);
    const context = { tenant: 't', n: String(n) };
    const sealed = await spy.encrypt(plain, { keyId: f.keyId, context });
    t.same(referenceOpen(sealed, dek!, canonicalContext(context)), plain, `reference reads ${n}`);
    t.same(await cipher.decrypt(sealed, { context }), plain);
    const h = parseHeader(sealed);
    t.equal(h.segmentBytes, 100);
    t.equal(h.length, 160, '82 + 72 padded to a multiple of 8');
    t.equal(plaintextLength(sealed.length - h.length, 100), n);
  }
});

t.test('fresh DEK, salt and nonce prefix per object', async (t) => {
  const cipher = f.cipher();
  const plain = Buffer.alloc(100);
  const a = parseHeader(await cipher.encrypt(plain, { keyId: f.keyId }));
  const b = parseHeader(await cipher.encrypt(plain, { keyId: f.keyId }));
  t.notSame(Buffer.from(a.salt), Buffer.from(b.salt));
  t.notSame(Buffer.from(a.noncePrefix), Buffer.from(b.noncePrefix));
  t.notSame(Buffer.from(a.wrappedDek), Buffer.from(b.wrappedDek));
  t.notSame(Buffer.from(a.commitment), Buffer.from(b.commitment));
});

t.test('caller buffers are never modified or detached; shared and offset inputs work', async (t) => {
  const cipher = f.cipher({ segmentBytes: 64 * 1024 });
  for (const n of [10, 3 * 1024 * 1024]) {
    const backing = pseudoRandom(n + 16, n);
    const input = backing.subarray(5, 5 + n);
    const copy = Buffer.from(input);
    const sealed = await cipher.encrypt(input, { keyId: f.keyId });
    t.same(input, copy, 'plaintext unchanged');
    t.equal(input.buffer.byteLength, backing.buffer.byteLength, 'not detached');
    const sealedCopy = Buffer.from(sealed);
    const sealedOffset = Buffer.concat([Buffer.alloc(3), sealed]).subarray(3);
    t.same(await cipher.decrypt(sealedOffset), copy);
    t.same(sealed, sealedCopy, 'sealed unchanged');
    const shared = new Uint8Array(new SharedArrayBuffer(n));
    shared.set(copy);
    t.same(await cipher.decrypt(await cipher.encrypt(shared, { keyId: f.keyId })), copy, 'SharedArrayBuffer input');
  }
});

t.test('property: random sizes and segment sizes round trip', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: 5000 }), fc.integer({ min: MIN_SEGMENT_BYTES, max: 700 }), fc.integer({ min: 1, max: 0xffff_ffff }), async (n, S, seed) => {
      const cipher = f.cipher({ segmentBytes: S });
      const plain = pseudoRandom(n, seed); // from the property's inputs, so a failure replays from fast-check's seed
      return Buffer.from(await cipher.decrypt(await cipher.encrypt(plain, { keyId: f.keyId }))).equals(plain);
    }),
    { numRuns: 200 },
  );
  t.pass('200 runs');
});

t.test('option validation', async (t) => {
  const { keys, pool } = f;
  t.throws(() => new ObjectCipher(undefined as any), new TypeError('options must be an object'));
  t.throws(() => new ObjectCipher({ keys: {} as any, pool }), new TypeError('options.keys must be a DataKeyProvider (generateDataKey, unwrap, rewrap)'));
  t.throws(() => new ObjectCipher({ keys, pool: {} as any }), new TypeError('options.pool must be a WorkerPool'));
  t.throws(() => new ObjectCipher({ keys, pool, segmentBytes: 1.5 }), new TypeError('options.segmentBytes must be a positive integer'));
  t.throws(() => new ObjectCipher({ keys, pool, segmentBytes: MIN_SEGMENT_BYTES - 1 }), RangeError);
  t.throws(() => new ObjectCipher({ keys, pool, segmentBytes: MAX_SEGMENT_BYTES + 1 }), RangeError);
  t.throws(() => new ObjectCipher({ keys, pool, batchBytes: 0 }), new TypeError('options.batchBytes must be a positive integer'));
  const cipher = f.cipher();
  await t.rejects(cipher.encrypt(Buffer.alloc(1), { keyId: '' }), new TypeError('options.keyId must be a non-empty string'));
  await t.rejects(cipher.encrypt(Buffer.alloc(1), { keyId: 3 } as any), new TypeError('options.keyId must be a non-empty string'));
  await t.rejects(cipher.encrypt('text' as any, { keyId: f.keyId }), new TypeError('plaintext must be a Uint8Array'));
  await t.rejects(cipher.encrypt(Buffer.alloc(1), undefined as any), new TypeError('options must be an object'));
  await t.rejects(cipher.encrypt(Buffer.alloc(1), { keyId: f.keyId, context: { a: 1 } as any }), new TypeError('options.context.a must be a string'));
  await t.rejects(cipher.encrypt(Buffer.alloc(1), { keyId: f.keyId, signal: {} as any }), new TypeError('options.signal must be an AbortSignal'));
  await t.rejects(cipher.decrypt([1, 2] as any), new TypeError('sealed must be a Uint8Array'));
  await t.rejects(cipher.decryptRange(Buffer.alloc(1), { offset: -1, length: 1 }), new TypeError('options.offset must be a non-negative integer'));
  await t.rejects(cipher.decryptRange(Buffer.alloc(1), { offset: 0, length: 0.5 }), new TypeError('options.length must be a non-negative integer'));
  t.throws(() => cipher.createEncryptStream({ keyId: '' }), new TypeError('options.keyId must be a non-empty string'));
  await t.rejects(cipher.encrypt(Buffer.alloc(1), { keyId: 'no-such-key' }), { code: 'ERR_KEY_NOT_FOUND' });
  const aborted = AbortSignal.abort();
  await t.rejects(cipher.encrypt(Buffer.alloc(1), { keyId: f.keyId, signal: aborted }), { name: 'AbortError' });
});

t.test('limits', async (t) => {
  t.equal(MAX_SEGMENTS, 2 ** 32);
  t.equal(maxObjectBytes(DEFAULT_SEGMENT_BYTES), 2 ** 32 * DEFAULT_SEGMENT_BYTES);
  // plaintextLength rejects impossible payload shapes.
  t.throws(() => plaintextLength(TAG_BYTES - 1, 64), { code: 'ERR_DECRYPTION' });
  t.throws(() => plaintextLength(64 + TAG_BYTES + 5, 64), { code: 'ERR_DECRYPTION' }, 'tail shorter than a tag');
  t.throws(() => plaintextLength(64 + TAG_BYTES + TAG_BYTES, 64), { code: 'ERR_DECRYPTION' }, 'empty final segment after a full one');
  t.equal(plaintextLength(TAG_BYTES, 64), 0);
  t.equal(plaintextLength(64 + TAG_BYTES, 64), 64);
  t.equal(plaintextLength(2 * (64 + TAG_BYTES), 64), 128);
});
