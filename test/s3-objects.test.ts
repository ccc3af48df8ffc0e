// Objects on S3: putObject/getObject/repairObject/rewrapObject over S3ShardStore against real Ceph (six single-OSD
// clusters with radosgw from test/peers/ceph.sh, one per node, 4+2 shards), on a real SoftHSM token. Round trips to
// 64 MiB, the S3 requests a put and a get make, range reads that fetch only what they need, nodes stopped (radosgw down) and hung (SIGSTOP), a wiped node
// repaired, a rewrap cut short, a put with a node down (fails typed, nothing of it published), bad credentials and a
// missing bucket (typed, no secret). One cluster set serves every test in this file.
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { inspect } from 'node:util';
import {
  CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, S3Client,
} from '@aws-sdk/client-s3';
import { CryptoEngine, ErasureError, ObjectNotFoundError, S3ShardStore, StoreError } from '../dist/index.js';
import {
  cephSkipReason, storeOpener, countingProxy, nodeOptions, noRequests, rgwPid, rgwStart, rgwStop, startCeph, sumRequests, type CephNode, type RequestCounts,
} from './helpers/ceph.js';
import { engineOptions, testToken } from './helpers/token.js';
import { objectPrefix } from '../dist/object/layout.js';
import { collect } from './helpers/shards.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const MiB = 1024 * 1024;
const K = 4;
const M = 2;
const TIMEOUT_MS = 2000;
const SEGMENT = 256 * 1024;
const context = { bucket: 's3', object: 'tests' };

