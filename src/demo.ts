// The demo (`npm start`): the whole job on a fresh SoftHSM token and temp shard folders (or a store given, e.g. S3
// buckets: `npm run demo:ceph`), step by step, with timings.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CryptoEngine } from './engine.js';
import type { ShardStore } from './object/blob-store.js';
import { FsShardStore } from './object/fs-shard-store.js';
import { objectPrefix } from './object/layout.js';
import { createTempToken } from './temp-token.js';
import { runBucketDemo } from './demo-buckets.js';
import { refused, say, step } from './demo-steps.js';


export interface DemoOptions {
  sizeMiB?: number;
  /** Shards go here instead of temp folders (nodes are then lost and corrupted through the store interface). */
  store?: ShardStore;
  /** What the store is, for the first line. */
  storeLabel?: string;
}

/** The shape for a store of `nodes` nodes: 10+4 on 14 or more, else k+m = nodes with m about a third. */
function demoShape(nodes: number): { k: number; m: number; lose: number[]; corrupt: number } {
  if (nodes >= 14) return { k: 10, m: 4, lose: [1, 6, 12], corrupt: 3 };
  if (nodes < 2) throw new RangeError('the demo needs a store of at least 2 nodes');
  const m = Math.max(1, Math.floor(nodes / 3));
  const lose = Array.from({ length: m - 1 }, (_, i) => 1 + 2 * i);
  const k = nodes - m;
  // A data shard is corrupted, so the read has to route around it.
  return { k, m, lose, corrupt: [3, 0, 2].find((i) => i < k && !lose.includes(i)) ?? 0 };
}

/** Removes the object's blobs on a node (a node that lost its data), through the store. */
async function wipe(store: ShardStore, node: number, id: string): Promise<void> {
  for (const key of await store.list(node, { prefix: objectPrefix('o', id), limit: 10_000 })) await store.remove(node, key);
}

/** Overwrites 8 bytes in the middle of the object's shard on a node, by writing the blob again through the store. */
async function corrupt(store: ShardStore, node: number, id: string): Promise<void> {
  const [key] = await store.list(node, { prefix: objectPrefix('o', id), limit: 1 });
  const reader = key === undefined ? null : await store.openReader(node, key);
  if (key === undefined || reader === null) throw new Error(`node ${node} holds no shard of ${id}`);
  const bytes = Buffer.allocUnsafe(reader.size);
  await reader.read(0, bytes);
  await reader.close();
  bytes.write('garbage!', Math.floor(bytes.length / 2), 'latin1');
  const writer = await store.openWriter(node, key);
  await writer.write(bytes);
  await writer.commit();
}

const gbps = (bytes: number, ms: number) => `${(bytes / 1e9 / (ms / 1000)).toFixed(2)} GB/s`;

/** `total` bytes of pseudo-random data in 1 MiB chunks (a fresh random block, rotated), hashed as it goes. */
async function* generated(total: number, hash: Hash): AsyncGenerator<Uint8Array> {
  const block = randomBytes(1 << 20);
  for (let sent = 0, round = 0; sent < total; round++) {
    const n = Math.min(total - sent, block.length);
    block.writeUInt32LE(round, (round * 4) % (block.length - 4)); // no two chunks alike
    const chunk = block.subarray(0, n);
    hash.update(chunk);
    sent += n;
    yield chunk;
  }
}

