// Child process of bench/aead.mjs: streams `BYTES` (default 4 GiB) plaintext through an encrypt stream and
// straight into a decrypt stream, checks the output hash, and reports throughput and peak RSS as JSON.
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { ObjectCipher } from '../dist/index.js';
import { WorkerPool } from '../dist/pool/pool.js';
import { discard, instantKeys, repeatedSource } from './aead-common.mjs';

const total = Number(process.env.BYTES ?? 4 * 1024 ** 3);
const threads = Number(process.env.THREADS ?? 2);
const block = Buffer.alloc(1 << 20);
for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24;
const expected = createHash('sha256');
for (let sent = 0; sent < total; sent += block.length) expected.update(block.subarray(0, Math.min(block.length, total - sent)));
const pool = new WorkerPool(threads);
const cipher = new ObjectCipher({ keys: instantKeys(), pool });
const got = createHash('sha256');
let bytes = 0;
const start = performance.now();
await pipeline(
  repeatedSource(total, block),
  cipher.createEncryptStream({ keyId: 'bench' }),
  cipher.createDecryptStream(),
  discard((c) => { bytes += c.length; got.update(c); }),
);
const ms = performance.now() - start;
await pool.close();
const ok = bytes === total && got.digest('hex') === expected.digest('hex');
process.stdout.write(JSON.stringify({ ok, bytes, threads, ms, gbPerS: total / 1e6 / ms, peakRssMiB: process.resourceUsage().maxRSS / 1024 }) + '\n');
