// S3 peer ceiling: raw @aws-sdk/client-s3 PUT/GET of 1 MiB and 64 MiB blobs, 16 in flight, spread over the nodes of
// test/peers/ceph.sh (started here in a temp dir and stopped at the end, or reused: CEPH_NODES_JSON=DIR/nodes.json),
// then the same through S3ShardStore's writer/reader. Medians of rounds; JSON to bench/results/s3.json.
//   node bench/s3.mjs            (root; S3_BENCH_NODES=6, S3_BENCH_ROUNDS=3)
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent } from 'node:http';
import { ROOT, fmt, median, writeResult } from './common.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const MiB = 1024 * 1024;
const IN_FLIGHT = 16;
const NODES = Number(process.env.S3_BENCH_NODES ?? 6);
const ROUNDS = Number(process.env.S3_BENCH_ROUNDS ?? 3);
const SHAPES = [
  { name: '1MiB', bytes: MiB, blobs: 192 },
  { name: '64MiB', bytes: 64 * MiB, blobs: 32 },
];

const harness = join(ROOT, 'test/peers/ceph.sh');
let dir;
let nodesFile = process.env.CEPH_NODES_JSON;
let startupMs;
if (!nodesFile) {
  dir = mkdtempSync(join(tmpdir(), 'ceph-bench-'));
  const t0 = performance.now();
  execFileSync('bash', [harness, 'start', dir, String(NODES)], { stdio: ['ignore', 'inherit', 'inherit'] });
  startupMs = Math.round(performance.now() - t0);
  nodesFile = join(dir, 'nodes.json');
}
const stop = () => dir && execFileSync('bash', [harness, 'stop', dir], { stdio: 'inherit' });
process.on('exit', stop);

try {
  const { nodes } = JSON.parse(readFileSync(nodesFile, 'utf8'));
  const clients = nodes.map((n) => new S3Client({
    endpoint: n.endpoint, region: n.region, credentials: n.credentials, forcePathStyle: true, maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: IN_FLIGHT }) }),
  }));
  const { S3ShardStore } = await import('../dist/object/s3-shard-store.js');
  const store = new S3ShardStore({ nodes: nodes.map(({ endpoint, bucket, region, credentials }) => ({ endpoint, bucket, region, credentials })), requestTimeoutMs: 60_000 });

  /** Runs `count` jobs with IN_FLIGHT at once; returns wall time and the per-job latencies. */
  async function window(count, job) {
    const latencies = [];
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, count) }, async () => {
      while (next < count) {
        const i = next++;
        const s = performance.now();
        await job(i);
        latencies.push(performance.now() - s);
      }
    }));
    return { ms: performance.now() - t0, latencies };
  }

  const results = [];
  for (const shape of SHAPES) {
    const body = randomBytes(shape.bytes);
    const key = (i) => `bench/${shape.name}/${i}`;
    const node = (i) => i % nodes.length;
    const ways = {
      'raw PUT': (i) => clients[node(i)].send(new PutObjectCommand({ Bucket: nodes[node(i)].bucket, Key: key(i), Body: body })),
      'raw GET': async (i) => {
        const res = await clients[node(i)].send(new GetObjectCommand({ Bucket: nodes[node(i)].bucket, Key: key(i) }));
        const bytes = await res.Body.transformToByteArray();
        if (bytes.length !== shape.bytes) throw new Error(`GET returned ${bytes.length} bytes`);
      },
      'store write': async (i) => {
        const w = await store.openWriter(node(i), `${key(i)}.store`);
        for (let at = 0; at < body.length; at += MiB) await w.write(body.subarray(at, at + MiB));
        await w.commit();
      },
      'store read': async (i) => {
        const r = await store.openReader(node(i), `${key(i)}.store`);
        const target = Buffer.allocUnsafe(r.size);
        if (await r.read(0, target) !== shape.bytes) throw new Error('short read');
      },
    };
    // Correctness before timing: one blob each way, read back equal.
    await ways['raw PUT'](0);
    const check = await clients[0].send(new GetObjectCommand({ Bucket: nodes[0].bucket, Key: key(0) }));
    if (!Buffer.from(await check.Body.transformToByteArray()).equals(body)) throw new Error('raw GET differs from PUT');
    await ways['store write'](0);
    const r = await store.openReader(0, `${key(0)}.store`);
    const back = Buffer.alloc(r.size);
    await r.read(0, back);
    if (!back.equals(body)) throw new Error('store read differs from write');

    for (const [way, job] of Object.entries(ways)) {
      const rounds = [];
      for (let round = 0; round < ROUNDS; round++) rounds.push(await window(shape.blobs, job));
      const mibPerS = median(rounds.map((x) => (shape.blobs * shape.bytes) / MiB / (x.ms / 1000)));
      const latencyMs = median(rounds.flatMap((x) => x.latencies));
      results.push({ shape: shape.name, way, blobs: shape.blobs, inFlight: IN_FLIGHT, mibPerS, opsPerS: mibPerS * MiB / shape.bytes, medianLatencyMs: latencyMs });
      console.log(`${shape.name.padEnd(6)} ${way.padEnd(12)} ${fmt(mibPerS).padStart(8)} MiB/s  ${fmt(mibPerS * MiB / shape.bytes).padStart(8)} ops/s  median latency ${fmt(latencyMs)} ms`);
    }
  }
  await store.close();
  for (const c of clients) c.destroy();
  writeResult('s3', { nodes: nodes.length, harnessStartupMs: startupMs, rounds: ROUNDS, results,
    peer: 'Ceph 16.2.15 radosgw (beast), one single-OSD bluestore cluster per node, loopback' });
} finally {
  stop();
  dir = undefined;
}
