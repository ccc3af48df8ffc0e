// Issue #13 benchmark: does the worker pool pay? Interleaved rounds, in one process, of
//   - node:crypto AES-256-GCM on one thread (the baseline), stream and one-shot ObjectCipher with threads: 2 on the
//     native pool and on the piscina workers (the path before the native pool), 256 MiB;
//   - erasure encode 10+4 (encodeShards in place) at 1 MiB and 64 KiB shards: the single-thread kernel, the native
//     pool and the piscina workers, 2 threads;
//   - the machine's memcpy and first-touch rates, and what two threads at once get in the same rounds: OpenSSL
//     `speed` AES-256-GCM on 1 MiB in cache (1 and -multi 2: the issue's ceiling), node:crypto and memcpy on two
//     worker threads at once (each its own memory: what a user could do by hand). Out-of-cache memory and the L3
//     are shared with the VM's neighbours, so what two threads can do together moves from round to round.
// The native-pool rows and the worker-pool rows run in two phases (see below), each interleaved with the baselines;
// between them, the goal rows run once more, each right next to its baseline (adjacentRatios).
// Each row reports median wall GB/s and CPU ns per byte (all threads: what the work costs, much less sensitive to
// other load than wall time). Writes bench/results/pool-scaling.json with CPU flags, Node and commit.
//
//   npm run build && node bench/pool-scaling.mjs        (ROUNDS=7 ADJACENT_ROUNDS=15 MIB=256)
import { spawn, spawnSync } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import os from 'node:os';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { Worker } from 'node:worker_threads';
import { ObjectCipher } from '../dist/index.js';
import { WorkerPool } from '../dist/pool/pool.js';
import { WORKER_ENTRY } from '../dist/worker-entry.js';
import { allocShared } from '../dist/pool/shared-memory.js';
import { setNativePool } from '../dist/aead/native-batch.js';
import { ReedSolomon, bestKernel } from '../dist/erasure/index.js';
import { ErasureService, setNativeErasurePool } from '../dist/erasure/service.js';
import { chunksOf, discard, instantKeys, randomPlaintext } from './aead-common.mjs';
import { machine, median, round2, writeResult } from './common.mjs';

const MiB = 1 << 20;
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const ADJACENT_ROUNDS = Number(process.env.ADJACENT_ROUNDS ?? 15); // rows here are short: more rounds, less noise
const SIZE = Number(process.env.MIB ?? 256) * MiB;
const log = (...a) => console.error(...a);

const plain = randomPlaintext(SIZE);
const key = randomBytes(32);
const pool = new WorkerPool(2, { entry: WORKER_ENTRY });
const cipher = new ObjectCipher({ keys: instantKeys(), pool });
const service = new ErasureService(pool);

// ---- correctness first, on both paths
setNativePool(true);
const sealed = await cipher.encrypt(plain, { keyId: 'bench' });
for (const native of [true, false]) {
  setNativePool(native);
  if (!(await cipher.decrypt(sealed)).equals(plain)) throw new Error(`one-shot round trip (native=${native})`);
  const parts = [];
  await pipeline(chunksOf(plain), cipher.createEncryptStream({ keyId: 'bench' }), discard((c) => parts.push(Buffer.from(c))));
  if (!(await cipher.decrypt(Buffer.concat(parts))).equals(plain)) throw new Error(`stream round trip (native=${native})`);
}
const nodeSealed = (() => {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return { iv, ct, tag: c.getAuthTag() };
})();

// ---- erasure stripes (reused shared memory, as in bench/erasure.mjs)
const ec = {};
for (const len of [MiB, 64 * 1024]) {
  const k = 10, m = 4;
  const shards = Array.from({ length: k + m }, () => allocShared(len));
  shards.slice(0, k).forEach((s, i) => s.set(plain.subarray(i * len, (i + 1) * len)));
  const rs = new ReedSolomon({ dataShards: k, parityShards: m, kernel: bestKernel() });
  rs.encode(shards);
  const expected = shards.slice(k).map((s) => Buffer.from(s));
  for (const native of [true, false]) {
    setNativeErasurePool(native);
    shards.slice(k).forEach((s) => s.fill(0));
    await service.encodeShards(shards, { dataShards: k, parityShards: m });
    if (!shards.slice(k).every((s, i) => expected[i].equals(s))) throw new Error(`erasure pool parity (native=${native})`);
  }
  ec[len] = { shards, rs, iters: Math.max(4, Math.round((256 * MiB) / (k * len))) };
}
log('correctness checks passed');

