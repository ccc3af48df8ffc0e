// What the size of the process's own JS heap does to a 2-thread encrypt stream. A storage service holds tens to
// hundreds of MB of live JS objects; this bench's other rows run in a process holding almost none. Each phase
// interleaves, over 256 MiB from a source that yields to the event loop between 1 MiB chunks (as a file or a
// socket does):
//   - ObjectCipher.createEncryptStream, threads 2, native pool (a fresh Buffer per 2 MiB batch);
//   - ObjectCipher.encryptChunks, the same stream as an async iterable whose chunks' memory is reused;
//   - node:crypto createCipheriv in the same pipeline (one thread);
//   - getObject of a 256 MiB object (10+4 in shard folders on tmpfs, an engine on a fresh SoftHSM token: the HSM
//     is off the per-byte path) read as the Readable, and through getObjectChunks (views of the stripe buffers);
// first with no retained heap, then with RETAIN_MB of small objects kept alive (the kind a service holds: records
// in maps and arrays). Reports median GB/s, their ratio, and the mark-compacts V8 ran per row. Writes
// bench/results/stream-heap.json.
//
//   npm run build && node bench/stream-heap.mjs        (ROUNDS=9 RETAIN_MB=60)
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CryptoEngine, FsShardStore, ObjectCipher } from '../dist/index.js';
import { WorkerPool } from '../dist/pool/pool.js';
import { WORKER_ENTRY } from '../dist/worker-entry.js';
import { discard, instantKeys, randomPlaintext } from './aead-common.mjs';
import { median, round2, tempToken, writeResult } from './common.mjs';

const MiB = 1 << 20;
const SIZE = 256 * MiB;
const ROUNDS = Number(process.env.ROUNDS ?? 9);
const RETAIN_MB = Number(process.env.RETAIN_MB ?? 60);
const log = (...a) => console.error(...a);

const plain = randomPlaintext(SIZE);
const key = randomBytes(32);
const pool = new WorkerPool(2, { entry: WORKER_ENTRY });
const cipher = new ObjectCipher({ keys: instantKeys(), pool });

/** 1 MiB views of `buf`, each pushed from setImmediate: the source yields to the event loop as I/O does. */
function yieldingChunks(buf) {
  let at = 0;
  return new Readable({
    read() {
      setImmediate(() => {
        if (at >= buf.length) return void this.push(null);
        this.push(buf.subarray(at, Math.min(at + MiB, buf.length)));
        at += MiB;
      });
    },
  });
}

// ---- correctness first: the stream's output opens to the input
{
  const parts = [];
  await pipeline(yieldingChunks(plain.subarray(0, 8 * MiB)), cipher.createEncryptStream({ keyId: 'bench' }), discard((c) => parts.push(Buffer.from(c))));
  if (!(await cipher.decrypt(Buffer.concat(parts))).equals(plain.subarray(0, 8 * MiB))) throw new Error('stream round trip');
  const chunks = [];
  for await (const c of cipher.encryptChunks(yieldingChunks(plain.subarray(0, 8 * MiB)), { keyId: 'bench' })) chunks.push(Buffer.from(c));
  if (!(await cipher.decrypt(Buffer.concat(chunks))).equals(plain.subarray(0, 8 * MiB))) throw new Error('encryptChunks round trip');
  log('correctness check passed');
}

// ---- a 256 MiB object as 10+4 shards on tmpfs, read back both ways
const shardRoot = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'hce-stream-heap-'));
const dirs = Array.from({ length: 14 }, (_, i) => join(shardRoot, `n${i}`));
dirs.forEach((d) => mkdirSync(d));
process.on('exit', () => rmSync(shardRoot, { recursive: true, force: true }));
const store = new FsShardStore(dirs);
const objects = await CryptoEngine.open({ pkcs11: await tempToken(), threads: 2 });
const objectKey = await objects.keys.create({ alias: 'bench-stream-heap' });
await objects.putObject('bench', plain, { keyId: objectKey.id, dataShards: 10, parityShards: 4, store });
const digest = createHash('sha256').update(plain).digest('hex');
for (const read of [() => objects.getObject('bench', { store }), () => objects.getObjectChunks('bench', { store })]) {
  const h = createHash('sha256');
  for await (const c of read()) h.update(c);
  if (h.digest('hex') !== digest) throw new Error('getObject returned other bytes');
}
const countBytes = async (chunks) => {
  let n = 0;
  for await (const c of chunks) n += c.length;
  if (n !== SIZE) throw new Error('getObject returned another length');
};

