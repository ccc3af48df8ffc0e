// Load test of objects as shards (issue #9): N objects of 0–8 MiB put, damaged (random loss and corruption of up
// to m shards), read back and checked, then deleted, 16 in flight, 10+4 on FsShardStore in a temp dir, a fresh
// SoftHSM token. Reports objects/s, MiB/s, peak RSS and wrong bytes (must be 0); JSON to bench/results/load.json.
//   node bench/load.mjs [count]      (or LOAD_OBJECTS=200; default 2000)
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeSync, closeSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmt, tempToken, writeResult } from './common.mjs';

const COUNT = Number(process.argv[2] ?? process.env.LOAD_OBJECTS ?? 2000);
const IN_FLIGHT = 16;
const MAX_BYTES = 8 * 1024 * 1024;
const K = 10;
const M = 4;

const pkcs11 = await tempToken();
const { CryptoEngine, FsShardStore } = await import('../dist/index.js');
const { objectPrefix } = await import('../dist/object/layout.js');
const engine = await CryptoEngine.open({ pkcs11 });
const key = await engine.keys.create({ alias: 'load' });
const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const root = mkdtempSync(join(base, 'hce-load-'));
process.once('exit', () => rmSync(root, { recursive: true, force: true }));
const dirs = Array.from({ length: K + M }, (_, i) => join(root, `node${i}`));
for (const d of dirs) mkdirSync(d);
const store = new FsShardStore(dirs);

let peakRss = 0;
const sample = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));
const sampler = setInterval(sample, 20);

/** Plaintext in 1 MiB random blocks, hashed on the way (nothing of it is kept). */
async function* source(size, hash) {
  for (let sent = 0; sent < size; ) {
    const block = randomBytes(Math.min(1 << 20, size - sent));
    hash.update(block);
    sent += block.length;
    yield block;
  }
}

function shardFile(name, j) {
  const folder = join(dirs[j], ...objectPrefix('o', name).slice(0, -2).split('/'));
  const gen = readdirSync(folder).filter((n) => n.startsWith('-')).sort().at(-1);
  return join(folder, gen, String(j));
}

/** Up to m shards lost, corrupted (a flipped byte anywhere) or truncated. */
function damage(name) {
  const victims = new Set();
  const count = randomInt(0, M + 1);
  while (victims.size < count) victims.add(randomInt(0, K + M));
  const done = { lost: 0, corrupt: 0, truncated: 0 };
  for (const j of victims) {
    const file = shardFile(name, j);
    const kind = randomInt(0, 3);
    if (kind === 0) {
      rmSync(file);
      done.lost++;
    } else if (kind === 1) {
      const size = statSync(file).size;
      const fd = openSync(file, 'r+');
      writeSync(fd, randomBytes(1), 0, 1, randomInt(0, size));
      closeSync(fd);
      done.corrupt++;
    } else {
      truncateSync(file, randomInt(0, statSync(file).size));
      done.truncated++;
    }
  }
  return done;
}

const totals = { objects: 0, bytes: 0, wrongBytes: 0, wrongObjects: 0, failed: 0, lost: 0, corrupt: 0, truncated: 0 };
const failures = [];
async function one(i) {
  const name = `load/${i}`;
  const size = i % 50 === 0 ? 0 : randomInt(0, MAX_BYTES + 1);
  const hash = createHash('sha256');
  await engine.putObject(name, source(size, hash), { keyId: key.id, dataShards: K, parityShards: M, store, size });
  const expected = hash.digest('hex');
  const d = damage(name);
  totals.lost += d.lost;
  totals.corrupt += d.corrupt;
  totals.truncated += d.truncated;
  try {
    const back = createHash('sha256');
    let length = 0;
    for await (const part of engine.getObject(name, { store })) {
      back.update(part);
      length += part.length;
    }
    if (back.digest('hex') !== expected || length !== size) {
      totals.wrongObjects++;
      totals.wrongBytes += Math.max(size, length);
    }
  } catch (err) {
    totals.failed++; // a typed failure is not a wrong byte, but with ≤ m bad shards there should be none
    failures.push(`${name}: ${err.name} ${err.message}`);
  }
  await engine.deleteObject(name, { store });
  totals.objects++;
  totals.bytes += size;
}

const started = process.hrtime.bigint();
let next = 0;
await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
  while (next < COUNT) {
    const i = next++;
    await one(i);
    if (totals.objects % 100 === 0) console.log(`${totals.objects}/${COUNT} objects, peak RSS ${(peakRss / 1048576).toFixed(0)} MiB`);
  }
}));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
clearInterval(sampler);
sample();
const maxRssKiB = process.resourceUsage().maxRSS;
await engine.close();

const mib = totals.bytes / 1048576;
const result = {
  count: COUNT, inFlight: IN_FLIGHT, shape: `${K}+${M}`, maxObjectBytes: MAX_BYTES, seconds: Number(seconds.toFixed(2)),
  objectsPerSecond: Number((totals.objects / seconds).toFixed(2)),
  /** Plaintext MiB put and read back per second (each byte is put once and read once). */
  mibPerSecond: Number((mib / seconds).toFixed(1)),
  plaintextMiB: Number(mib.toFixed(1)),
  peakRssMiB: Number((Math.max(peakRss, maxRssKiB * 1024) / 1048576).toFixed(0)),
  rssGoalMiB: 512,
  ...totals,
  failures: failures.slice(0, 20),
};
console.log(`\n${totals.objects} objects (${fmt(mib)} MiB) in ${fmt(seconds)} s: ${fmt(result.objectsPerSecond)} objects/s, ${fmt(result.mibPerSecond)} MiB/s; peak RSS ${result.peakRssMiB} MiB (goal < 512)`);
console.log(`damage: ${totals.lost} lost, ${totals.corrupt} corrupt, ${totals.truncated} truncated shards; wrong bytes ${totals.wrongBytes}; failed reads ${totals.failed}`);
writeResult(COUNT === 2000 ? 'load' : `load-${COUNT}`, result);
if (totals.wrongBytes > 0 || totals.failed > 0) process.exitCode = 1;
