// Objects as shards on the in-memory DataKeyProvider (test/helpers/memory-keys.ts): no SoftHSM token, the real
// object code, worker pool and shard folders. Only the HSM is replaced; the HSM-backed path is object-shards.test.ts.
import t from 'tap';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DecryptionError, ErasureError, KeyNotFoundError, KeyStateError } from '../dist/index.js';
import { pseudoRandom } from './helpers/aead-fixture.js';
import { memoryObjects } from './helpers/memory-keys.js';
import { collect, shardDirs, shardPath } from './helpers/shards.js';

const { keys, keyId, objects } = await memoryObjects(t, 'memory-root');
const SEG = 512;
const context = { bucket: 'b' };

t.test('put, get (whole, range, with m shards lost), repair and rewrap without an HSM', async (t) => {
  const { dirs, store, remove } = shardDirs(6);
  t.teardown(remove);
  const data = pseudoRandom(4 * SEG * 3 + 333, 7);
  const info = await objects.putObject('mem', data, { keyId, context, dataShards: 4, parityShards: 2, store, segmentBytes: SEG });
  t.match(info, { objectId: 'mem', size: data.length, dataShards: 4, parityShards: 2, segmentBytes: SEG, stripes: 4, keyId, keyVersion: 1 });
  t.equal(keys.calls.generateDataKey, 1, 'one DEK per object');
  t.ok((await collect(objects.getObject('mem', { store, context }))).equals(data), 'round trip');
  const part = await collect(objects.getObject('mem', { store, context, range: { offset: 1000, length: 3000 } }));
  t.ok(part.equals(data.subarray(1000, 4000)), 'range');

  rmSync(shardPath(dirs, 'mem', 0));
  rmSync(shardPath(dirs, 'mem', 3));
  t.ok((await collect(objects.getObject('mem', { store, context }))).equals(data), 'two shards lost');
  const report = await objects.repairObject('mem', { store });
  t.same(report.missing, [0, 3]);
  t.same(report.repaired, [0, 3]);

  keys.rotate(keyId);
  const rewrap = await objects.rewrapObject('mem', { store });
  t.match(rewrap, { objectId: 'mem', keyId, keyVersion: 2, rewrapped: [0, 1, 2, 3, 4, 5], skipped: [] });
  t.ok((await collect(objects.getObject('mem', { store, context }))).equals(data), 'readable after rewrap');
});

t.test('errors are the typed ones: context, key state, unknown key, too few shards', async (t) => {
  const { dirs, store, remove } = shardDirs(3);
  t.teardown(remove);
  const data = pseudoRandom(3000, 9);
  await objects.putObject('err', data, { keyId, context, dataShards: 2, parityShards: 1, store, segmentBytes: SEG });
  await t.rejects(collect(objects.getObject('err', { store, context: { bucket: 'other' } })), DecryptionError, 'wrong context');
  await t.rejects(objects.putObject('x', data, { keyId: 'no-such-key', dataShards: 2, parityShards: 1, store }), KeyNotFoundError);
  keys.disable(keyId);
  await t.rejects(collect(objects.getObject('err', { store, context })), KeyStateError, 'disabled root key');
  keys.enable(keyId);
  rmSync(shardPath(dirs, 'err', 0));
  rmSync(shardPath(dirs, 'err', 2));
  await t.rejects(collect(objects.getObject('err', { store, context })), ErasureError, 'm + 1 shards lost');
});

t.test('getObjectChunks: the same bytes as getObject, as views of reused stripe buffers', async (t) => {
  const { dirs, store, remove } = shardDirs(6);
  t.teardown(remove);
  const data = pseudoRandom(4 * SEG * 40 + 777, 11);
  await objects.putObject('chunks', data, { keyId, context, dataShards: 4, parityShards: 2, store, segmentBytes: SEG });
  t.ok((await collect(objects.getObjectChunks('chunks', { store, context }))).equals(data), 'whole object');
  for (const [offset, length] of [[0, 1], [SEG - 1, 2], [1000, 3000], [4 * SEG * 7, 4 * SEG], [data.length - 5, 5], [3, 0]]) {
    const part = await collect(objects.getObjectChunks('chunks', { store, context, range: { offset, length } }));
    if (!part.equals(data.subarray(offset, offset + length))) t.fail(`range ${offset}+${length}`);
  }
  // Views: a later chunk reuses the memory of an earlier one (a consumer must copy what it keeps).
  const seen = new Set<ArrayBufferLike>();
  let shared = 0;
  for await (const c of objects.getObjectChunks('chunks', { store, context })) {
    if (seen.has(c.buffer)) shared++;
    seen.add(c.buffer);
  }
  t.ok(shared > 0, `chunks share stripe buffers (${shared})`);
  rmSync(shardPath(dirs, 'chunks', 1));
  rmSync(shardPath(dirs, 'chunks', 4));
  t.ok((await collect(objects.getObjectChunks('chunks', { store, context }))).equals(data), 'two shards lost');
  await t.rejects(collect(objects.getObjectChunks('chunks', { store, context: { bucket: 'other' } })), DecryptionError, 'wrong context');
  let n = 0;
  for await (const _ of objects.getObjectChunks('chunks', { store, context })) if (++n === 2) break;
  t.equal(n, 2, 'left early');
  t.ok((await collect(objects.getObjectChunks('chunks', { store, context }))).equals(data), 'reads on after an early exit');
});
