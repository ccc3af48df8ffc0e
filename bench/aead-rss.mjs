// Child process of bench/aead.mjs: streams `BYTES` (default 4 GiB) plaintext through an encrypt stream and
// straight into a decrypt stream (MODE=both, default) or only encrypts (MODE=encrypt), checks the output, and
// reports throughput and peak RSS as JSON. Peak RSS is VmHWM from /proc/self/status: getrusage's maxrss is
// inherited from the (large) parent across fork/exec and would report the parent's peak.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { ObjectCipher } from '../dist/index.js';
import { WorkerPool } from '../dist/pool/pool.js';
import { WORKER_ENTRY } from '../dist/worker-entry.js';
import { discard, instantKeys, repeatedSource } from './aead-common.mjs';

const total = Number(process.env.BYTES ?? 4 * 1024 ** 3);
const threads = Number(process.env.THREADS ?? 2);
const block = Buffer.alloc(1 << 20);
for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24;
const expected = createHash('sha256');
if ((process.env.MODE ?? 'both') === 'both') {
  for (let sent = 0; sent < total; sent += block.length) expected.update(block.subarray(0, Math.min(block.length, total - sent)));
}
const pool = new WorkerPool(threads, { entry: WORKER_ENTRY });
const cipher = new ObjectCipher({ keys: instantKeys(), pool, ...(process.env.BATCH_MIB ? { batchBytes: Number(process.env.BATCH_MIB) * 2 ** 20 } : {}) });
const mode = process.env.MODE ?? 'both';
const got = createHash('sha256');
let bytes = 0;
const start = performance.now();
await pipeline(
  repeatedSource(total, block),
  cipher.createEncryptStream({ keyId: 'bench' }),
  ...(mode === 'both' ? [cipher.createDecryptStream()] : []),
  discard((c) => { bytes += c.length; if (mode === 'both') got.update(c); }),
);
const ms = performance.now() - start;
await pool.close();
const ok = mode === 'both' ? bytes === total && got.digest('hex') === expected.digest('hex') : bytes > total;
const hwmKiB = Number(readFileSync('/proc/self/status', 'utf8').match(/^VmHWM:\s+(\d+)\s+kB/m)[1]);
process.stdout.write(JSON.stringify({ ok, mode, bytes, threads, ms, gbPerS: total / 1e6 / ms, peakRssMiB: hwmKiB / 1024 }) + '\n');