// ---- two threads at once: two workers, each with its own 128 MiB, run node:crypto or memcpy at the same time
const PAIR_WORKER = `
const { parentPort } = require('node:worker_threads');
const { createCipheriv, createDecipheriv, randomBytes } = require('node:crypto');
const MiB = 1 << 20;
const half = Buffer.allocUnsafe(${SIZE / 2});
for (let at = 0; at < half.length; at += MiB) randomBytes(MiB).copy(half, at);
const copyDst = Buffer.allocUnsafe(64 * MiB);
copyDst.fill(1);
const key = randomBytes(32);
const iv = randomBytes(12);
const sealed = (() => { const c = createCipheriv('aes-256-gcm', key, iv); const ct = Buffer.concat([c.update(half), c.final()]); return { ct, tag: c.getAuthTag() }; })();
const jobs = {
  enc() { const c = createCipheriv('aes-256-gcm', key, randomBytes(12)); for (let at = 0; at < half.length; at += MiB) c.update(half.subarray(at, at + MiB)); c.final(); },
  dec() { const d = createDecipheriv('aes-256-gcm', key, iv); d.setAuthTag(sealed.tag); for (let at = 0; at < half.length; at += MiB) d.update(sealed.ct.subarray(at, at + MiB)); d.final(); },
  copy() { half.copy(copyDst, 0, 0, 64 * MiB); },
};
parentPort.on('message', (job) => { jobs[job](); parentPort.postMessage(job); });
parentPort.postMessage('ready');`;
const pairWorkers = await Promise.all([0, 1].map(() => new Promise((resolve) => {
  const w = new Worker(PAIR_WORKER, { eval: true });
  w.once('message', () => resolve(w));
})));
const onBoth = (job) => Promise.all(pairWorkers.map((w) => new Promise((resolve) => { w.once('message', resolve); w.postMessage(job); })));

