#!/usr/bin/env node
// Erasure-coding benchmark. Run:   npm run build && node bench/erasure.mjs [--quick]
// Encode and reconstruct throughput (GB/s of data = k × shard bytes per call, medians) for 10+4, 8+3 and 4+2
// at 1 MiB and 64 KiB shards: every native kernel single-threaded, the worker pool (2 threads), ISA-L's
// ec_encode_data (C harness compiled here against libisal) and the npm peer @ronomon/reed-solomon.
// Outputs are checked before timing; buffers are reused (first touch of fresh memory is slow on this VM),
// the one-shot ErasureService.encode(data) (copy + fresh shared memory) is reported separately.
// Rows are named by shape, k x m x shard size (`10x4x1M`). Writes bench/results/erasure.json (CPU flags, Node
// version, git commit).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, sampleRates, writeResult } from './common.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const QUICK = process.argv.includes('--quick');
const SAMPLE_MS = QUICK ? 20 : 50; // each sample runs whole calls for at least this long
const SAMPLES = QUICK ? 5 : 9;
const SHAPES = [
  { k: 10, m: 4, lost: 4 },
  { k: 8, m: 3, lost: 3 },
  { k: 4, m: 2, lost: 2 },
];
const SHARD_SIZES = [1 << 20, 64 << 10];
const POOL_THREADS = 2;
const POOL_IN_FLIGHT = 4; // concurrent stripes for the pool-throughput figure

if (!existsSync(join(ROOT, 'dist/erasure/index.js'))) {
  console.error('bench: build first (npm run build)');
  process.exit(1);
}
const { ReedSolomon, ReferenceReedSolomon, ErasureService, availableKernels, bestKernel } = await import(
  join(ROOT, 'dist/erasure/index.js')
);
const { WorkerPool } = await import(join(ROOT, 'dist/pool/pool.js'));
const { WORKER_ENTRY } = await import(join(ROOT, 'dist/worker-entry.js'));
const { allocShared } = await import(join(ROOT, 'dist/pool/shared-memory.js'));

// ---- helpers ---------------------------------------------------------------------------------------------
/** Median GB/s of `fn` (sync or async), `bytes` of data per call. */
const gbpsOf = async (fn, bytes) => median(await sampleRates(fn, bytes / 1e9, { sampleMs: SAMPLE_MS, samples: SAMPLES }));
/** A row's name: k x m x shard size, e.g. 10x4x1M. */
const caseName = (k, m, len) => `${k}x${m}x${len >= 1 << 20 ? `${len >> 20}M` : `${len >> 10}K`}`;

/** xorshift32 seed 12345, shard 0 first: the same bytes as bench/isal-harness.c. */
function fillData(shards, k) {
  let x = 12345;
  for (let j = 0; j < k; j++) {
    const s = shards[j];
    for (let i = 0; i < s.length; i++) {
      x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
      s[i] = x & 0xff;
    }
  }
}

