// ErasureService on a real worker pool: round trips (sizes not divisible by k), caller buffers untouched,
// in-place shared-memory calls; plus the loader's kernel switch and its fallback without the addon.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WorkerPool } from '../dist/pool/pool.js';
import { WORKER_ENTRY } from '../dist/worker-entry.js';
import { allocShared, isShared } from '../dist/pool/shared-memory.js';
import { ErasureService, ReedSolomon, ReferenceReedSolomon, availableKernels } from '../dist/erasure/index.js';
import { ErasureError } from '../dist/errors.js';
import { rng, xorshiftBytes } from './erasure-helpers.js';

const pool = new WorkerPool(2, { entry: WORKER_ENTRY });
t.teardown(() => pool.close());
// Small thresholds so modest sizes exercise the pool path (column ranges across both workers).
const service = new ErasureService(pool, { inlineBelowBytes: 4096, minTaskBytes: 4096 });
const inlineService = new ErasureService(pool);

t.test('encode/decode round trips on the pool, sizes not divisible by k, random losses', async (t) => {
  const rand = rng(3);
  for (const [k, m] of [[10, 4], [4, 2], [8, 3], [1, 1], [5, 0]]) {
    for (const size of [0, 1, k - 1, 4095, 65_537, 1_000_003]) {
      const data = xorshiftBytes(size + k, size);
      const copy = data.slice();
      for (const svc of [service, inlineService]) {
        const shards = await svc.encode(data, { dataShards: k, parityShards: m });
        t.equal(Buffer.compare(data, copy), 0, 'input untouched');
        const shardBytes = Math.ceil(size / k);
        t.equal(shards.length, k + m);
        if (!shards.every((s) => s.length === shardBytes)) t.fail('shard length');
        // Parity matches the zero-padded data (kernels are checked against the reference elsewhere).
        if (!new ReedSolomon({ dataShards: k, parityShards: m }).verify(shards)) t.fail(`${k}+${m} ${size}: parity does not verify`);
        const lost = Array.from({ length: k + m }, (_, i) => i).sort(() => rand() - 0.5).slice(0, m);
        const given = shards.map((s, i) => (lost.includes(i) ? null : s));
        const before = given.map((s) => s?.slice());
        const out = await svc.decode(given, { dataShards: k, parityShards: m, size });
        t.equal(Buffer.compare(out, data), 0, `${k}+${m} size ${size} lost [${lost}]`);
        if (!given.every((s, i) => s === null || Buffer.compare(s, before[i]!) === 0)) t.fail('decode modified an input shard');
      }
    }
  }
});

t.test('encodeShards / reconstructShards work in place on shared memory', async (t) => {
  const [k, m, len] = [10, 4, 300_001];
  const backing = allocShared((k + m) * len);
  const shards = Array.from({ length: k + m }, (_, i) => backing.subarray(i * len, (i + 1) * len));
  backing.set(xorshiftBytes(11, k * len));
  await service.encodeShards(shards, { dataShards: k, parityShards: m });
  t.ok(new ReferenceReedSolomon({ dataShards: k, parityShards: m }).verify(shards), 'parity verifies');
  const lost = [0, 3, 11, 13];
  const outputs = lost.map(() => allocShared(len));
  await service.reconstructShards(shards.map((s, i) => (lost.includes(i) ? null : s)), lost, outputs, { dataShards: k, parityShards: m });
  lost.forEach((l, i) => t.equal(Buffer.compare(outputs[i], shards[l]), 0, `shard ${l}`));
  await t.rejects(service.encodeShards(shards.map((s) => s.slice()), { dataShards: k, parityShards: m }), TypeError, 'non-shared rejected');
  t.ok(isShared(shards[0]));
});

// The same shards array encoded again goes to the addon as a prepared call (no checks, no views to unpack): it
// must still follow every change the caller makes — new data, a replaced view, another shape — and honour abort.
t.test('encodeShards again on the same array: fresh data, a replaced view, another shape, abort', async (t) => {
  const [k, m, len] = [6, 3, 64 * 1024];
  const shards = Array.from({ length: k + m }, () => allocShared(len));
  const shape = { dataShards: k, parityShards: m };
  const ref = new ReferenceReedSolomon(shape);
  for (let round = 0; round < 4; round++) {
    shards.slice(0, k).forEach((s, i) => s.set(xorshiftBytes(100 * round + i + 1, len)));
    shards.slice(k).forEach((s) => s.fill(0));
    await service.encodeShards(shards, shape);
    t.ok(ref.verify(shards), `round ${round}: parity of the current data`);
  }
  const old = shards[k + 1]!;
  old.fill(0xaa);
  shards[k + 1] = allocShared(len); // a new view in the same array: parity goes there, the old one is untouched
  await service.encodeShards(shards, shape);
  t.ok(ref.verify(shards), 'parity into the replaced view');
  t.ok(old.every((b) => b === 0xaa), 'the old view is not written');
  await service.encodeShards(shards, shape); // prepared again for the new views
  t.ok(ref.verify(shards));
  const other = { dataShards: k + 1, parityShards: m - 1 };
  shards.slice(k + 1).forEach((s) => s.fill(0));
  await service.encodeShards(shards, other);
  t.ok(new ReferenceReedSolomon(other).verify(shards), 'another shape of the same array');
  await t.rejects(service.encodeShards(shards, { ...other, signal: AbortSignal.abort() }), { name: 'AbortError' });
  await t.rejects(service.encodeShards(shards.slice(0, -1), other), RangeError, 'a shorter array is checked again');
});

