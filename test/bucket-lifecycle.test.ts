// Buckets on a real SoftHSM token and real folders: names, create/open/list/delete, objects, listing order,
// a second engine and a second process, binding of objects to bucket and name, changed bytes in records.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, mkdirSync, writeFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { engineOptions } from './helpers/token.js';
import { all, bucketStore, collect } from './helpers/buckets.js';
import {
  BucketExistsError, BucketNotEmptyError, BucketNotFoundError, BucketRecordError, CryptoEngine, DecryptionError, KeyNotFoundError,
  KeyStateError, ObjectNotFoundError,
} from '../dist/index.js';

const engine = await CryptoEngine.open(engineOptions());
t.teardown(() => engine.close());
const key = await engine.keys.create({ alias: 'tenant-a' });
const other = await engine.keys.create({ alias: 'tenant-b' });
const shape = { dataShards: 4, parityShards: 2 };

/** Every file under `dir`, recursively. */
function files(dir: string): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...files(path));
    else out.push(path);
  }
  return out;
}

t.test('bad bucket and object names are TypeError/RangeError naming the argument', async (t) => {
  const { store } = bucketStore(6);
  for (const name of ['ab', 'A-bucket', '-abc', 'abc-', 'a'.repeat(64), 'ab_c', 'ab c', '.abc']) {
    await t.rejects(engine.buckets.create(name, { store, keyId: key.id, ...shape }), { name: 'RangeError', message: /^name must/ }, name);
  }
  await t.rejects(engine.buckets.create(42 as never, { store, keyId: key.id, ...shape }), { name: 'TypeError', message: /^name must/ });
  await t.rejects(engine.buckets.open('NO', { store }), RangeError);
  await t.rejects(engine.buckets.create('fine', { store: {} as never, keyId: key.id, ...shape }), { name: 'TypeError', message: /options\.store/ });
  await t.rejects(engine.buckets.create('fine', { store, keyId: key.id, dataShards: 0, parityShards: 1 }), RangeError);
  t.same(await engine.buckets.list({ store }), [], 'nothing half-created');
  const bucket = await engine.buckets.create('names', { store, keyId: key.id, ...shape });
  for (const bad of ['', '\ud800x', 'x'.repeat(1025), 'é'.repeat(513)]) {
    await t.rejects(bucket.putObject(bad, Buffer.from('x')), { name: 'RangeError', message: /^name must/ }, JSON.stringify(bad.slice(0, 8)));
    await t.rejects(bucket.headObject(bad), RangeError);
  }
  await t.rejects(bucket.putObject(7 as never, Buffer.from('x')), TypeError);
  t.throws(() => bucket.getObject(undefined as never), TypeError);
  await t.rejects(all(bucket.listObjects({ prefix: '\udc00' })), { name: 'RangeError', message: /options\.prefix/ });
  t.ok(await bucket.putObject('x'.repeat(1024), Buffer.from('longest')), '1024 bytes is fine');
});

t.test('create: unknown key, disabled key, duplicate; nothing half-created', async (t) => {
  const { store } = bucketStore(6);
  await t.rejects(engine.buckets.create('nokey', { store, keyId: 'no-such-key', ...shape }), KeyNotFoundError);
  const off = await engine.keys.create({ alias: 'disabled-at-create' });
  await engine.keys.disable(off.id);
  await t.rejects(engine.buckets.create('offkey', { store, keyId: off.id, ...shape }), KeyStateError);
  t.same(await engine.keys.registrations(off.id), [], 'no registration left');
  t.same(await engine.buckets.list({ store }), []);
  t.same(files(store.dirs[0]!), [], 'no record left in the store');
  await engine.buckets.create('dup', { store, keyId: key.id, ...shape });
  await t.rejects(engine.buckets.create('dup', { store, keyId: other.id, ...shape }), BucketExistsError);
  t.equal((await engine.buckets.open('dup', { store })).info.keyId, key.id, 'binding unchanged');
  t.equal((await engine.keys.registrations(other.id)).length, 0, 'the loser registered nothing');
  await t.rejects(engine.buckets.open('missing', { store }), BucketNotFoundError);
  await t.rejects(engine.buckets.delete('missing', { store }), BucketNotFoundError);
});

