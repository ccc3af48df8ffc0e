// FsShardStore (v2 blob store): atomic publish, byte-order listing over nested folders, pruning, typed errors.
import t from 'tap';
import { mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsShardStore } from '../dist/object/fs-shard-store.js';
import { StoreError } from '../dist/errors.js';

function folders(n: number) {
  const root = mkdtempSync(join(tmpdir(), 'hce-fs-'));
  const dirs = Array.from({ length: n }, (_, i) => join(root, `n${i}`));
  return { root, dirs };
}

async function put(store: FsShardStore, node: number, key: string, bytes: Uint8Array) {
  const w = await store.openWriter(node, key);
  await w.write(bytes);
  await w.flush();
  await w.commit();
}

async function listAll(store: FsShardStore, node: number, prefix: string, limit: number) {
  const out: string[] = [];
  for (let after: string | undefined; ; ) {
    const page = await store.list(node, { prefix, startAfter: after, limit });
    out.push(...page);
    if (page.length < limit) return out;
    after = page[page.length - 1];
  }
}

t.test('write, commit, read back; nothing visible before commit', async (t) => {
  const { root, dirs } = folders(2);
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const store = new FsShardStore(dirs, { createFolders: true });
  const w = await store.openWriter(1, 'o/a/g1/0');
  await w.write(Buffer.from('hello '));
  await w.write(Buffer.from('world'));
  t.equal(await store.openReader(1, 'o/a/g1/0'), null, 'not visible before commit');
  await w.commit();
  await w.abort(); // after commit: a no-op
  const r = (await store.openReader(1, 'o/a/g1/0'))!;
  t.equal(r.size, 11);
  const b = Buffer.alloc(5);
  t.equal(await r.read(6, b), 5);
  t.equal(b.toString(), 'world');
  await r.close();
  t.equal(await store.openReader(0, 'o/a/g1/0'), null, 'another node does not have it');
});

t.test('readAheadBytes: a blob that fits is read whole at open, the same bytes at every offset', async (t) => {
  const { root, dirs } = folders(1);
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const store = new FsShardStore(dirs, { createFolders: true });
  const bytes = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 7) & 255));
  await put(store, 0, 'ra/blob', bytes);
  for (const readAheadBytes of [5000, 1 << 20, 4999, 0]) {
    const r = (await store.openReader(0, 'ra/blob', { readAheadBytes }))!;
    if (readAheadBytes >= 5000) rmSync(store.path(0, 'ra/blob')); // read whole at open: the file is not needed
    t.equal(r.size, 5000, `readAheadBytes ${readAheadBytes}: size`);
    for (const [offset, length] of [[0, 100], [4990, 100], [123, 4000], [5000, 10], [6000, 1]] as const) {
      const target = Buffer.alloc(length);
      const n = await r.read(offset, target);
      t.ok(target.subarray(0, n).equals(bytes.subarray(offset, offset + length)), `readAheadBytes ${readAheadBytes}: ${length} at ${offset}`);
    }
    await r.close();
    if (readAheadBytes >= 5000) await put(store, 0, 'ra/blob', bytes);
  }
  t.equal(await store.openReader(0, 'ra/none', { readAheadBytes: 100 }), null, 'a missing blob is null');
});

t.test('list: byte order across nested folders, prefix, startAfter, limit', async (t) => {
  const { root, dirs } = folders(1);
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const store = new FsShardStore(dirs, { createFolders: true });
  const keys = ['a/b', 'a-x', 'a0', 'a/a/z', 'b', 'a/c', 'ab/1', 'ab%2F', 'A', 'a.b/c', 'z/y/x/w'];
  for (const k of keys) await put(store, 0, k, Buffer.from(k));
  const sorted = [...keys].sort();
  t.same(await store.list(0, { prefix: '', limit: 100 }), sorted, 'everything, in byte order');
  for (const limit of [1, 2, 3, 100]) t.same(await listAll(store, 0, '', limit), sorted, `paged by ${limit}`);
  t.same(await store.list(0, { prefix: 'a/', limit: 100 }), sorted.filter((k) => k.startsWith('a/')));
  t.same(await store.list(0, { prefix: 'a', limit: 100 }), sorted.filter((k) => k.startsWith('a')), 'partial segment');
  t.same(await store.list(0, { prefix: 'ab', limit: 100 }), ['ab%2F', 'ab/1']);
  t.same(await store.list(0, { prefix: '', startAfter: 'a/b', limit: 100 }), sorted.filter((k) => k > 'a/b'));
  t.same(await store.list(0, { prefix: 'q', limit: 100 }), []);
  t.same(await store.list(0, { prefix: 'nothing/here/', limit: 100 }), []);
});

