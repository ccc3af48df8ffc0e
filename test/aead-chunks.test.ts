// encryptChunks / decryptChunks: the streams as async iterables over reused output memory. The same bytes as the
// streams and the one-shot calls, on both pools; chunks really are reused (and decrypt's are wiped at the end);
// tampering, truncation, a wrong context, a failing source, an abort and an early exit each end it as they should.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { setNativePool } from '../dist/aead/native-batch.js';
import { fixture, pseudoRandom } from './helpers/aead-fixture.js';

const f = fixture(2);
t.teardown(() => f.close());

/** `data` in pieces of pseudo-random sizes (1 B .. ~2 MiB), from an async generator that yields to the loop. */
async function* pieces(data: Uint8Array, seed: number): AsyncGenerator<Uint8Array> {
  let x = seed >>> 0 || 1;
  const rnd = () => ((x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let at = 0; at < data.length; ) {
    const n = Math.max(1, Math.floor(rnd() * (rnd() < 0.4 ? 300 : 2_100_000)));
    yield data.subarray(at, at + n);
    at += n;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(Buffer.from(c)); // copied: the chunk's memory is reused
  return Buffer.concat(parts);
}

for (const native of [true, false]) {
  t.test(`${native ? 'native' : 'worker'} pool: same bytes as the one-shot calls, many sizes and segment sizes`, async (t) => {
    const before = setNativePool(native);
    t.teardown(() => void setNativePool(before));
    for (const S of [16, 1000, 64 * 1024]) {
      const cipher = f.cipher({ segmentBytes: S, batchBytes: 4 * S });
      for (const n of [0, 1, S - 1, S, S + 1, 4 * S, 4 * S + 1, 9 * S - 1, ...(S >= 1000 ? [2 * 1024 * 1024 + 3] : [])]) {
        const plain = pseudoRandom(n, n + S);
        const context = { s: String(S) };
        const sealed = await collect(cipher.encryptChunks(pieces(plain, n), { keyId: f.keyId, context }));
        t.equal(sealed.length, cipher.sealedLength(n, 72), `sealed length S=${S} n=${n}`);
        if (!(await cipher.decrypt(sealed, { context })).equals(plain)) t.fail(`one-shot decrypt of encryptChunks S=${S} n=${n}`);
        const sealed2 = await cipher.encrypt(plain, { keyId: f.keyId, context });
        if (!(await collect(cipher.decryptChunks(pieces(sealed2, n + 1), { context }))).equals(plain)) t.fail(`decryptChunks S=${S} n=${n}`);
      }
    }
    t.pass('done');
  });
}

t.test('~64 MiB through encryptChunks → decryptChunks; output memory is reused', async (t) => {
  const cipher = f.cipher();
  const plain = pseudoRandom(64 * 1024 * 1024 + 777, 5);
  const sealedHash = createHash('sha256');
  const sealedParts: Buffer[] = [];
  const seen = new Set<ArrayBufferLike>();
  let reused = 0;
  for await (const c of cipher.encryptChunks(pieces(plain, 9), { keyId: f.keyId })) {
    if (seen.has(c.buffer)) reused++;
    seen.add(c.buffer);
    sealedHash.update(c);
    sealedParts.push(Buffer.from(c));
  }
  t.ok(reused > 0, `chunks shared memory with earlier ones (${reused} of them)`);
  const sealed = Buffer.concat(sealedParts);
  t.equal(createHash('sha256').update(sealed).digest('hex'), sealedHash.digest('hex'), 'each chunk was whole while it was current');
  const out = createHash('sha256');
  let bytes = 0;
  for await (const c of cipher.decryptChunks(pieces(sealed, 3))) (out.update(c), (bytes += c.length));
  t.equal(bytes, plain.length);
  t.equal(out.digest('hex'), createHash('sha256').update(plain).digest('hex'), 'same bytes out as in');
});

t.test("decryptChunks zeroes its reused memory when the iteration ends", async (t) => {
  const cipher = f.cipher();
  const plain = randomBytes(6 * 1024 * 1024);
  const sealed = await cipher.encrypt(plain, { keyId: f.keyId });
  const kept: Buffer[] = [];
  for await (const c of cipher.decryptChunks([sealed])) kept.push(c); // views, not copies (against the rules)
  t.ok(kept.length > 1);
  t.ok(kept.every((c) => c.every((b) => b === 0)), 'plaintext left in reused buffers is gone');
});

t.test('tampered, truncated and wrong-context objects end with DecryptionError', async (t) => {
  const cipher = f.cipher({ segmentBytes: 64 * 1024, batchBytes: 256 * 1024 });
  const plain = randomBytes(3 * 1024 * 1024);
  const sealed = await cipher.encrypt(plain, { keyId: f.keyId, context: { a: 'b' } });
  const flipped = Buffer.from(sealed);
  flipped[sealed.length - 5000] ^= 1; // in the last segment
  let released = 0;
  await t.rejects(
    (async () => {
      for await (const c of cipher.decryptChunks([flipped], { context: { a: 'b' } })) released += c.length;
    })(),
    { code: 'ERR_DECRYPTION' },
  );
  t.ok(released < plain.length - 64 * 1024 + 1, 'nothing of the bad segment released');
  await t.rejects(collect(cipher.decryptChunks([sealed.subarray(0, sealed.length - 1)], { context: { a: 'b' } })), { code: 'ERR_DECRYPTION' }, 'truncated');
  let wrong = 0;
  await t.rejects(
    (async () => {
      for await (const c of cipher.decryptChunks([sealed], { context: { a: 'c' } })) wrong += c.length;
    })(),
    { code: 'ERR_DECRYPTION' },
  );
  t.equal(wrong, 0, 'a wrong context releases nothing');
});

t.test('a failing source, an abort and an early exit each end the iteration', async (t) => {
  const cipher = f.cipher();
  const boom = new Error('source failed');
  async function* failing() {
    yield randomBytes(3 * 1024 * 1024);
    throw boom;
  }
  await t.rejects(collect(cipher.encryptChunks(failing(), { keyId: f.keyId })), boom, 'the source error comes out');

  const controller = new AbortController();
  await t.rejects(
    (async () => {
      for await (const _ of cipher.encryptChunks(pieces(randomBytes(32 * 1024 * 1024), 1), { keyId: f.keyId, signal: controller.signal })) controller.abort();
    })(),
    { name: 'AbortError' },
  );

  let n = 0;
  for await (const _ of cipher.encryptChunks(pieces(randomBytes(32 * 1024 * 1024), 2), { keyId: f.keyId })) if (++n === 2) break;
  t.equal(n, 2, 'left after two chunks');
  const plain = randomBytes(2 * 1024 * 1024);
  t.ok((await cipher.decrypt(await collect(cipher.encryptChunks([plain], { keyId: f.keyId })))).equals(plain), 'the cipher works on');
});

t.test('bad arguments are refused before anything starts', async (t) => {
  const cipher = f.cipher();
  t.throws(() => cipher.encryptChunks(42 as never, { keyId: f.keyId }), TypeError);
  t.throws(() => cipher.decryptChunks(null as never), TypeError);
  t.throws(() => cipher.encryptChunks([], {} as never), TypeError);
  t.throws(() => cipher.encryptChunks([], { keyId: f.keyId, context: 5 as never }), TypeError);
});
