// AEAD benchmark: segmented AES-256-GCM (ObjectCipher) against plain node:crypto and OpenSSL, on the same
// 256 MiB buffer, in one run. Checks correctness before timing, interleaves the rows round by round (the VM is
// shared and noisy), reports medians, writes bench/results/aead.json.
//
//   npx tsc -p . && node bench/aead.mjs            (ROUNDS=7 MIB=256 SMALL_SECONDS=5 RSS_GIB=4 to change)
// The 4 KiB object rows are op rates from benchmark.js (ops/s ± rme, at most SMALL_SECONDS each).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { pipeline } from 'node:stream/promises';
import { ObjectCipher, DEFAULT_SEGMENT_BYTES, DEFAULT_BATCH_BYTES } from '../dist/index.js';
import { WorkerPool } from '../dist/pool/pool.js';
import { WORKER_ENTRY } from '../dist/worker-entry.js';
import { chunksOf, discard, instantKeys, memoryKeys, randomPlaintext } from './aead-common.mjs';
import { machine as machineFacts, median, opsRate, round2 } from './common.mjs';

const MiB = 1 << 20;
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const SIZE = Number(process.env.MIB ?? 256) * MiB;
const SMALL_SECONDS = Number(process.env.SMALL_SECONDS ?? 5);
const RSS_BYTES = Number(process.env.RSS_GIB ?? 4) * 1024 ** 3;
const log = (...a) => console.error(...a);

// ---- inputs (filled once: every row reads the same, already-mapped memory)
const plain = randomPlaintext(SIZE);
const key = randomBytes(32);

// ---- ceilings: OpenSSL
function opensslSpeed(multi) {
  const args = ['speed', '-evp', 'aes-256-gcm', '-bytes', String(MiB), '-seconds', '3', ...(multi ? ['-multi', String(multi)] : [])];
  const out = execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const line = out.split('\n').reverse().find((l) => /^aes-256-gcm\s/i.test(l));
  const kB = Number(line.trim().split(/\s+/).pop().replace(/k$/, ''));
  return (kB * 1000) / 1e9; // 'numbers are in 1000s of bytes per second'
}

// ---- baseline: node:crypto on one thread, one GCM context, update() in fixed-size calls over the buffer
function nodeCryptoMs(call) {
  const start = performance.now();
  const c = createCipheriv('aes-256-gcm', key, randomBytes(12));
  for (let at = 0; at < SIZE; at += call) c.update(plain.subarray(at, at + call));
  c.final();
  c.getAuthTag();
  return performance.now() - start;
}
function nodeDecryptMs(call, sealed) {
  const start = performance.now();
  const d = createDecipheriv('aes-256-gcm', key, sealed.iv);
  d.setAuthTag(sealed.tag);
  for (let at = 0; at < SIZE; at += call) d.update(sealed.ct.subarray(at, at + call));
  d.final();
  return performance.now() - start;
}