t.test('remove prunes emptied folders and is idempotent', async (t) => {
  const { root, dirs } = folders(1);
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const store = new FsShardStore(dirs, { createFolders: true });
  await put(store, 0, 'o/x/g/0', Buffer.from('1'));
  await put(store, 0, 'o/y/g/0', Buffer.from('2'));
  await store.remove(0, 'o/x/g/0');
  await store.remove(0, 'o/x/g/0');
  t.notOk(existsSync(join(dirs[0]!, 'o', 'x')), 'empty folders pruned');
  t.ok(existsSync(join(dirs[0]!, 'o', 'y', 'g', '0')), 'others kept');
  t.same(await store.list(0, { prefix: 'o/', limit: 10 }), ['o/y/g/0']);
});

t.test('abort leaves nothing; sweep never takes a live writer\'s temp file', async (t) => {
  const { root, dirs } = folders(1);
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const store = new FsShardStore(dirs, { createFolders: true });
  const w1 = await store.openWriter(0, 'k1');
  await w1.write(Buffer.from('x'));
  await w1.abort();
  t.same(readdirSync(dirs[0]!), []);
  const w2 = await store.openWriter(0, 'k2');
  await w2.write(Buffer.from('x'));
  t.equal(await store.sweepTempFiles(0), 0, 'a live temp file is not swept');
  await w2.commit();
  t.same(readdirSync(dirs[0]!), ['k2']);
  await t.rejects(store.sweepTempFiles(-1), RangeError);
  await t.rejects(store.sweepTempFiles('x' as any), TypeError);
});


// Readers and writers hold plain descriptors, whose numbers the kernel hands out again at once: a call after close
// must fail, not reach the file that got the number meanwhile.
t.test('a closed reader or a committed writer refuses further calls; the next file opened is untouched', async (t) => {
  const { root, dirs } = folders(1);
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const store = new FsShardStore(dirs, { createFolders: true });
  await put(store, 0, 'big', Buffer.alloc(200_000, 1));
  const reader = (await store.openReader(0, 'big'))!;
  await reader.close();
  await reader.close(); // twice is harmless
  const w = await store.openWriter(0, 'w');
  await w.write(Buffer.from('first'));
  await w.commit();
  const other = await store.openWriter(0, 'other');
  await t.rejects(reader.read(0, Buffer.alloc(4)), /closed/);
  await t.rejects(w.write(Buffer.from('later')), /committed/);
  await t.rejects(w.flush(), /committed/);
  await other.write(Buffer.from('mine'));
  await other.commit();
  const back = (await store.openReader(0, 'other', { readAheadBytes: 1024 }))!;
  const bytes = Buffer.alloc(back.size);
  await back.read(0, bytes);
  t.equal(bytes.toString(), 'mine');
  const first = (await store.openReader(0, 'w', { readAheadBytes: 1024 }))!;
  t.equal(first.size, 5);
});
t.test('bad arguments and a missing node folder are typed errors', async (t) => {
  const { root, dirs } = folders(2);
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const store = new FsShardStore(dirs);
  const err = await store.openWriter(0, 'k').catch((e) => e);
  t.type(err, StoreError, 'missing folder, not created by default');
  t.equal(err.node, 0);
  t.match(err.message, /does not exist/);
  await t.rejects(store.openWriter(0, '../escape'), RangeError);
  await t.rejects(store.openWriter(0, 'a//b'), RangeError);
  await t.rejects(store.openWriter(0, 'a/.tmp-x'), RangeError);
  await t.rejects(store.openWriter(2, 'k'), RangeError);
  await t.rejects(store.list(0, { prefix: '', limit: 0 }), RangeError);
  t.equal(await store.openReader(1, 'k'), null, 'a missing folder reads as a lost shard');
  t.throws(() => new FsShardStore([]), TypeError);
  t.throws(() => new FsShardStore(['a'], { createFolders: 'yes' as any }), TypeError);
});