const skip = cephSkipReason();
if (skip !== undefined) {
  console.error(`# ${skip}`);
  t.plan(0, skip);
} else {
  let nodes: CephNode[] = [];
  let store: S3ShardStore;
  let engine: CryptoEngine;
  let keyId: string;
  const open = storeOpener(t, { requestTimeoutMs: TIMEOUT_MS });
  const put = (name: string, data: Uint8Array | AsyncIterable<Uint8Array>, s: S3ShardStore = store) =>
    engine.putObject(name, data, { keyId, context, dataShards: K, parityShards: M, store: s, segmentBytes: SEGMENT });
  const get = (name: string, s: S3ShardStore = store, range?: { offset: number; length: number }) =>
    collect(engine.getObject(name, { store: s, context, ...(range ? { range } : {}) }));
  /** Every key under the object's namespace on every node (raw listing through the store). */
  const keysOn = async (prefix = 'o/'): Promise<string[][]> =>
    Promise.all(nodes.map((_, i) => store.list(i, { prefix, limit: 10_000 })));
  /** Runs `fn` with these nodes' radosgw stopped, starting them again afterwards (also when fn fails). */
  const withStopped = async <T>(which: number[], fn: () => Promise<T>): Promise<T> => {
    await Promise.all(which.map((i) => rgwStop(nodes[i]!)));
    try {
      return await fn();
    } finally {
      await Promise.all(which.map((i) => rgwStart(nodes[i]!)));
    }
  };
  const elapsed = async (fn: () => Promise<unknown>): Promise<{ ms: number; err: unknown }> => {
    const start = performance.now();
    const err = await fn().then(() => undefined, (e: unknown) => e);
    return { ms: performance.now() - start, err };
  };
  const secretsAbsent = (t: Test, err: unknown, secrets: string[]): void => {
    const e = err as Error;
    const texts = [e.message, String(e), e.stack ?? '', JSON.stringify(e), inspect(e, { depth: 10, showHidden: true })];
    for (const s of secrets) t.notOk(texts.some((x) => x.includes(s)), 'no credential in message, String, stack, JSON or inspect');
  };

  t.before(async () => {
    const started = await startCeph(t, K + M);
    nodes = started.nodes;
    t.comment(`ceph: ${nodes.length} nodes up in ${started.startupMs} ms`);
    store = open(nodes.map(nodeOptions));
    engine = await CryptoEngine.open(engineOptions());
    t.teardown(() => engine.close());
    keyId = (await engine.keys.create({ alias: 's3-objects' })).id;
  });

  t.test('round trips from 0 B to 64 MiB (multipart shards), streamed in', async (t) => {
    for (const size of [0, 1, 1000, SEGMENT * K + 5, 5 * MiB + 3, 64 * MiB + 7]) {
      const data = randomBytes(size);
      async function* chunks(): AsyncGenerator<Uint8Array> {
        for (let at = 0; at < size; at += MiB + 17) yield data.subarray(at, at + MiB + 17);
      }
      const info = await put(`rt/${size}`, size > MiB ? chunks() : data);
      t.equal(info.size, size);
      const back = await get(`rt/${size}`);
      t.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(data).digest('hex'), `${size} bytes come back equal`);
    }
  });

  t.test('S3 requests per put and get, counted at the nodes: one listing round per put, k shards per get', async (t) => {
    const proxies = await Promise.all(nodes.map((n) => countingProxy(n.endpoint)));
    t.teardown(() => Promise.all(proxies.map((p) => p.close())));
    const via = open(nodes.map((n, i) => ({ ...nodeOptions(n), endpoint: proxies[i]!.endpoint })));
    const during = async (fn: () => Promise<unknown>): Promise<RequestCounts> => {
      const before = sumRequests(proxies.map((p) => p.requests()));
      await fn();
      const after = sumRequests(proxies.map((p) => p.requests()));
      return Object.fromEntries(Object.entries(after).map(([kind, n]) => [kind, n - before[kind as keyof RequestCounts]])) as unknown as RequestCounts;
    };
    const N = K + M;
    const none = noRequests();
    // 1 MiB as 4+2: shards of 256 KiB, each one PUT, and read whole with the GET that opens it.
    const small = randomBytes(MiB);
    t.same(await during(() => put('req/small', small, via)), { ...none, list: N, put: N }, 'put: one listing per node, one PUT per shard');
    t.same(await during(() => put('req/small', small, via)), { ...none, list: N, put: N, delete: N }, 're-put: and one DELETE per old shard');
    let back = Buffer.alloc(0);
    t.same(await during(async () => (back = await get('req/small', via))), { ...none, list: N, get: K }, 'get: one listing per node, one GET per data shard');
    t.ok(back.equals(small), 'and the bytes');
    // With the geometry (a bucket's get has it): m+1 listings, the k GETs started as they answer.
    const shards = { dataShards: K, parityShards: M };
    const hinted = (name: string, range?: { offset: number; length: number }) =>
      collect(engine.getObject(name, { store: via, context, shards, ...(range ? { range } : {}) }));
    t.same(await during(async () => (back = await hinted('req/small'))), { ...none, list: M + 1, get: K }, 'get with shards: m+1 listings, one GET per data shard');
    t.ok(back.equals(small), 'and the bytes');
    // A data shard missing on an unlisted node: its GET answers NoSuchKey (one request), and one parity shard is opened.
    const smallPrefix = objectPrefix('o', 'req/small');
    const victim = (await store.list(3, { prefix: smallPrefix, limit: 10 })).find((key) => key.endsWith('/3'))!;
    await store.remove(3, victim);
    t.same(await during(async () => (back = await hinted('req/small'))), { ...none, list: M + 1, get: K + 1 }, 'shard 3 gone: m+1 listings, k+1 GETs');
    t.ok(back.equals(small), 'and the bytes');
    // 20 MiB: shards of 5 MiB. A get opens k (the first MiB comes with the open), reads their trailers, then streams
    // the rest of each in one GET (a second one only if a shard's stream was dropped after a long pause).
    const big = randomBytes(20 * MiB);
    await put('req/big', big, via);
    const c = await during(async () => (back = await get('req/big', via)));
    t.ok(back.equals(big), '20 MiB: the bytes');
    t.same({ ...c, get: 0 }, { ...none, list: N }, '20 MiB get: one listing per node');
    t.ok(c.get >= 3 * K && c.get <= 4 * K, `20 MiB get: ${c.get} GETs (open, trailer and one streamed GET per data shard: ${3 * K})`);
    const range = await during(async () => (back = await get('req/big', via, { offset: 7 * MiB + 100, length: 1000 })));
    t.ok(back.equals(big.subarray(7 * MiB + 100, 7 * MiB + 1100)), 'a range: the bytes');
    t.same(range, { ...none, list: N, get: 2 * K + 1 }, 'a range in one segment: k opens, k trailers and one GET of its chunk');
    const c2 = await during(async () => (back = await hinted('req/big')));
    t.ok(back.equals(big), '20 MiB with shards: the bytes');
    t.same({ ...c2, get: 0 }, { ...none, list: M + 1 }, '20 MiB get with shards: m+1 listings');
    t.ok(c2.get >= 3 * K && c2.get <= 4 * K, `20 MiB get with shards: ${c2.get} GETs`);
    const range2 = await during(async () => (back = await hinted('req/big', { offset: 7 * MiB + 100, length: 1000 })));
    t.ok(back.equals(big.subarray(7 * MiB + 100, 7 * MiB + 1100)), 'a range with shards: the bytes');
    t.same(range2, { ...none, list: M + 1, get: 2 * K + 1 }, 'a range with shards: m+1 listings, k opens, k trailers, one chunk GET');
  });

  t.test('range reads equal the slices and fetch only the chunks that hold them', async (t) => {
    const size = 24 * MiB + 123;
    const data = randomBytes(size);
    await put('range/obj', data);
    const proxies = await Promise.all(nodes.map((n) => countingProxy(n.endpoint)));
    t.teardown(() => Promise.all(proxies.map((p) => p.close())));
    const viaProxies = open(nodes.map((n, i) => ({ ...nodeOptions(n), endpoint: proxies[i]!.endpoint })));
    const fetched = () => proxies.reduce((sum, p) => sum + p.received(), 0);
    // Per shard opened: the read-ahead (64 KiB), the trailer and the listing, each with its HTTP headers.
    const perShard = 64 * 1024 + 3 * 4096;
    for (const [offset, length] of [[0, 1], [7_654_321, 1000], [SEGMENT - 10, 20], [size - 5, 5], [3 * MiB, 2 * MiB]] as const) {
      const before = fetched();
      const slice = await get('range/obj', viaProxies, { offset, length });
      const bytes = fetched() - before;
      t.ok(slice.equals(data.subarray(offset, offset + length)), `range ${offset}+${length} equals the slice`);
      const segments = Math.floor((offset + length - 1) / SEGMENT) - Math.floor(offset / SEGMENT) + 1;
      const bound = segments * (SEGMENT + 16 + 4096) + (K + M) * perShard;
      t.ok(bytes <= bound, `range ${offset}+${length}: fetched ${bytes} bytes, at most ${bound} (${segments} chunks + per-shard overhead), of ${size}`);
    }
  });

  t.test('one and m nodes stopped: still reads; m+1: ErasureError', async (t) => {
    const data = randomBytes(3 * MiB + 11);
    await put('down/obj', data);
    await withStopped([1], async () => {
      t.ok((await get('down/obj')).equals(data), 'node 1 down: reads');
      await withStopped([4], async () => {
        t.ok((await get('down/obj')).equals(data), 'nodes 1 and 4 down: reads');
        const third = await withStopped([0], () => get('down/obj').then(() => undefined, (e: unknown) => e));
        t.ok(third instanceof ErasureError, `nodes 0, 1 and 4 down: ErasureError (${(third as Error)?.message})`);
      });
    });
    t.ok((await get('down/obj')).equals(data), 'all back: reads');
  });

  t.test('a put with a node down fails with a StoreError and publishes nothing; the old version still reads', async (t) => {
    const v1 = randomBytes(MiB + 5);
    await put('putdown/obj', v1);
    const before = (await keysOn('o/')).map((keys) => keys.filter((k) => k.includes('/-')).length);
    const { err } = await withStopped([3], () => elapsed(() => put('putdown/obj', randomBytes(2 * MiB))));
    t.ok(err instanceof StoreError, `StoreError (${(err as Error)?.message})`);
    t.match(err, { node: 3 });
    t.ok((await get('putdown/obj')).equals(v1), 'the old version reads');
    const after = (await keysOn('o/')).map((keys) => keys.filter((k) => k.includes('/-')).length);
    t.same(after, before, 'no blob of the failed put is left on any node');
  });

  t.test('a hung node (radosgw SIGSTOPped): reads finish within the deadline plus a margin', async (t) => {
    const data = randomBytes(2 * MiB + 3);
    await put('hang/obj', data);
    const pid = rgwPid(nodes[2]!);
    process.kill(pid, 'SIGSTOP');
    t.teardown(() => { try { process.kill(pid, 'SIGCONT'); } catch { /* gone */ } });
    try {
      const whole = await elapsed(async () => t.ok((await get('hang/obj')).equals(data), 'reads with node 2 hung'));
      t.equal(whole.err, undefined);
      // A listing that waits the whole deadline, then the reads from the other nodes: a bound, not a benchmark.
      t.ok(whole.ms < TIMEOUT_MS * 3 + 5000, `getObject took ${Math.round(whole.ms)} ms (deadline ${TIMEOUT_MS} ms)`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    // Hung after the object was found (and well before its end): that node's reads time out, stripes are rebuilt.
    const big = randomBytes(40 * MiB);
    await put('hang/big', big);
    const readable = engine.getObject('hang/big', { store, context });
    const parts: Buffer[] = [];
    const it = readable[Symbol.asyncIterator]();
    const first = await it.next();
    if (!first.done) parts.push(first.value as Buffer);
    const pid0 = rgwPid(nodes[0]!);
    process.kill(pid0, 'SIGSTOP');
    try {
      const rest = await elapsed(async () => {
        for (let r = await it.next(); !r.done; r = await it.next()) parts.push(r.value as Buffer);
      });
      t.equal(rest.err, undefined, 'node 0 hung mid-read: the read completes');
      t.ok(Buffer.concat(parts).equals(big), 'and equals the object');
      t.ok(rest.ms < TIMEOUT_MS * 3 + 5000, `the rest took ${Math.round(rest.ms)} ms`);
    } finally {
      process.kill(pid0, 'SIGCONT');
    }
  });

  t.test('a wiped node (data gone, bucket recreated): repairObject restores it', async (t) => {
    const data = randomBytes(3 * MiB + 1);
    await put('wipe/obj', data);
    const victim = 2;
    const raw = new S3Client({ ...nodeOptions(nodes[victim]!), forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    t.teardown(() => raw.destroy());
    const bucket = nodes[victim]!.bucket;
    for (let page = await raw.send(new ListObjectsV2Command({ Bucket: bucket })); (page.Contents ?? []).length > 0;
      page = await raw.send(new ListObjectsV2Command({ Bucket: bucket }))) {
      await raw.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: page.Contents!.map((c) => ({ Key: c.Key! })) } }));
    }
    await raw.send(new DeleteBucketCommand({ Bucket: bucket }));
    await raw.send(new CreateBucketCommand({ Bucket: bucket }));
    t.same(await store.list(victim, { prefix: '', limit: 10 }), [], 'the node is empty');
    t.ok((await get('wipe/obj')).equals(data), 'reads meanwhile');
    const report = await engine.repairObject('wipe/obj', { store });
    t.same(report.missing, [victim], 'the wiped shard is missing');
    t.same(report.repaired, [victim], 'and rewritten');
    t.equal((await store.list(victim, { prefix: 'o/', limit: 10 })).length, 1, 'the node holds its shard again');
    const again = await engine.repairObject('wipe/obj', { store });
    t.same(again.repaired, [], 'nothing left to repair');
    await withStopped([0, 1], async () => t.ok((await get('wipe/obj')).equals(data), 'reads with nodes 0 and 1 down, so from the repaired one'));
  });

  t.test('a rewrap cut short (a node down) still reads; the next rewrap completes', async (t) => {
    const data = randomBytes(MiB + 77);
    await put('rewrap/obj', data);
    await engine.keys.rotate('s3-objects');
    const cut = await withStopped([5], () => elapsed(() => engine.rewrapObject('rewrap/obj', { store })));
    t.ok(cut.err instanceof StoreError, `the rewrap fails with a StoreError (${(cut.err as Error)?.message})`);
    t.ok((await get('rewrap/obj')).equals(data), 'reads after the cut');
    const done = await engine.rewrapObject('rewrap/obj', { store });
    t.equal(done.keyVersion, 2, 'under the new version');
    t.ok((await get('rewrap/obj')).equals(data), 'reads after the rewrap');
    const records = (await keysOn('o/')).map((keys) => keys.filter((k) => /\/w[0-9a-f]+$/.test(k) && k.includes(done.generation)).length);
    t.same(records, nodes.map(() => 1), 'one rewrap record per node');
  });

  t.test('bad credentials and a missing bucket: typed errors that carry no secret', async (t) => {
    await put('cred/obj', randomBytes(1000));
    const wrong = { accessKeyId: nodes[1]!.credentials.accessKeyId, secretAccessKey: 'wrongSecretWrongSecretWrongSecret0003' };
    const badNode1 = open(nodes.map((n, i) => (i === 1 ? { ...nodeOptions(n), credentials: wrong } : nodeOptions(n))));
    const putErr = await put('cred/new', randomBytes(1000), badNode1).then(() => undefined, (e: unknown) => e);
    t.ok(putErr instanceof StoreError, 'put: StoreError');
    t.match(putErr, { node: 1, status: 403 });
    secretsAbsent(t, putErr, [wrong.secretAccessKey, nodes[1]!.credentials.secretAccessKey]);
    const names: string[] = [];
    for await (const name of engine.listObjects({ store, prefix: 'cred/' })) names.push(name);
    t.same(names, ['cred/obj'], 'the failed put left no object behind');
    t.ok((await get('cred/obj', badNode1)).length === 1000, 'get: one refusing node is a lost shard');

    const allBad = open(nodes.map((n) => ({ ...nodeOptions(n), credentials: wrong })));
    const getErr = await get('cred/obj', allBad).then(() => undefined, (e: unknown) => e);
    t.ok(getErr instanceof StoreError, `get with every node refusing: the store's error, not "object not found" (${(getErr as Error)?.name})`);
    secretsAbsent(t, getErr, [wrong.secretAccessKey]);

    const noBucket = open(nodes.map((n, i) => (i === 5 ? { ...nodeOptions(n), bucket: 'no-such-bucket' } : nodeOptions(n))));
    const nbErr = await put('cred/nb', randomBytes(1000), noBucket).then(() => undefined, (e: unknown) => e);
    t.ok(nbErr instanceof StoreError, 'put with a missing bucket: StoreError');
    t.match(nbErr, { node: 5, reason: 'NoSuchBucket', message: /bucket no-such-bucket/ });
    t.ok((await get('cred/obj', noBucket)).length === 1000, 'get: a node without its bucket is a lost shard');
  });

  t.test('the CLI on S3: --store-config (the harness nodes.json as is) and --store s3+http:// with env credentials', async (t) => {
    const token = testToken();
    const CLI = new URL('../dist/cli/main.js', import.meta.url).pathname;
    const cli = (args: string[], env: Record<string, string> = {}) => {
      const r = spawnSync(process.execPath, [CLI, ...args], {
        env: { ...process.env, HSM_PKCS11_LIBRARY: token.library, HSM_TOKEN_LABEL: token.tokenLabel, HSM_PIN: token.pin, ...env }, maxBuffer: 64 << 20,
      });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
    };
    const work = mkdtempSync(join(tmpdir(), 's3-cli-'));
    const file = join(work, 'in.bin');
    const data = randomBytes(2 * MiB + 9);
    writeFileSync(file, data);
    const config = join(dirname(nodes[0]!.dir), 'nodes.json');
    const put = cli(['put', file, '--key', 's3-objects', '--shards', '4+2', '--id', 'cli/a.bin', '--context', 'bucket=s3', '--context', 'object=tests', '--store-config', config]);
    t.equal(put.status, 0, put.stderr);
    const got = cli(['get', 'cli/a.bin', '--context', 'bucket=s3', '--context', 'object=tests', '--store-config', config]);
    t.equal(got.status, 0, got.stderr);
    t.ok(got.stdout.equals(data), 'get --store-config returns the bytes');
    t.ok((await get('cli/a.bin')).equals(data), 'and the library reads what the CLI put');

    const n0 = nodes[0]!;
    const url = `s3+http://${new URL(n0.endpoint).host}/${n0.bucket}`;
    const creds = { AWS_ACCESS_KEY_ID: n0.credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: n0.credentials.secretAccessKey };
    t.equal(cli(['put', file, '--key', 's3-objects', '--shards', '1+0', '--id', 'cli/one', '--store', url], creds).status, 0, 'put --store s3+http://');
    t.ok(cli(['get', 'cli/one', '--store', url], creds).stdout.equals(data), 'get --store s3+http://');
    const denied = cli(['get', 'cli/one', '--store', url], { ...creds, AWS_SECRET_ACCESS_KEY: 'wrongSecretWrongSecretWrongSecret0004' });
    t.not(denied.status, 0, 'a wrong secret fails');
    t.notOk(denied.stderr.includes('wrongSecretWrongSecretWrongSecret0004') || denied.stderr.includes(n0.credentials.secretAccessKey), 'and stderr carries no secret');
    t.comment(`wrong secret: ${denied.stderr.trim().split('\n')[0]}`);
  });
}
