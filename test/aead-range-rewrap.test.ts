// decryptRange against slices, rewrapHeader after rotation, root key state, and the pool paths under tamper.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { DecryptionError, HEADER_FIXED_BYTES, KeyStateError, ObjectCipher, parseHeader } from '../dist/index.js';
import { canonicalContext } from '../dist/aead/context.js';
import { encodeHeader, encodeHeaderCore } from '../dist/aead/header.js';
import { deriveObjectKeys } from '../dist/aead/key-schedule.js';
import { sealSegment } from '../dist/aead/segment.js';
import { fixture, pseudoRandom } from './helpers/aead-fixture.js';
import { checkDisabledRootKeyStopsObjects } from './helpers/aead-key-state.js';

const f = fixture(2);
t.teardown(() => f.close());

t.test('decryptRange over random ranges equals the slice', async (t) => {
  for (const [S, n] of [[64, 1000], [64, 64 * 7], [256 * 1024, 5 * 1024 * 1024 + 99], [64 * 1024, 64 * 1024]] as const) {
    const cipher = f.cipher({ segmentBytes: S });
    const plain = pseudoRandom(n, S + n);
    const context = { r: 'x' };
    const sealed = await cipher.encrypt(plain, { keyId: f.keyId, context });
    const ranges: Array<[number, number]> = [[0, 0], [0, n], [0, 1], [n - 1, 1], [n, 0], [S - 1, 2], [S, S], [0, S + 1]];
    let x = n;
    const rnd = (m: number) => ((x = (x * 1103515245 + 12345) >>> 0) % (m + 1));
    for (let i = 0; i < 60; i++) {
      const offset = rnd(n);
      ranges.push([offset, rnd(n - offset)]);
    }
    for (const [offset, length] of ranges.filter(([o, l]) => o + l <= n)) {
      const got = await cipher.decryptRange(sealed, { offset, length, context });
      if (!got.equals(plain.subarray(offset, offset + length))) t.fail(`S=${S} n=${n} range ${offset}+${length}`);
    }
    await t.rejects(cipher.decryptRange(sealed, { offset: n, length: 1, context }), RangeError, 'past the end');
    await t.rejects(cipher.decryptRange(sealed, { offset: 0, length: 1, context: {} }), DecryptionError, 'wrong context');
    await t.rejects(cipher.decryptRange(sealed, { offset: 0, length: 0 }), DecryptionError, 'empty range still checks the context');
  }
});

t.test('decryptRange detects truncation when it reaches the claimed end', async (t) => {
  const S = 64;
  const cipher = f.cipher({ segmentBytes: S });
  const plain = randomBytes(10 * S);
  const sealed = await cipher.encrypt(plain, { keyId: f.keyId });
  const h = parseHeader(sealed).length;
  const truncated = sealed.subarray(0, h + 6 * (S + 16)); // six whole segments: looks like a 384-byte object
  t.same(await cipher.decryptRange(truncated, { offset: 10, length: 100 }), plain.subarray(10, 110), 'authentic middle still reads');
  await t.rejects(cipher.decryptRange(truncated, { offset: 5 * S, length: 10 }), DecryptionError, 'range in the fake last segment');
  await t.rejects(cipher.decryptRange(truncated, { offset: 7 * S, length: 10 }), DecryptionError, 'range past the fake end: DecryptionError, not RangeError');
});

t.test('rewrapHeader after rotation keeps length and payload and still decrypts', async (t) => {
  const cipher = f.cipher({ segmentBytes: 1024 });
  const keys = f.keys;
  const keyId = keys.createKey('rotating');
  const context = { bucket: 'b', object: 'rot' };
  const plain = randomBytes(5000);
  const sealed = await cipher.encrypt(plain, { keyId, context });
  const h = parseHeader(sealed);
  t.equal(keys.versionOf(h.wrappedDek), 1);
  keys.rotate(keyId);
  const rotated = await cipher.rewrapHeader(sealed, { context });
  t.equal(rotated.length, sealed.length, 'same length');
  t.same(rotated.subarray(h.length), sealed.subarray(h.length), 'payload bytes untouched');
  t.same(rotated.subarray(0, HEADER_FIXED_BYTES), sealed.subarray(0, HEADER_FIXED_BYTES), 'header before the wrapped DEK untouched');
  t.notSame(rotated.subarray(HEADER_FIXED_BYTES, h.length), sealed.subarray(HEADER_FIXED_BYTES, h.length), 'wrapped DEK changed');
  t.equal(keys.versionOf(parseHeader(rotated).wrappedDek), 2, 'wrapped under the newest version');
  t.same(await cipher.decrypt(rotated, { context }), plain);
  t.same(await cipher.decrypt(sealed, { context }), plain, 'the old header still opens (old versions unwrap)');
  // A header-only prefix works too: the service rewrites just those bytes.
  const headerOnly = await cipher.rewrapHeader(sealed.subarray(0, h.length), { context });
  t.equal(headerOnly.length, h.length);
  t.same(await cipher.decrypt(Buffer.concat([headerOnly, sealed.subarray(h.length)]), { context }), plain);
  // No context needed (issue #9, item 11): the DEK is wrapped with a fixed AAD, the context bound by the commitment.
  keys.rotate(keyId);
  const noContext = await cipher.rewrapHeader(sealed);
  t.equal(keys.versionOf(parseHeader(noContext).wrappedDek), 3, 'rewrapped without a context');
  t.same(await cipher.decrypt(noContext, { context }), plain, 'decrypts with its context');
  await t.rejects(cipher.decrypt(noContext, { context: {} }), DecryptionError, 'and only with it');
  // Not a sealed object.
  await t.rejects(cipher.rewrapHeader(Buffer.alloc(300)), DecryptionError);
  // A provider returning a different length is refused with RangeError, nothing written.
  const longer = new ObjectCipher({
    keys: { generateDataKey: keys.generateDataKey.bind(keys), unwrap: keys.unwrap.bind(keys), rewrap: async (w, o) => Buffer.concat([await keys.rewrap(w, o), Buffer.alloc(1)]) },
    pool: f.pool,
  });
  await t.rejects(longer.rewrapHeader(sealed, { context }), RangeError);
  t.same(sealed.subarray(h.length), rotated.subarray(h.length));
});

