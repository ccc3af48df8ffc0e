// Issue #9, objects: each defect reproduced (they failed on the old shard store), on the in-memory key provider,
// real folders and the fault-injecting store wrapper (helpers/fault-store.ts).
import t from 'tap';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ErasureError, FsShardStore, ObjectNotFoundError, StoreError } from '../dist/index.js';
import { SHARD_HEADER_PROBE_BYTES, SHARD_FIXED_BYTES, MAX_OBJECT_ID_BYTES, MAC_BYTES } from '../dist/object/format.js';
import { headerLengthFor } from '../dist/aead/header.js';
import { pseudoRandom } from './helpers/aead-fixture.js';
import { FaultStore } from './helpers/fault-store.js';
import { memoryObjects } from './helpers/memory-keys.js';
import { collect, generationsOn, objectFolder, shardDirs, shardPath } from './helpers/shards.js';

const { keys, keyId, objects } = await memoryObjects(t, 'faults');
const SEG = 1024;
const read = (store: any, id: string) => collect(objects.getObject(id, { store }));
const put = (store: any, id: string, data: Uint8Array, k = 10, m = 4) =>
  objects.putObject(id, data, { keyId, dataShards: k, parityShards: m, store, segmentBytes: SEG });
/** Chunks valid until the next step (getObjectChunks), copied as they come. */
const collectCopies = async (chunks: AsyncIterable<Uint8Array>) => {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
};
/** Generations of an object over all nodes. */
const gens = (dirs: string[], id: string) => [...new Set(dirs.flatMap((d) => generationsOn(d, id)))].sort();

t.test('1. a rewrap cut short (node errors after 7 of 14 records) leaves the object readable; the next one completes', async (t) => {
  const { dirs, store } = shardDirs(14);
  const data = pseudoRandom(10 * SEG * 3 + 77, 1);
  const root = keys.createKey('rewrap-cut');
  await objects.putObject('rw', data, { keyId: root, dataShards: 10, parityShards: 4, store, segmentBytes: SEG });
  keys.rotate(root);
  const faulty = new FaultStore(store, [{ on: 'commit', after: 7, mode: 'fail' }]);
  await t.rejects(objects.rewrapObject('rw', { store: faulty }), StoreError, 'the failing node is reported');
  t.ok((await read(store, 'rw')).equals(data), 'reads after a partial rewrap');
  t.same((await objects.repairObject('rw', { store })).repaired, [], 'repair finds nothing wrong');
  const report = await objects.rewrapObject('rw', { store });
  t.equal(report.keyVersion, 2);
  keys.retire(root, 1); // the old version is gone: only the new record opens the DEK now
  t.ok((await read(store, 'rw')).equals(data), 'reads under the new version alone');
  const leaves = readdirSync(join(objectFolder(dirs[0]!, 'rw'), `-${report.generation}`)).filter((n) => n.startsWith('w'));
  t.equal(leaves.length, 1, 'one record per node once complete');
});

t.test('1b. a rewrap stalled mid-way: readers see the object meanwhile', async (t) => {
  const { store } = shardDirs(6);
  const data = pseudoRandom(5000, 2);
  await put(store, 'stall', data, 4, 2);
  keys.rotate(keyId);
  const faulty = new FaultStore(store, [{ on: 'commit', after: 3, mode: 'stall' }]);
  const rewrap = objects.rewrapObject('stall', { store: faulty });
  while (faulty.stalled < 3) await new Promise((r) => setImmediate(r));
  t.ok((await read(store, 'stall')).equals(data), 'readable with 3 of 6 records written');
  faulty.release();
  await rewrap;
  t.ok((await read(store, 'stall')).equals(data), 'readable after');
});