t.test('service argument errors reject with typed errors', async (t) => {
  const shape = { dataShards: 4, parityShards: 2 };
  await t.rejects(service.encode('abc' as never, shape), TypeError);
  await t.rejects(service.encode(new Uint8Array(4), { dataShards: 0, parityShards: 2 }), RangeError);
  const shards = await service.encode(new Uint8Array(40), shape);
  await t.rejects(service.decode(shards.slice(1), { ...shape, size: 40 }), { name: 'RangeError', message: /shards\.length must equal dataShards \+ parityShards \(6\)/ });
  await t.rejects(service.decode(shards, { ...shape, size: 41 }), { name: 'RangeError', message: /options\.size must satisfy/ });
  await t.rejects(service.decode(shards.map((s, i) => (i < 3 ? null : s)), { ...shape, size: 40 }), ErasureError);
  t.throws(() => new ErasureService({} as never), TypeError);
});

t.test('HSM_EC_KERNEL forces a kernel at load; a bad value warns and falls back to auto', async (t) => {
  const script = "import('./dist/erasure/index.js').then(m => console.log(m.getKernel()))";
  const root = fileURLToPath(new URL('..', import.meta.url));
  const run = (v: string) => execFileSync(process.execPath, ['-e', script], { cwd: root, env: { ...process.env, HSM_EC_KERNEL: v }, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' }).trim();
  t.equal(run('scalar'), 'scalar');
  t.equal(run('reference'), 'reference');
  const { getKernel, bestKernel } = await import('../dist/erasure/index.js');
  t.equal(run('auto'), bestKernel());
  const r = (await import('node:child_process')).spawnSync(process.execPath, ['-e', script], { cwd: root, env: { ...process.env, HSM_EC_KERNEL: 'mmx' }, encoding: 'utf8' });
  t.equal(r.stdout.trim(), bestKernel());
  t.match(r.stderr, /HSM_EC_KERNEL=mmx is not available/);
  t.equal(bestKernel(), cpuBestKernel(), 'auto picks the best kernel this CPU supports');
  const forced = process.env.HSM_EC_KERNEL;
  const expected = forced && (forced === 'reference' || availableKernels().includes(forced as never)) ? forced : cpuBestKernel();
  t.equal(getKernel(), expected, `this process runs ${expected} (HSM_EC_KERNEL=${forced ?? ''})`);
});

/** What native/dispatch.cc picks from the CPU flags (GCC checks OS support too; Linux enables these states). */
function cpuBestKernel(): string {
  const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags')) ?? '';
  const flags = new Set(line.split(':')[1]?.trim().split(/\s+/));
  if (['avx512f', 'avx512bw', 'avx512vl', 'gfni'].every((f) => flags.has(f))) return 'gfni';
  if (flags.has('avx2')) return 'avx2';
  return flags.has('ssse3') ? 'ssse3' : 'scalar';
}

t.test('without the native addon the codec falls back to the reference with one stderr line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hsm-ec-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const root = fileURLToPath(new URL('..', import.meta.url));
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
  cpSync(join(root, 'package.json'), join(dir, 'package.json'));
  const script =
    "const m = await import('./dist/erasure/index.js'); const rs = new m.ReedSolomon({ dataShards: 2, parityShards: 1 });" +
    'const s = [Uint8Array.of(1), Uint8Array.of(2), new Uint8Array(1)]; rs.encode(s); console.log(m.getKernel(), s[2][0]);';
  const r = (await import('node:child_process')).spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: dir, encoding: 'utf8', env: { ...process.env, HSM_EC_KERNEL: '' } });
  t.equal(r.status, 0);
  t.match(r.stdout.trim(), /^reference \d+$/);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one warning line');
  t.match(r.stderr, /native erasure kernels unavailable/);
});
