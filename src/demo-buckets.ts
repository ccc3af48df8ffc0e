// The bucket part of the demo (`npm start`): the Key Protect + Cloud Object Storage story end to end on a fresh
// SoftHSM token and 14 temp node folders — a root key, a bucket bound to it, objects, node loss and repair,
// rotation and rewrap (bytes rewritten shown), disable, destroy refused while registered, destroy with force.
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CryptoEngine } from './engine.js';
import { FsShardStore } from './object/fs-shard-store.js';
import type { Pkcs11Options } from './options.js';
import { refused, say, step } from './demo-steps.js';


function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : [join(dir, e.name)]));
}

/** `pkcs11`: the demo's token (SoftHSM reads its configuration once per process, so the demo makes one token). */
export async function runBucketDemo(pkcs11: Pkcs11Options): Promise<void> {
  say('\nBuckets bound to root keys (Key Protect + Cloud Object Storage), with bucket keys\n');
  const root = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'hce-demo-buckets-'));
  process.once('exit', () => rmSync(root, { recursive: true, force: true }));
  const dirs = Array.from({ length: 14 }, (_, i) => join(root, `node${String(i).padStart(2, '0')}`));
  for (const dir of dirs) mkdirSync(dir);
  const store = new FsShardStore(dirs);
  await using engine = await CryptoEngine.open({ pkcs11 });

  say('B1. A root key, and a bucket bound to it at creation (10+4 shards over 14 node folders)');
  const key = await step('create root key "tenant-a"', () => engine.keys.create({ alias: 'tenant-a' }), (k) => `id ${k.id}`);
  const photos = await step('create bucket "photos"', () => engine.buckets.create('photos', { store, keyId: 'tenant-a', dataShards: 10, parityShards: 4 }), (b) => `bound to ${b.info.keyAlias}, ${b.info.dataShards}+${b.info.parityShards}`);
  await refused('create "photos" again, under another key', async () => {
    await engine.keys.create({ alias: 'tenant-b' });
    await engine.buckets.create('photos', { store, keyId: 'tenant-b', dataShards: 4, parityShards: 2 });
  });

  say('\nB2. Upload objects (the HSM wraps one bucket key; object DEKs are wrapped by it in the engine)');
  const small = Array.from({ length: 200 }, (_, i) => ({ name: `2026/${String(i).padStart(3, '0')}.jpg`, body: randomBytes(4096 + (i % 16) * 4096) }));
  await step('put 200 small objects (4-64 KiB), 16 at a time', async () => {
    for (let i = 0; i < small.length; i += 16) await Promise.all(small.slice(i, i + 16).map((o) => photos.putObject(o.name, o.body)));
  }, (_, ms) => `${Math.round(small.length / (ms / 1000))} objects/s`);
  const big = randomBytes(8 << 20);
  const bigDigest = createHash('sha256').update(big).digest('hex');
  await step('put "2026/video.mp4" (8 MiB)', () => photos.putObject('2026/video.mp4', big), (i) => `key version ${i.keyVersion}`);
  let count = 0;
  await step('list the bucket in name order', async () => {
    for await (const _ of photos.listObjects({ prefix: "2026/" })) count++;
  }, () => `${count} objects under "2026/"`);

  say('\nB3. Which buckets does the key protect? (registrations live next to the key, in the token)');
  await step('buckets.list({ keyId: "tenant-a" })', () => engine.buckets.list({ store, keyId: 'tenant-a' }), (l) => l.map((b) => b.name).join(', '));
  await step('keys.registrations("tenant-a")', () => engine.keys.registrations('tenant-a'), (r) => r.map((x) => `${x.bucket} @ ${x.store.slice(0, 40)}…`).join('; '));

  say('\nB4. Lose three nodes and corrupt a shard; read; repair');
  for (const i of [2, 7, 11]) rmSync(dirs[i]!, { recursive: true, force: true });
  const victim = files(join(dirs[4]!, 'bo', 'photos')).find((f) => statSync(f).size > 100_000)!;
  const fd = openSync(victim, 'r+');
  writeSync(fd, Buffer.from('garbage!'), 0, 8, Math.floor(statSync(victim).size / 2));
  closeSync(fd);
  say('    deleted node02, node07, node11; overwrote 8 bytes of a node04 shard');
  const readBig = async () => {
    const hash = createHash('sha256');
    for await (const part of photos.getObject('2026/video.mp4')) hash.update(part);
    return hash.digest('hex');
  };
  await step('getObject "2026/video.mp4"', readBig, (d) => `SHA-256 ${d === bigDigest ? 'matches' : 'DIFFERS'}`);
  for (const i of [2, 7, 11]) mkdirSync(dirs[i]!, { recursive: true });
  await step('repairObject "2026/video.mp4"', () => photos.repairObject('2026/video.mp4'), (r) => `missing ${JSON.stringify(r.missing)}, corrupt ${JSON.stringify(r.corrupt)}, rewrote ${JSON.stringify(r.repaired)}`);

  say('\nB5. Rotate the root key; rewrap the bucket (bucket keys only: no object rewritten)');
  const shardBytes = dirs.flatMap((d) => files(join(d, 'bo'))).reduce((n, f) => n + statSync(f).size, 0);
  await step('rotate "tenant-a"', () => engine.keys.rotate('tenant-a'), (k) => `version ${k.version}`);
  await step('put a new object', () => photos.putObject('2026/after-rotation.jpg', randomBytes(4096)), (i) => `under key version ${i.keyVersion} (a new bucket key)`);
  await step('bucket.rewrap()', () => photos.rewrap(), (r) => `${r.rewrapped} of ${r.bucketKeys} bucket keys rewrapped, ${r.bytesWritten.toLocaleString('en-US')} bytes written for ${shardBytes.toLocaleString('en-US')} bytes of shards`);
  const versions = new Set<number>();
  await step('list: key versions of every object', async () => {
    for await (const o of photos.listObjects()) versions.add(o.keyVersion);
  }, () => `{ ${[...versions].join(', ')} }`);

  say('\nB6. Disable the root key: the bucket refuses; enable: it works again');
  await step('disable', () => engine.keys.disable('tenant-a'), (k) => k.state);
  await refused('getObject while disabled', readBig);
  await refused('putObject while disabled', () => photos.putObject('2026/x.jpg', randomBytes(10)));
  await step('enable', () => engine.keys.enable('tenant-a'), (k) => k.state);
  await step('getObject again', readBig, (d) => `SHA-256 ${d === bigDigest ? 'matches' : 'DIFFERS'}`);

  say('\nB7. Destroy: refused while the key protects a bucket; with force, everything is unreadable');
  await refused('keys.destroy("tenant-a")', () => engine.keys.destroy('tenant-a'));
  await step('keys.destroy("tenant-a", { force: true })', () => engine.keys.destroy(key.id, { force: true }));
  await refused('getObject after destroy: crypto-shredded', readBig);
  await refused('headObject after destroy', () => photos.headObject('2026/000.jpg'));
  say('\nbucket demo finished');
}
