// S3ShardStore argument checks (no network): options named in every message, bad keys and node indexes refused
// before any request, no credential repeated in a message.
import t from 'tap';
import { S3ShardStore } from '../dist/object/s3-shard-store.js';
import { shardKeyArg } from '../dist/object/blob-store.js';

const node = (extra: object = {}): object => ({
  endpoint: 'http://127.0.0.1:1', bucket: 'shards', region: 'us-east-1',
  credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'sEcReTsEcReT' }, ...extra,
});
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const make = (options: unknown): S3ShardStore => new S3ShardStore(options as never);

t.test('options are validated with messages naming the option', async (t) => {
  const cases: [unknown, ErrorConstructor, RegExp][] = [
    [undefined, TypeError, /^options must be an object/],
    [{}, TypeError, /^options\.nodes must be a non-empty array/],
    [{ nodes: [] }, TypeError, /^options\.nodes must be a non-empty array/],
    [{ nodes: [node(), 5] }, TypeError, /^options\.nodes\[1\] must be an object/],
    [{ nodes: [node(), node(), node({ endpoint: 'ftp://x' })] }, RangeError, /^options\.nodes\[2\]\.endpoint must be an http/],
    [{ nodes: [node({ endpoint: 'not a url' })] }, RangeError, /^options\.nodes\[0\]\.endpoint must be/],
    [{ nodes: [node({ endpoint: '' })] }, TypeError, /^options\.nodes\[0\]\.endpoint must be a non-empty string/],
    [{ nodes: [node({ endpoint: 'http://user:pw@host:1' })] }, RangeError, /^options\.nodes\[0\]\.endpoint must not contain user info/],
    [{ nodes: [node({ bucket: 'Bad_Bucket' })] }, RangeError, /^options\.nodes\[0\]\.bucket must be an S3 bucket name/],
    [{ nodes: [node({ bucket: 'ab' })] }, RangeError, /^options\.nodes\[0\]\.bucket/],
    [{ nodes: [node({ region: 3 })] }, TypeError, /^options\.nodes\[0\]\.region/],
    [{ nodes: [node({ credentials: null })] }, TypeError, /^options\.nodes\[0\]\.credentials must be an object/],
    [{ nodes: [node({ credentials: { accessKeyId: 'a' } })] }, TypeError, /^options\.nodes\[0\]\.credentials\.secretAccessKey/],
    [{ nodes: [node({ forcePathStyle: 'yes' })] }, TypeError, /^options\.nodes\[0\]\.forcePathStyle must be a boolean/],
    [{ nodes: [node()], requestTimeoutMs: 0 }, RangeError, /^options\.requestTimeoutMs must be an integer from 1/],
    [{ nodes: [node()], requestTimeoutMs: '5' }, TypeError, /^options\.requestTimeoutMs/],
    [{ nodes: [node()], maxAttempts: 11 }, RangeError, /^options\.maxAttempts/],
    [{ nodes: [node()], partBytes: 1024 }, RangeError, /^options\.partBytes must be an integer from 5242880/],
    [{ nodes: [node()], readAheadBytes: -1 }, RangeError, /^options\.readAheadBytes must be an integer from 0 to 16777216/],
    [{ nodes: [node()], readAheadBytes: 1.5 }, RangeError, /^options\.readAheadBytes/],
  ];
  for (const [options, type, message] of cases) {
    t.throws(() => make(options), { constructor: type, message }, String(message));
  }
  const err = (() => { try { make({ nodes: [node({ endpoint: 'http://AKIDEXAMPLE:sEcReTsEcReT@h' })] }); } catch (e) { return e as Error; } })();
  t.notMatch(err?.message, /sEcReT|AKIDEXAMPLE/, 'the endpoint is not echoed');
  const store = make({ nodes: [node(), node()] });
  t.equal(store.nodes, 2);
  await store.close();
});

t.test('bad node indexes and keys are refused before any request', async (t) => {
  const store = make({ nodes: [node()] });
  t.teardown(() => store.close());
  await t.rejects(store.openWriter(1, 'a'), RangeError, 'node out of range');
  await t.rejects(store.openReader(-1, 'a'), RangeError);
  await t.rejects(store.remove(0.5 as never, 'a'), RangeError);
  await t.rejects(store.list('0' as never, { prefix: '', limit: 1 }), TypeError);
  for (const key of ['', 'a//b', '/a', 'a/', 'a/./b', '..', 'a b', 'ä', 'x'.repeat(901), 'a?b', 'a\\b']) {
    await t.rejects(store.openWriter(0, key), RangeError, `key ${JSON.stringify(key.slice(0, 20))}`);
  }
  await t.rejects(store.openReader(0, 7 as never), TypeError);
  await t.rejects(store.list(0, undefined as never), TypeError);
  await t.rejects(store.list(0, { prefix: 'a b', limit: 1 }), RangeError);
  await t.rejects(store.list(0, { prefix: '', limit: 0 }), RangeError);
  await t.rejects(store.list(0, { prefix: '', startAfter: 'a?', limit: 1 }), RangeError);
  t.equal(shardKeyArg('o/AbC%2F~_-.+=/12/h.3'), 'o/AbC%2F~_-.+=/12/h.3');
  const longest = [...Array(4).fill('x'.repeat(200)), 'x'.repeat(96)].join('/');
  t.equal(shardKeyArg(longest).length, 900, 'the longest key: 900 characters in segments of at most 200');
  t.throws(() => shardKeyArg('x'.repeat(201)), RangeError, 'a segment over 200');
  const w = await store.openWriter(0, 'a');
  await t.rejects(w.write('x' as never), TypeError, 'write needs bytes');
  await w.abort();
});

