// Objects as shards on a real SoftHSM token and real folders: loss, corruption, ranges, repair, rewrap, abort.
import t from 'tap';
import fc from 'fast-check';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { engineOptions } from './helpers/token.js';
import { collect, CountingStore, generationsOn, objectFolder, shardDirs, shardPath } from './helpers/shards.js';
import { pseudoRandom } from './helpers/aead-fixture.js';
import { parseShardHeader } from '../dist/object/format.js';
import { CryptoEngine, DecryptionError, ErasureError, FsShardStore, KeyStateError, ObjectNotFoundError, StoreError } from '../dist/index.js';

const engine = await CryptoEngine.open(engineOptions());
t.teardown(() => engine.close());
const key = await engine.keys.create({ alias: 'objects' });
const SEG = 1024; // small segments: many stripes in little data
const context = { bucket: 'b', object: 'o' };
/** Flips the low bit of one byte of a file, at the offset `at` picks from its bytes. */
function flipBit(path: string, at: (bytes: Buffer) => number): void {
  const bytes = readFileSync(path);
  bytes[at(bytes)] ^= 1;
  writeFileSync(path, bytes);
}


t.test('every loss pattern of up to m shards for 4+2', async (t) => {
  const { dirs, store } = shardDirs(6);
  const data = randomBytes(4 * SEG * 3 + 777); // 3 full stripes and a short one
  await engine.putObject('loss', data, { keyId: key.id, context, dataShards: 4, parityShards: 2, store, segmentBytes: SEG });
  const files = dirs.map((_, i) => readFileSync(shardPath(dirs, 'loss', i)));
  const patterns: number[][] = [[]];
  for (let a = 0; a < 6; a++) {
    patterns.push([a]);
    for (let b = a + 1; b < 6; b++) patterns.push([a, b]);
  }
  for (const lost of patterns) {
    for (const i of lost) rmSync(shardPath(dirs, 'loss', i));
    t.ok((await collect(engine.getObject('loss', { store, context }))).equals(data), `lost ${JSON.stringify(lost)}`);
    t.ok((await collect(engine.getObjectChunks('loss', { store, context }))).equals(data), `getObjectChunks, lost ${JSON.stringify(lost)}`);
    for (const i of lost) writeFileSync(shardPath(dirs, 'loss', i), files[i]!);
  }
  for (const i of [0, 2, 5]) rmSync(shardPath(dirs, 'loss', i));
  await t.rejects(collect(engine.getObject('loss', { store, context })), ErasureError, 'm+1 lost');
});

t.test('property: any size, any k+m, any m lost shards, any range', async (t) => {
  const { dirs, store } = shardDirs(12);
  let n = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 20_000 }),
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 0, max: 4 }),
      fc.integer({ min: 16, max: 900 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      // Which m shards are lost: a random order of the 12 possible indexes, drawn (and replayed) by fast-check.
      fc.shuffledSubarray([...Array(12).keys()], { minLength: 12, maxLength: 12 }),
      fc.integer({ min: 1, max: 0xffff_ffff }),
      async (size, k, m, segmentBytes, a, b, order, seed) => {
        const id = `prop-${n++}`;
        const data = pseudoRandom(size, seed);
        await engine.putObject(id, data, { keyId: key.id, context, dataShards: k, parityShards: m, store, segmentBytes });
        const lost = order.filter((i) => i < k + m).slice(0, m);
        for (const i of lost) rmSync(shardPath(dirs, id, i));
        const whole = await collect(engine.getObject(id, { store, context }));
        const offset = Math.floor(a * size);
        const length = Math.floor(b * (size - offset));
        const part = await collect(engine.getObject(id, { store, context, range: { offset, length } }));
        return whole.equals(data) && part.equals(data.subarray(offset, offset + length));
      },
    ),
    { numRuns: 40 },
  );
  t.pass(`${n} random objects round-tripped with m shards lost`);
});