t.test('objects: put, get, ranges, head, list in name order with prefix and startAfter, delete', async (t) => {
  const { store } = bucketStore(6);
  const bucket = await engine.buckets.create('photos', { store, keyId: 'tenant-a', ...shape });
  t.match(bucket.info, { name: 'photos', keyId: key.id, keyAlias: 'tenant-a', dataShards: 4, parityShards: 2 });
  const names = ['2026/cat.jpg', '2026/ca', '2026/cat.jpg.bak', '2025/x', 'é/ü', '\u{1F600}', '\uffff', 'z', 'l'.repeat(600) + 'b', 'l'.repeat(600) + 'a', 'a'];
  const bodies = new Map<string, Buffer>();
  for (const name of names) {
    const body = randomBytes(1 + (name.length * 997) % 70_000);
    bodies.set(name, body);
    const info = await bucket.putObject(name, body);
    t.match(info, { bucket: 'photos', name, size: body.length, keyId: key.id, keyVersion: 1 });
  }
  for (const [name, body] of bodies) t.ok((await collect(bucket.getObject(name))).equals(body), `get ${name.slice(0, 20)}`);
  const body = bodies.get('2026/cat.jpg')!;
  t.ok((await collect(bucket.getObject('2026/cat.jpg', { range: { offset: 100, length: 5000 } }))).equals(body.subarray(100, 5100)), 'range');
  t.ok((await collect(bucket.getObjectChunks('2026/cat.jpg'))).equals(body), 'getObjectChunks');
  t.ok((await collect(bucket.getObjectChunks('2026/cat.jpg', { range: { offset: 100, length: 5000 } }))).equals(body.subarray(100, 5100)), 'getObjectChunks range');
  t.match(await bucket.headObject('2026/ca'), { name: '2026/ca', size: bodies.get('2026/ca')!.length });

  const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));
  // Names over 480 bytes sort by their first 480 bytes, then by hash: compare them as a set.
  const listed = (await all(bucket.listObjects())).map((o) => o.name);
  const short = names.filter((n) => Buffer.byteLength(n) <= 480).sort(byteOrder);
  t.same(listed.filter((n) => Buffer.byteLength(n) <= 480), short, 'byte order of names');
  t.same(listed.filter((n) => Buffer.byteLength(n) > 480).sort(), names.filter((n) => n.length > 480).sort(), 'long names listed');
  t.same((await all(bucket.listObjects({ prefix: '2026/' }))).map((o) => o.name), ['2026/ca', '2026/cat.jpg', '2026/cat.jpg.bak']);
  t.same((await all(bucket.listObjects({ prefix: '2026/ca', startAfter: '2026/ca' }))).map((o) => o.name), ['2026/cat.jpg', '2026/cat.jpg.bak']);
  t.same((await all(bucket.listObjects({ startAfter: '\u{1F600}' }))).map((o) => o.name), [], 'nothing after the highest');

  // Re-put replaces; one listing entry.
  await bucket.putObject('a', Buffer.from('second'));
  t.equal((await collect(bucket.getObject('a'))).toString(), 'second');
  t.equal((await all(bucket.listObjects({ prefix: 'a' }))).length, 1);

  await t.rejects(bucket.headObject('nope'), ObjectNotFoundError);
  await t.rejects(collect(bucket.getObject('nope')), ObjectNotFoundError);
  await t.rejects(bucket.deleteObject('nope'), ObjectNotFoundError);
  await t.rejects(engine.buckets.delete('photos', { store }), BucketNotEmptyError);
  for (const name of names) await bucket.deleteObject(name);
  await t.rejects(bucket.headObject('z'), ObjectNotFoundError);
  t.same(await all(bucket.listObjects()), []);
  t.equal((await engine.keys.registrations(key.id)).filter((r) => r.bucket === 'photos').length, 1);
  await engine.buckets.delete('photos', { store });
  t.equal((await engine.keys.registrations(key.id)).filter((r) => r.bucket === 'photos').length, 0, 'registration removed');
  await t.rejects(engine.buckets.open('photos', { store }), BucketNotFoundError);
});

