// Objects on S3 against the raw SDK: engine putObject/getObject of 1 MiB and 64 MiB objects (4+2 shards, 16 objects
// in flight) over S3ShardStore on the nodes of test/peers/ceph.sh, against raw @aws-sdk/client-s3 PUTs of the same
// shard bytes (k+m blobs of shardBytes per object) and GETs of what a read needs (k of them), same concurrency, same
// nodes, interleaved round by round in one run. Then the peak RSS of a streamed 1 GiB put and get (a child process
// each). Ceph is started here in a temp dir and stopped at the end, or reused: CEPH_NODES_JSON=DIR/nodes.json.
//   node bench/s3.mjs     (root; S3_BENCH_ROUNDS=3, S3_BENCH_RSS_MIB=1024)   → bench/results/s3.json
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ROOT, fmt, median, tempToken, writeResult } from './common.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const MiB = 1024 * 1024;
const IN_FLIGHT = 16;
const K = 4;
const M = 2;
const ROUNDS = Number(process.env.S3_BENCH_ROUNDS ?? 3);
const RSS_MIB = Number(process.env.S3_BENCH_RSS_MIB ?? 1024);
const SHAPES = [
  { name: '1MiB', bytes: MiB, objects: 64 },
  { name: '64MiB', bytes: 64 * MiB, objects: 16 },
];

/** S3_BENCH_READ_AHEAD: the store's readAheadBytes (default: the store's own, 64 KiB). */
const READ_AHEAD = process.env.S3_BENCH_READ_AHEAD === undefined ? undefined : Number(process.env.S3_BENCH_READ_AHEAD);
const storeOptions = (nodes) => ({
  nodes: nodes.map(({ endpoint, bucket, region, credentials }) => ({ endpoint, bucket, region, credentials })), requestTimeoutMs: 60_000,
  ...(READ_AHEAD === undefined ? {} : { readAheadBytes: READ_AHEAD }),
});

// The RSS child: one streamed put and get of RSS_MIB through the engine; prints its peak RSS, sampled (Linux keeps
// ru_maxrss across fork and exec, so process.resourceUsage().maxRSS would report the parent's peak when larger).
if (process.argv[2] === '--rss-child') {
  let peakRss = 0;
  const sample = () => (peakRss = Math.max(peakRss, process.memoryUsage().rss));
  const sampler = setInterval(sample, 5);
  const { nodes } = JSON.parse(readFileSync(process.argv[3], 'utf8'));
  const token = await tempToken();
  const { CryptoEngine, S3ShardStore } = await import('../dist/index.js');
  const store = new S3ShardStore(storeOptions(nodes));
  const engine = await CryptoEngine.open({ pkcs11: token });
  await engine.keys.create({ alias: 'rss' });
  const total = RSS_MIB * MiB;
  const block = randomBytes(MiB);
  const sent = createHash('sha256');
  async function* source() {
    for (let i = 0; i < RSS_MIB; i++) {
      block.writeUInt32LE(i, 0);
      sent.update(block);
      yield block;
    }
  }
  let t0 = performance.now();
  await engine.putObject('rss/1GiB', source(), { keyId: 'rss', dataShards: K, parityShards: M, store, size: total });
  const putMs = performance.now() - t0;
  const putRss = sample();
  t0 = performance.now();
  const got = createHash('sha256');
  let bytes = 0;
  for await (const part of engine.getObject('rss/1GiB', { store })) {
    got.update(part);
    bytes += part.length;
  }
  const getMs = performance.now() - t0;
  if (bytes !== total || got.digest('hex') !== sent.digest('hex')) throw new Error('the 1 GiB object read back differs');
  await engine.deleteObject('rss/1GiB', { store });
  clearInterval(sampler);
  console.log(JSON.stringify({ bytes: total, putMiBPerS: RSS_MIB / (putMs / 1000), getMiBPerS: RSS_MIB / (getMs / 1000), peakRssAfterPutBytes: putRss, peakRssBytes: sample() }));
  await engine.close();
  await store.close();
  process.exit(0);
}

const harness = join(ROOT, 'test/peers/ceph.sh');
let dir;
let nodesFile = process.env.CEPH_NODES_JSON;
let startupMs;
if (!nodesFile) {
  dir = mkdtempSync(join(tmpdir(), 'ceph-bench-'));
  const t0 = performance.now();
  execFileSync('bash', [harness, 'start', dir, String(K + M)], { stdio: ['ignore', 'inherit', 'inherit'] });
  startupMs = Math.round(performance.now() - t0);
  nodesFile = join(dir, 'nodes.json');
}
const stop = () => dir && execFileSync('bash', [harness, 'stop', dir], { stdio: 'inherit' });
process.on('exit', stop);