t.test('any single corrupted byte in any shard is detected and routed around', async (t) => {
  const { dirs, store } = shardDirs(6);
  const data = randomBytes(4 * 64 + 100);
  await engine.putObject('flip', data, { keyId: key.id, context, dataShards: 4, parityShards: 2, store, segmentBytes: 64 });
  let checked = 0;
  let wrong = 0;
  for (let i = 0; i < 6; i++) {
    const path = shardPath(dirs, 'flip', i);
    const original = readFileSync(path);
    for (let at = 0; at < original.length; at++) {
      const bad = Buffer.from(original);
      bad[at] ^= 0x80;
      writeFileSync(path, bad);
      const back = await collect(engine.getObject('flip', { store, context })).catch((e) => e);
      if (!(Buffer.isBuffer(back) && back.equals(data))) wrong++;
      checked++;
    }
    writeFileSync(path, original);
  }
  t.equal(wrong, 0, `${checked} single-byte corruptions, all read back correctly`);
  // Two corrupted and one missing shard of 4+2: too many.
  flipBit(shardPath(dirs, 'flip', 0), (b) => b.length - 100);
  flipBit(shardPath(dirs, 'flip', 1), (b) => b.length - 100);
  rmSync(shardPath(dirs, 'flip', 4));
  const err = await collect(engine.getObject('flip', { store, context })).catch((e) => e);
  t.type(err, ErasureError);
  t.match(err.message, /corrupt: 0, 1/, 'the error names the bad shards');
});

t.test('bad chunks in different stripes of two shards, a third shard lost: every stripe still has k, the get reads', async (t) => {
  // Shard 0 bad in the first stripe, shard 1 in the last, shard 4 gone: only 3 shards are whole, yet every stripe has
  // 4 good chunks. Stripes are read concurrently; a shard found bad in one stripe must stay usable in the others
  // (it used to be dropped for the whole get, so the outcome depended on which stripe found it first).
  const { dirs, store } = shardDirs(6);
  const data = randomBytes(4 * SEG * 3 + 777);
  await engine.putObject('two-stripes', data, { keyId: key.id, context, dataShards: 4, parityShards: 2, store, segmentBytes: SEG });
  flipBit(shardPath(dirs, 'two-stripes', 0), (b) => parseShardHeader(b)!.length + 10); // the first stripe's chunk
  flipBit(shardPath(dirs, 'two-stripes', 1), (b) => b.length - 100); // the last stripe's chunk
  rmSync(shardPath(dirs, 'two-stripes', 4));
  for (let i = 0; i < 10; i++) t.ok((await collect(engine.getObject('two-stripes', { store, context }))).equals(data), `get ${i} reads`);
  const range = await collect(engine.getObject('two-stripes', { store, context, range: { offset: 0, length: 100 } }));
  t.ok(range.equals(data.subarray(0, 100)), 'a range in the first stripe reads');
});

t.test('truncated and swapped shards are detected and routed around', async (t) => {
  const { dirs, store } = shardDirs(6);
  const data = randomBytes(4 * SEG * 4 + 321);
  await engine.putObject('swap', data, { keyId: key.id, context, dataShards: 4, parityShards: 2, store, segmentBytes: SEG });
  const p1 = shardPath(dirs, 'swap', 1);
  const p2 = shardPath(dirs, 'swap', 2);
  const b1 = readFileSync(p1);
  const b2 = readFileSync(p2);
  writeFileSync(p1, b2); // shards 1 and 2 swapped
  writeFileSync(p2, b1);
  t.ok((await collect(engine.getObject('swap', { store, context }))).equals(data), 'swapped pair excluded, read from the other 4');
  writeFileSync(p1, b1);
  writeFileSync(p2, b2.subarray(0, b2.length - 100)); // truncated
  t.ok((await collect(engine.getObject('swap', { store, context }))).equals(data), 'truncated shard excluded');
  const report = await engine.repairObject('swap', { store });
  t.same(report.corrupt, [2]);
  t.ok(readFileSync(p2).equals(b2), 'repair restores the truncated shard');
});

t.test('range reads equal the slice and read only the stripes they need', async (t) => {
  const { store: fsStore } = shardDirs(14);
  const store = new CountingStore(fsStore);
  const data = randomBytes(10 * SEG * 60 + 5000);
  await engine.putObject('range', data, { keyId: key.id, context, dataShards: 10, parityShards: 4, store, segmentBytes: SEG });
  const shardBytes = readFileSync(shardPath(fsStore.dirs as string[], 'range', 0)).length;
  let maxRead = 0;
  for (let n = 0; n < 60; n++) {
    const offset = Math.floor(Math.random() * data.length);
    const length = Math.floor(Math.random() * Math.min(3 * SEG, data.length - offset));
    store.bytesRead = 0;
    const part = await collect(engine.getObject('range', { store, context, range: { offset, length } }));
    t.ok(part.equals(data.subarray(offset, offset + length)), `range ${offset}+${length}`);
    // Header probes (≤ 1414 bytes) and trailers of 14 shards, then only the segments' chunks (C + tag each);
    // the short last stripe may need all of its 10 data chunks.
    const segments = length === 0 ? 0 : Math.floor((offset + length - 1) / SEG) - Math.floor(offset / SEG) + 1;
    const bound = 14 * 1414 + 14 * 44 + (segments + 10) * (SEG + 32);
    if (store.bytesRead > bound) t.fail(`read ${store.bytesRead} bytes for ${length} (bound ${bound}; shard ${shardBytes})`);
    maxRead = Math.max(maxRead, store.bytesRead);
  }
  t.ok(maxRead < (14 * shardBytes) / 10, `at most ${maxRead} of ${14 * shardBytes} stored bytes read per range`);
  await t.rejects(collect(engine.getObject('range', { store, context, range: { offset: data.length - 5, length: 10 } })), RangeError);
  t.throws(() => engine.getObject('range', { store, context, range: { offset: -1, length: 1 } }), RangeError);
});

