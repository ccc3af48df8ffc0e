// The demo (`npm start`): the whole job on a fresh SoftHSM token and temp shard folders, step by step, with timings.
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CryptoEngine } from './engine.js';
import { FsShardStore } from './object/fs-shard-store.js';
import { CryptoEngineError } from './errors.js';
import { createTempToken } from './temp-token.js';
import { runBucketDemo } from './demo-buckets.js';

const say = (line = '') => process.stdout.write(line + '\n');

async function step<T>(title: string, action: () => Promise<T>, describe?: (value: T, ms: number) => string): Promise<T> {
  const started = performance.now();
  const value = await action();
  const ms = performance.now() - started;
  say(`  ✓ ${title}${describe ? ` — ${describe(value, ms)}` : ''} (${ms.toFixed(1)} ms)`);
  return value;
}

async function refused(title: string, action: () => Promise<unknown>): Promise<void> {
  try {
    await action();
    throw new Error(`${title}: expected a refusal, but it succeeded`);
  } catch (err) {
    if (!(err instanceof CryptoEngineError)) throw err;
    say(`  ✓ ${title} — refused with ${err.name} (${err.code}): ${err.message}`);
  }
}

export interface DemoOptions {
  sizeMiB?: number;
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
  say('hsm-crypto-engine demo: a fresh SoftHSM token and 14 shard folders in a temp dir\n');
  const token = createTempToken('hce-demo');
  const root = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'hce-demo-shards-'));
  process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  const dirs = Array.from({ length: 14 }, (_, i) => join(root, `node${String(i).padStart(2, '0')}`));
  for (const dir of dirs) mkdirSync(dir);
  const store = new FsShardStore(dirs);
  await using engine = await CryptoEngine.open({ pkcs11: token.pkcs11 });
  const context = { bucket: 'photos', object: 'cat.jpg' };
  const id = 'photos/cat.jpg';

  say('1. Root key (generated inside the HSM, sensitive, never extractable)');
  const key = await step('create root key "demo-root"', () => engine.keys.create({ alias: 'demo-root' }), (k) => `id ${k.id}, version ${k.version}`);
  const dek = await step('generate a DEK, wrapped in the HSM with AAD bound', () => engine.keys.generateDataKey(key.id, { aad: ['bucket=photos'] }), (d) => `${d.wrapped.length}-byte wrapped blob`);
  await refused('unwrap it with another AAD', () => engine.keys.unwrap(dek.wrapped, { aad: ['bucket=videos'] }));
  Buffer.from(dek.plaintext).fill(0);

  say(`\n2. Put a ${(size / 1048576).toFixed(0)} MiB generated object as 10+4 shards (AES-256-GCM segments, Reed-Solomon, one folder per node)`);
  const hash = createHash('sha256');
  const info = await step('putObject', () => engine.putObject(id, generated(size, hash), { keyId: 'demo-root', context, dataShards: 10, parityShards: 4, store, size }), (i, ms) => `${i.stripes} stripes, ${i.shardBytes.toLocaleString('en-US')} bytes per shard, ${gbps(i.size, ms)}`);
  const expected = hash.digest('hex');
  say(`    SHA-256 of what was put: ${expected}`);

  say('\n3. Lose three nodes and corrupt a fourth shard');
  for (const i of [1, 6, 12]) rmSync(dirs[i]!, { recursive: true, force: true });
  say('    deleted shard folders node01, node06, node12');
  const victim = join(dirs[3]!, readdirSync(dirs[3]!)[0]!);
  const fd = openSync(victim, 'r+');
  writeSync(fd, Buffer.from('garbage!'), 0, 8, Math.floor(statSync(victim).size / 2));
  closeSync(fd);
  say('    overwrote 8 bytes in the middle of node03\'s shard');

  const readBack = async () => {
    const got = createHash('sha256');
    let bytes = 0;
    for await (const part of engine.getObject(id, { store, context })) {
      got.update(part);
      bytes += part.length;
    }
    return { digest: got.digest('hex'), bytes };
  };
  const back = await step('getObject from the 10 good shards (corrupt one detected and routed around)', readBack, (r, ms) => `${gbps(r.bytes, ms)}, SHA-256 ${r.digest === expected ? 'matches' : 'DIFFERS'}`);
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
  for (const i of [1, 6, 12]) mkdirSync(dirs[i]!, { recursive: true }); // the nodes come back, empty
  const report = await step('repairObject', () => engine.repairObject(id, { store }), (r, ms) => `missing ${JSON.stringify(r.missing)}, corrupt ${JSON.stringify(r.corrupt)}, rewrote ${JSON.stringify(r.repaired)} (${gbps(size * 1.4, ms)} scrubbed)`);
  void report;
  await step('repairObject again', () => engine.repairObject(id, { store }), (r) => `nothing to do: ${JSON.stringify(r.repaired)}`);

  say('\n5. Rotate the root key and rewrap (shard headers only)');
  await step('rotate', () => engine.keys.rotate('demo-root'), (k) => `version ${k.version}`);
  await step('rewrapObject', () => engine.rewrapObject(id, { store }), (r) => `${r.rewrapped.length} shard headers now under version ${r.keyVersion}`);
  await step('getObject after rewrap', readBack, (r, ms) => `${gbps(r.bytes, ms)}, SHA-256 ${r.digest === expected ? 'matches' : 'DIFFERS'}`);

  say('\n6. Disable, then destroy the root key');
  await step('disable', () => engine.keys.disable('demo-root'), (k) => k.state);
  await refused('getObject while disabled', readBack);
  await step('enable', () => engine.keys.enable('demo-root'), (k) => k.state);
  await step('destroy (crypto-shredding)', () => engine.keys.destroy('demo-root'));
  await refused('getObject after destroy: the data is gone', readBack);
  await runBucketDemo();
  say('\ndemo finished');
}
