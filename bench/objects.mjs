// Objects as shards: putObject / getObject of a large object as 10+4 into shard folders on tmpfs, threads 1 and 2,
// against the pool's encrypt-only (engine.encrypt) and erasure-encode-only (engine.erasure.encode) throughput on
// the same data, in the same run; and peak RSS of a streamed put + get of a big object in a child process.
//   node bench/objects.mjs [--size-mib 1024] [--rounds 3] [--rss-gib 4] [--quick]
// Goal (issue #5): put ≥ 0.7 × 1 / (1/aead + 1/ec); get with 4 shards missing likewise; peak RSS < 256 MiB for 4 GiB.
// Writes bench/results/objects.json.
import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { fmt, median, tempToken, writeResult } from './common.mjs';

// Results of a GiB are dropped between samples; collect them at once so one row's garbage doesn't slow the next.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');

const args = process.argv.slice(2);
const arg = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
const QUICK = args.includes('--quick');
const SIZE = arg('--size-mib', QUICK ? 128 : 1024) * 1024 * 1024;
const ROUNDS = arg('--rounds', QUICK ? 1 : 3);
const RSS_GIB = arg('--rss-gib', QUICK ? 0.5 : 4);
const K = 10;
const M = 4;

function gbps(bytes, seconds) {
  return bytes / 1e9 / seconds;
}

if (args.includes('--rss-child')) {
  await rssChild();
  process.exit(0);
}

const token = await tempToken();
const { CryptoEngine, FsShardStore } = await import('../dist/index.js');
const { objectPrefix } = await import('../dist/object/layout.js');
/** Shard i's file of the object's only generation (o/<enc(name)>/-<gen>/<i>). */
function shardFile(dirs, name, i) {
  const folder = join(dirs[i % dirs.length], ...objectPrefix('o', name).slice(0, -2).split('/'));
  const gen = readdirSync(folder).filter((n) => n.startsWith('-')).sort().at(-1);
  return join(folder, gen, String(i));
}
const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const data = randomFillSync(Buffer.allocUnsafe(SIZE));
const expected = createHash('sha256').update(data).digest('hex');

function freshStore() {
  const root = mkdtempSync(join(base, 'hce-bench-objects-'));
  const dirs = Array.from({ length: K + M }, (_, i) => join(root, `n${i}`));
  dirs.forEach((d) => mkdirSync(d));
  return { root, dirs, store: new FsShardStore(dirs) };
}

async function timed(fn) {
  const t0 = performance.now();
  const value = await fn();
  return { seconds: (performance.now() - t0) / 1000, value };
}

async function drain(readable) {
  const hash = createHash('sha256');
  for await (const part of readable) hash.update(part);
  return hash.digest('hex');
}

/** Reads a stream to the end without looking at it (the timed rows: hashing would cap them at SHA-256 speed). */
async function count(readable) {
  let bytes = 0;
  for await (const part of readable) bytes += part.length;
  return bytes;
}