t.test('repair restores byte-identical shards; rewrap writes a record and changes no shard', async (t) => {
  const { dirs, store } = shardDirs(14);
  const data = randomBytes(10 * SEG * 5 + 123);
  await engine.putObject('repair', data, { keyId: key.id, context, dataShards: 10, parityShards: 4, store, segmentBytes: SEG });
  const originals = dirs.map((_, i) => readFileSync(shardPath(dirs, 'repair', i)));
  rmSync(shardPath(dirs, 'repair', 2));
  rmSync(shardPath(dirs, 'repair', 13));
  const corrupt = Buffer.from(originals[7]!);
  corrupt[corrupt.length >> 1] ^= 4;
  writeFileSync(shardPath(dirs, 'repair', 7), corrupt);
  const stale = await engine.putObject('other', randomBytes(100), { keyId: key.id, dataShards: 10, parityShards: 4, store, segmentBytes: SEG });
  t.match(stale, {
    objectId: 'other', size: 100, dataShards: 10, parityShards: 4, segmentBytes: SEG, stripes: 1,
    keyId: key.id, keyVersion: (await engine.keys.get(key.id)).version,
  }, 'the other object is a valid 10+4 object under the same root key');
  t.not(readFileSync(shardPath(dirs, 'other', 9)).length, originals[9]!.length, 'its shard 9 differs from the one it replaces');
  writeFileSync(shardPath(dirs, 'repair', 9), readFileSync(shardPath(dirs, 'other', 9))); // a shard of another object under this name
  const report = await engine.repairObject('repair', { store });
  t.same(report.missing, [2, 13]);
  t.same(report.corrupt, [7, 9]);
  t.same(report.repaired, [2, 7, 9, 13]);
  dirs.forEach((_, i) => t.ok(readFileSync(shardPath(dirs, 'repair', i)).equals(originals[i]!), `shard ${i} byte-identical`));
  t.same((await engine.repairObject('repair', { store })).repaired, [], 'nothing left to repair');

  await engine.keys.rotate(key.id);
  const rewrap = await engine.rewrapObject('repair', { store });
  t.equal(rewrap.rewrapped.length, 14);
  t.equal(rewrap.keyVersion, (await engine.keys.get(key.id)).version);
  t.same(rewrap.skipped, []);
  for (let i = 0; i < 14; i++) t.ok(readFileSync(shardPath(dirs, 'repair', i)).equals(originals[i]!), `shard ${i} untouched`);
  const gen = generationsOn(dirs[0]!, 'repair')[0]!;
  for (const dir of dirs) {
    const leaves = readdirSync(join(objectFolder(dir, 'repair'), `-${gen}`));
    t.equal(leaves.filter((n) => n.startsWith('w')).length, 1, 'one rewrap record on every node');
  }
  t.ok((await collect(engine.getObject('repair', { store, context }))).equals(data), 'reads after rewrap');
});