t.test('a listing entry left without its object (a crash inside delete) is passed over by a new put and removed by the next', async (t) => {
  const { dirs, store } = bucketStore(6);
  const bucket = await engine.buckets.create('leftovers', { store, keyId: 'tenant-a', ...shape });
  await bucket.putObject('g', Buffer.from('first'));
  // The crash: the object's shards are gone (deleteObject removes them first), its listing entry is not.
  for (let node = 0; node < store.nodes; node++) for (const k of await store.list(node, { prefix: 'bo/leftovers/', limit: 1000 })) await store.remove(node, k);
  await t.rejects(collect(bucket.getObject('g')), ObjectNotFoundError);
  const entries = () => files(join(dirs[0]!, 'bi', 'leftovers')).length;
  t.equal(entries(), 1, 'the stale entry');
  await bucket.putObject('g', Buffer.from('second!'));
  t.equal(entries(), 2, 'a put that replaced no generation lists no entries: the stale one stays');
  t.match(await all(bucket.listObjects()), [{ name: 'g', size: 7 }], 'listed once, the newer entry');
  t.match(await bucket.headObject('g'), { size: 7 });
  await bucket.putObject('g', Buffer.from('third'));
  t.equal(entries(), 1, 'an overwrite removes every older entry');
  t.equal((await collect(bucket.getObject('g'))).toString(), 'third');
  await bucket.deleteObject('g');
  t.equal(entries(), 0);
  await engine.buckets.delete('leftovers', { store });
});

t.test('an object with shards but no listing entry (a crash between them) is restored to the listing by repairObject', async (t) => {
  const { dirs, store } = bucketStore(6);
  const bucket = await engine.buckets.create('unlisted', { store, keyId: 'tenant-a', ...shape });
  const body = randomBytes(5000);
  const put = await bucket.putObject('u/1', body);
  for (let node = 0; node < store.nodes; node++) for (const k of await store.list(node, { prefix: 'bi/unlisted/', limit: 1000 })) await store.remove(node, k);
  t.same(await all(bucket.listObjects()), [], 'not listed');
  await t.rejects(bucket.headObject('u/1'), ObjectNotFoundError);
  t.ok((await collect(bucket.getObject('u/1'))).equals(body), 'but readable');
  const report = await bucket.repairObject('u/1');
  t.match(report, { listingRestored: true, size: body.length, repaired: [] });
  t.match(await all(bucket.listObjects()), [{ name: 'u/1', size: body.length, keyVersion: 1 }], 'listed again');
  const head = await bucket.headObject('u/1');
  t.equal(head.size, body.length);
  t.ok(Math.abs(head.createdAt.getTime() - put.createdAt.getTime()) < 60_000, 'createdAt from the generation');
  t.match(await bucket.repairObject('u/1'), { listingRestored: false }, 'nothing to restore the second time');
  t.equal(files(join(dirs[0]!, 'bi', 'unlisted')).length, 1);
  await bucket.deleteObject('u/1');
  await engine.buckets.delete('unlisted', { store });
});