t.test('2. a re-put failing or stalled between commits: old or new, never neither', async (t) => {
  const { dirs, store } = shardDirs(14);
  const old = pseudoRandom(10 * SEG * 2 + 5, 3);
  const fresh = pseudoRandom(10 * SEG * 2 + 900, 4);
  await put(store, 're', old);
  await t.rejects(put(new FaultStore(store, [{ on: 'commit', after: 7, mode: 'fail' }]), 're', fresh), StoreError);
  t.ok((await read(store, 're')).equals(old), 'failed after 7 of 14 commits: the old version reads');
  t.equal(gens(dirs, 're').length, 1, 'the new generation was removed');

  for (const [after, expect] of [[7, old], [9, old], [10, fresh], [13, fresh]] as const) {
    const faulty = new FaultStore(store, [{ on: 'commit', after, mode: 'stall' }]);
    const reput = put(faulty, 're', fresh);
    while (faulty.stalled < 14 - after) await new Promise((r) => setImmediate(r));
    // The commits that passed are published (renamed into place) before the read, as "killed after N" means.
    const published = () => gens(dirs, 're').some((g) => dirs.filter((_, j) => existsSync(shardPath(dirs, 're', j, g))).length === after);
    while (!published()) await new Promise((r) => setTimeout(r, 1));
    t.ok((await read(store, 're')).equals(expect), `killed-like stall after ${after} commits: reads the ${expect === old ? 'old' : 'new'} version`);
    faulty.release();
    await reput;
    t.ok((await read(store, 're')).equals(fresh), 'then the new one');
    t.equal(gens(dirs, 're').length, 1, 'one generation left');
    await put(store, 're', old);
  }
  // A re-put whose clean-up of the old generation fails still succeeded: the new one reads, repair cleans up.
  await put(new FaultStore(store, [{ on: 'remove', after: 2, mode: 'fail' }]), 're', fresh);
  t.ok((await read(store, 're')).equals(fresh));
  t.equal(gens(dirs, 're').length, 2, 'the old generation is partly left');
  t.equal((await objects.repairObject('re', { store })).removedGenerations.length, 1, 'repair removes it');
  t.equal(gens(dirs, 're').length, 1);
});

t.test('3. an edited k byte in one shard header decides nothing (FsShardStore of 3 folders and of 1)', async (t) => {
  for (const nodes of [3, 1]) {
    const { dirs, store } = shardDirs(nodes);
    const data = pseudoRandom(10 * SEG * 2 + 321, 5);
    await put(store, 'kbyte', data);
    const p0 = shardPath(dirs, 'kbyte', 0);
    const b = readFileSync(p0);
    b.writeUInt16BE(1, 6); // k = 1
    writeFileSync(p0, b);
    t.ok((await read(store, 'kbyte')).equals(data), `${nodes} folder(s): reads from the other shards`);
    const report = await objects.repairObject('kbyte', { store });
    t.same(report.corrupt, [0]);
    t.same(report.repaired, [0]);
  }
});

t.test('4. stale shards never win, also where m ≥ k (1+2, 3+3); repair keeps the current version', async (t) => {
  for (const [k, m] of [[1, 2], [3, 3]] as const) {
    const { dirs, store } = shardDirs(k + m);
    const old = pseudoRandom(k * SEG + 10, 6);
    const fresh = pseudoRandom(k * SEG + 20, 7);
    await put(store, 'stale', old, k, m);
    const oldGen = gens(dirs, 'stale')[0]!;
    const saved = Array.from({ length: k + m }, (_, j) => readFileSync(shardPath(dirs, 'stale', j, oldGen)));
    await put(store, 'stale', fresh, k, m);
    // The old shards come back (a node restored from backup) and all but k of the new ones are lost.
    for (let j = 0; j < k + m; j++) {
      const p = shardPath(dirs, 'stale', j, oldGen);
      mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, saved[j]!);
    }
    for (let j = k; j < k + m; j++) rmSync(shardPath(dirs, 'stale', j));
    t.ok((await read(store, 'stale')).equals(fresh), `${k}+${m}: the current version reads`);
    const report = await objects.repairObject('stale', { store });
    t.same(report.repaired, Array.from({ length: m }, (_, i) => k + i));
    t.same(gens(dirs, 'stale').length, 1, 'the stale generation is removed');
    for (let j = 0; j < k; j++) rmSync(shardPath(dirs, 'stale', j));
    t.ok((await read(store, 'stale')).equals(fresh), 'the repaired shards are the current version');
  }
});