t.test('disabled root key: every object operation fails with KeyStateError (memory provider)', async (t) => {
  const keyId = f.keys.createKey('disable-me');
  await checkDisabledRootKeyStopsObjects(t, {
    cipher: f.cipher(),
    keyId,
    disable: () => f.keys.disable(keyId),
    enable: () => f.keys.enable(keyId),
  });
  t.ok(KeyStateError);
});

t.test('pool paths: flips, swaps and truncation of a large object fail', async (t) => {
  const S = 64 * 1024;
  const cipher = f.cipher({ segmentBytes: S, batchBytes: 4 * S });
  const plain = pseudoRandom(40 * S + 5, 9);
  const sealed = await cipher.encrypt(plain, { keyId: f.keyId });
  const h = parseHeader(sealed).length;
  const seg = (i: number) => sealed.subarray(h + i * (S + 16), h + (i + 1) * (S + 16));
  const flips = [h + 5, h + 17 * (S + 16) + 100, sealed.length - 1];
  for (const at of flips) {
    const copy = Buffer.from(sealed);
    copy[at] ^= 0x80;
    await t.rejects(cipher.decrypt(copy), DecryptionError, `flip at ${at}`);
  }
  const swapped = Buffer.concat([sealed.subarray(0, h), seg(1), seg(0), sealed.subarray(h + 2 * (S + 16))]);
  await t.rejects(cipher.decrypt(swapped), DecryptionError, 'swap in the first batch');
  const swappedBatches = Buffer.concat([sealed.subarray(0, h + 4 * (S + 16)), seg(8), seg(9), seg(10), seg(11), seg(4), seg(5), seg(6), seg(7), sealed.subarray(h + 12 * (S + 16))]);
  await t.rejects(cipher.decrypt(swappedBatches), DecryptionError, 'two batches swapped');
  await t.rejects(cipher.decrypt(sealed.subarray(0, h + 20 * (S + 16))), DecryptionError, 'truncated at a segment boundary');
  await t.rejects(cipher.decrypt(sealed.subarray(0, h + 20 * (S + 16) + 1000)), DecryptionError, 'truncated inside a segment');
  t.same(await cipher.decrypt(sealed), plain, 'original opens');
});

t.test('format version 1 (DEK wrapped with the context) still decrypts and rewraps with its context', async (t) => {
  const keys = f.keys;
  const keyId = keys.createKey('v1-object');
  const cipher = f.cipher({ segmentBytes: 1024 });
  const context = { bucket: 'old' };
  const plain = randomBytes(700);
  const sealed = await sealVersion1(keys, keyId, canonicalContext(context), plain);
  t.equal(sealed[4], 1, 'a version-1 header');
  t.same(await cipher.decrypt(sealed, { context }), plain, 'decrypts');
  await t.rejects(cipher.decrypt(sealed, { context: {} }), DecryptionError, 'wrong context');
  keys.rotate(keyId);
  const rotated = await cipher.rewrapHeader(sealed, { context });
  t.equal(keys.versionOf(parseHeader(rotated).wrappedDek), 2);
  t.same(await cipher.decrypt(rotated, { context }), plain, 'rewrapped with its context, still decrypts');
  await t.rejects(cipher.rewrapHeader(sealed), DecryptionError, 'a version-1 header needs its context to rewrap');
});

/** A sealed object as version 1 wrote it: one segment, the DEK wrapped with the canonical context as AAD. */
async function sealVersion1(keys: typeof f.keys, keyId: string, context: Uint8Array, plain: Uint8Array): Promise<Buffer> {
  const { plaintext: dek, wrapped } = await keys.generateDataKey(keyId, { aad: context });
  const salt = randomBytes(32);
  const noncePrefix = randomBytes(7);
  const core = encodeHeaderCore(1024, salt, noncePrefix, 1);
  const { payloadKey, commitment } = deriveObjectKeys(dek, salt, core, context);
  const header = encodeHeader(core, commitment, wrapped);
  const out = Buffer.alloc(header.length + plain.length + 16);
  out.set(header);
  sealSegment(payloadKey, noncePrefix, 0, true, plain, out.subarray(header.length));
  return out;
}
