// The AES-256-GCM kernels side by side on one thread: the addon's OpenSSL path (the OpenSSL Node links), its
// intel-ipsec-mb path (VAES + VPCLMULQDQ, where built and supported) and node:crypto, sealing and opening 64 KiB
// segments (the default segment size), once in cache (1 MiB reused) and once streaming through 128 MiB that is
// not (src and dst reused, so no page faults), plus `openssl speed` for the same 1 MiB in cache. Interleaved
// rounds, medians, ratios of the same run. Writes bench/results/gcm-kernels.json.
//   node bench/gcm-kernels.mjs            ROUNDS=9 by default
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { nativeGcm } from '../dist/aead/native-gcm.js';
import { median, round2, writeResult } from './common.mjs';

const ROUNDS = Number(process.env.ROUNDS ?? 9);
const SEG = 64 * 1024;
const TAG = 16;
const key = randomBytes(32);
const nonce = randomBytes(12);
const none = new Uint8Array(0);

const kernels = nativeGcm?.kernels ?? [];
const initial = nativeGcm?.kernel?.();

/** A region of `bytes` in plaintext and sealed form, segment by segment. */
function region(bytes) {
  const plain = randomBytes(bytes);
  const count = bytes / SEG;
  const sealed = Buffer.alloc(count * (SEG + TAG));
  for (let i = 0; i < count; i++) {
    const c = createCipheriv('aes-256-gcm', key, nonce);
    c.update(plain.subarray(i * SEG, (i + 1) * SEG)).copy(sealed, i * (SEG + TAG));
    c.final();
    c.getAuthTag().copy(sealed, i * (SEG + TAG) + SEG);
  }
  return { plain, sealed, count, out: Buffer.alloc(sealed.length) };
}

const seal = {
  native: (r, passes) => {
    for (let p = 0; p < passes; p++)
      for (let i = 0; i < r.count; i++) nativeGcm.seal(key, nonce, none, r.plain.subarray(i * SEG, (i + 1) * SEG), r.out.subarray(i * (SEG + TAG), (i + 1) * (SEG + TAG)));
  },
  node: (r, passes) => {
    for (let p = 0; p < passes; p++)
      for (let i = 0; i < r.count; i++) {
        const c = createCipheriv('aes-256-gcm', key, nonce);
        c.update(r.plain.subarray(i * SEG, (i + 1) * SEG));
        c.final();
        c.getAuthTag();
      }
  },
};
const open = {
  native: (r, passes) => {
    for (let p = 0; p < passes; p++)
      for (let i = 0; i < r.count; i++)
        if (!nativeGcm.open(key, nonce, none, r.sealed.subarray(i * (SEG + TAG), (i + 1) * (SEG + TAG)), r.out.subarray(i * SEG, (i + 1) * SEG))) throw new Error('tag');
  },
  node: (r, passes) => {
    for (let p = 0; p < passes; p++)
      for (let i = 0; i < r.count; i++) {
        const d = createDecipheriv('aes-256-gcm', key, nonce);
        d.setAuthTag(r.sealed.subarray(i * (SEG + TAG) + SEG, (i + 1) * (SEG + TAG)));
        d.update(r.sealed.subarray(i * (SEG + TAG), i * (SEG + TAG) + SEG));
        d.final();
      }
  },
};

const cached = region(1 << 20);
const streaming = region(128 << 20);
const shapes = [
  ['1 MiB in cache', cached, 128],
  ['128 MiB from memory', streaming, 1],
];
const impls = [...kernels.map((k) => [`addon ${k}`, k]), ['node:crypto', null]];

const rows = {};
const sample = (name, bytes, fn) => {
  const t0 = process.hrtime.bigint();
  fn();
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  (rows[name] ??= []).push(bytes / s / 1e9);
};
const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
function opensslSpeed() {
  const out = spawnSync('openssl', ['speed', '-evp', 'aes-256-gcm', '-bytes', String(1 << 20), '-seconds', '1', '-mr'], { encoding: 'utf8' }).stdout ?? '';
  const m = out.match(/\+F:\d+:[^:]+:([\d.]+)/);
  return m ? Number(m[1]) / 1e9 : NaN;
}

for (let round = 0; round <= ROUNDS; round++) {
  for (const [shape, r, passes] of shapes)
    for (const [impl, kernel] of impls)
      for (const [op, fns] of [['seal', seal], ['open', open]]) {
        if (kernel) nativeGcm.setKernel(kernel);
        const fn = kernel ? fns.native : fns.node;
        if (round === 0) fn(r, 1); // warm-up round, not kept
        else sample(`${op} ${shape}, ${impl}`, r.plain.length * passes, () => fn(r, passes));
      }
  if (hasOpenssl && round > 0) (rows['openssl speed 1 MiB in cache, 1 thread'] ??= []).push(opensslSpeed());
  if (round > 0) console.error(`round ${round}/${ROUNDS}`);
}
if (initial) nativeGcm.setKernel(initial);

const table = Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, { medianGBps: round2(median(v)), samplesGBps: v.map(round2) }]));
const ratio = (a, b) => (table[a] && table[b] ? round2(table[a].medianGBps / table[b].medianGBps) : null);
const ratios = {};
for (const [shape] of shapes)
  for (const op of ['seal', 'open']) {
    ratios[`${op} ${shape}: ipsec-mb vs OpenSSL (addon)`] = ratio(`${op} ${shape}, addon ipsec-mb`, `${op} ${shape}, addon openssl`);
    ratios[`${op} ${shape}: ipsec-mb vs node:crypto`] = ratio(`${op} ${shape}, addon ipsec-mb`, `${op} ${shape}, node:crypto`);
    ratios[`${op} ${shape}: OpenSSL (addon) vs node:crypto`] = ratio(`${op} ${shape}, addon openssl`, `${op} ${shape}, node:crypto`);
  }
ratios['seal 1 MiB in cache: ipsec-mb vs openssl speed'] = ratio('seal 1 MiB in cache, addon ipsec-mb', 'openssl speed 1 MiB in cache, 1 thread');
for (const [k, v] of Object.entries(table)) console.log(`${k.padEnd(48)} ${v.medianGBps.toFixed(2).padStart(6)} GB/s`);
for (const [k, v] of Object.entries(ratios)) if (v !== null) console.log(`${k.padEnd(56)} ${v.toFixed(2)}×`);
writeResult('gcm-kernels', { settings: { rounds: ROUNDS, segmentBytes: SEG, kernels }, table, ratios });
