// Shared benchmark plumbing: machine facts, medians, a throwaway SoftHSM token, JSON results.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, cpus } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

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

/** A fresh SoftHSM token in a temp dir (set before the module is initialised); removed at exit. */
export function tempToken() {
  const dir = mkdtempSync(join(tmpdir(), 'hce-bench-'));
  mkdirSync(join(dir, 'tokens'));
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, readFileSync(join(ROOT, 'softhsm/softhsm2.conf.template'), 'utf8').replace('@TOKEN_DIR@', join(dir, 'tokens')));
  process.env.SOFTHSM2_CONF = conf;
  const tokenLabel = 'bench';
  const pin = randomBytes(8).toString('hex');
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', tokenLabel, '--so-pin', randomBytes(8).toString('hex'), '--pin', pin], { stdio: 'ignore' });
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const library = execFileSync('bash', [join(ROOT, 'softhsm/find-library.sh')], { encoding: 'utf8' }).trim();
  return { library, tokenLabel, pin };
}

export const fmt = (n, digits = 2) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(digits));