let majors = 0;
new PerformanceObserver((list) => { for (const e of list.getEntries()) if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++; }).observe({ entryTypes: ['gc'] });
const settle = () => new Promise((r) => setImmediate(r)); // gc entries arrive asynchronously

const rows = {
  'stream encrypt, threads 2, native pool': () => pipeline(yieldingChunks(plain), cipher.createEncryptStream({ keyId: 'bench' }), discard()),
  'encryptChunks (reused outputs), threads 2, native pool': async () => {
    for await (const chunk of cipher.encryptChunks(yieldingChunks(plain), { keyId: 'bench' })) if (chunk.length === 0) throw new Error('empty chunk');
  },
  'node:crypto createCipheriv in a pipeline, 1 thread': () => pipeline(yieldingChunks(plain), createCipheriv('aes-256-gcm', key, randomBytes(12)), discard()),
  'getObject 256 MiB, 10+4 on tmpfs (Readable)': () => countBytes(objects.getObject('bench', { store })),
  'getObjectChunks 256 MiB, 10+4 on tmpfs': () => countBytes(objects.getObjectChunks('bench', { store })),
};

let retained = [];
const phases = {};
for (const retainMb of [0, RETAIN_MB]) {
  // ~100 bytes per record (an object, a short string, a two-element array).
  retained = Array.from({ length: Math.round((retainMb * 1e6) / 100) }, (_, i) => ({ id: i, name: `object-${i}`, range: [i, i + 1] }));
  const heapMb = round2(process.memoryUsage().heapUsed / 1e6);
  const result = Object.fromEntries(Object.keys(rows).map((name) => [name, { gbps: [], markCompacts: 0 }]));
  for (let round = -1; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? Object.keys(rows) : Object.keys(rows).reverse();
    for (const name of order) {
      await settle();
      const before = majors;
      const t0 = performance.now();
      await rows[name]();
      const ms = performance.now() - t0;
      await settle();
      if (round < 0) continue;
      result[name].gbps.push(SIZE / 1e6 / ms);
      result[name].markCompacts += majors - before;
    }
  }
  const [streamRow, chunksRow, nodeRow, getRow, getChunksRow] = Object.keys(rows);
  const paired = (a, b) => round2(median(result[a].gbps.map((v, i) => v / result[b].gbps[i])));
  phases[`retained ${retainMb} MB (heap used ${heapMb} MB)`] = {
    ...Object.fromEntries(Object.entries(result).map(([name, r]) => [name, { medianGBps: round2(median(r.gbps)), markCompactsPerRow: round2(r.markCompacts / ROUNDS), samplesGBps: r.gbps.map(round2) }])),
    'stream vs node:crypto (paired)': paired(streamRow, nodeRow),
    'encryptChunks vs node:crypto (paired)': paired(chunksRow, nodeRow),
    'encryptChunks vs stream (paired)': paired(chunksRow, streamRow),
    'getObjectChunks vs getObject (paired)': paired(getChunksRow, getRow),
  };
  log(`retained ${retainMb} MB done`);
}
retained = [];
await objects.close();
await pool.close();
console.log(JSON.stringify(phases, (k, v) => (k === 'samplesGBps' ? undefined : v), 2));
writeResult('stream-heap', { benchmark: 'stream-heap', settings: { bytes: SIZE, rounds: ROUNDS, retainMb: RETAIN_MB, source: '1 MiB chunks pushed from setImmediate' }, phases });
