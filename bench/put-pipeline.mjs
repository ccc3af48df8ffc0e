// Issue #13's put-pipeline and memory rows:
//   (1) 64 × 1 MiB putObject, 16 in flight, 10+4 on FsShardStore folders on tmpfs, vs writing the same shard files
//       (same keys, same sizes, same store: temp file, fsync, rename, folder fsyncs) with no crypto and no coding —
//       interleaved rounds, goal ≥ 0.6×;
//   (2) peak RSS of 16 concurrent 8 MiB puts, then 16 concurrent gets of them, in a child process sampling its own
//       RSS (ru_maxrss would include the parent's peak) — goal < 384 MiB.
//   node bench/put-pipeline.mjs [--rounds 7] [--warmup 5]        → bench/results/put-pipeline.json
// Warm-up rounds run both sides, interleaved, before the measured ones: V8 keeps optimizing the put path for
// several hundred puts (2–9 TurboFan compiles per round of 64 until about round 14, measured with --trace-opt),
// and a storage service runs in that steady state. One round is what this benchmark used to warm up with.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmt, median, tempToken, writeResult } from './common.mjs';

const args = process.argv.slice(2);
const arg = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
const ROUNDS = arg('--rounds', 7);
const WARMUP = arg('--warmup', 5);
const K = 10, M = 4, IN_FLIGHT = 16, OBJECTS = 64, MiB = 1 << 20;

const token = await tempToken();
const { CryptoEngine } = await import('../dist/index.js');
const { FsShardStore } = await import('../dist/object/fs-shard-store.js');
const engine = await CryptoEngine.open({ pkcs11: { library: token.library, tokenLabel: token.tokenLabel, pin: token.pin }, threads: 2 });
const key = await engine.keys.create({ alias: 'bench-pipeline' });
const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

function freshStore() {
  const root = mkdtempSync(join(base, 'hce-bench-pipeline-'));
  const dirs = Array.from({ length: K + M }, (_, i) => join(root, `n${i}`));
  dirs.forEach((d) => mkdirSync(d));
  return { root, store: new FsShardStore(dirs) };
}
async function inFlight(count, op) {
  let next = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next < count) await op(next++);
  }));
}

if (args.includes('--rss-child')) {
  const { root, store } = freshStore();
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
  const body = randomBytes(8 * MiB);
  await Promise.all(Array.from({ length: 16 }, (_, i) => engine.putObject(`o${i}`, body, { keyId: key.id, dataShards: K, parityShards: M, store })));
  await Promise.all(Array.from({ length: 16 }, async (_, i) => {
    let got = 0;
    for await (const c of engine.getObject(`o${i}`, { store })) got += c.length;
    if (got !== body.length) throw new Error('short read');
  }));
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  await engine.close();
  rmSync(root, { recursive: true, force: true });
  console.log(JSON.stringify({ peakRssMiB: peak / MiB }));
  process.exit(0);
}

// ---- (1) put pipeline vs the same shard files -----------------------------------------------------------------
const body = randomBytes(MiB);
const { root: probeRoot, store: probe } = freshStore();
const info = await engine.putObject('probe', body, { keyId: key.id, dataShards: K, parityShards: M, store: probe });
const shardKeys = [];
for (let node = 0; node < probe.nodes; node++) shardKeys.push(...(await probe.list(node, { prefix: '', limit: 100 })).map((k) => ({ node, k })));
const shardBytes = info.shardBytes;
rmSync(probeRoot, { recursive: true, force: true });
const shard = randomBytes(shardBytes);
console.log(`1 MiB object → ${K + M} shards of ${shardBytes} bytes (${shardKeys.length} blobs per object)`);

const engineRates = [];
const plainRates = [];
for (let r = 0; r < WARMUP + ROUNDS; r++) {
  for (const which of ['engine', 'plain']) {
    const { root, store } = freshStore();
    const t = performance.now();
    if (which === 'engine') {
      await inFlight(OBJECTS, (i) => engine.putObject(`p${i}`, body, { keyId: key.id, dataShards: K, parityShards: M, store }));
    } else {
      // The engine's blobs for each object, byte for byte in size, under the same key layout, through the same store.
      await inFlight(OBJECTS, (i) => Promise.all(shardKeys.map(async ({ node, k }) => {
        const segs = k.split('/'); // [...namespace, enc(name), -generation, shard]: same depth, another name
        segs[segs.length - 3] = `P${i}`;
        const w = await store.openWriter(node, segs.join('/'));
        await w.write(shard);
        await w.flush();
        await w.commit();
      })));
    }
    const rate = OBJECTS / ((performance.now() - t) / 1000);
    rmSync(root, { recursive: true, force: true });
    if (r >= WARMUP) (which === 'engine' ? engineRates : plainRates).push(rate);
  }
}
const results = {
  putsPerSec: median(engineRates), plainPerSec: median(plainRates),
  ratio: median(engineRates) / median(plainRates), engineRates, plainRates,
};
console.log(`putObject 1 MiB 10+4, ${IN_FLIGHT} in flight: ${fmt(results.putsPerSec)}/s vs same shard files ${fmt(results.plainPerSec)}/s → ${fmt(results.ratio)}× (goal ≥ 0.6)`);

// ---- (2) memory -------------------------------------------------------------------------------------------------
await engine.close();
const child = spawnSync(process.execPath, [new URL(import.meta.url).pathname, '--rss-child'], { encoding: 'utf8', env: process.env });
if (child.status !== 0) throw new Error(`rss child failed: ${child.stderr}`);
results.rss16x8MiB = JSON.parse(child.stdout.trim().split('\n').pop());
console.log(`16 concurrent 8 MiB puts, then gets: peak RSS ${fmt(results.rss16x8MiB.peakRssMiB)} MiB (goal < 384)`);
writeResult('put-pipeline', { rounds: ROUNDS, warmupRounds: WARMUP, objects: OBJECTS, inFlight: IN_FLIGHT, shape: `${K}+${M}`, results });
