// The bucket CLI end to end on the test token: create, put, head, ls, get, list --key, registrations,
// destroy refused while registered, rm, delete, destroy.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testToken } from './helpers/token.js';
import { bucketStore } from './helpers/buckets.js';

const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
const { library, tokenLabel, pin } = testToken();
const env = { ...process.env, HSM_PKCS11_LIBRARY: library, HSM_TOKEN_LABEL: tokenLabel, HSM_PIN: pin };
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args, '--threads', '1'], { env, encoding: 'utf8' });
const json = (out: string) => out.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));

t.test('bucket commands', async (t) => {
  const { root, dirs } = bucketStore(3);
  const store = dirs.join(',');
  t.equal(run('keys', 'create', '--alias', 'cli-bucket-key').status, 0);
  const created = run('bucket', 'create', 'cli-photos', '--key', 'cli-bucket-key', '--shards', '2+1', '--store', store);
  t.equal(created.status, 0, created.stderr);
  t.match(json(created.stdout)[0], { name: 'cli-photos', keyAlias: 'cli-bucket-key', dataShards: 2, parityShards: 1 });
  const file = join(root, 'in.txt');
  writeFileSync(file, 'hello bucket');
  t.match(json(run('bucket', 'put', 'cli-photos/2026/a.txt', file, '--store', store).stdout)[0], { name: '2026/a.txt', size: 12, keyVersion: 1 });
  t.match(json(run('head', 'cli-photos/2026/a.txt', '--store', store).stdout)[0], { bucket: 'cli-photos', size: 12 });
  t.same(json(run('ls', 'cli-photos/2026/', '--store', store).stdout).map((o) => o.name), ['2026/a.txt']);
  t.equal(run('bucket', 'get', 'cli-photos/2026/a.txt', '--store', store).stdout, 'hello bucket');
  const outFile = join(root, 'out.txt');
  t.equal(run('bucket', 'get', 'cli-photos/2026/a.txt', '--store', store, '--out', outFile).status, 0);
  t.equal(readFileSync(outFile, 'utf8'), 'hello bucket', 'bucket get --out writes the file');
  t.same(json(run('bucket', 'list', '--key', 'cli-bucket-key', '--store', store).stdout).map((b) => b.name), ['cli-photos']);
  t.same(json(run('keys', 'registrations', 'cli-bucket-key').stdout).map((r) => r.bucket), ['cli-photos']);
  const refused = run('keys', 'destroy', 'cli-bucket-key');
  t.not(refused.status, 0);
  t.match(refused.stderr, /ERR_KEY_STATE/);
  t.equal(run('head', 'cli-photos/nope', '--store', store).status === 0, false, 'missing object fails');
  t.match(run('bucket', 'delete', 'cli-photos', '--store', store).stderr, /ERR_BUCKET_NOT_EMPTY/);
  t.equal(run('rm', 'cli-photos/2026/a.txt', '--store', store).status, 0);
  t.equal(run('bucket', 'delete', 'cli-photos', '--store', store).status, 0);
  t.same(json(run('keys', 'registrations', 'cli-bucket-key').stdout), []);
  t.equal(run('keys', 'destroy', 'cli-bucket-key').status, 0);
  t.match(run('bucket', 'put', 'no-slash', file, '--store', store).stderr, /BUCKET\/OBJECT/);
});