async function timeMs(fn) {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

const { commit, ...facts } = machineFacts();
const machine = {
  ...facts,
  nodeOpenssl: process.versions.openssl,
  systemOpenssl: execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim(),
  loadAverageBefore: os.loadavg(),
};

log(`machine: ${machine.cpu}, ${machine.cores} cores, node ${machine.node} (OpenSSL ${machine.nodeOpenssl}), load ${machine.loadAverageBefore.map((x) => x.toFixed(2)).join(' ')}`);

// ---- ObjectCipher instances
const pools = { 1: new WorkerPool(1, { entry: WORKER_ENTRY }), 2: new WorkerPool(2, { entry: WORKER_ENTRY }) };
const keys = instantKeys();
const ciphers = { 1: new ObjectCipher({ keys, pool: pools[1] }), 2: new ObjectCipher({ keys, pool: pools[2] }) };

// ---- correctness before timing
const sealedOnce = await ciphers[2].encrypt(plain, { keyId: 'bench' });
for (const t of [1, 2]) {
  const back = await ciphers[t].decrypt(sealedOnce);
  if (!back.equals(plain)) throw new Error(`threads=${t}: one-shot round trip mismatch`);
  const parts = [];
  await pipeline(chunksOf(plain), ciphers[t].createEncryptStream({ keyId: 'bench' }), discard((c) => parts.push(Buffer.from(c))));
  const streamed = Buffer.concat(parts);
  parts.length = 0;
  const out = [];
  await pipeline(chunksOf(streamed), ciphers[t].createDecryptStream(), discard((c) => out.push(Buffer.from(c))));
  if (!Buffer.concat(out).equals(plain)) throw new Error(`threads=${t}: stream round trip mismatch`);
}
const nodeSealed = (() => {
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', key, iv);
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return { iv, ct, tag: c.getAuthTag() };
})();
log('correctness checks passed');

// ---- throughput rows, interleaved per round
const rows = {
  'node:crypto encrypt, 1 thread, 1 MiB update() calls': { run: async () => nodeCryptoMs(MiB) },
  'node:crypto encrypt, 1 thread, 64 KiB update() calls': { run: async () => nodeCryptoMs(64 * 1024) },
  'node:crypto decrypt, 1 thread, 1 MiB update() calls': { run: async () => nodeDecryptMs(MiB, nodeSealed) },
};
for (const t of [1, 2]) {
  rows[`one-shot encrypt, threads=${t}`] = { run: () => timeMs(() => ciphers[t].encrypt(plain, { keyId: 'bench' })) };
  rows[`one-shot decrypt, threads=${t}`] = { run: () => timeMs(() => ciphers[t].decrypt(sealedOnce)) };
  rows[`stream encrypt, threads=${t}`] = { run: () => timeMs(() => pipeline(chunksOf(plain), ciphers[t].createEncryptStream({ keyId: 'bench' }), discard())) };
  rows[`stream decrypt, threads=${t}`] = { run: () => timeMs(() => pipeline(chunksOf(sealedOnce), ciphers[t].createDecryptStream(), discard())) };
}
for (const row of Object.values(rows)) row.ms = [];
// one warm-up round (workers started, allocator settled), then ROUNDS measured
for (let round = -1; round < ROUNDS; round++) {
  for (const [name, row] of Object.entries(rows)) {
    const ms = await row.run();
    if (round >= 0) row.ms.push(ms);
  }
  log(`round ${round + 1}/${ROUNDS} done`);
}
const gbps = (ms) => SIZE / 1e6 / ms;
const throughput = {};
for (const [name, row] of Object.entries(rows)) {
  throughput[name] = { medianGBps: round2(gbps(median(row.ms))), samplesGBps: row.ms.map((m) => round2(gbps(m))) };
}

// ---- 4 KiB objects through the engine on a real SoftHSM token: encrypt (fresh DEK wrapped by the HSM each time)
// against the HSM's own wrap rate in the same run; decrypt with the DEK cached.
async function objectsPerSecond() {
  const { tempToken } = await import('./common.mjs');
  const { CryptoEngine } = await import('../dist/index.js');
  const engine = await CryptoEngine.open({ pkcs11: await tempToken(), threads: 2 });
  const keyId = (await engine.keys.create({ alias: 'bench-small' })).id;
  const obj = plain.subarray(0, 4096);
  const context = { bucket: 'bench', object: 'small' };
  const sealed = [];
  for (let i = 0; i < 1000; i++) sealed.push(await engine.encrypt(obj, { keyId, context }));
  for (const s of sealed) if (!(await engine.decrypt(s, { context })).equals(obj)) throw new Error('4 KiB round trip');
  const dek = randomBytes(32);
  let next = 0;
  const options = { maxTime: SMALL_SECONDS, async: true };
  const wrap = await opsRate('hsm wrap', () => engine.keys.wrap(keyId, dek, { aad: ['x'] }), options);
  const enc = await opsRate('4 KiB encrypt', () => engine.encrypt(obj, { keyId, context }), options);
  const dec = await opsRate('4 KiB decrypt', () => engine.decrypt(sealed[next++ % sealed.length], { context }), options);
  await engine.close();
  const rme = (r) => round2(r.rmePercent);
  return {
    hsmWrapPerS: Math.round(wrap.opsPerSec),
    encryptWithKeyWrapPerS: Math.round(enc.opsPerSec),
    encryptVsHsmWrap: round2(enc.opsPerSec / wrap.opsPerSec),
    decryptCachedDekPerS: Math.round(dec.opsPerSec),
    rmePercent: { hsmWrap: rme(wrap), encrypt: rme(enc), decrypt: rme(dec) },
    method: 'benchmark.js, one call at a time (deferred), ops/s ± relative margin of error',
  };
}
const small = await objectsPerSecond();
log('4 KiB objects', small);

for (const p of Object.values(pools)) await p.close();

// ---- ceilings (after our rows, so they do not heat the machine first)
const openssl1 = opensslSpeed(0);
const openssl2 = opensslSpeed(2);
log(`openssl ${openssl1.toFixed(2)} / ${openssl2.toFixed(2)} GB/s`);

// ---- 4 GiB stream peak RSS (fresh process: maxRSS is per process)
const child = spawnSync(process.execPath, [new URL('./aead-rss.mjs', import.meta.url).pathname], { env: { ...process.env, BYTES: String(RSS_BYTES), THREADS: '2' }, encoding: 'utf8' });
const rss = JSON.parse(child.stdout.trim().split('\n').pop());
if (!rss.ok) throw new Error('4 GiB stream output mismatch');
log('stream RSS', rss);

const base = throughput['node:crypto encrypt, 1 thread, 1 MiB update() calls'].medianGBps;
const baseDec = throughput['node:crypto decrypt, 1 thread, 1 MiB update() calls'].medianGBps;
const ratios = {};
for (const [name, v] of Object.entries(throughput)) {
  if (name.startsWith('node:crypto')) continue;
  const b = name.includes('decrypt') ? baseDec : base;
  ratios[name] = { vsNodeCrypto1Thread: round2(v.medianGBps / b), vsOpenssl1Core: round2(v.medianGBps / openssl1), vsOpensslMulti2: round2(v.medianGBps / openssl2) };
}
const goals = {
  'threads=1 >= 0.9x node:crypto (one-shot encrypt)': ratios['one-shot encrypt, threads=1'].vsNodeCrypto1Thread >= 0.9,
  'threads=1 >= 0.9x node:crypto (stream encrypt)': ratios['stream encrypt, threads=1'].vsNodeCrypto1Thread >= 0.9,
  'threads=2 >= 1.8x node:crypto (one-shot encrypt)': ratios['one-shot encrypt, threads=2'].vsNodeCrypto1Thread >= 1.8,
  'threads=2 >= 1.8x node:crypto (stream encrypt)': ratios['stream encrypt, threads=2'].vsNodeCrypto1Thread >= 1.8,
  '4 KiB encrypt (HSM wrap included) >= 0.8x the HSM wrap rate': small.encryptVsHsmWrap >= 0.8,
  '4 KiB decrypt (cached DEK) >= 100k objects/s': small.decryptCachedDekPerS >= 100_000,
  '4 GiB stream peak RSS < 256 MiB': rss.peakRssMiB < 256,
};
const result = {
  benchmark: 'aead',
  date: new Date().toISOString(),
  commit,
  machine: { ...machine, loadAverageAfter: os.loadavg() },
  settings: { bytes: SIZE, rounds: ROUNDS, segmentBytes: DEFAULT_SEGMENT_BYTES, batchBytes: DEFAULT_BATCH_BYTES, keyProvider: 'instant (AEAD work only) for throughput; a SoftHSM token through the engine for 4 KiB objects' },
  ceilings: { opensslSpeed1CoreGBps: round2(openssl1), opensslSpeedMulti2GBps: round2(openssl2) },
  throughput,
  ratios,
  smallObjects4KiB: small,
  stream4GiB: { threads: rss.threads, gbPerSIncludingSha256OfOutput: round2(rss.gbPerS), peakRssMiB: Math.round(rss.peakRssMiB) },
  goals,
};
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/aead.json', import.meta.url), JSON.stringify(result, null, 2) + '\n');
console.log(JSON.stringify({ throughput: Object.fromEntries(Object.entries(throughput).map(([k, v]) => [k, v.medianGBps])), ceilings: result.ceilings, smallObjects4KiB: { hsmWrap: small.hsmWrapPerS, enc: small.encryptWithKeyWrapPerS, encVsWrap: small.encryptVsHsmWrap, dec: small.decryptCachedDekPerS }, stream4GiB: result.stream4GiB, goals }, null, 2));
