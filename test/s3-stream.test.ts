// Streamed PUTs against real Ceph (test/peers/ceph.sh, three single-OSD clusters with radosgw on loopback): a writer
// told the blob's length (`openWriter(node, key, { bytes })`) sends one PutObject whose body is fed by its writes.
// Round trips with and without the length around the part boundary (and the requests each sends), wrong lengths,
// abort mid-stream and after the last byte, retries (only while no write resolved), a refusing node's answer, a
// deadline that counts progress rather than duration, a node hung mid-put (SIGSTOP), the put's options.size check,
// and the RSS of a long streamed blob fed from one reused buffer.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CryptoEngine, S3ShardStore, StoreError } from '../dist/index.js';
import { objectPrefix } from '../dist/object/layout.js';
import { cephSkipReason, nodeOptions, storeOpener, countingProxy, noRequests, rgwPid, startCeph, type CephNode, type RequestCounts } from './helpers/ceph.js';
import { engineOptions } from './helpers/token.js';
import { collect, getBlob, putBlob } from './helpers/shards.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const MiB = 1024 * 1024;
const TIMEOUT_MS = 2000;
/** The smallest part size S3 allows: the part boundary the sizes below sit around. */
const PART = 5 * MiB;

const skip = cephSkipReason();
if (skip !== undefined) {
  console.error(`# ${skip}`);
  t.plan(0, skip);
} else {
  let nodes: CephNode[] = [];
  let store: S3ShardStore;
  const open = storeOpener(t, { requestTimeoutMs: TIMEOUT_MS, partBytes: PART });
  // Blobs written in pieces (announced when `bytes` is given) and read whole: test/helpers/shards.ts.
  const put = (s: S3ShardStore, node: number, key: string, data: Uint8Array, bytes?: number, chunk?: number) => putBlob(s, node, key, data, { bytes, chunk });
  const get = getBlob;
  const shared = (data: Uint8Array): Uint8Array => {
    const view = new Uint8Array(new SharedArrayBuffer(data.length + 7), 7, data.length);
    view.set(data);
    return view;
  };

  t.before(async () => {
    const started = await startCeph(t, 3);
    nodes = started.nodes;
    t.comment(`ceph: ${nodes.length} nodes up in ${started.startupMs} ms`);
    store = open(nodes.map(nodeOptions));
  });

  t.test('round trips with and without the length, around the part boundary; with it, one PUT and no multipart', async (t) => {
    const proxy = await countingProxy(nodes[0]!.endpoint);
    t.teardown(() => proxy.close());
    const via = open([{ ...nodeOptions(nodes[0]!), endpoint: proxy.endpoint }]);
    for (const size of [0, 1, PART - 1, PART, PART + 1, 2 * PART + 3]) {
      const data = randomBytes(size);
      for (const hinted of [true, false]) {
        const key = `rt/${hinted ? 'hinted' : 'plain'}/${size}`;
        const before = proxy.requests();
        await put(via, 0, key, hinted ? shared(data) : data, hinted ? size : undefined);
        const after = proxy.requests();
        const sent = { put: after.put - before.put, post: after.post - before.post };
        const back = await get(store, 0, key);
        t.ok(back !== null && back.equals(data), `${size} bytes ${hinted ? 'with' : 'without'} the length come back equal`);
        const parts = Math.ceil(size / PART);
        // Without it, a blob of partBytes or more is a multipart upload (a part is sent once full).
        const want = hinted || size < PART ? { put: 1, post: 0 } : { put: parts, post: 2 };
        t.same(sent, want, `${size} bytes ${hinted ? 'with' : 'without'} the length: ${want.put} PUT, ${want.post} POST`);
      }
    }
    // Writes of every shape: one byte at a time around the end, a single write of everything, empty writes.
    const data = randomBytes(300_000);
    const w = await store.openWriter(0, 'rt/shapes', { bytes: data.length });
    await w.write(data.subarray(0, 0));
    await w.write(data.subarray(0, 299_997));
    for (let at = 299_997; at < data.length; at++) await w.write(data.subarray(at, at + 1));
    await w.flush();
    await w.commit();
    t.ok((await get(store, 0, 'rt/shapes'))!.equals(data), 'byte-wise writes at the end');
  });

  t.test('a writer given the wrong length fails with a RangeError and publishes nothing', async (t) => {
    const data = randomBytes(PART + 100);
    const long = await store.openWriter(1, 'wrong/long', { bytes: PART });
    await long.write(data.subarray(0, MiB));
    const err = await long.write(data.subarray(MiB)).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof RangeError, `one byte too many: RangeError (${(err as Error)?.message})`);
    await t.rejects(long.commit(), err as Error, 'and the writer stays failed');
    await long.abort();
    const short = await store.openWriter(1, 'wrong/short', { bytes: PART });
    await short.write(data.subarray(0, PART - 1));
    const err2 = await short.commit().then(() => undefined, (e: unknown) => e);
    t.ok(err2 instanceof RangeError, `one byte short at commit: RangeError (${(err2 as Error)?.message})`);
    await short.abort();
    await sleep(200); // the node sees the connection go
    t.equal(await store.openReader(1, 'wrong/long'), null, 'too long: nothing published');
    t.equal(await store.openReader(1, 'wrong/short'), null, 'too short: nothing published');
    t.same(await store.list(1, { prefix: 'wrong/', limit: 10 }), [], 'nothing listed');
  });

  t.test('abort mid-stream, and after the last byte before commit: nothing is published', async (t) => {
    const data = randomBytes(3 * PART);
    const mid = await store.openWriter(1, 'abort/mid', { bytes: data.length });
    await mid.write(data.subarray(0, PART + 7));
    await mid.abort();
    await mid.abort();
    await t.rejects(mid.write(Buffer.alloc(1)), Error, 'no write after abort');
    // Every byte written and flushed: the server would publish a whole body, but the last byte waits for commit.
    const all = await store.openWriter(1, 'abort/all', { bytes: data.length });
    await all.write(data);
    await all.flush();
    t.equal(await store.openReader(1, 'abort/all'), null, 'unpublished before commit, every byte written');
    await all.abort();
    await sleep(200);
    t.equal(await store.openReader(1, 'abort/mid'), null, 'aborted mid-stream: nothing');
    t.equal(await store.openReader(1, 'abort/all'), null, 'aborted after the last byte: nothing');
    const again = await store.openWriter(1, 'abort/all', { bytes: data.length });
    await again.write(data);
    await again.commit();
    await again.abort();
    t.ok((await get(store, 1, 'abort/all'))!.equals(data), 'the same key committed afterwards reads, abort after commit is a no-op');
  });

  /**
   * A proxy in front of node 0 whose first connection is cut: after its first bytes arrive (`'data'`), or after 300 ms
   * of not being read (`'stall'`: the client's socket buffers fill, a large write stays unflushed); later ones pass.
   */
  async function cuttingProxy(mode: 'data' | 'stall'): Promise<{ store: S3ShardStore; connections: () => number }> {
    const target = new URL(nodes[0]!.endpoint);
    let connections = 0;
    const sockets = new Set<Socket>();
    const proxy = createServer((client) => {
      sockets.add(client);
      if (++connections === 1) {
        if (mode === 'data') client.once('data', () => client.resetAndDestroy());
        else {
          client.pause();
          setTimeout(() => client.resetAndDestroy(), 300);
        }
        return;
      }
      const upstream = connect(Number(target.port), target.hostname);
      sockets.add(upstream);
      client.pipe(upstream).pipe(client);
      const end = (): void => { client.destroy(); upstream.destroy(); };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    t.teardown(() => { for (const s of sockets) s.destroy(); proxy.close(); });
    const via = open([{ ...nodeOptions(nodes[0]!), endpoint: `http://127.0.0.1:${(proxy.address() as { port: number }).port}` }]);
    return { store: via, connections: () => connections };
  }

  t.test('retries: a request cut before any write resolved is sent again; one cut after fails the writer', async (t) => {
    // One 48 MiB write: the socket takes a few MiB before the stalled connection is cut, so the write never resolved.
    const stalled = await cuttingProxy('stall');
    const data = randomBytes(48 * MiB);
    await put(stalled.store, 0, 'retry/k', data, data.length, data.length);
    t.equal(stalled.connections(), 2, 'the first connection was cut, the second carried the PUT');
    t.ok((await get(store, 0, 'retry/k'))!.equals(data), 'and the blob reads back');
    // Writes of 1 MiB: the first resolves as soon as the socket takes it, before the cut; nothing can be sent again.
    const cut = await cuttingProxy('data');
    const err = await put(cut.store, 0, 'retry/cut', data.subarray(0, 3 * MiB), 3 * MiB, MiB).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof StoreError, `cut after a write resolved: StoreError (${(err as Error)?.message})`);
    t.match(err, { node: 0, reason: 'ECONNRESET' });
    t.equal(cut.connections(), 1, 'not retried');
    await sleep(200);
    t.equal(await store.openReader(0, 'retry/cut'), null, 'nothing published');
  });

  t.test('a node that refuses a streamed PUT: its answer (403), below and above the 100-continue size', async (t) => {
    const wrong = { accessKeyId: nodes[0]!.credentials.accessKeyId, secretAccessKey: 'wrongSecretWrongSecretWrongSecret0005' };
    const bad = open([{ ...nodeOptions(nodes[0]!), credentials: wrong }]);
    for (const size of [MiB + MiB / 2, 3 * MiB]) {
      const err = await put(bad, 0, `refused/${size}`, randomBytes(size), size).then(() => undefined, (e: unknown) => e);
      t.ok(err instanceof StoreError, `${size} bytes: StoreError (${(err as Error)?.message})`);
      // The node answers 403 and closes while the body is still going: the client sees the answer, or (when the
      // close wins the race, as it does now and then on a loaded machine) the broken pipe. Either way a typed
      // failure naming the node, and nothing published.
      const e = err as StoreError & { status?: number; reason?: string };
      t.equal(e.node, 0);
      t.ok(e.status === 403 || /EPIPE|ECONNRESET/.test(e.message), `the node's 403 or the connection it cut (${e.status ?? e.message})`);
      t.notMatch((err as Error).message, /wrongSecret/, 'no secret in the message');
      t.equal(await store.openReader(0, `refused/${size}`), null, 'nothing published');
    }
  });

  t.test('the deadline is about progress: a streamed PUT that lasts longer than requestTimeoutMs succeeds', async (t) => {
    const data = randomBytes(6 * 256 * 1024);
    const w = await store.openWriter(2, 'slow/k', { bytes: data.length });
    const start = performance.now();
    for (let at = 0; at < data.length; at += 256 * 1024) {
      await w.write(data.subarray(at, at + 256 * 1024));
      await sleep(TIMEOUT_MS / 3); // the caller is slow, the node is not
    }
    await w.commit();
    t.ok(performance.now() - start > TIMEOUT_MS, 'longer in all than one deadline');
    t.ok((await get(store, 2, 'slow/k'))!.equals(data), 'and the blob reads back');
  });

  t.test('a node hung mid streamed put (SIGSTOP): the put fails with a Timeout StoreError within the deadline, nothing published', async (t) => {
    const engine = await CryptoEngine.open(engineOptions());
    t.teardown(() => engine.close());
    const keyId = (await engine.keys.create({ alias: 's3-stream' })).id;
    const size = 96 * MiB;
    const block = randomBytes(MiB);
    const victim = 1;
    const pid = rgwPid(nodes[victim]!);
    t.teardown(() => { try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ } });
    let stoppedAt = 0;
    async function* source(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < size / MiB; i++) yield block;
    }
    const onProgress = (done: number): void => {
      if (stoppedAt === 0 && done >= 16 * MiB) {
        process.kill(pid, 'SIGSTOP');
        stoppedAt = performance.now();
      }
    };
    const err = await engine.putObject('hung/obj', source(), { keyId, dataShards: 2, parityShards: 1, store, size, onProgress })
      .then(() => undefined, (e: unknown) => e);
    const ms = performance.now() - stoppedAt;
    process.kill(pid, 'SIGCONT');
    t.ok(stoppedAt > 0, 'the node was stopped mid-put');
    t.ok(err instanceof StoreError, `StoreError (${(err as Error)?.message})`);
    t.match(err, { node: victim, reason: 'Timeout' });
    // Bytes keep moving into the stopped node's socket buffers for a while: a bound, not a benchmark.
    t.ok(ms < TIMEOUT_MS * 3, `failed ${Math.round(ms)} ms after the stop (deadline ${TIMEOUT_MS} ms)`);
    await put(store, victim, 'hung/after', Buffer.from('awake'));
    t.same(await get(store, victim, 'hung/after'), Buffer.from('awake'), 'the node answers again after SIGCONT');
    const prefix = objectPrefix('o', 'hung/obj');
    const left = await Promise.all(nodes.map((_, i) => store.list(i, { prefix, limit: 10 })));
    t.same(left, nodes.map(() => []), 'no shard of the failed put is published on any node');
  });

  t.test('putObject: shards of a known size go up in one PUT each; options.size must match the source', async (t) => {
    const engine = await CryptoEngine.open(engineOptions());
    t.teardown(() => engine.close());
    const keyId = (await engine.keys.create({ alias: 's3-stream-put' })).id;
    const proxies = await Promise.all(nodes.map((n) => countingProxy(n.endpoint)));
    t.teardown(() => Promise.all(proxies.map((p) => p.close())));
    const via = open(nodes.map((n, i) => ({ ...nodeOptions(n), endpoint: proxies[i]!.endpoint })));
    const count = (): RequestCounts => {
      const sum = noRequests();
      for (const p of proxies) for (const [k, v] of Object.entries(p.requests())) sum[k as keyof RequestCounts] += v;
      return sum;
    };
    const during = async (fn: () => Promise<unknown>): Promise<{ put: number; post: number }> => {
      const before = count();
      await fn();
      const after = count();
      return { put: after.put - before.put, post: after.post - before.post };
    };
    const data = randomBytes(3 * PART + 5); // 2+1: shards of ~7.5 MiB, over partBytes
    const chunks = async function* (): AsyncGenerator<Uint8Array> {
      for (let at = 0; at < data.length; at += MiB) yield data.subarray(at, at + MiB);
    };
    const put = (name: string, source: Uint8Array | AsyncIterable<Uint8Array>, size?: number) =>
      engine.putObject(name, source, { keyId, dataShards: 2, parityShards: 1, store: via, ...(size === undefined ? {} : { size }) });
    t.same(await during(() => put('size/buffer', data)), { put: 3, post: 0 }, 'a Uint8Array: one PUT per shard');
    t.same(await during(() => put('size/stream', chunks(), data.length)), { put: 3, post: 0 }, 'a stream with size: one PUT per shard');
    t.same(await during(() => put('size/unknown', chunks())), { put: 6, post: 6 }, 'a stream without size: multipart (2 parts per shard)');
    for (const name of ['size/buffer', 'size/stream', 'size/unknown']) {
      t.ok((await collect(engine.getObject(name, { store }))).equals(data), `${name} reads back`);
    }
    for (const size of [data.length - 1, data.length + 1]) {
      const err = await put('size/wrong', chunks(), size).then(() => undefined, (e: unknown) => e);
      t.ok(err instanceof RangeError, `size ${size - data.length > 0 ? 'over' : 'under'} the source: RangeError`);
      t.match(err, { message: /^options\.size is / });
    }
    await t.rejects(put('size/wrong', data, data.length + 1), { constructor: RangeError, message: /^options\.size must be the source's length/ });
    await t.rejects(put('size/wrong', data, -1), RangeError);
    await t.rejects(put('size/wrong', data, 'x' as never), TypeError);
    await sleep(200);
    const prefix = objectPrefix('o', 'size/wrong');
    t.same(await Promise.all(nodes.map((_, i) => store.list(i, { prefix, limit: 10 }))), nodes.map(() => []), 'nothing of the failed puts is published');
  });

  t.test('memory stays bounded: a 256 MiB streamed blob fed from one reused 1 MiB buffer, in a child process', async (t) => {
    const total = 256;
    const child = `
      const { S3ShardStore } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
      const { createHash, randomBytes } = await import('node:crypto');
      process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
      const store = new S3ShardStore({ nodes: [${JSON.stringify(nodeOptions(nodes[0]!))}], requestTimeoutMs: ${TIMEOUT_MS} });
      const block = randomBytes(1 << 20);
      let peak = 0;
      const sample = () => (peak = Math.max(peak, process.memoryUsage().rss));
      const sampler = setInterval(sample, 5);
      // A small blob first, so that the SDK is loaded and warm before the baseline is taken.
      const warm = await store.openWriter(0, 'rss/warm', { bytes: 10 });
      await warm.write(block.subarray(0, 10));
      await warm.commit();
      const baseline = process.memoryUsage().rss;
      peak = baseline;
      const sent = createHash('sha256');
      const w = await store.openWriter(0, 'rss/blob', { bytes: ${total} << 20 });
      for (let i = 0; i < ${total}; i++) {
        block.writeUInt32LE(i, 0); // the buffer is the caller's again once a write resolves
        sent.update(block);
        await w.write(block);
      }
      await w.commit();
      clearInterval(sampler);
      sample();
      console.log(JSON.stringify({ baseline, peak, sha: sent.digest('hex') }));
      await store.close();
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', child], { encoding: 'utf8', maxBuffer: 1 << 20 });
    t.equal(r.status, 0, r.stderr);
    const { baseline, peak, sha } = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { baseline: number; peak: number; sha: string };
    const grew = (peak - baseline) / MiB;
    t.ok(grew < 48, `peak RSS grew ${grew.toFixed(1)} MiB over ${(baseline / MiB).toFixed(0)} MiB for a ${total} MiB blob`);
    const back = await store.openReader(0, 'rss/blob');
    t.equal(back?.size, total * MiB, 'the whole blob is there');
    const got = createHash('sha256');
    const buf = Buffer.alloc(8 * MiB);
    for (let at = 0; at < total * MiB; at += buf.length) got.update(buf.subarray(0, await back!.read(at, buf)));
    await back!.close();
    t.equal(got.digest('hex'), sha, 'and equals the bytes each write had when it was made (none read after it resolved)');
  });
}
