// The CLI end to end, as a child process against the test token and temp shard folders.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { testToken } from './helpers/token.js';
import { shardDirs, shardPath } from './helpers/shards.js';

const token = testToken();
const CLI = new URL('../dist/cli.js', import.meta.url).pathname;
const env = { ...process.env, HSM_PKCS11_LIBRARY: token.library, HSM_TOKEN_LABEL: token.tokenLabel, HSM_PIN: token.pin };

function cli(args: string[], extraEnv: Record<string, string | undefined> = {}) {
  const result = spawnSync(process.execPath, [CLI, ...args], { env: { ...env, ...extraEnv }, maxBuffer: 64 << 20 });
  return { status: result.status, stdout: result.stdout, text: result.stdout.toString(), stderr: result.stderr.toString() };
}

t.test('keys, put, get, range, repair, rewrap', async (t) => {
  const { root, dirs } = shardDirs(6);
  const created = cli(['keys', 'create', '--alias', 'cli-key']);
  t.equal(created.status, 0, created.stderr);
  const key = JSON.parse(created.text);
  t.match(key, { alias: 'cli-key', version: 1 });
  t.match(cli(['keys', 'list']).text, /cli-key/);

  const file = join(root, 'input.bin');
  const data = randomBytes(3 * 1024 * 1024 + 17);
  writeFileSync(file, data);
  const store = ['--store', dirs.join(',')];
  const put = cli(['put', file, '--key', 'cli-key', '--shards', '4+2', '--id', 'docs/a.bin', '--context', 'bucket=docs', ...store]);
  t.equal(put.status, 0, put.stderr);
  t.match(JSON.parse(put.text), { objectId: 'docs/a.bin', size: data.length, dataShards: 4, parityShards: 2 });

  const got = cli(['get', 'docs/a.bin', '--context', 'bucket=docs', ...store]);
  t.equal(got.status, 0, got.stderr);
  t.ok(got.stdout.equals(data), 'get returns the file');
  const part = cli(['get', 'docs/a.bin', '--context', 'bucket=docs', '--range', '1000-1999', ...store]);
  t.ok(part.stdout.equals(data.subarray(1000, 2000)), 'range A-B inclusive');

  rmSync(shardPath(dirs, 'docs/a.bin', 1));
  const repair = cli(['repair', 'docs/a.bin', ...store]);
  t.equal(repair.status, 0, repair.stderr);
  t.match(JSON.parse(repair.text), { missing: [1], repaired: [1] });

  t.equal(cli(['keys', 'rotate', 'cli-key']).status, 0);
  const rewrap = cli(['rewrap', 'docs/a.bin', ...store]);
  t.equal(rewrap.status, 0, rewrap.stderr);
  t.match(JSON.parse(rewrap.text), { keyVersion: 2 });
  t.ok(cli(['get', 'docs/a.bin', '--context', 'bucket=docs', ...store]).stdout.equals(data), 'reads after rewrap');
  t.equal(readFileSync(file).length, data.length);
});

t.test('errors: one line, typed exit codes, no PIN', async (t) => {
  const { dirs } = shardDirs(3);
  const notFound = cli(['keys', 'get', 'no-such-key']);
  t.equal(notFound.status, 3);
  t.match(notFound.stderr, /^error: ERR_KEY_NOT_FOUND: /);
  t.equal(notFound.stderr.trim().split('\n').length, 1, 'one line');
  const noObject = cli(['get', 'missing-object', '--store', dirs.join(',')]);
  t.equal(noObject.status, 7, noObject.stderr);
  t.equal(cli(['get']).status, 2, 'usage');
  t.equal(cli(['put', 'x', '--shards', 'ten']).status, 2);
  t.equal(cli(['nonsense']).status, 2);
  t.equal(cli(['keys', 'create', '--bogus']).status, 2, 'unknown option');
  t.equal(cli(['--help']).status, 0);
  t.match(cli(['put', '--help']).text, /usage: hsm-crypto-engine put FILE/);
  const wrongPin = cli(['keys', 'list'], { HSM_PIN: 'wrong-pin-123' });
  t.equal(wrongPin.status, 8);
  t.match(wrongPin.stderr, /CKR_PIN_INCORRECT/);
  t.notMatch(wrongPin.stderr + wrongPin.text, /wrong-pin-123/);
  t.notMatch(wrongPin.stderr, new RegExp(token.pin));
  const noHsm = cli(['keys', 'list', '--env', '/nonexistent/env'], { HSM_PKCS11_LIBRARY: undefined });
  t.not(noHsm.status, 0);
});