export async function runDemo(options: DemoOptions = {}): Promise<void> {
  const size = Math.round((options.sizeMiB ?? 256) * 1024 * 1024);
  const token = createTempToken('hce-demo');
  let dirs: string[] = [];
  let store: ShardStore;
  if (options.store) {
    store = options.store;
    say(`hsm-crypto-engine demo: a fresh SoftHSM token and ${options.storeLabel ?? `a store of ${store.nodes} nodes`}\n`);
  } else {
    say('hsm-crypto-engine demo: a fresh SoftHSM token and 14 shard folders in a temp dir\n');
    const root = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'hce-demo-shards-'));
    process.once('exit', () => rmSync(root, { recursive: true, force: true }));
    dirs = Array.from({ length: 14 }, (_, i) => join(root, `node${String(i).padStart(2, '0')}`));
    for (const dir of dirs) mkdirSync(dir);
    store = new FsShardStore(dirs);
  }
  const shape = demoShape(store.nodes);
  await using engine = await CryptoEngine.open({ pkcs11: token.pkcs11 });
  const context = { bucket: 'photos', object: 'cat.jpg' };
  const id = 'photos/cat.jpg';

  say('1. Root key (generated inside the HSM, sensitive, never extractable)');
  const key = await step('create root key "demo-root"', () => engine.keys.create({ alias: 'demo-root' }), (k) => `id ${k.id}, version ${k.version}`);
  const dek = await step('generate a DEK, wrapped in the HSM with AAD bound', () => engine.keys.generateDataKey(key.id, { aad: ['bucket=photos'] }), (d) => `${d.wrapped.length}-byte wrapped blob`);
  await refused('unwrap it with another AAD', () => engine.keys.unwrap(dek.wrapped, { aad: ['bucket=videos'] }));
  Buffer.from(dek.plaintext).fill(0);

  const { k, m, lose } = shape;
  say(`\n2. Put a ${(size / 1048576).toFixed(0)} MiB generated object as ${k}+${m} shards (AES-256-GCM segments, Reed-Solomon, ${options.store ? 'one blob per shard' : 'one folder per node'})`);
  const hash = createHash('sha256');
  const info = await step('putObject', () => engine.putObject(id, generated(size, hash), { keyId: 'demo-root', context, dataShards: k, parityShards: m, store, size }), (i, ms) => `${i.stripes} stripes, ${i.shardBytes.toLocaleString('en-US')} bytes per shard, ${gbps(i.size, ms)}`);
  const expected = hash.digest('hex');
  say(`    SHA-256 of what was put: ${expected}`);

  const node2 = (i: number) => `node${String(i).padStart(2, '0')}`;
  say(`\n3. Lose ${lose.length} node${lose.length === 1 ? '' : 's'} and corrupt ${lose.length > 0 ? 'another' : 'one'} shard`);
  if (options.store) {
    for (const i of lose) await wipe(store, i, id);
    if (lose.length > 0) say(`    removed the object's shards on ${lose.map(node2).join(', ')}`);
    await corrupt(store, shape.corrupt, id);
  } else {
    for (const i of lose) rmSync(dirs[i]!, { recursive: true, force: true });
    say(`    deleted shard folders ${lose.map(node2).join(', ')}`);
    // The shard is the one file under the node's folder (o/<name>/-<generation>/3).
    const firstFile = (dir: string): string => {
      const entry = readdirSync(dir, { withFileTypes: true })[0]!;
      return entry.isDirectory() ? firstFile(join(dir, entry.name)) : join(dir, entry.name);
    };
    const victim = firstFile(dirs[shape.corrupt]!);
    const fd = openSync(victim, 'r+');
    writeSync(fd, Buffer.from('garbage!'), 0, 8, Math.floor(statSync(victim).size / 2));
    closeSync(fd);
  }
  say(`    overwrote 8 bytes in the middle of ${node2(shape.corrupt)}'s shard`);

  const readBack = async () => {
    const got = createHash('sha256');
    let bytes = 0;
    for await (const part of engine.getObject(id, { store, context })) {
      got.update(part);
      bytes += part.length;
    }
    return { digest: got.digest('hex'), bytes };
  };
  const back = await step(`getObject from the ${k + m - lose.length - 1} good shards (corrupt one detected and routed around)`, readBack, (r, ms) => `${gbps(r.bytes, ms)}, SHA-256 ${r.digest === expected ? 'matches' : 'DIFFERS'}`);
  if (back.digest !== expected) throw new Error('the object read back differs');
  await refused('getObject with another context', async () => {
    for await (const _ of engine.getObject(id, { store, context: { bucket: 'photos', object: 'dog.jpg' } })) void _;
  });
  const range = await step('getObject of a 1 MiB range in the middle', async () => {
    const parts: Buffer[] = [];
    for await (const part of engine.getObject(id, { store, context, range: { offset: Math.floor(size / 2), length: Math.min(1 << 20, size - Math.floor(size / 2)) } })) parts.push(part);
    return Buffer.concat(parts);
  }, (r) => `${r.length.toLocaleString('en-US')} bytes`);
  void range;

  say('\n4. Repair');
  for (const i of options.store ? [] : lose) mkdirSync(dirs[i]!, { recursive: true }); // the nodes come back, empty
  const report = await step('repairObject', () => engine.repairObject(id, { store }), (r, ms) => `missing ${JSON.stringify(r.missing)}, corrupt ${JSON.stringify(r.corrupt)}, rewrote ${JSON.stringify(r.repaired)} (${gbps((size * (k + m)) / k, ms)} scrubbed)`);
  void report;
  await step('repairObject again', () => engine.repairObject(id, { store }), (r) => `nothing to do: ${JSON.stringify(r.repaired)}`);

  say('\n5. Rotate the root key and rewrap (a small record per node; no shard rewritten)');
  await step('rotate', () => engine.keys.rotate('demo-root'), (k) => `version ${k.version}`);
  await step('rewrapObject', () => engine.rewrapObject(id, { store }), (r) => `a rewrap record covers ${r.rewrapped.length} shards, now under version ${r.keyVersion}`);
  await step('getObject after rewrap', readBack, (r, ms) => `${gbps(r.bytes, ms)}, SHA-256 ${r.digest === expected ? 'matches' : 'DIFFERS'}`);

  say('\n6. Disable, then destroy the root key');
  await step('disable', () => engine.keys.disable('demo-root'), (k) => k.state);
  await refused('getObject while disabled', readBack);
  await step('enable', () => engine.keys.enable('demo-root'), (k) => k.state);
  await step('destroy (crypto-shredding)', () => engine.keys.destroy('demo-root'));
  await refused('getObject after destroy: the data is gone', readBack);
  await runBucketDemo(token.pkcs11);
  say('\ndemo finished');
}