t.test('8. header fields cannot drive allocations; the probe covers the longest header', async (t) => {
  t.ok(SHARD_HEADER_PROBE_BYTES >= SHARD_FIXED_BYTES + MAX_OBJECT_ID_BYTES + MAC_BYTES + headerLengthFor(255), 'probe ≥ longest shard header');
  const { dirs, store } = shardDirs(6);
  const data = pseudoRandom(4 * SEG + 1, 8);
  await put(store, 'hostile', data, 4, 2);
  for (const j of [0, 1]) {
    const p = shardPath(dirs, 'hostile', j);
    const b = readFileSync(p);
    b.writeUInt16BE(250, 6); // k = 250, m = 2
    const sealedAt = SHARD_FIXED_BYTES + Buffer.byteLength('hostile') + MAC_BYTES;
    b.writeUInt32BE(64 * 1024 * 1024, sealedAt + 6); // segment size 64 MiB: a 32 GiB stripe
    writeFileSync(p, b);
  }
  const rss = process.memoryUsage().rss;
  t.ok((await read(store, 'hostile')).equals(data), 'hostile headers are bad shards');
  t.ok(process.memoryUsage().rss - rss < 256 * 1024 * 1024, 'no stripe sized from them');
  await t.rejects(objects.putObject('big', data, { keyId, dataShards: 200, parityShards: 50, store, segmentBytes: 1 << 20 }), RangeError, 'put refuses a shape that needs a huge stripe');
});

t.test('10. missing folders: StoreError (or created on request); a lone surrogate: TypeError', async (t) => {
  const { root } = shardDirs(1);
  const dirs = [0, 1, 2].map((i) => join(root, 'absent', `n${i}`));
  const err = await put(new FsShardStore(dirs), 'x', Buffer.from('abc'), 2, 1).catch((e) => e);
  t.type(err, StoreError);
  t.match(err.message, /does not exist/);
  await put(new FsShardStore(dirs, { createFolders: true }), 'x', Buffer.from('abc'), 2, 1);
  t.ok((await read(new FsShardStore(dirs), 'x')).equals(Buffer.from('abc')), 'created and readable');
  const store = new FsShardStore(dirs);
  await t.rejects(put(store, 'bad\ud800name', Buffer.from('abc'), 2, 1), TypeError);
  t.throws(() => objects.getObject('\udc00', { store }), TypeError);
  await t.rejects(objects.repairObject('a\ud800', { store }), TypeError);
  await t.rejects(objects.deleteObject('a\ud800', { store }), TypeError);
});

t.test('11. a get opens k shards, data first; a lost, corrupt or mismatched one brings in spares, repair opens all', async (t) => {
  const { dirs, store } = shardDirs(6);
  const data = pseudoRandom(4 * SEG * 5 + 333, 12);
  await put(store, 'lazy', data, 4, 2);
  const files = Array.from({ length: 6 }, (_, j) => readFileSync(shardPath(dirs, 'lazy', j)));
  const restore = () => files.forEach((f, j) => writeFileSync(shardPath(dirs, 'lazy', j), f));
  /** Shards opened by one get (a read of the whole object), which must return the object. */
  const opened = async (label: string): Promise<number> => {
    const counting = new FaultStore(store);
    t.ok((await read(counting, 'lazy')).equals(data), `${label}: reads`);
    return counting.counts.get('openReader') ?? 0;
  };
  t.equal(await opened('all there'), 4, 'k shards opened when all are there');
  rmSync(shardPath(dirs, 'lazy', 1));
  t.equal(await opened('data shard 1 lost'), 4, 'a shard missing from the listing: the next one is opened instead');
  restore();
  const chunk = Buffer.from(files[2]!);
  chunk[chunk.length >> 1] ^= 1; // in a chunk: found when its stripe is read
  writeFileSync(shardPath(dirs, 'lazy', 2), chunk);
  t.equal(await opened('a chunk of shard 2 corrupt'), 5, 'one spare opened when a chunk fails its tag');
  restore();
  const header = Buffer.from(files[0]!);
  header.writeUInt16BE(3, 6); // k = 3 in the first header: decides how many to open first, nothing else
  writeFileSync(shardPath(dirs, 'lazy', 0), header);
  t.equal(await opened('the first header says k = 3'), 6, 'no group of k: every listed shard opened, the object still reads');
  restore();
  const counting = new FaultStore(store);
  t.same((await objects.repairObject('lazy', { store: counting })).repaired, []);
  t.equal(counting.counts.get('openReader'), 6, 'repair opens every shard');
});

