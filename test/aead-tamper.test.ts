// Every way of damaging a sealed object must end in DecryptionError: every truncation length, every single-bit
// flip, segment reorder/drop/duplicate/splice between objects, wrong/missing/extra context, a swapped wrapped
// DEK (key commitment), and a DEK that is not the one the payload was sealed under.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DecryptionError, headerLengthFor, ObjectCipher, OFFSET_WRAPPED_PLACEHOLDER } from './helpers/aead-exports.js';
import { fixture } from './helpers/aead-fixture.js';

const f = fixture(2);
t.teardown(() => f.close());
const S = 64;
const cipher = f.cipher({ segmentBytes: S });
const isDecryptionError = (e: unknown) => e instanceof DecryptionError && (e as DecryptionError).message === 'decryption failed';

async function fails(sealed: Uint8Array, context?: Record<string, string>): Promise<boolean> {
  try {
    await cipher.decrypt(sealed, context ? { context } : {});
    return false;
  } catch (e) {
    return isDecryptionError(e);
  }
}

/** Sealed segments of an object with segment size S: [header, seg0, seg1, ...]. */
function split(sealed: Buffer): { header: Buffer; segments: Buffer[] } {
  const headerLength = headerLengthFor(sealed[OFFSET_WRAPPED_PLACEHOLDER - 1]);
  const segments: Buffer[] = [];
  for (let at = headerLength; at < sealed.length; at += S + 16) segments.push(sealed.subarray(at, Math.min(at + S + 16, sealed.length)));
  return { header: sealed.subarray(0, headerLength), segments };
}

t.test('every truncation length fails', async (t) => {
  for (const n of [0, 1, 64, 200]) {
    const sealed = await cipher.encrypt(randomBytes(n), { keyId: f.keyId });
    let bad = 0;
    for (let len = 0; len < sealed.length; len++) if (!(await fails(sealed.subarray(0, len)))) bad++;
    t.equal(bad, 0, `all ${sealed.length} truncations of a ${n}-byte object fail`);
  }
});

t.test('every single-bit flip fails', async (t) => {
  // The wrapped DEK is the provider's self-describing blob; flipping a bit of the root key id inside it names a
  // key that does not exist, which the DataKeyProvider contract reports as KeyNotFoundError (the same error a
  // crypto-shredded key gives). Those bytes are listed explicitly; every other flip is DecryptionError and no
  // flip ever decrypts.
  const idLength = f.keyId.length;
  const keyIdBytes = (i: number) => i >= OFFSET_WRAPPED_PLACEHOLDER + 2 && i < OFFSET_WRAPPED_PLACEHOLDER + 2 + idLength;
  for (const n of [0, 1, 130]) {
    const sealed = await cipher.encrypt(randomBytes(n), { keyId: f.keyId, context: { k: 'v' } });
    let bad = 0;
    let keyNotFound = 0;
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      const copy = Buffer.from(sealed);
      copy[bit >> 3] ^= 1 << (bit & 7);
      try {
        await cipher.decrypt(copy, { context: { k: 'v' } });
        bad++;
      } catch (e) {
        if (isDecryptionError(e)) continue;
        if ((e as { code?: string }).code === 'ERR_KEY_NOT_FOUND' && keyIdBytes(bit >> 3)) keyNotFound++;
        else bad++;
      }
    }
    t.equal(bad, 0, `all ${sealed.length * 8} bit flips of a ${n}-byte object fail`);
    t.equal(keyNotFound, idLength * 8, 'key-id flips name an unknown root key');
  }
});

t.test('extension fails (extra bytes, extra segment, appended object)', async (t) => {
  const sealed = await cipher.encrypt(randomBytes(150), { keyId: f.keyId });
  const { segments } = split(sealed);
  t.ok(await fails(Buffer.concat([sealed, Buffer.alloc(1)])));
  t.ok(await fails(Buffer.concat([sealed, Buffer.alloc(16)])));
  t.ok(await fails(Buffer.concat([sealed, segments[segments.length - 1]])));
  t.ok(await fails(Buffer.concat([sealed, sealed])));
});

