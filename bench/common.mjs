// Shared benchmark plumbing: machine facts, medians and sample stats, op rates through benchmark.js, a throwaway
// SoftHSM token, JSON results. Every bench/*.mjs takes its statistics from here.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

export const ROOT = new URL('../', import.meta.url).pathname;

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Median, min, max and the samples themselves, for a JSON row. */
export function stats(values) {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values), samples: [...values] };
}

/**
 * Ops/s of `fn` through benchmark.js (which picks the iteration count and reports the relative margin of error).
 * `fn` may return a promise: it is then timed as a deferred benchmark, one call at a time.
 * → { opsPerSec, rmePercent, samples }.
 */
export function opsRate(name, fn, { maxTime = 5, minSamples = 5, async = false } = {}) {
  const Benchmark = createRequire(import.meta.url)('benchmark');
  return new Promise((resolve, reject) => {
    const bench = new Benchmark(name, {
      maxTime,
      minSamples,
      defer: async,
      fn: async ? (deferred) => fn().then(() => deferred.resolve(), reject) : fn,
      onError: (event) => reject(event.target.error),
      onComplete: (event) => {
        const b = event.target;
        if (b.error) reject(b.error);
        else resolve({ opsPerSec: b.hz, rmePercent: b.stats.rme, samples: b.stats.sample.length });
      },
    });
    bench.run({ async: true });
  });
}

/** `ops/s ± rme%` for a console line. */
export const fmtRate = (r) => `${fmt(r.opsPerSec).padStart(12)} ops/s ±${r.rmePercent.toFixed(1)}%`;

/**
 * Throughput samples of `fn` (sync or async) in units/s: the call count doubles until one sample lasts
 * `sampleMs`, then `samples` samples of that many calls are taken. `units` is what one call processes.
 */
export async function sampleRates(fn, units, { sampleMs = 50, samples = 9 } = {}) {
  const now = () => Number(process.hrtime.bigint()) / 1e9;
  const batch = async (iters) => {
    const t0 = now();
    for (let i = 0; i < iters; i++) await fn(i);
    return now() - t0;
  };
  let iters = 1;
  while ((await batch(iters)) * 1000 < sampleMs) iters *= 2;
  const rates = [];
  for (let s = 0; s < samples; s++) rates.push((units * iters) / (await batch(iters)));
  return rates;
}

export function machine() {
  let flags = [];
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    const wanted = ['sse4_2', 'ssse3', 'avx', 'avx2', 'avx512f', 'avx512bw', 'avx512vl', 'gfni', 'vaes', 'vpclmulqdq', 'aes', 'pclmulqdq', 'sha_ni'];
    flags = line.split(':')[1].trim().split(/\s+/).filter((f) => wanted.includes(f));
  } catch {}
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {}
  // The AES-GCM implementation the addon runs (native/gcm.cc): 'ipsec-mb' where built and the CPU has VAES.
  let gcmKernel = 'none (node:crypto)';
  try {
    if (process.env.HSM_GCM_NATIVE !== '0') gcmKernel = createRequire(import.meta.url)(join(ROOT, 'native/build/Release/hsm_gcm.node')).kernel();
  } catch {}
  return { cpu: cpus()[0]?.model, cores: cpus().length, cpuFlags: flags, node: process.version, openssl: process.versions.openssl, gcmKernel, commit, date: new Date().toISOString() };
}

export function writeResult(name, result) {
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  const file = join(ROOT, 'bench/results', `${name}.json`);
  writeFileSync(file, JSON.stringify({ machine: machine(), ...result }, null, 2) + '\n');
  console.log(`\nwrote ${file}`);
}

/** A fresh SoftHSM token in a temp dir (before the module is initialised); removed at exit. */
export async function tempToken() {
  const { createTempToken } = await import('../dist/temp-token.js');
  return createTempToken('hce-bench').pkcs11;
}

/** Two decimals, for figures in the JSON results. */
export const round2 = (x) => Math.round(x * 100) / 100;

export const fmt = (n, digits = 2) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits));