t.test('11b. stripes the native threads open: a lost or corrupt data shard is rebuilt in a worker, the same bytes', async (t) => {
  // 64 KiB segments, 4+2: 256 KiB stripes, past the inline size, so healthy stripes open on the native threads
  // into memory getObject hands over, and a stripe that needs a rebuild goes to a worker through a pooled buffer.
  const { dirs, store } = shardDirs(6);
  const S = 64 * 1024;
  const data = pseudoRandom(4 * S * 3 + 333, 13);
  await objects.putObject('big', data, { keyId, dataShards: 4, parityShards: 2, store, segmentBytes: S });
  const files = Array.from({ length: 6 }, (_, j) => readFileSync(shardPath(dirs, 'big', j)));
  const restore = () => files.forEach((f, j) => writeFileSync(shardPath(dirs, 'big', j), f));
  const both = async (label: string) => {
    t.ok((await read(store, 'big')).equals(data), `${label}: getObject`);
    t.ok((await collectCopies(objects.getObjectChunks('big', { store }))).equals(data), `${label}: getObjectChunks`);
    t.ok((await collect(objects.getObject('big', { store, range: { offset: S + 7, length: 2 * S } }))).equals(data.subarray(S + 7, 3 * S + 7)), `${label}: a range`);
  };
  await both('all there');
  rmSync(shardPath(dirs, 'big', 1));
  await both('data shard 1 lost');
  restore();
  const corrupt = Buffer.from(files[2]!);
  corrupt[corrupt.length >> 1] ^= 1;
  writeFileSync(shardPath(dirs, 'big', 2), corrupt);
  await both('a chunk of data shard 2 corrupt');
  restore();
});

t.test('12. the span a get reads of each data shard is exactly the slots its stripes read, back to back', async (t) => {
  const { geometry, stripeOffset, stripeChunkBytes, CHUNK_TAG_BYTES } = await import('../dist/object/format.js');
  const { neededChunks, shardSpans } = await import('../dist/object/stripe-io.js');
  let checked = 0;
  for (let n = 0; n < 3000; n++) {
    const k = 1 + (n % 8);
    const S = 16 + ((n * 37) % 200);
    const size = 1 + ((n * 7919) % 5000);
    const g = geometry(k, n % 3, S, size, 100);
    const offset = (n * 104729) % size;
    const length = 1 + ((n * 1299709) % (size - offset));
    const first = Math.floor(offset / S);
    const last = Math.floor((offset + length - 1) / S);
    const stripesOf = new Map<number, number[]>();
    for (let s = Math.floor(first / k); s <= Math.floor(last / k); s++) {
      for (const j of neededChunks(g, s, Math.max(first, s * k), Math.min(last, s * k + k - 1))) stripesOf.set(j, [...(stripesOf.get(j) ?? []), s]);
    }
    const spans = shardSpans(g, first, last);
    const expected = new Map([...stripesOf].map(([j, ts]) => {
      const from = stripeOffset(g, ts[0]!);
      const to = stripeOffset(g, ts.at(-1)!) + stripeChunkBytes(g, ts.at(-1)!) + CHUNK_TAG_BYTES;
      return [j, { offset: from, length: to - from, contiguous: ts.every((s, i) => i === 0 || s === ts[i - 1]! + 1) }];
    }));
    const same = spans.size === expected.size && [...expected].every(([j, e]) => e.contiguous && spans.get(j)?.offset === e.offset && spans.get(j)?.length === e.length);
    if (!same) t.fail(`k=${k} S=${S} size=${size} range ${offset}+${length}: ${JSON.stringify([...spans])} vs ${JSON.stringify([...expected])}`);
    checked++;
  }
  t.pass(`${checked} geometries and ranges`);
});