t.test('segment reorder, drop, duplicate and splice between objects fail', async (t) => {
  const context = { bucket: 'b' };
  const a = await cipher.encrypt(randomBytes(4 * S), { keyId: f.keyId, context }); // 4 full segments
  const b = await cipher.encrypt(randomBytes(4 * S), { keyId: f.keyId, context });
  const A = split(a);
  const B = split(b);
  t.equal(A.segments.length, 4);
  const build = (header: Buffer, segs: Buffer[]) => Buffer.concat([header, ...segs]);
  const s = A.segments;
  const variants: Array<[string, Buffer]> = [
    ['swap 0,1', build(A.header, [s[1], s[0], s[2], s[3]])],
    ['swap 2,3', build(A.header, [s[0], s[1], s[3], s[2]])],
    ['reverse', build(A.header, [s[3], s[2], s[1], s[0]])],
    ['drop first', build(A.header, [s[1], s[2], s[3]])],
    ['drop middle', build(A.header, [s[0], s[2], s[3]])],
    ['drop last', build(A.header, [s[0], s[1], s[2]])],
    ['duplicate 0', build(A.header, [s[0], s[0], s[1], s[2], s[3]])],
    ['duplicate last', build(A.header, [s[0], s[1], s[2], s[3], s[3]])],
    ['splice B seg 1', build(A.header, [s[0], B.segments[1], s[2], s[3]])],
    ['splice B last', build(A.header, [s[0], s[1], s[2], B.segments[3]])],
    ['A header, B payload', build(A.header, B.segments)],
    ['B header, A payload', build(B.header, A.segments)],
  ];
  for (const [name, v] of variants) t.ok(await fails(v, context), name);
  t.same(await cipher.decrypt(a, { context }), await cipher.decrypt(build(A.header, s), { context }), 'untouched still opens');
});

t.test('wrong, missing or extra context fails', async (t) => {
  const context = { bucket: 'b', object: 'o' };
  const sealed = await cipher.encrypt(randomBytes(100), { keyId: f.keyId, context });
  t.ok(await fails(sealed), 'missing');
  t.ok(await fails(sealed, {}), 'empty');
  t.ok(await fails(sealed, { bucket: 'b' }), 'subset');
  t.ok(await fails(sealed, { ...context, extra: '' }), 'extra entry');
  t.ok(await fails(sealed, { bucket: 'b', object: 'O' }), 'changed value');
  t.ok(await fails(sealed, { bucket: 'b', objecT: 'o' }), 'changed key');
  t.same((await cipher.decrypt(sealed, { context: { object: 'o', bucket: 'b' } })).length, 100, 'order of keys is irrelevant');
  const plain = await cipher.encrypt(randomBytes(10), { keyId: f.keyId });
  t.ok(await fails(plain, { a: 'b' }), 'context given for an object sealed without one');
});

t.test('key commitment: a swapped wrapped DEK or a different DEK never decrypts', async (t) => {
  const context = { bucket: 'b' };
  const a = await cipher.encrypt(randomBytes(100), { keyId: f.keyId, context });
  const b = await cipher.encrypt(randomBytes(100), { keyId: f.keyId, context });
  // b's wrapped DEK unwraps fine under the same context, but it is not a's key.
  const swapped = Buffer.from(a);
  const wl = a[OFFSET_WRAPPED_PLACEHOLDER - 1];
  b.copy(swapped, OFFSET_WRAPPED_PLACEHOLDER, OFFSET_WRAPPED_PLACEHOLDER, OFFSET_WRAPPED_PLACEHOLDER + wl);
  t.ok(await fails(swapped, context), 'other valid wrapped DEK');
  // A provider handing back any other DEK (a malicious or broken HSM) is caught by the commitment before any segment.
  let opened = 0;
  const liar = new ObjectCipher({
    keys: { generateDataKey: f.keys.generateDataKey.bind(f.keys), rewrap: f.keys.rewrap.bind(f.keys), unwrap: async () => (opened++, randomBytes(32)) },
    pool: f.pool,
    segmentBytes: S,
  });
  await t.rejects(liar.decrypt(a, { context }), DecryptionError);
  t.equal(opened, 1);
});

t.test('streams: truncation and corruption end in an error, never a clean end, and no bad segment is emitted', async (t) => {
  const plain = randomBytes(10 * S + 7);
  const sealed = await cipher.encrypt(plain, { keyId: f.keyId });
  const cuts = [0, 10, 82, 160, sealed.length - (S + 16) - 7 - 16, sealed.length - 1, sealed.length - 17];
  for (const cut of cuts) {
    const out: Buffer[] = [];
    const run = pipeline(Readable.from([sealed.subarray(0, cut)]), cipher.createDecryptStream(), new Writable({ write(c, _e, cb) { out.push(c); cb(); } }));
    await t.rejects(run, DecryptionError, `cut at ${cut}`);
    const got = Buffer.concat(out);
    t.ok(plain.subarray(0, got.length).equals(got), 'whatever was emitted is an authentic prefix');
  }
  const flipped = Buffer.from(sealed);
  flipped[flipped.length - 3 * (S + 16)] ^= 0x40; // inside segment 8
  const out: Buffer[] = [];
  await t.rejects(pipeline(Readable.from([flipped]), cipher.createDecryptStream(), new Writable({ write(c, _e, cb) { out.push(c); cb(); } })), DecryptionError);
  t.ok(Buffer.concat(out).length <= 8 * S && plain.subarray(0, Buffer.concat(out).length).equals(Buffer.concat(out)), 'nothing from the bad segment on');
});