const results = {};
console.log(`objects benchmark: ${SIZE / 1048576} MiB as ${K}+${M}, shard folders on ${base}, ${ROUNDS} round(s), medians\n`);
for (const threads of [1, 2]) {
  const engine = await CryptoEngine.open({ pkcs11: token, threads });
  const key = await engine.keys.create({ alias: `bench-objects-${threads}` });
  const row = {};
  const sample = async (name, fn) => {
    const rates = [];
    for (let r = 0; r < ROUNDS; r++) {
      gc();
      rates.push(await fn());
    }
    row[name] = median(rates);
    console.log(`threads=${threads}  ${name.padEnd(30)} ${fmt(row[name])} GB/s`);
  };
  // Correctness first.
  {
    const { root, store } = freshStore();
    await engine.putObject('check', data, { keyId: key.id, dataShards: K, parityShards: M, store });
    if ((await drain(engine.getObject('check', { store }))) !== expected) throw new Error('round trip failed');
    rmSync(root, { recursive: true, force: true });
  }
  await sample('aead encrypt (engine.encrypt)', async () => {
    const { seconds } = await timed(async () => void (await engine.encrypt(data, { keyId: key.id })));
    return gbps(SIZE, seconds);
  });
  await sample('erasure encode (engine.erasure)', async () => {
    const { seconds } = await timed(async () => void (await engine.erasure.encode(data, { dataShards: K, parityShards: M })));
    return gbps(SIZE, seconds);
  });
  row.twoStagesBackToBack = 1 / (1 / row['aead encrypt (engine.encrypt)'] + 1 / row['erasure encode (engine.erasure)']);
  const { root, dirs, store } = freshStore();
  await sample('putObject', async () => {
    const { seconds } = await timed(() => engine.putObject('bench', data, { keyId: key.id, dataShards: K, parityShards: M, store }));
    return gbps(SIZE, seconds);
  });
  if ((await drain(engine.getObject('bench', { store }))) !== expected) throw new Error('getObject returned other bytes');
  await sample('getObject', async () => {
    const { seconds, value } = await timed(() => count(engine.getObject('bench', { store })));
    if (value !== SIZE) throw new Error('getObject returned another length');
    return gbps(SIZE, seconds);
  });
  for (const i of [0, 3, 5, 7]) rmSync(shardFile(dirs, 'bench', i));
  if ((await drain(engine.getObject('bench', { store }))) !== expected) throw new Error('degraded getObject returned other bytes');
  await sample('getObject, 4 data shards lost', async () => {
    const { seconds, value } = await timed(() => count(engine.getObject('bench', { store })));
    if (value !== SIZE) throw new Error('degraded getObject returned another length');
    return gbps(SIZE, seconds);
  });
  row.putVsStages = row.putObject / row.twoStagesBackToBack;
  row.getVsStages = row.getObject / row.twoStagesBackToBack;
  row.degradedGetVsStages = row['getObject, 4 data shards lost'] / row.twoStagesBackToBack;
  console.log(`threads=${threads}  two stages back to back        ${fmt(row.twoStagesBackToBack)} GB/s; put ${fmt(row.putVsStages)}×, get ${fmt(row.getVsStages)}×, degraded get ${fmt(row.degradedGetVsStages)}× (goal ≥ 0.7)\n`);
  rmSync(root, { recursive: true, force: true });
  results[`threads${threads}`] = row;
  await engine.close();
}

// Peak RSS of a streamed put and get of a big object, in a child of its own (so this process's buffers don't count).
const child = spawnSync(process.execPath, [new URL(import.meta.url).pathname, '--rss-child', '--rss-gib', String(RSS_GIB)], { encoding: 'utf8', env: process.env });
if (child.status !== 0) throw new Error(`rss child failed: ${child.stderr}`);
const rss = JSON.parse(child.stdout.trim().split('\n').at(-1));
console.log(`streamed ${RSS_GIB} GiB put + get: peak RSS ${fmt(rss.peakRssMiB)} MiB (goal < 256), put ${fmt(rss.putGBps)} GB/s, get ${fmt(rss.getGBps)} GB/s`);
writeResult('objects', { sizeBytes: SIZE, shape: `${K}+${M}`, rounds: ROUNDS, results, rss });

async function rssChild() {
  const token = await tempToken();
  const { CryptoEngine, FsShardStore } = await import('../dist/index.js');
  const engine = await CryptoEngine.open({ pkcs11: token });
  const key = await engine.keys.create({ alias: 'bench-rss' });
  const root = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'hce-bench-rss-'));
  const dirs = Array.from({ length: K + M }, (_, i) => join(root, `n${i}`));
  dirs.forEach((d) => mkdirSync(d));
  const store = new FsShardStore(dirs);
  const total = Math.round(RSS_GIB * 1024 ** 3);
  let peak = 0;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 20);
  const block = randomFillSync(Buffer.allocUnsafe(1 << 20));
  async function* source() {
    for (let sent = 0; sent < total; sent += block.length) yield block.subarray(0, Math.min(block.length, total - sent));
  }
  try {
    const put = await timed(() => engine.putObject('big', source(), { keyId: key.id, dataShards: K, parityShards: M, store }));
    const get = await timed(async () => {
      let n = 0;
      for await (const part of engine.getObject('big', { store })) n += part.length;
      return n;
    });
    if (get.value !== total) throw new Error('size mismatch');
    peak = Math.max(peak, process.memoryUsage.rss());
    console.log(JSON.stringify({ gib: RSS_GIB, peakRssMiB: peak / 1048576, putGBps: gbps(total, put.seconds), getGBps: gbps(total, get.seconds) }));
  } finally {
    clearInterval(timer);
    rmSync(root, { recursive: true, force: true });
    await engine.close();
  }
}
