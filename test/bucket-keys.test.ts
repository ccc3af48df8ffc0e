// Buckets and their root key: disable/enable (at once in-process, with and without the data-key cache), destroy
// refused while registered and forced (unreadable for good), rotation then rewrap with no shard rewritten.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { engineOptions } from './helpers/token.js';
import { all, bucketStore, collect } from './helpers/buckets.js';
import { CryptoEngine, KeyNotFoundError, KeyStateError } from '../dist/index.js';

const shape = { dataShards: 4, parityShards: 2 };

function files(dir: string): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    out.push(...(entry.isDirectory() ? files(path) : [path]));
  }
  return out;
}

for (const dataKeyCache of [undefined, false] as const) {
  t.test(`disable refuses every read and write in the bucket; enable restores (dataKeyCache ${dataKeyCache ?? 'default'})`, async (t) => {
    const engine = await CryptoEngine.open(engineOptions(dataKeyCache === false ? { dataKeyCache: false } : {}));
    t.teardown(() => engine.close());
    const key = await engine.keys.create({ alias: `disable-${dataKeyCache ?? 'cache'}` });
    const { store } = bucketStore(6);
    const bucket = await engine.buckets.create(`dis-${dataKeyCache === false ? 'nocache' : 'cache'}`, { store, keyId: key.id, ...shape });
    await bucket.putObject('a', Buffer.from('alpha'));
    t.equal((await collect(bucket.getObject('a'))).toString(), 'alpha', 'warm (the bucket key is cached when the cache is on)');
    await engine.keys.disable(key.id);
    await t.rejects(bucket.putObject('b', Buffer.from('beta')), KeyStateError, 'put');
    await t.rejects(collect(bucket.getObject('a')), KeyStateError, 'get');
    await t.rejects(bucket.headObject('a'), KeyStateError, 'head');
    await t.rejects(all(bucket.listObjects()), KeyStateError, 'list objects');
    await t.rejects(bucket.deleteObject('a'), KeyStateError, 'delete');
    await t.rejects(bucket.rewrap(), KeyStateError, 'rewrap');
    t.equal((await engine.buckets.list({ store })).length, 1, 'listing buckets still works (records are MACed in the HSM, not under the root key)');
    await engine.keys.enable(key.id);
    t.equal((await collect(bucket.getObject('a'))).toString(), 'alpha');
    await bucket.putObject('b', Buffer.from('beta'));
    t.same((await all(bucket.listObjects())).map((o) => o.name), ['a', 'b']);
  });
}

t.test('a disable by another engine is seen at once without the cache', async (t) => {
  const reader = await CryptoEngine.open(engineOptions({ dataKeyCache: false }));
  const admin = await CryptoEngine.open(engineOptions());
  t.teardown(async () => {
    await reader.close();
    await admin.close();
  });
  const key = await admin.keys.create({ alias: 'remote-disable' });
  const { store } = bucketStore(3);
  await admin.buckets.create('remote', { store, keyId: key.id, dataShards: 2, parityShards: 1 });
  const bucket = await reader.buckets.open('remote', { store });
  await bucket.putObject('x', Buffer.from('x'));
  await admin.keys.disable(key.id);
  await t.rejects(collect(bucket.getObject('x')), KeyStateError);
  await admin.keys.enable(key.id);
  // Another engine learns of the enable when it re-reads the key (at once with keys.get; else within keyInfoMaxAgeMs).
  t.equal((await reader.keys.get(key.id)).state, 'active');
  t.equal((await collect(bucket.getObject('x'))).toString(), 'x');
});

