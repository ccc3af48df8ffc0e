// Shared benchmark plumbing: machine facts, medians, a throwaway SoftHSM token, JSON results.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

export const ROOT = new URL('../', import.meta.url).pathname;

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
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
  return { cpu: cpus()[0]?.model, cores: cpus().length, cpuFlags: flags, node: process.version, openssl: process.versions.openssl, commit, date: new Date().toISOString() };
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

export const fmt = (n, digits = 2) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits));