t.test('list buckets by name and by root key; registrations name bucket, store and creation', async (t) => {
  const { store } = bucketStore(3);
  await engine.buckets.create('zeta', { store, keyId: key.id, dataShards: 2, parityShards: 1 });
  await engine.buckets.create('alpha', { store, keyId: other.id, dataShards: 2, parityShards: 1 });
  await engine.buckets.create('mid.dle', { store, keyId: key.id, dataShards: 2, parityShards: 1 });
  t.same((await engine.buckets.list({ store })).map((b) => b.name), ['alpha', 'mid.dle', 'zeta']);
  t.same((await engine.buckets.list({ store, keyId: 'tenant-a' })).map((b) => b.name), ['mid.dle', 'zeta']);
  t.same((await engine.buckets.list({ store, keyId: other.id })).map((b) => b.name), ['alpha']);
  const regs = (await engine.keys.registrations('tenant-b')).filter((r) => r.store === store.id);
  t.equal(regs.length, 1);
  t.equal(regs[0]!.bucket, 'alpha');
  t.ok(regs[0]!.createdAt instanceof Date);
  t.match(store.id, /^fs:\//);
});

t.test('a second engine and a second process see the same buckets and objects', async (t) => {
  const { store, dirs, root } = bucketStore(6);
  const bucket = await engine.buckets.create('shared', { store, keyId: key.id, ...shape });
  const body = randomBytes(100_000);
  await bucket.putObject('doc', body);
  const second = await CryptoEngine.open(engineOptions());
  try {
    const again = await second.buckets.open('shared', { store: new (store.constructor as never as new (d: string[]) => typeof store)(dirs) });
    t.ok((await collect(again.getObject('doc'))).equals(body));
    await again.putObject('from-second', Buffer.from('hi'));
    t.equal((await collect(bucket.getObject('from-second'))).toString(), 'hi', 'first engine reads what the second wrote');
    t.ok((await second.keys.registrations(key.id)).some((r) => r.bucket === 'shared'));
  } finally {
    await second.close();
  }
  const here = dirname(fileURLToPath(import.meta.url));
  const script = `
    const { CryptoEngine } = await import(${JSON.stringify(join(here, '../dist/index.js'))});
    const { FsShardStore } = await import(${JSON.stringify(join(here, '../dist/object/fs-shard-store.js'))});
    const engine = await CryptoEngine.open(JSON.parse(process.env.OPTS));
    const store = new FsShardStore(JSON.parse(process.env.DIRS));
    const b = await engine.buckets.open('shared', { store });
    const chunks = []; for await (const c of b.getObject('doc')) chunks.push(c);
    const names = []; for await (const o of b.listObjects()) names.push(o.name);
    const regs = await engine.keys.registrations(${JSON.stringify(key.id)});
    process.stdout.write(JSON.stringify({ size: Buffer.concat(chunks).length, names, regs: regs.map((r) => r.bucket) }));
    await engine.close();`;
  const scriptFile = join(root, 'second-process.mjs');
  writeFileSync(scriptFile, script);
  const out = JSON.parse(execFileSync(process.execPath, [scriptFile], {
    env: { ...process.env, OPTS: JSON.stringify(engineOptions()), DIRS: JSON.stringify(dirs) },
  }).toString());
  t.equal(out.size, body.length, 'second process reads the object');
  t.same(out.names, ['doc', 'from-second']);
  t.ok(out.regs.includes('shared'));
});

t.test('objects are bound to bucket and name: moved shards fail with DecryptionError', async (t) => {
  const { store, dirs } = bucketStore(3);
  const a = await engine.buckets.create('bound-a', { store, keyId: key.id, dataShards: 2, parityShards: 1 });
  const b = await engine.buckets.create('bound-b', { store, keyId: key.id, dataShards: 2, parityShards: 1 });
  await a.putObject('one', Buffer.from('one'));
  await a.putObject('two', Buffer.from('two'));
  await b.putObject('one', Buffer.from('b-one'));
  const shardFiles = (bucket: string, name: string) =>
    dirs.flatMap((d) => files(join(d, 'bo', bucket))).filter((f) => f.includes(`/${encodedName(name)}/`)).sort();
  // Another name in the same bucket: copy 'one''s shards over 'two''s.
  const one = shardFiles('bound-a', 'one');
  const two = shardFiles('bound-a', 'two');
  t.equal(one.length, 3);
  one.forEach((f, i) => writeFileSync(two[i]!, readFileSync(f)));
  await t.rejects(collect(a.getObject('two')), DecryptionError, 'moved to another name');
  // Another bucket, same name.
  shardFiles('bound-a', 'one').forEach((f, i) => writeFileSync(shardFiles('bound-b', 'one')[i]!, readFileSync(f)));
  await t.rejects(collect(b.getObject('one')), DecryptionError, 'moved to another bucket');
  t.equal((await collect(a.getObject('one'))).toString(), 'one', 'the original still reads');
});

t.test('a changed byte in a stored bucket record is detected', async (t) => {
  const { store, dirs } = bucketStore(3);
  const bucket = await engine.buckets.create('tamper', { store, keyId: key.id, dataShards: 2, parityShards: 1 });
  await bucket.putObject('obj', Buffer.from('data'));
  const manifests = dirs.map((d) => files(join(d, 'br', 'tamper', 'm'))[0]!);
  const original = readFileSync(manifests[0]!);
  const changed = Buffer.from(original.toString().replace(`"dataShards":2`, `"dataShards":3`));
  writeFileSync(manifests[0]!, changed);
  t.equal((await engine.buckets.open('tamper', { store })).info.dataShards, 2, 'one bad copy: another copy verifies');
  for (const m of manifests) writeFileSync(m, changed);
  await t.rejects(engine.buckets.open('tamper', { store }), BucketRecordError, 'every copy changed');
  await t.rejects(engine.buckets.list({ store }), BucketRecordError);
  const flipped = Buffer.from(original);
  flipped[flipped.length - 5] ^= 1; // inside the MAC
  for (const m of manifests) writeFileSync(m, flipped);
  await t.rejects(engine.buckets.open('tamper', { store }), BucketRecordError, 'a flipped MAC bit');
  for (const m of manifests) writeFileSync(m, original);
  const reopened = await engine.buckets.open('tamper', { store });
  // Bucket key records: a changed byte in every copy makes the bucket's objects unreadable (never another key).
  const records = dirs.flatMap((d) => files(join(d, 'br', 'tamper', 'k')));
  const saved = records.map((f) => readFileSync(f));
  for (const f of records) {
    const json = JSON.parse(readFileSync(f, 'utf8'));
    const w = Buffer.from(json.wrapped, 'base64');
    w[w.length - 1] ^= 1;
    writeFileSync(f, JSON.stringify({ v: 1, wrapped: w.toString('base64') }));
  }
  const fresh = await CryptoEngine.open(engineOptions({ dataKeyCache: false }));
  try {
    const b = await fresh.buckets.open('tamper', { store });
    await t.rejects(collect(b.getObject('obj')), DecryptionError);
  } finally {
    await fresh.close();
  }
  records.forEach((f, i) => writeFileSync(f, saved[i]!));
  t.equal((await collect(reopened.getObject('obj'))).toString(), 'data');
  // A listing entry with a changed byte is skipped.
  const entries = dirs.flatMap((d) => files(join(d, 'bi', 'tamper')));
  for (const f of entries) renameSync(f, f.replace(/\.([0-9a-f]{12})\.([0-9a-f]{20})\./, (_m, size) => `.${(parseInt(size, 16) + 1).toString(16).padStart(12, '0')}.${_m.slice(14, 34)}.`));
  t.same(await all(reopened.listObjects()), [], 'a changed size fails the entry MAC');
});

t.test('repair in a bucket: lost and corrupt shards', async (t) => {
  const { store, dirs } = bucketStore(6);
  const bucket = await engine.buckets.create('repairs', { store, keyId: key.id, ...shape });
  const body = randomBytes(300_000);
  await bucket.putObject('big', body);
  const shards = dirs.flatMap((d) => files(join(d, 'bo', 'repairs'))).sort();
  const { rmSync } = await import('node:fs');
  rmSync(shards[0]!);
  const bad = readFileSync(shards[3]!);
  bad[bad.length >> 1] ^= 0xff;
  writeFileSync(shards[3]!, bad);
  t.ok((await collect(bucket.getObject('big'))).equals(body), 'reads with one lost and one corrupt');
  const report = await bucket.repairObject('big');
  t.same(report.repaired.length, 2);
  t.ok(statSync(shards[0]!).size > 0, 'lost shard rewritten');
  t.ok((await collect(bucket.getObject('big'))).equals(body));
  mkdirSync(join(dirs[0]!, 'unused'), { recursive: true });
});

/** The order-preserving base64 of a short name (as layout.ts). */
function encodedName(name: string): string {
  const A = '0123456789=ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';
  const bytes = Buffer.from(name);
  let bits = '';
  for (const b of bytes) bits += b.toString(2).padStart(8, '0');
  let out = '';
  for (let i = 0; i < bits.length; i += 6) out += A[parseInt(bits.slice(i, i + 6).padEnd(6, '0'), 2)];
  return out;
}