// Small writes are gathered and go out with the next large one or at flush/commit: the bytes come back in order,
// and the caller may reuse its buffer as soon as write resolves.
t.test('gathered writes: small and large in any order read back exactly; reused caller buffers', async (t) => {
  const { root, dirs } = folders(1);
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const store = new FsShardStore(dirs, { createFolders: true });
  const w = await store.openWriter(0, 'g/x');
  const expected: Buffer[] = [];
  const scratch = Buffer.alloc(70_000);
  const sizes = [0, 1, 300, 0, 1000, 3000, 9000, 65_536, 7, 70_000, 40_000, 30_000, 5, 65_535, 1, 2]; // the gather buffer grows, then spills
  for (const [i, n] of sizes.entries()) {
    scratch.fill(i + 1, 0, n);
    expected.push(Buffer.from(scratch.subarray(0, n)));
    await w.write(scratch.subarray(0, n));
    scratch.fill(0xee); // reused at once
    if (i === 10) await w.flush();
  }
  await w.commit();
  const r = (await store.openReader(0, 'g/x'))!;
  const back = Buffer.alloc(r.size);
  await r.read(0, back);
  await r.close();
  t.ok(back.equals(Buffer.concat(expected)));

  const empty = await store.openWriter(0, 'g/empty'); // only an empty write (a bucket's listing entry): an empty blob
  await empty.write(Buffer.alloc(0));
  await empty.commit();
  const emptyReader = await store.openReader(0, 'g/empty');
  t.equal(emptyReader?.size, 0);
  await emptyReader?.close();
});

// writeFinal (the put's last chunk, trailer and flush in one call) writes what write() of each part, then flush(),
// would: after the gathered bytes, in order; a committed writer refuses it.
t.test('writeFinal: gathered bytes, then the parts, durable; refused once committed', async (t) => {
  const { root, dirs } = folders(1);
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const store = new FsShardStore(dirs, { createFolders: true });
  const w = await store.openWriter(0, 'f/x');
  const head = Buffer.alloc(100, 1);
  const big = Buffer.alloc(100_000, 2);
  const tail = Buffer.alloc(36, 3);
  await w.write(head); // gathered
  await w.writeFinal([big, Buffer.alloc(0), tail]);
  big.fill(0); // the caller's buffers are free once it resolves
  await w.commit();
  const r = (await store.openReader(0, 'f/x'))!;
  const back = Buffer.alloc(r.size);
  await r.read(0, back);
  await r.close();
  t.ok(back.equals(Buffer.concat([head, Buffer.alloc(100_000, 2), tail])));
  await t.rejects(w.writeFinal([tail]), /committed/);
});

// A name's entries among a folder of many (a bucket's listing): the folder is filtered where it is read.
t.test('list: a partial last segment in a folder of many entries, whole and paged', async (t) => {
  const { root, dirs } = folders(1);
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const store = new FsShardStore(dirs, { createFolders: true });
  const keys = Array.from({ length: 100 }, (_, i) => `big/k${String(i).padStart(3, '0')}`);
  for (const k of keys) await put(store, 0, k, Buffer.from(k));
  await put(store, 0, 'big/k05/deeper', Buffer.from('x'));
  t.same(await listAll(store, 0, 'big/k05', 3), [...keys.filter((k) => k.startsWith('big/k05')), 'big/k05/deeper'].sort());
  t.same(await listAll(store, 0, 'big/', 7), [...keys, 'big/k05/deeper'].sort());
  t.same(await store.list(0, { prefix: 'big/zz', limit: 5 }), []);
});