/** FNV-1a, 32-bit, over the arrays in order (the harness computes the same digest). */
function fnv1a32(arrays) {
  let h = 0x811c9dc5;
  for (const a of arrays) for (let i = 0; i < a.length; i++) h = Math.imul(h ^ a[i], 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

const equal = (a, b) => Buffer.compare(a, b) === 0;
const sharedShards = (count, len) => Array.from({ length: count }, () => allocShared(len));

// ---- peers -----------------------------------------------------------------------------------------------
function setupIsal() {
  const header = '/usr/include/isa-l/erasure_code.h';
  if (!existsSync(header) && process.getuid?.() === 0 && spawnSync('sh', ['-c', 'command -v apt-get']).status === 0) {
    console.error('bench: installing libisal-dev with apt-get');
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    spawnSync('apt-get', ['install', '-y', '-qq', 'libisal-dev'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  if (!existsSync(header)) {
    console.error('bench: ISA-L (libisal-dev) not available and cannot be installed here; skipping the ISA-L comparison');
    return null;
  }
  const exe = join(os.tmpdir(), `hsm-ec-isal-harness-${process.pid}`);
  const cc = spawnSync('cc', ['-O2', '-o', exe, join(ROOT, 'bench/isal-harness.c'), '-lisal'], { encoding: 'utf8' });
  if (cc.status !== 0) {
    console.error(`bench: could not compile the ISA-L harness, skipping ISA-L:\n${cc.stderr}`);
    return null;
  }
  return (k, m, len, lost) =>
    JSON.parse(execFileSync(exe, [k, m, len, lost, SAMPLE_MS, SAMPLES].map(String), { encoding: 'utf8' }));
}

function loadRonomon() {
  try {
    return createRequire(import.meta.url)('@ronomon/reed-solomon');
  } catch {
    console.error('bench: @ronomon/reed-solomon not installed (npm install); skipping it');
    return null;
  }
}

/** @ronomon/reed-solomon: data shards contiguous in one buffer, parity in another; async on libuv's pool. */
function ronomonCase(RS, k, m, len, lost) {
  const ctx = RS.create(k, m);
  const buffer = Buffer.alloc(k * len);
  const parity = Buffer.alloc(m * len);
  fillData(Array.from({ length: k }, (_, j) => buffer.subarray(j * len, (j + 1) * len)), k);
  const original = Buffer.from(buffer);
  const all = (n) => (1 << n) - 1;
  const run = (sources, targets) =>
    new Promise((res, rej) => RS.encode(ctx, sources, targets, buffer, 0, k * len, parity, 0, m * len, (e) => (e ? rej(e) : res())));
  const lostMask = all(lost);
  return {
    encode: () => run(all(k), all(k + m) & ~all(k)),
    reconstruct: () => run(all(k + m) & ~lostMask, lostMask),
    async check() {
      await run(all(k), all(k + m) & ~all(k));
      buffer.fill(0, 0, lost * len);
      await run(all(k + m) & ~lostMask, lostMask);
      return equal(buffer, original);
    },
  };
}

// ---- main ------------------------------------------------------------------------------------------------
const isal = setupIsal();
const ronomon = loadRonomon();
const kernels = availableKernels().filter((k) => k !== 'reference');
const pool = new WorkerPool(POOL_THREADS, { entry: WORKER_ENTRY });
const service = new ErasureService(pool);
const results = [];
const record = (r) => results.push(r);

for (const { k, m, lost } of SHAPES) {
  for (const len of SHARD_SIZES) {
    const shape = caseName(k, m, len);
    const bytes = k * len;
    const label = shape;
    process.stderr.write(`bench: ${label}\n`);
    const shards = sharedShards(k + m, len);
    fillData(shards, k);

    // Reference parity (TypeScript) to check every kernel against, and ISA-L's digest of it.
    const expected = shards.map((s, i) => (i < k ? s : new Uint8Array(len)));
    new ReferenceReedSolomon({ dataShards: k, parityShards: m }).encode(expected);
    const parityFnv = fnv1a32(expected.slice(k));
    const targets = Array.from({ length: lost }, (_, i) => i);
    const survivors = shards.map((s, i) => (i < lost ? null : s));
    const outputs = sharedShards(lost, len);

    let isalRow = null;
    if (isal) {
      isalRow = isal(k, m, len, lost);
      if (isalRow.parityFnv !== parityFnv || !isalRow.rebuiltOk) throw new Error(`${label}: ISA-L output differs from ours`);
      record({ case: shape, shardBytes: len, op: 'encode', impl: 'isa-l', threads: 1, gbps: isalRow.encodeGBps });
      record({ case: shape, shardBytes: len, op: 'reconstruct', impl: 'isa-l', threads: 1, gbps: isalRow.reconstructGBps });
    }

    for (const kernel of kernels) {
      const rs = new ReedSolomon({ dataShards: k, parityShards: m, kernel });
      for (let p = k; p < k + m; p++) shards[p].fill(0);
      rs.encode(shards);
      if (!shards.every((s, i) => equal(s, expected[i]))) throw new Error(`${label} ${kernel}: parity differs from the reference`);
      rs.reconstructInto(survivors, targets, outputs);
      if (!outputs.every((o, i) => equal(o, shards[i]))) throw new Error(`${label} ${kernel}: reconstruct wrong`);
      record({ case: shape, shardBytes: len, op: 'encode', impl: kernel, threads: 1, gbps: await gbpsOf(() => rs.encode(shards), bytes) });
      record({ case: shape, shardBytes: len, op: 'reconstruct', impl: kernel, threads: 1, gbps: await gbpsOf(() => rs.reconstructInto(survivors, targets, outputs), bytes) });
    }

    if (ronomon) {
      const rc = ronomonCase(ronomon, k, m, len, lost);
      if (!(await rc.check())) throw new Error(`${label}: ronomon round trip failed`);
      record({ case: shape, shardBytes: len, op: 'encode', impl: 'ronomon', threads: 1, gbps: await gbpsOf(rc.encode, bytes) });
      record({ case: shape, shardBytes: len, op: 'reconstruct', impl: 'ronomon', threads: 1, gbps: await gbpsOf(rc.reconstruct, bytes) });
    }

    // Pool, best kernel, in place on reused shared memory: one call at a time, then POOL_IN_FLIGHT stripes.
    const opts = { dataShards: k, parityShards: m };
    for (let p = k; p < k + m; p++) shards[p].fill(0);
    await service.encodeShards(shards, opts);
    outputs.forEach((o) => o.fill(0));
    await service.reconstructShards(survivors, targets, outputs, opts);
    if (!shards.every((s, i) => equal(s, expected[i])) || !outputs.every((o, i) => equal(o, shards[i])))
      throw new Error(`${label}: pool output wrong`);
    const enc = () => service.encodeShards(shards, opts);
    const rec = () => service.reconstructShards(survivors, targets, outputs, opts);
    record({ case: shape, shardBytes: len, op: 'encode', impl: 'pool', threads: POOL_THREADS, gbps: await gbpsOf(enc, bytes) });
    record({ case: shape, shardBytes: len, op: 'reconstruct', impl: 'pool', threads: POOL_THREADS, gbps: await gbpsOf(rec, bytes) });
    const stripes = Array.from({ length: POOL_IN_FLIGHT }, () => {
      const s = sharedShards(k + m, len);
      s.slice(0, k).forEach((d, i) => d.set(shards[i]));
      return s;
    });
    const encMany = () => Promise.all(stripes.map((s) => service.encodeShards(s, opts)));
    record({ case: shape, shardBytes: len, op: 'encode', impl: `pool x${POOL_IN_FLIGHT} in flight`, threads: POOL_THREADS, gbps: await gbpsOf(encMany, bytes * POOL_IN_FLIGHT) });
    // Same stripes one after another on this thread: the single-thread baseline with the same working set.
    const rsBest = new ReedSolomon({ dataShards: k, parityShards: m, kernel: bestKernel() });
    record({ case: shape, shardBytes: len, op: 'encode', impl: `${bestKernel()} x${POOL_IN_FLIGHT} stripes`, threads: 1, gbps: await gbpsOf(() => stripes.forEach((s) => rsBest.encode(s)), bytes * POOL_IN_FLIGHT) });

    // One-shot service call: copies the caller's data into fresh shared memory, returns new shards.
    const data = new Uint8Array(bytes);
    shards.slice(0, k).forEach((d, i) => data.set(d, i * len));
    const once = await service.encode(data, opts);
    if (!once.every((s, i) => equal(s, expected[i]))) throw new Error(`${label}: service.encode wrong`);
    record({ case: shape, shardBytes: len, op: 'encode', impl: 'pool one-shot encode(data)', threads: POOL_THREADS, gbps: await gbpsOf(() => service.encode(data, opts), bytes) });
  }
}
await pool.close();

// ---- report ----------------------------------------------------------------------------------------------
const find = (r, impl) => results.find((x) => x.case === r.case && x.shardBytes === r.shardBytes && x.op === r.op && x.impl === impl)?.gbps;
const rows = [];
for (const r of results) {
  const isalG = find(r, 'isa-l');
  const ronG = find(r, 'ronomon');
  rows.push({
    case: `${r.case} ${r.op}`,
    impl: r.impl,
    'GB/s': r.gbps.toFixed(2),
    'vs ISA-L': isalG ? `${(r.gbps / isalG).toFixed(2)}x` : '-',
    'vs ronomon': ronG ? `${(r.gbps / ronG).toFixed(2)}x` : '-',
  });
}
const pad = (s, n) => String(s).padEnd(n);
const cols = Object.keys(rows[0]);
const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
console.log(cols.map((c, i) => pad(c, widths[i])).join('  '));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(cols.map((c, i) => pad(r[c], widths[i])).join('  '));

const best = bestKernel();
const goals = [];
for (const { k, m } of SHAPES)
  for (const len of SHARD_SIZES) {
    const key = { case: caseName(k, m, len), shardBytes: len, op: 'encode' };
    const single = find(key, best);
    goals.push({
      case: caseName(k, m, len),
      bestVsIsal: find(key, 'isa-l') ? single / find(key, 'isa-l') : null,
      bestVsRonomon: find(key, 'ronomon') ? single / find(key, 'ronomon') : null,
      poolVsSingle: find(key, 'pool') / single,
      poolInFlightVsSingle: find(key, `pool x${POOL_IN_FLIGHT} in flight`) / find(key, `${best} x${POOL_IN_FLIGHT} stripes`),
    });
  }
console.log('\ngoals (best kernel ' + best + '): encode ≥ 1.0x ISA-L, ≥ 3x ronomon, pool ≥ 1.8x single thread');
for (const g of goals)
  console.log(
    `  ${g.case.padEnd(14)} vs ISA-L ${g.bestVsIsal?.toFixed(2) ?? '-'}x  vs ronomon ${g.bestVsRonomon?.toFixed(2) ?? '-'}x  ` +
      `pool ${g.poolVsSingle.toFixed(2)}x  pool ${POOL_IN_FLIGHT} stripes in flight vs same stripes on 1 thread ${g.poolInFlightVsSingle.toFixed(2)}x`,
  );

writeResult('erasure', {
  bestKernel: best,
  kernels,
  method: { sampleMs: SAMPLE_MS, samples: SAMPLES, statistic: 'median', unit: 'GB/s of data (k * shard bytes per call, 1e9)', quick: QUICK },
  results,
  goals,
});
