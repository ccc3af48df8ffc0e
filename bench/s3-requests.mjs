// What one S3 request costs on the nodes of test/peers/ceph.sh, raw @aws-sdk/client-s3, 16 in flight over 6 nodes:
// a 256 KiB PUT, a 256 KiB GET, a ListObjectsV2 of one object name's prefix (the listing a put or get makes per
// node; it finds that object's one key there) and a DELETE of a 256 KiB blob (a re-put's removal of the old
// generation), interleaved round by round. The costs relative to PUT and GET give the request arithmetic of
// README "S3-compatible stores". Ceph is started in a temp dir and stopped, or reused: CEPH_NODES_JSON=DIR/nodes.json.
//   node bench/s3-requests.mjs     (root; S3_REQ_ROUNDS=5, S3_REQ_COUNT=384)   → bench/results/s3-requests.json
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { ROOT, fmt, median, writeResult } from './common.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const IN_FLIGHT = 16;
const NODES = 6;
const BLOB_BYTES = 256 * 1024;
const ROUNDS = Number(process.env.S3_REQ_ROUNDS ?? 5);
const COUNT = Number(process.env.S3_REQ_COUNT ?? 384);

const harness = join(ROOT, 'test/peers/ceph.sh');
let dir;
let nodesFile = process.env.CEPH_NODES_JSON;
if (!nodesFile) {
  dir = mkdtempSync(join(tmpdir(), 'ceph-req-'));
  execFileSync('bash', [harness, 'start', dir, String(NODES)], { stdio: ['ignore', 'inherit', 'inherit'] });
  nodesFile = join(dir, 'nodes.json');
}
const stop = () => dir && execFileSync('bash', [harness, 'stop', dir], { stdio: 'inherit' });
process.on('exit', stop);

try {
  const { nodes } = JSON.parse(readFileSync(nodesFile, 'utf8'));
  if (nodes.length < NODES) throw new Error(`the bench wants ${NODES} nodes, got ${nodes.length}`);
  const clients = nodes.slice(0, NODES).map((n) => new S3Client({
    endpoint: n.endpoint, region: n.region, credentials: n.credentials, forcePathStyle: true, maxAttempts: 1,
    requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: new NodeHttpHandler({ httpAgent: new Agent({ keepAlive: true, maxSockets: 64 }) }),
  }));
  const body = randomBytes(BLOB_BYTES);
  // Request i goes to node i % 6; its key looks like a shard's, one per object name and node.
  const at = (i) => ({ client: clients[i % NODES], Bucket: nodes[i % NODES].bucket });
  const key = (i) => `req/o${String(i).padStart(6, '0')}/-0123456789ab01234567/${i % NODES}`;
  const prefix = (i) => `req/o${String(i).padStart(6, '0')}/`;
  const ways = {
    PUT: (i) => at(i).client.send(new PutObjectCommand({ Bucket: at(i).Bucket, Key: key(i), Body: body })),
    GET: async (i) => {
      const res = await at(i).client.send(new GetObjectCommand({ Bucket: at(i).Bucket, Key: key(i) }));
      if ((await res.Body.transformToByteArray()).length !== BLOB_BYTES) throw new Error('short GET');
    },
    LIST: async (i) => {
      const res = await at(i).client.send(new ListObjectsV2Command({ Bucket: at(i).Bucket, Prefix: prefix(i), MaxKeys: 1000 }));
      if ((res.Contents ?? []).length !== 1) throw new Error('the listing should find the one key');
    },
    DELETE: (i) => at(i).client.send(new DeleteObjectCommand({ Bucket: at(i).Bucket, Key: key(i) })),
  };
  async function window(job) {
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      while (next < COUNT) await job(next++);
    }));
    return performance.now() - t0;
  }
  const times = Object.fromEntries(Object.keys(ways).map((w) => [w, []]));
  await window(ways.PUT); // warm connections and pools
  for (let round = 0; round < ROUNDS; round++) {
    // In this order each round: the GETs, LISTs and DELETEs find what the PUTs wrote.
    for (const [way, job] of Object.entries(ways)) times[way].push(await window(job));
  }
  const rate = (way) => median(times[way].map((ms) => COUNT / (ms / 1000)));
  const rows = Object.keys(ways).map((way) => ({
    request: way, requestsPerS: rate(way), costVsPut: rate('PUT') / rate(way), costVsGet: rate('GET') / rate(way),
  }));
  for (const r of rows) {
    console.log(`${r.request.padEnd(7)} ${fmt(r.requestsPerS).padStart(8)} requests/s   cost ${r.costVsPut.toFixed(2)}× a PUT, ${r.costVsGet.toFixed(2)}× a GET`);
  }
  // The 1 MiB 4+2 object of bench/s3.mjs: shards of ~256 KiB. Requests per object, and the ceiling they set.
  const c = Object.fromEntries(rows.map((r) => [r.request, 1 / r.requestsPerS]));
  const arithmetic = {
    'put, new name': { engine: '6 LIST + 6 PUT', raw: '6 PUT', ceiling: (6 * c.PUT) / (6 * c.LIST + 6 * c.PUT) },
    're-put': { engine: '6 LIST + 6 PUT + 6 DELETE', raw: '6 PUT', ceiling: (6 * c.PUT) / (6 * c.LIST + 6 * c.PUT + 6 * c.DELETE) },
    get: { engine: '6 LIST + 4 GET', raw: '4 GET', ceiling: (4 * c.GET) / (6 * c.LIST + 4 * c.GET) },
    'get with shards': { engine: '3 LIST + 4 GET', raw: '4 GET', ceiling: (4 * c.GET) / (3 * c.LIST + 4 * c.GET) },
  };
  for (const [what, a] of Object.entries(arithmetic)) {
    console.log(`${what.padEnd(16)} engine ${a.engine.padEnd(26)} raw ${a.raw.padEnd(6)} request-bound ceiling ${a.ceiling.toFixed(2)}× raw`);
  }
  for (const cl of clients) cl.destroy();
  writeResult('s3-requests', {
    nodes: NODES, inFlight: IN_FLIGHT, blobBytes: BLOB_BYTES, rounds: ROUNDS, requestsPerRound: COUNT, loadAverage: loadavg(), results: rows, arithmetic,
    note: 'ceiling = the raw requests\' cost over the engine\'s, from these per-request costs at 16 in flight (client CPU for sealing, coding and tagging not counted)',
    peer: 'Ceph 16.2.15 radosgw (beast), one single-OSD bluestore cluster per node, loopback, same 2-core machine',
  });
} finally {
  stop();
  dir = undefined;
}
