// Issue #13 ceilings: builds bench/native/ec-ceiling.cc against the addon's kernels and pool (g++, the same flags as
// native/binding.gyp) and runs it: the GFNI kernel and a plain read of the same bytes on 1 and 2 threads, main
// memory bandwidth, and the native pool's dispatch cost. Writes bench/results/erasure-ceiling.json.
//
//   node bench/erasure-ceiling.mjs
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { ROOT, writeResult } from './common.mjs';

const dir = mkdtempSync(join(os.tmpdir(), 'ec-ceiling-'));
const exe = join(dir, 'ec-ceiling');
const native = join(ROOT, 'native');
execFileSync('g++', ['-std=c++17', '-O3', '-pthread', `-I${native}`, join(ROOT, 'bench/native/ec-ceiling.cc'),
  ...['dispatch.cc', 'executor.cc', 'gf-kernels-scalar.cc', 'gf-kernels-ssse3.cc', 'gf-kernels-avx2.cc', 'gf-kernels-gfni.cc'].map((f) => join(native, f)),
  '-o', exe], { stdio: 'inherit' });
const load = os.loadavg()[0];
const out = JSON.parse(execFileSync(exe, { encoding: 'utf8' }));
console.log(JSON.stringify({ ...out, loadAverage: [load, os.loadavg()[0]] }, null, 2));
writeResult('erasure-ceiling', { benchmark: 'erasure-ceiling', loadAverageBefore: load, loadAverageAfter: os.loadavg()[0], ...out });