t.test('context, missing object, disabled key, bad arguments', async (t) => {
  const { store } = shardDirs(6);
  const data = randomBytes(5000);
  await engine.putObject('ctx', data, { keyId: key.id, context, dataShards: 4, parityShards: 2, store, segmentBytes: SEG });
  await t.rejects(collect(engine.getObject('ctx', { store })), DecryptionError, 'missing context');
  await t.rejects(collect(engine.getObject('ctx', { store, context: { ...context, extra: 'x' } })), DecryptionError, 'extra entry');
  await t.rejects(collect(engine.getObject('ctx', { store, context: { bucket: 'b', object: 'O' } })), DecryptionError, 'changed entry');
  await t.rejects(collect(engine.getObject('nothing-here', { store, context })), ObjectNotFoundError);
  const k2 = await engine.keys.create({ alias: 'objects-disable' });
  await engine.putObject('dis', data, { keyId: k2.id, dataShards: 4, parityShards: 2, store });
  await engine.keys.disable(k2.id);
  await t.rejects(collect(engine.getObject('dis', { store })), KeyStateError);
  await t.rejects(engine.putObject('dis2', data, { keyId: k2.id, dataShards: 4, parityShards: 2, store }), KeyStateError);
  await t.rejects(engine.rewrapObject('dis', { store }), KeyStateError);
  await engine.keys.enable(k2.id);
  await engine.keys.destroy(k2.id);
  await t.rejects(collect(engine.getObject('dis', { store })), KeyStateError, 'crypto-shredded');

  const opts = { keyId: key.id, dataShards: 4, parityShards: 2, store };
  await t.rejects(engine.putObject('', data, opts), TypeError);
  await t.rejects(engine.putObject('x', 'text' as any, opts), TypeError);
  await t.rejects(engine.putObject('x', data, { ...opts, dataShards: 0 }), RangeError);
  await t.rejects(engine.putObject('x', data, { ...opts, dataShards: 200, parityShards: 57 }), RangeError);
  await t.rejects(engine.putObject('x', data, { ...opts, store: {} as any }), TypeError);
  await t.rejects(engine.putObject('x', data, { ...opts, keyId: '' }), TypeError);
  await t.rejects(engine.putObject('x', data, { ...opts, segmentBytes: 3 }), RangeError);
  t.throws(() => engine.getObject('x', { store: null as any }), TypeError);
  t.equal(data.length, 5000, 'caller buffer untouched');
});

t.test('a node folder that is missing or unwritable: lost on read, clean failure on write', async (t) => {
  const { dirs, store } = shardDirs(6);
  const data = randomBytes(20_000);
  await engine.putObject('node', data, { keyId: key.id, dataShards: 4, parityShards: 2, store, segmentBytes: SEG });
  rmSync(dirs[3]!, { recursive: true });
  t.ok((await collect(engine.getObject('node', { store }))).equals(data), 'missing folder = lost shard');
  const { dirs: dirs2, store: store2 } = shardDirs(6);
  rmSync(dirs2[4]!, { recursive: true });
  await t.rejects(engine.putObject('half', data, { keyId: key.id, dataShards: 4, parityShards: 2, store: store2 }), StoreError, 'a missing folder is a StoreError');
  for (const dir of dirs2.filter((_, i) => i !== 4)) t.same(readdirSync(dir), [], 'nothing published, no temp file left');
  await t.rejects(collect(engine.getObject('half', { store: store2 })), ObjectNotFoundError);
  if (process.getuid?.() !== 0) {
    chmodSync(dirs2[1]!, 0o500);
    await t.rejects(engine.putObject('ro', data, { keyId: key.id, dataShards: 4, parityShards: 2, store: store2 }));
  }
});

t.test('abort mid-put leaves nothing that reads as complete', async (t) => {
  const { dirs, store } = shardDirs(6);
  const controller = new AbortController();
  async function* slow() {
    for (let i = 0; i < 50; i++) {
      if (i === 5) controller.abort();
      yield randomBytes(64 * 1024);
    }
  }
  await t.rejects(engine.putObject('aborted', slow(), { keyId: key.id, dataShards: 4, parityShards: 2, store, signal: controller.signal }), { name: 'AbortError' });
  for (const dir of dirs) t.same(readdirSync(dir), [], 'no shard and no temp file');
  await t.rejects(collect(engine.getObject('aborted', { store })), ObjectNotFoundError);
  const progress: number[] = [];
  await engine.putObject('progress', randomBytes(3 << 20), { keyId: key.id, dataShards: 4, parityShards: 2, store, onProgress: (done) => progress.push(done) });
  t.ok(progress.length > 1 && progress.at(-1) === 3 << 20, 'onProgress reaches the size');
});

t.test('a few hundred MiB through a stream with random chunk sizes', async (t) => {
  const { store } = shardDirs(14);
  const total = 200 * 1024 * 1024;
  const hash = createHash('sha256');
  async function* source() {
    let sent = 0;
    const block = randomBytes(1 << 20);
    while (sent < total) {
      const n = Math.min(total - sent, 1 + Math.floor(Math.random() * 3 * 65536));
      const at = Math.floor(Math.random() * (block.length - n + 1));
      const chunk = block.subarray(at, at + n);
      hash.update(chunk);
      sent += n;
      yield chunk;
    }
  }
  const info = await engine.putObject('stream', Readable.from(source()), { keyId: key.id, context, dataShards: 10, parityShards: 4, store });
  t.equal(info.size, total);
  const expected = hash.digest('hex');
  const back = createHash('sha256');
  for await (const part of engine.getObject('stream', { store, context })) back.update(part);
  t.equal(back.digest('hex'), expected, 'SHA-256 matches');
});