t.test('destroy is refused while buckets are registered; force shreds them', async (t) => {
  const engine = await CryptoEngine.open(engineOptions());
  t.teardown(() => engine.close());
  const key = await engine.keys.create({ alias: 'shred-me' });
  const { store } = bucketStore(6);
  const bucket = await engine.buckets.create('doomed', { store, keyId: key.id, ...shape });
  const empty = await engine.buckets.create('doomed-empty', { store, keyId: key.id, ...shape });
  await bucket.putObject('secret', randomBytes(10_000));
  await t.rejects(engine.keys.destroy(key.id), KeyStateError);
  await t.rejects(engine.keys.destroy(key.id, { force: 'yes' as never }), TypeError);
  await engine.buckets.delete(empty.name, { store });
  t.same((await engine.keys.registrations(key.id)).map((r) => r.bucket), ['doomed'], 'deleting the empty bucket removed its registration');
  await t.rejects(engine.keys.destroy(key.id), KeyStateError, 'still one registered');
  await engine.keys.destroy(key.id, { force: true });
  const gone = (err: unknown) => err instanceof KeyStateError || err instanceof KeyNotFoundError;
  await collect(bucket.getObject('secret')).then(() => t.fail('read after destroy'), (err) => t.ok(gone(err), `get: ${(err as Error).name}`));
  const second = await CryptoEngine.open(engineOptions());
  try {
    const again = await second.buckets.open('doomed', { store });
    await collect(again.getObject('secret')).then(() => t.fail('read after destroy'), (err) => t.ok(gone(err), `fresh engine: ${(err as Error).name}`));
    await again.putObject('new', Buffer.from('x')).then(() => t.fail('write after destroy'), (err) => t.ok(gone(err), 'put refused'));
    // A shredded bucket can still be emptied and deleted.
    await again.deleteObject('secret');
    await second.buckets.delete('doomed', { store });
    t.same(await second.buckets.list({ store }), []);
  } finally {
    await second.close();
  }
  await t.rejects(engine.keys.registrations(key.id), KeyNotFoundError);
});

t.test('rotation: new objects under the new version; rewrap moves every object with no shard rewritten', async (t) => {
  const engine = await CryptoEngine.open(engineOptions());
  t.teardown(() => engine.close());
  const key = await engine.keys.create({ alias: 'rotating' });
  const { store, dirs } = bucketStore(6);
  const bucket = await engine.buckets.create('rotate', { store, keyId: key.id, ...shape });
  const bodies = Array.from({ length: 5 }, (_, i) => randomBytes(5000 + i * 1000));
  for (let i = 0; i < bodies.length; i++) await bucket.putObject(`old-${i}`, bodies[i]!);
  const shardFiles = dirs.flatMap((d) => files(join(d, 'bo', 'rotate'))).sort();
  const before = shardFiles.map((f) => ({ f, mtime: statSync(f).mtimeMs, bytes: readFileSync(f) }));
  await engine.keys.rotate(key.id);
  const fresh = await bucket.putObject('new-0', Buffer.from('after rotation'));
  t.equal(fresh.keyVersion, 2, 'a new object goes under a bucket key protected by version 2');
  t.same((await all(bucket.listObjects({ prefix: 'old-' }))).map((o) => o.keyVersion), [1, 1, 1, 1, 1], 'old objects still under version 1');
  let progress = 0;
  const report = await bucket.rewrap({ onProgress: (done) => (progress = done) });
  t.equal(report.rewrapped, 1, 'one bucket key rewrapped');
  t.equal(report.bucketKeys, 2);
  t.equal(progress, 2);
  t.ok(report.bytesWritten < 2000, `only records written (${report.bytesWritten} bytes)`);
  t.same((await all(bucket.listObjects())).map((o) => o.keyVersion), [2, 2, 2, 2, 2, 2], 'every object under version 2');
  t.equal((await bucket.headObject('old-0')).keyVersion, 2);
  for (const { f, mtime, bytes } of before) {
    t.equal(statSync(f).mtimeMs, mtime, 'shard untouched (mtime)');
    t.ok(readFileSync(f).equals(bytes), 'shard untouched (bytes)');
  }
  for (let i = 0; i < bodies.length; i++) t.ok((await collect(bucket.getObject(`old-${i}`))).equals(bodies[i]!));
  const other = await CryptoEngine.open(engineOptions({ dataKeyCache: false }));
  try {
    const again = await other.buckets.open('rotate', { store });
    t.ok((await collect(again.getObject('old-3'))).equals(bodies[3]!), 'another engine reads through the rewrapped bucket key');
    t.equal((await again.rewrap()).rewrapped, 0, 'nothing left to rewrap');
  } finally {
    await other.close();
  }
});
