// The CLI's store options (src/cli/store.ts), no network: folders, s3:// URLs with env credentials, --store-config
// files (ceph.sh's nodes.json as is), and usage errors that never repeat a credential or the file's content.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeStore, parseS3Url, storeOf } from '../dist/cli/store.js';
import { UsageError } from '../dist/cli/command.js';
import { FsShardStore } from '../dist/object/fs-shard-store.js';
import { S3ShardStore } from '../dist/object/s3-shard-store.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const SECRET = 'topSecretValue0123456789';
const env = { AWS_ACCESS_KEY_ID: 'AKIDCLITEST', AWS_SECRET_ACCESS_KEY: SECRET };
const dir = mkdtempSync(join(tmpdir(), 'cli-store-'));
t.teardown(() => {});

const usage = (values: Record<string, unknown>, e: Record<string, string | undefined> = env): UsageError => {
  try {
    storeOf(values, e);
  } catch (err) {
    return err as UsageError;
  }
  throw new Error('expected a UsageError');
};

t.test('folders: --store DIR (repeated or comma-separated)', async (t) => {
  const store = storeOf({ store: [`${dir}/a,${dir}/b`, `${dir}/c`] }, env);
  t.ok(store instanceof FsShardStore);
  t.equal(store.nodes, 3);
  await closeStore(store);
});

t.test('s3:// URLs: https by default, s3+http:// for http; credentials and region from the environment', async (t) => {
  t.same(parseS3Url('s3://s3.example.com/shards-0', 0), { endpoint: 'https://s3.example.com', bucket: 'shards-0' });
  t.same(parseS3Url('s3+http://127.0.0.1:7480/b1/', 1), { endpoint: 'http://127.0.0.1:7480', bucket: 'b1' });
  t.same(parseS3Url('S3+HTTPS://h:9/b1', 1), { endpoint: 'https://h:9', bucket: 'b1' });
  const store = storeOf({ store: ['s3+http://127.0.0.1:7480/aaa,s3+http://127.0.0.1:7481/bbb'] }, { ...env, AWS_REGION: 'eu-de' });
  t.ok(store instanceof S3ShardStore);
  t.equal(store.nodes, 2);
  t.equal((store as S3ShardStore).id, 's3:http://127.0.0.1:7480/aaa,http://127.0.0.1:7481/bbb');
  await closeStore(store);
});

t.test('--store-config: S3ShardStore options; nodes.json from test/peers/ceph.sh as is; env fills missing credentials', async (t) => {
  const file = join(dir, 'nodes.json');
  writeFileSync(file, JSON.stringify({
    startupMs: 12, requestTimeoutMs: 1234,
    nodes: [
      { endpoint: 'http://127.0.0.1:1', bucket: 'shards', region: 'us-east-1', credentials: { accessKeyId: 'A1', secretAccessKey: 'S1' }, rgwPidFile: '/x', dir: '/y' },
      { endpoint: 'http://127.0.0.1:2', bucket: 'shards' },
    ],
  }));
  const store = storeOf({ 'store-config': file }, env);
  t.ok(store instanceof S3ShardStore);
  t.equal((store as S3ShardStore).id, 's3:http://127.0.0.1:1/shards,http://127.0.0.1:2/shards');
  await closeStore(store);
  const err = usage({ 'store-config': file }, {});
  t.ok(err instanceof UsageError);
  t.match(err.message, /nodes\[1\] has no "credentials".*AWS_ACCESS_KEY_ID/);
});

t.test('usage errors name the option, never a credential or the file content', async (t) => {
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, `{"nodes":[{"credentials":{"secretAccessKey":"${SECRET}"}} oops`);
  const wrongBucket = join(dir, 'wrong-bucket.json');
  writeFileSync(wrongBucket, JSON.stringify({ nodes: [{ endpoint: 'http://h:1', bucket: 'No_Such', credentials: { accessKeyId: 'A', secretAccessKey: SECRET } }] }));
  const cases: [Record<string, unknown>, Record<string, string | undefined>, RegExp][] = [
    [{}, env, /a store is required/],
    [{ store: ['s3://h/b', `${dir}/x`] }, env, /not a mix/],
    [{ store: ['s3://h/b'], 'store-config': bad }, env, /either --store or --store-config/],
    [{ store: ['s3://h/b'] }, {}, /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/],
    [{ store: [`s3://AKIDX:${SECRET}@h/b`] }, env, /must not carry credentials/],
    [{ store: ['s3://h/'] }, env, /s3:\/\/HOST\[:PORT\]\/BUCKET/],
    [{ store: ['s3://h/a/b'] }, env, /one bucket/],
    [{ store: ['s3://h/Bad_Bucket'] }, env, /^--store: options\.nodes\[0\]\.bucket must be an S3 bucket name/],
    [{ 'store-config': join(dir, 'none.json') }, env, /cannot read it \(ENOENT\)/],
    [{ 'store-config': bad }, env, /not valid JSON$/],
    [{ 'store-config': wrongBucket }, env, /options\.nodes\[0\]\.bucket must be an S3 bucket name/],
  ];
  for (const [values, e, message] of cases) {
    const err = usage(values, e);
    t.ok(err instanceof UsageError, `UsageError: ${err.message}`);
    t.match(err.message, message);
    t.notOk(err.message.includes(SECRET) || String(err.stack).includes(SECRET), 'no secret in the message');
  }
});
