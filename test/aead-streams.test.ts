// Streams: ~200 MiB through encrypt → decrypt with random chunk sizes, interoperation with the one-shot calls,
// small and empty streams, backpressure keeping memory bounded, abort.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fixture, pseudoRandom } from './helpers/aead-fixture.js';

const f = fixture(2);
t.teardown(() => f.close());

/** A Readable of `total` pseudo-random bytes in chunks of random sizes (1 B .. 3 MiB); hashes what it emits. */
function source(total: number, seed: number, hash = createHash('sha256')) {
  const block = pseudoRandom(4 * 1024 * 1024, seed);
  let sent = 0;
  let x = seed;
  const rnd = () => ((x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const stream = new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const r = rnd();
      const size = Math.min(total - sent, r < 0.3 ? 1 + Math.floor(rnd() * 100) : r < 0.6 ? Math.floor(rnd() * 70_000) + 1 : Math.floor(rnd() * 3 * 1024 * 1024) + 1);
      const start = Math.floor(rnd() * (block.length - size));
      const chunk = block.subarray(start, start + size);
      hash.update(chunk);
      sent += size;
      this.push(chunk);
    },
  });
  return { stream, hash };
}

/** Re-chunks a stream into random sizes (so the decryptor sees arbitrary boundaries too). */
function rechunk(seed: number) {
  let x = seed;
  const rnd = () => ((x = (x * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  return new Transform({
    transform(chunk: Buffer, _e, cb) {
      for (let at = 0; at < chunk.length; ) {
        const n = Math.max(1, Math.floor(rnd() * (rnd() < 0.5 ? 200 : 2_000_000)));
        this.push(chunk.subarray(at, at + n));
        at += n;
      }
      cb();
    },
  });
}

function sink() {
  const hash = createHash('sha256');
  let bytes = 0;
  const parts: Buffer[] = [];
  return {
    hash,
    parts,
    get bytes() {
      return bytes;
    },
    collect: (keep: boolean) =>
      new Writable({
        write(chunk: Buffer, _e, cb) {
          hash.update(chunk);
          bytes += chunk.length;
          if (keep) parts.push(chunk);
          cb();
        },
      }),
  };
}

t.test('~200 MiB through encrypt → decrypt streams with random chunk sizes', async (t) => {
  const cipher = f.cipher();
  const total = 200 * 1024 * 1024 + 12345;
  const context = { bucket: 'big' };
  const { stream, hash } = source(total, 42);
  const out = sink();
  await pipeline(stream, cipher.createEncryptStream({ keyId: f.keyId, context }), rechunk(7), cipher.createDecryptStream({ context }), out.collect(false));
  t.equal(out.bytes, total);
  t.equal(out.hash.digest('hex'), hash.digest('hex'), 'same bytes out as in');
});

t.test('stream and one-shot interoperate, at many sizes and segment sizes', async (t) => {
  for (const S of [16, 1000, 64 * 1024]) {
    const cipher = f.cipher({ segmentBytes: S, batchBytes: 4 * S });
    for (const n of [0, 1, S - 1, S, S + 1, 4 * S, 4 * S + 1, 9 * S - 1, ...(S >= 1000 ? [2 * 1024 * 1024 + 3] : [])]) {
      const plain = pseudoRandom(n, n + S);
      const context = { s: String(S) };
      // stream-encrypted → one-shot decrypt
      const enc = sink();
      await pipeline(Readable.from([plain]).pipe(rechunk(n)), cipher.createEncryptStream({ keyId: f.keyId, context }), enc.collect(true));
      const sealed = Buffer.concat(enc.parts);
      t.equal(sealed.length, cipher.sealedLength(n, 72), `sealed length S=${S} n=${n}`);
      if (!(await cipher.decrypt(sealed, { context })).equals(plain)) t.fail(`one-shot decrypt of stream S=${S} n=${n}`);
      // one-shot encrypted → stream decrypt
      const sealed2 = await cipher.encrypt(plain, { keyId: f.keyId, context });
      const dec = sink();
      await pipeline(Readable.from([sealed2]).pipe(rechunk(n + 1)), cipher.createDecryptStream({ context }), dec.collect(true));
      if (!Buffer.concat(dec.parts).equals(plain)) t.fail(`stream decrypt S=${S} n=${n}`);
    }
  }
  t.pass('done');
});

t.test('empty input stream seals the empty object', async (t) => {
  const cipher = f.cipher();
  const enc = sink();
  await pipeline(Readable.from([]), cipher.createEncryptStream({ keyId: f.keyId }), enc.collect(true));
  const sealed = Buffer.concat(enc.parts);
  t.equal((await cipher.decrypt(sealed)).length, 0);
});

t.test('wrong context in a stream fails with DecryptionError before any output', async (t) => {
  const cipher = f.cipher();
  const sealed = await cipher.encrypt(randomBytes(3 * 1024 * 1024), { keyId: f.keyId, context: { a: 'b' } });
  const out = sink();
  await t.rejects(pipeline(Readable.from([sealed]), cipher.createDecryptStream({ context: { a: 'c' } }), out.collect(false)), { code: 'ERR_DECRYPTION' });
  t.equal(out.bytes, 0);
});

t.test('backpressure: a stalled consumer stops the producer after a bounded amount', async (t) => {
  const cipher = f.cipher({ segmentBytes: 64 * 1024, batchBytes: 1024 * 1024 });
  let produced = 0;
  const producer = new Readable({
    read() {
      produced += 256 * 1024;
      this.push(Buffer.alloc(256 * 1024, 1));
      if (produced >= 512 * 1024 * 1024) this.push(null);
    },
  });
  const enc = cipher.createEncryptStream({ keyId: f.keyId });
  producer.pipe(enc);
  // Read nothing for a while: the pipeline fills its buffers and stops.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const stalledAt = produced;
  await new Promise((resolve) => setTimeout(resolve, 300));
  t.equal(produced, stalledAt, 'producer stopped');
  t.ok(stalledAt < 64 * 1024 * 1024, `bounded: ${stalledAt} bytes accepted without a reader`);
  producer.unpipe(enc);
  producer.destroy();
  enc.destroy();
});

t.test('abort signal destroys the stream with AbortError', async (t) => {
  const cipher = f.cipher();
  const controller = new AbortController();
  const enc = cipher.createEncryptStream({ keyId: f.keyId, signal: controller.signal });
  const { stream } = source(64 * 1024 * 1024, 3);
  const run = pipeline(stream, enc, new Writable({ write(_c, _e, cb) { controller.abort(); cb(); } }));
  await t.rejects(run, { name: 'AbortError' });
});