// ---- rows
const nodeEnc = () => {
  const c = createCipheriv('aes-256-gcm', key, randomBytes(12));
  for (let at = 0; at < SIZE; at += MiB) c.update(plain.subarray(at, at + MiB));
  c.final();
};
const nodeDec = () => {
  const d = createDecipheriv('aes-256-gcm', key, nodeSealed.iv);
  d.setAuthTag(nodeSealed.tag);
  for (let at = 0; at < SIZE; at += MiB) d.update(nodeSealed.ct.subarray(at, at + MiB));
  d.final();
};
const withAead = (native, fn) => async () => { setNativePool(native); await fn(); };
const withEc = (native, fn) => async () => { setNativeErasurePool(native); await fn(); };
const copyDst = Buffer.allocUnsafe(64 * MiB);
copyDst.fill(1);
const rows = {
  'node:crypto encrypt, 1 thread': { bytes: SIZE, run: nodeEnc },
  'node:crypto decrypt, 1 thread': { bytes: SIZE, run: nodeDec },
  'memcpy 64 MiB into reused memory, 1 thread': { bytes: 64 * MiB, run: () => plain.copy(copyDst, 0, 0, 64 * MiB) },
  'first touch: fill a fresh 64 MiB Buffer, 1 thread': { bytes: 64 * MiB, run: () => Buffer.allocUnsafeSlow(64 * MiB).fill(0) },
  'node:crypto encrypt on 2 worker threads at once': { bytes: SIZE, run: () => onBoth('enc') },
  'node:crypto decrypt on 2 worker threads at once': { bytes: SIZE, run: () => onBoth('dec') },
  'memcpy 64 MiB on each of 2 threads at once': { bytes: 128 * MiB, run: () => onBoth('copy') },
};
// OpenSSL's own figure (its CPU is another process's: no CPU ns/B); absent where there is no openssl binary. It is
// started from a helper process forked once here: a fork from this process write-protects all its memory, and the
// next round's rows then took a page fault on every page they wrote (memcpy into reused memory: 8.9 → 3.3 GB/s).
const HAVE_OPENSSL = spawnSync('openssl', ['version']).status === 0;
const opensslHelper = HAVE_OPENSSL
  ? spawn(process.execPath, ['-e', `process.on('message', (args) => process.send(require('node:child_process').spawnSync('openssl', args, { encoding: 'utf8' }).stdout ?? ''))`], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'] })
  : undefined;
const opensslSpeed = (multi) => () => new Promise((resolve) => {
  opensslHelper.once('message', (out) => {
    const sum = out.split('\n').filter((l) => l.startsWith('+F:')).at(-1); // with -multi the last line is the sum
    resolve({ gbps: Number(sum?.split(':')[3]) / 1e9, external: true });
  });
  opensslHelper.send(['speed', '-evp', 'aes-256-gcm', '-bytes', String(MiB), '-seconds', '1', '-mr', ...(multi ? ['-multi', String(multi)] : [])]);
});
if (HAVE_OPENSSL) {
  rows['OpenSSL speed AES-256-GCM 1 MiB in cache, 1 thread'] = { bytes: SIZE, run: opensslSpeed(0) };
  rows['OpenSSL speed AES-256-GCM 1 MiB in cache, -multi 2'] = { bytes: SIZE, run: opensslSpeed(2) };
}
for (const [name, native] of [['native pool', true], ['worker pool', false]]) {
  rows[`stream encrypt, threads 2, ${name}`] = { bytes: SIZE, run: withAead(native, () => pipeline(chunksOf(plain), cipher.createEncryptStream({ keyId: 'bench' }), discard())) };
  rows[`stream decrypt, threads 2, ${name}`] = { bytes: SIZE, run: withAead(native, () => pipeline(chunksOf(sealed), cipher.createDecryptStream(), discard())) };
  rows[`one-shot encrypt 256 MiB, threads 2, ${name}`] = { bytes: SIZE, run: withAead(native, () => cipher.encrypt(plain, { keyId: 'bench' })) };
  rows[`one-shot decrypt 256 MiB, threads 2, ${name}`] = { bytes: SIZE, run: withAead(native, () => cipher.decrypt(sealed)) };
}
// The same streams as async iterables whose chunks' memory is reused (ObjectCipher.encryptChunks/decryptChunks).
const drainChunks = async (chunks) => { for await (const c of chunks) if (c.length === 0) throw new Error('empty chunk'); };
rows['chunks encrypt (encryptChunks), threads 2, native pool'] = { bytes: SIZE, run: withAead(true, () => drainChunks(cipher.encryptChunks(chunksOf(plain), { keyId: 'bench' }))) };
rows['chunks decrypt (decryptChunks), threads 2, native pool'] = { bytes: SIZE, run: withAead(true, () => drainChunks(cipher.decryptChunks(chunksOf(sealed)))) };
for (const len of [MiB, 64 * 1024]) {
  const { shards, rs, iters } = ec[len];
  const label = len === MiB ? '1 MiB' : '64 KiB';
  const bytes = 10 * len * iters;
  const opts = { dataShards: 10, parityShards: 4 };
  rows[`erasure encode 10+4 x ${label}, single-thread kernel`] = { bytes, run: () => { for (let i = 0; i < iters; i++) rs.encode(shards); } };
  for (const [name, native] of [['native pool', true], ['worker pool', false]]) {
    rows[`erasure encode 10+4 x ${label}, threads 2, ${name}`] = { bytes, run: withEc(native, async () => { for (let i = 0; i < iters; i++) await service.encodeShards(shards, opts); }) };
  }
}
// ONLY=regex keeps the matching rows plus the baselines (for a quick look; ratios of dropped rows are absent).
if (process.env.ONLY) for (const name of Object.keys(rows)) if (!new RegExp(process.env.ONLY).test(name) && !/node:crypto|single-thread|OpenSSL|memcpy/.test(name)) delete rows[name];
// Adjacent rounds (a third phase, after the native-pool one): each goal row right next to its baseline, in
// alternating order, so both see the host at the same moment. In a round of every row they run up to ~10 s apart,
// and the host's speed moves on that scale (per-round ratios spread ~0.9–2.4× within one run). The AES rows also
// run node:crypto on two worker threads in between: what two threads of this VM gave at that moment, so a ratio
// can be read as (what the host's two threads gave) × (the engine against splitting node:crypto by hand).
const ADJACENT = [
  ['stream encrypt, threads 2, native pool', 'node:crypto encrypt, 1 thread', 'stream encrypt vs node:crypto 1 thread (goal 1.6)', 'node:crypto encrypt on 2 worker threads at once'],
  ['stream decrypt, threads 2, native pool', 'node:crypto decrypt, 1 thread', 'stream decrypt vs node:crypto 1 thread (goal 1.6)', 'node:crypto decrypt on 2 worker threads at once'],
  ['chunks encrypt (encryptChunks), threads 2, native pool', 'node:crypto encrypt, 1 thread', 'encryptChunks vs node:crypto 1 thread', 'node:crypto encrypt on 2 worker threads at once'],
  ['chunks decrypt (decryptChunks), threads 2, native pool', 'node:crypto decrypt, 1 thread', 'decryptChunks vs node:crypto 1 thread', 'node:crypto decrypt on 2 worker threads at once'],
  ['one-shot encrypt 256 MiB, threads 2, native pool', 'node:crypto encrypt, 1 thread', 'one-shot encrypt 256 MiB vs node:crypto 1 thread (goal 1.3)', 'node:crypto encrypt on 2 worker threads at once'],
  ['erasure encode 10+4 x 1 MiB, threads 2, native pool', 'erasure encode 10+4 x 1 MiB, single-thread kernel', 'erasure 10+4 x 1 MiB vs single-thread kernel (goal 1.7)'],
  ['erasure encode 10+4 x 64 KiB, threads 2, native pool', 'erasure encode 10+4 x 64 KiB, single-thread kernel', 'erasure 10+4 x 64 KiB vs single-thread kernel (goal 1.4)'],
].filter(([a, b]) => rows[a] && rows[b]);
const adjacentRatios = {};
const timedGbps = async (row) => {
  const t0 = performance.now();
  await row.run();
  return row.bytes / 1e6 / (performance.now() - t0);
};
async function adjacentPhase() {
  for (const [a, b, goal, two] of ADJACENT) {
    const withTwo = two !== undefined && rows[two] !== undefined;
    const per = { goal: [], twoThreadsVsOne: [], vsTwoThreads: [] };
    for (let round = -1; round < ADJACENT_ROUNDS; round++) {
      const order = withTwo ? (round % 2 === 0 ? [b, two, a] : [a, two, b]) : round % 2 === 0 ? [b, a] : [a, b];
      const g = {};
      for (const name of order) g[name] = await timedGbps(rows[name]);
      if (round < 0) continue;
      per.goal.push(g[a] / g[b]);
      if (withTwo) (per.twoThreadsVsOne.push(g[two] / g[b]), per.vsTwoThreads.push(g[a] / g[two]));
    }
    adjacentRatios[goal] = withTwo
      ? { median: round2(median(per.goal)), machineTwoThreadsVsOne: round2(median(per.twoThreadsVsOne)), vsNodeOnTwoThreads: round2(median(per.vsTwoThreads)), rounds: per.goal.map(round2) }
      : { median: round2(median(per.goal)), rounds: per.goal.map(round2) };
  }
  log('adjacent rounds done');
}
// Two phases, each interleaving its rows with the baselines: the native-pool rows first, then the worker-pool rows
// (the path before the native pool, kept for comparison). Interleaved in one phase, the worker rows' staging
// SharedArrayBuffers (alive until a worker's own GC) and 256 MiB results drove V8 to 25–40 mark-compacts per
// round from round 4 on, and the native stream rows that ran between them fell from ~3.5 to ~2 GB/s (measured).
const isBaseline = (name) => /node:crypto|memcpy|first touch|single-thread|OpenSSL/.test(name);
const majorGcs = {};
let majors = 0;
new PerformanceObserver((list) => { for (const e of list.getEntries()) if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++; }).observe({ entryTypes: ['gc'] });
const table = {};
for (const phase of ['native pool', 'worker pool']) {
  const phaseRows = Object.entries(rows).filter(([name]) => isBaseline(name) || name.endsWith(phase));
  for (const [, row] of phaseRows) { row.gbps = []; row.cpuNsPerByte = []; }
  majors = 0;
  for (let round = -1; round < ROUNDS; round++) {
    for (const [, row] of phaseRows) {
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const reported = await row.run();
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      if (round < 0) continue;
      row.gbps.push(reported?.gbps ?? row.bytes / 1e6 / ms);
      if (!reported?.external) row.cpuNsPerByte.push(((cpu.user + cpu.system) * 1000) / row.bytes);
    }
    log(`${phase}: round ${round + 1}/${ROUNDS} (load ${os.loadavg()[0].toFixed(1)})`);
  }
  await new Promise((r) => setImmediate(r)); // the gc entries of the last round
  majorGcs[phase] = majors;
  if (phase === 'native pool') await adjacentPhase(); // before the worker rows' garbage (see above)
  for (const [name, row] of phaseRows) {
    const key = isBaseline(name) && phase !== 'native pool' ? `${name} [${phase} phase]` : name;
    const cpuNs = row.cpuNsPerByte.length ? Math.round(median(row.cpuNsPerByte) * 1000) / 1000 : null;
    table[key] = { medianGBps: round2(median(row.gbps)), medianCpuNsPerByte: cpuNs, samplesGBps: row.gbps.map(round2) };
  }
}
setNativePool(true);
setNativeErasurePool(true);
await pool.close();
await Promise.all(pairWorkers.map((w) => w.terminate()));
opensslHelper?.disconnect();

const g = (name) => table[name]?.medianGBps;
/** Median over rounds of a/b within each round (both rows ran in the same round, minutes apart at most). */
const paired = (a, b) => {
  const x = table[a]?.samplesGBps;
  const y = table[b]?.samplesGBps;
  return x && y ? round2(median(x.map((v, i) => v / y[i]))) : null;
};
const ratios = {};
for (const name of ['native pool', 'worker pool']) {
  // Each phase against the baselines measured in its own rounds.
  const base = (b) => (name === 'native pool' ? b : `${b} [${name} phase]`);
  const ratio = (a, b) => (table[a] && table[base(b)] ? round2(g(a) / g(base(b))) : null);
  const enc1 = 'node:crypto encrypt, 1 thread';
  const dec1 = 'node:crypto decrypt, 1 thread';
  ratios[name] = {
    'stream encrypt vs node:crypto 1 thread (goal 1.6)': ratio(`stream encrypt, threads 2, ${name}`, enc1),
    'stream decrypt vs node:crypto 1 thread (goal 1.6)': ratio(`stream decrypt, threads 2, ${name}`, dec1),
    'one-shot encrypt 256 MiB vs node:crypto 1 thread (goal 1.3)': ratio(`one-shot encrypt 256 MiB, threads 2, ${name}`, enc1),
    'one-shot decrypt 256 MiB vs node:crypto 1 thread': ratio(`one-shot decrypt 256 MiB, threads 2, ${name}`, dec1),
    'erasure 10+4 x 1 MiB vs single-thread kernel (goal 1.7)': ratio(`erasure encode 10+4 x 1 MiB, threads 2, ${name}`, 'erasure encode 10+4 x 1 MiB, single-thread kernel'),
    'erasure 10+4 x 64 KiB vs single-thread kernel (goal 1.4)': ratio(`erasure encode 10+4 x 64 KiB, threads 2, ${name}`, 'erasure encode 10+4 x 64 KiB, single-thread kernel'),
  };
}
// The same goals as medians of per-round ratios, and what two threads at once got from the machine in those rounds.
const twoEnc = 'node:crypto encrypt on 2 worker threads at once';
const twoDec = 'node:crypto decrypt on 2 worker threads at once';
const twoCopy = 'memcpy 64 MiB on each of 2 threads at once';
const ossl2 = 'OpenSSL speed AES-256-GCM 1 MiB in cache, -multi 2';
const enc1 = 'node:crypto encrypt, 1 thread';
const dec1 = 'node:crypto decrypt, 1 thread';
const pairedRatios = {
  'stream encrypt vs node:crypto 1 thread (goal 1.6)': paired('stream encrypt, threads 2, native pool', enc1),
  'stream decrypt vs node:crypto 1 thread (goal 1.6)': paired('stream decrypt, threads 2, native pool', dec1),
  'encryptChunks vs node:crypto 1 thread': paired('chunks encrypt (encryptChunks), threads 2, native pool', enc1),
  'decryptChunks vs node:crypto 1 thread': paired('chunks decrypt (decryptChunks), threads 2, native pool', dec1),
  'one-shot encrypt 256 MiB vs node:crypto 1 thread (goal 1.3)': paired('one-shot encrypt 256 MiB, threads 2, native pool', enc1),
  'erasure 10+4 x 1 MiB vs single-thread kernel (goal 1.7)': paired('erasure encode 10+4 x 1 MiB, threads 2, native pool', 'erasure encode 10+4 x 1 MiB, single-thread kernel'),
  'erasure 10+4 x 64 KiB vs single-thread kernel (goal 1.4)': paired('erasure encode 10+4 x 64 KiB, threads 2, native pool', 'erasure encode 10+4 x 64 KiB, single-thread kernel'),
  'stream encrypt vs OpenSSL -multi 2 (long-term goal 0.8)': paired('stream encrypt, threads 2, native pool', ossl2),
  'stream decrypt vs OpenSSL -multi 2 (long-term goal 0.8)': paired('stream decrypt, threads 2, native pool', ossl2),
  'machine: OpenSSL -multi 2 vs 1 thread': paired(ossl2, 'OpenSSL speed AES-256-GCM 1 MiB in cache, 1 thread'),
  'machine: node:crypto 1 thread vs OpenSSL 1 thread': paired(enc1, 'OpenSSL speed AES-256-GCM 1 MiB in cache, 1 thread'),
  'machine: node:crypto encrypt on 2 worker threads vs 1 thread': paired(twoEnc, enc1),
  'machine: node:crypto decrypt on 2 worker threads vs 1 thread': paired(twoDec, dec1),
  'machine: memcpy on 2 threads vs 1': paired(twoCopy, 'memcpy 64 MiB into reused memory, 1 thread'),
  'stream encrypt vs node:crypto on 2 worker threads': paired('stream encrypt, threads 2, native pool', twoEnc),
  'stream decrypt vs node:crypto on 2 worker threads': paired('stream decrypt, threads 2, native pool', twoDec),
  'one-shot encrypt vs node:crypto on 2 worker threads': paired('one-shot encrypt 256 MiB, threads 2, native pool', twoEnc),
};
console.log(JSON.stringify({ table: Object.fromEntries(Object.entries(table).map(([k, v]) => [k, `${v.medianGBps} GB/s${v.medianCpuNsPerByte === null ? "" : `, ${v.medianCpuNsPerByte} CPU ns/B`}`])), ratios, pairedRatios, adjacentRatios: Object.fromEntries(Object.entries(adjacentRatios).map(([k, { rounds, ...v }]) => [k, v])) }, null, 2));
writeResult('pool-scaling', { benchmark: 'pool-scaling', settings: { bytes: SIZE, rounds: ROUNDS, statistic: 'median of interleaved rounds, native-pool rows and worker-pool rows in separate phases; adjacentRatios: medians of per-round ratios of rows run next to each other', adjacentRounds: ADJACENT_ROUNDS }, loadAverageAfter: os.loadavg(), majorGcsPerPhase: majorGcs, table, ratios, pairedRatios, adjacentRatios });