try {
  const { nodes } = JSON.parse(readFileSync(nodesFile, 'utf8'));
  if (nodes.length !== K + M) throw new Error(`the bench wants ${K + M} nodes, got ${nodes.length}`);
  const clients = nodes.map((n) => new S3Client({
    endpoint: n.endpoint, region: n.region, credentials: n.credentials, forcePathStyle: true, maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }) }),
  }));
  const token = await tempToken();
  const { CryptoEngine, S3ShardStore } = await import('../dist/index.js');
  const store = new S3ShardStore(storeOptions(nodes));
  const engine = await CryptoEngine.open({ pkcs11: token });
  await engine.keys.create({ alias: 'bench' });

  /** Runs `count` jobs, IN_FLIGHT at once; returns the wall time. */
  async function window(count, job) {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, count) }, async () => {
      while (next < count) await job(next++);
    }));
    return performance.now() - t0;
  }

  const results = [];
  for (const shape of SHAPES) {
    const body = randomBytes(shape.bytes);
    const name = (i) => `bench/${shape.name}/${i}`;
    // The shard size the engine writes for this object size: raw requests move the same bytes.
    const info = await engine.putObject(name(0), body, { keyId: 'bench', dataShards: K, parityShards: M, store });
    const back = Buffer.concat(await engine.getObject(name(0), { store }).toArray());
    if (!back.equals(body)) throw new Error('engine read differs from put');
    const shard = randomBytes(info.shardBytes);
    const rawKey = (i, j) => `raw/${shape.name}/${i}/${j}`;
    const ways = {
      'raw PUT': (i) => Promise.all(Array.from({ length: K + M }, (_, j) =>
        clients[j].send(new PutObjectCommand({ Bucket: nodes[j].bucket, Key: rawKey(i, j), Body: shard })))),
      'engine put': (i) => engine.putObject(name(i), body, { keyId: 'bench', dataShards: K, parityShards: M, store }),
      'raw GET': (i) => Promise.all(Array.from({ length: K }, async (_, j) => {
        const res = await clients[j].send(new GetObjectCommand({ Bucket: nodes[j].bucket, Key: rawKey(i, j) }));
        if ((await res.Body.transformToByteArray()).length !== info.shardBytes) throw new Error('short raw GET');
      })),
      'engine get': async (i) => {
        let n = 0;
        for await (const part of engine.getObject(name(i), { store })) n += part.length;
        if (n !== shape.bytes) throw new Error('short engine get');
      },
      // With the geometry (what a bucket's get passes): m+1 listings, shards opened by name as they answer.
      'engine get+shards': async (i) => {
        let n = 0;
        for await (const part of engine.getObject(name(i), { store, shards: { dataShards: K, parityShards: M } })) n += part.length;
        if (n !== shape.bytes) throw new Error('short engine get');
      },
    };
    const times = Object.fromEntries(Object.keys(ways).map((w) => [w, []]));
    // Interleaved: every round runs each way once, so drift on the shared machine hits all of them alike.
    for (let round = 0; round < ROUNDS; round++) {
      for (const [way, job] of Object.entries(ways)) times[way].push(await window(shape.objects, job));
    }
    const rate = (way) => median(times[way].map((ms) => shape.objects / (ms / 1000)));
    for (const way of Object.keys(ways)) {
      const objectsPerS = rate(way);
      const against = way.startsWith('engine') ? rate(way === 'engine put' ? 'raw PUT' : 'raw GET') : undefined;
      const row = {
        shape: shape.name, way, objects: shape.objects, inFlight: IN_FLIGHT, dataShards: K, parityShards: M, shardBytes: info.shardBytes,
        objectsPerS, plaintextMiBPerS: (objectsPerS * shape.bytes) / MiB, ...(against ? { ratioToRaw: objectsPerS / against } : {}),
      };
      results.push(row);
      console.log(`${shape.name.padEnd(6)} ${way.padEnd(17)} ${fmt(objectsPerS).padStart(8)} objects/s ${fmt(row.plaintextMiBPerS).padStart(8)} MiB/s of objects${against ? `  ${row.ratioToRaw.toFixed(2)}× raw` : ''}`);
    }
  }
  await engine.close();
  await store.close();
  for (const c of clients) c.destroy();

  const child = spawnSync(process.execPath, [new URL(import.meta.url).pathname, '--rss-child', nodesFile], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: process.env });
  if (child.status !== 0) throw new Error(`the RSS child failed (${child.status})`);
  const rss = JSON.parse(child.stdout.trim().split('\n').at(-1));
  console.log(`streamed ${RSS_MIB} MiB: put ${fmt(rss.putMiBPerS)} MiB/s, get ${fmt(rss.getMiBPerS)} MiB/s, peak RSS ${fmt(rss.peakRssBytes / MiB)} MiB`);

  writeResult('s3', {
    nodes: nodes.length, harnessStartupMs: startupMs, rounds: ROUNDS, readAheadBytes: READ_AHEAD ?? 65536, loadAverage: loadavg(), results, streamed: rss,
    note: 'raw PUT = k+m PUTs of shardBytes per object; raw GET = k GETs of shardBytes per object (what a read needs). Engine put: one ListObjectsV2 per node, k+m PUTs (multipart over 8 MiB), k+m DELETEs of the old generation on a re-put (every round after the first). Engine get: one ListObjectsV2 per node (engine get+shards: on m+1 nodes, the k shard GETs started as each answers), k shards opened with a ranged GET of their first MiB (all of a 1 MiB object\'s shards), and for larger shards a trailer GET and streamed GETs of up to 8 MiB',
    peer: 'Ceph 16.2.15 radosgw (beast), one single-OSD bluestore cluster per node, loopback, same 2-core machine',
  });
} finally {
  stop();
  dir = undefined;
}