t.test('delete and list: names in order across pages, prefix, startAfter, long names; delete leaves nothing', async (t) => {
  const { dirs, store } = shardDirs(3);
  const names = ['a', 'a/b', 'ab', 'b', 'é', '日本', 'a'.repeat(200), 'a'.repeat(151), 'z'.repeat(600) + '1', 'z'.repeat(600) + '2', 'x\u0000y', '🙂'];
  for (const [i, name] of names.entries()) await put(store, name, pseudoRandom(100 + i, i + 1), 2, 1);
  await put(store, 'b', Buffer.from('again'), 2, 1); // two generations for a moment: still one name
  // Byte order of UTF-8, except that names over 450 bytes sort by their first 450 bytes, then by SHA-256 (documented).
  const head = (n: string) => Buffer.from(n).subarray(0, 450);
  const hash = (n: string) => createHash('sha256').update(n).digest('hex');
  const order = (a: string, b: string) => {
    const c = Buffer.compare(head(a), head(b));
    if (c !== 0 || Buffer.byteLength(a) <= 450 || Buffer.byteLength(b) <= 450) return c !== 0 ? c : Buffer.byteLength(a) - Buffer.byteLength(b);
    return hash(a) < hash(b) ? -1 : 1;
  };
  const sorted = [...names].sort(order);
  const all: string[] = [];
  for await (const name of objects.listObjects({ store })) all.push(name);
  t.same(all, sorted, 'every name once, in byte order');
  const { listNames } = await import('../dist/object/listing.js');
  const paged: string[] = [];
  for await (const name of listNames(store, { ns: 'o', pageKeys: 2 })) paged.push(name);
  t.same(paged, sorted, 'the same with pages of 2 keys');
  const withA: string[] = [];
  for await (const name of objects.listObjects({ store, prefix: 'a' })) withA.push(name);
  t.same(withA, sorted.filter((n) => n.startsWith('a')), 'prefix');
  const after: string[] = [];
  for await (const name of objects.listObjects({ store, startAfter: 'ab' })) after.push(name);
  t.same(after, sorted.filter((n) => order(n, 'ab') > 0), 'startAfter');
  const none: string[] = [];
  for await (const name of objects.listObjects({ store, namespace: 'b/other/o' })) none.push(name);
  t.same(none, [], 'another namespace is empty');

  const long = 'z'.repeat(600) + '1';
  t.ok((await read(store, long)).equals(pseudoRandom(100 + names.indexOf(long), names.indexOf(long) + 1)), 'a hashed name reads');
  for (const name of names) await objects.deleteObject(name, { store });
  await t.rejects(objects.deleteObject('a', { store }), ObjectNotFoundError);
  await t.rejects(read(store, 'a'), ObjectNotFoundError);
  const left: string[] = [];
  for await (const name of objects.listObjects({ store })) left.push(name);
  t.same(left, []);
  for (const dir of dirs) t.same(existsSync(dir) ? readdirSync(dir).filter((n) => !n.startsWith('.tmp-')) : [], [], 'no blob and no folder left');
});

t.test('namespaces keep objects apart: a shard moved to another namespace or name does not read', async (t) => {
  const { dirs, store } = shardDirs(3);
  const data = pseudoRandom(3000, 11);
  await objects.putObject('n', data, { keyId, dataShards: 2, parityShards: 1, store, namespace: 'b/one/o' });
  t.ok((await collect(objects.getObject('n', { store, namespace: 'b/one/o' }))).equals(data));
  await t.rejects(read(store, 'n'), ObjectNotFoundError, 'not in the default namespace');
  // Copy every blob under another namespace and under another name: nothing verifies.
  for (const [ns, name] of [['b/two/o', 'n'], ['b/one/o', 'm']] as const) {
    for (let j = 0; j < 3; j++) {
      const from = shardPath(dirs, 'n', j, undefined, 'b/one/o');
      const to = join(objectFolder(dirs[j]!, name, ns), dirname(from).split('/').at(-1)!, String(j));
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(from, to);
    }
    const err = await collect(objects.getObject(name, { store, namespace: ns })).catch((e) => e);
    t.ok(err instanceof Error && (err.name === 'DecryptionError' || err instanceof ErasureError), `${ns} ${name}: ${err?.name}`);
  }
  await t.rejects(objects.putObject('n', data, { keyId, dataShards: 2, parityShards: 1, store, namespace: '../x' }), TypeError);
});