t.test('openWriter options: bytes checked on both stores; a writer given a length refuses more before any request', async (t) => {
  const { FsShardStore } = await import('../dist/index.js');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const s3 = make({ nodes: [node()] });
  t.teardown(() => s3.close());
  const fs = new FsShardStore([mkdtempSync(join(tmpdir(), 'writer-opts-'))]);
  for (const store of [s3, fs]) {
    const name = store === s3 ? 'S3' : 'FS';
    await t.rejects(store.openWriter(0, 'a', 5 as never), TypeError, `${name}: options not an object`);
    await t.rejects(store.openWriter(0, 'a', { bytes: '5' as never }), { constructor: TypeError, message: /^options\.bytes must be a non-negative integer/ }, `${name}: bytes a string`);
    for (const bytes of [-1, 1.5, 2 ** 53]) {
      await t.rejects(store.openWriter(0, 'a', { bytes }), { constructor: RangeError, message: /^options\.bytes must be a non-negative integer/ }, `${name}: bytes ${bytes}`);
    }
    await (await store.openWriter(0, 'a', {})).abort();
    await (await store.openWriter(0, 'a', { bytes: undefined })).abort();
  }
  for (const [bytes, write] of [[0, 1], [3, 4]] as const) {
    const w = await s3.openWriter(0, 'a', { bytes });
    const err = await w.write(Buffer.alloc(write)).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof RangeError, `announced ${bytes}, wrote ${write}: RangeError`);
    t.match(err, { message: /^bytes: the writer was opened for/ });
    await t.rejects(w.commit(), err as Error, 'the writer stays failed');
    await w.abort();
  }
  const empty = await s3.openWriter(0, 'a', { bytes: 2 });
  await t.rejects(empty.commit(), RangeError, 'announced 2, committed after none');
});

t.test('id: s3: + endpoint/bucket per node, stable, secret-free; exported from the package entry', async (t) => {
  const { S3ShardStore: Exported } = await import('../dist/index.js');
  t.equal(Exported, S3ShardStore, 'the package entry exports S3ShardStore');
  const options = { nodes: [node(), node({ endpoint: 'https://s3.example.com:8443/', bucket: 'b-2' })] };
  const a = make(options);
  const b = make({ ...options, requestTimeoutMs: 5 });
  t.teardown(() => Promise.all([a.close(), b.close()]));
  t.equal(a.id, 's3:http://127.0.0.1:1/shards,https://s3.example.com:8443/b-2');
  t.equal(b.id, a.id, 'the same nodes in the same order: the same id (tuning options do not count)');
  const other = make({ nodes: [node({ credentials: { accessKeyId: 'OTHER', secretAccessKey: 'otherSecret' } }), options.nodes[1]] });
  t.teardown(() => other.close());
  t.equal(other.id, a.id, 'credentials are not part of the id');
  t.notMatch(a.id, /sEcReT|AKIDEXAMPLE/, 'no credential in the id');
  t.notMatch(JSON.stringify(a) + String(Object.keys(a)), /sEcReT/, 'nor in the store as serialised');
});

// Importing the engine must not load the AWS SDK: its module graph was most of the resident heap, which set V8's full
// collections off every ~32 MiB of stream output (README, "Pool scaling"). Only s3-client.ts loads it, on first use.
t.test('no module imports the AWS SDK or its HTTP handler at load time; s3-client.ts imports them on first use', async (t) => {
  const { readdirSync, readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const src = new URL('../src/', import.meta.url).pathname;
  const files = (readdirSync(src, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts'));
  t.ok(files.length > 50, 'the sources are there');
  const eager = /^\s*import\s+(?!type\b)[^;]*?from\s+'@(aws-sdk|smithy)\//m;
  t.same(files.filter((f) => eager.test(readFileSync(join(src, f), 'utf8'))), [], 'no value import of @aws-sdk/* or @smithy/*');
  t.match(readFileSync(join(src, 'object/s3-client.ts'), 'utf8'), /import\('@aws-sdk\/client-s3'\)/, 'loaded on demand');
});
