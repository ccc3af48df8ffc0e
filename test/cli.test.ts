// The CLI end to end, as a child process against the test token and temp shard folders.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testToken } from './helpers/token.js';
import { shardDirs, shardPath } from './helpers/shards.js';

const token = testToken();
const CLI = new URL('../dist/cli/main.js', import.meta.url).pathname;
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
  const outFile = join(root, 'output.bin');
  const toFile = cli(['get', 'docs/a.bin', '--context', 'bucket=docs', '--out', outFile, ...store]);
  t.equal(toFile.status, 0, toFile.stderr);
  t.ok(readFileSync(outFile).equals(data), 'get --out writes the file');

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
  const noEnvFile = cli(['keys', 'list', '--env', '/nonexistent/env'], { HSM_PKCS11_LIBRARY: undefined });
  t.equal(noEnvFile.status, 1, 'an unreadable env file is a plain failure');
  t.match(noEnvFile.stderr, /^error: ENOENT: .*\/nonexistent\/env/);
});

t.test('global options go before or after the command; --env reads an env file', async (t) => {
  const { root } = shardDirs(1);
  t.equal(cli(['keys', 'create', '--alias', 'global-opts']).status, 0);
  for (const args of [['--threads', '1', 'keys', 'list'], ['keys', '--threads=1', 'list'], ['keys', 'list', '--threads', '1']]) {
    const listed = cli(args);
    t.equal(listed.status, 0, `${args.join(' ')}: ${listed.stderr}`);
    t.match(listed.text, /"alias":"global-opts"/, args.join(' '));
  }
  const envFile = join(root, 'env');
  writeFileSync(envFile, `export HSM_PKCS11_LIBRARY='${token.library}'\nexport HSM_TOKEN_LABEL='${token.tokenLabel}'\nexport HSM_PIN='${token.pin}'\n`);
  const viaFile = cli(['--env', envFile, 'keys', 'get', 'global-opts'], { HSM_PKCS11_LIBRARY: undefined, HSM_TOKEN_LABEL: undefined, HSM_PIN: undefined });
  t.equal(viaFile.status, 0, viaFile.stderr);
  t.match(JSON.parse(viaFile.text), { alias: 'global-opts' });
  const emptyEnv = join(root, 'empty-env');
  writeFileSync(emptyEnv, '# nothing\n');
  const noHsm = cli(['keys', 'list', '--env', emptyEnv], { HSM_PKCS11_LIBRARY: undefined });
  t.equal(noHsm.status, 2, 'no HSM configured is a usage error');
  t.match(noHsm.stderr, /^error: no HSM configured/);
});

t.test('usage errors exit 2 with the usage line; engine errors keep their typed codes', async (t) => {
  const { root, dirs } = shardDirs(3);
  const unknown = cli(['--bogus', 'keys', 'list']);
  t.equal(unknown.status, 2);
  t.match(unknown.stderr, /Unknown option '--bogus'[^]*\nusage: hsm-crypto-engine keys list\n$/);
  t.equal(cli(['--bogus']).status, 2, 'unknown option without a command');
  t.equal(cli(['--threads']).status, 2, 'missing option value');
  const badThreads = cli(['keys', 'list', '--threads', 'two']);
  t.equal(badThreads.status, 2);
  t.match(badThreads.stderr, /^error: --threads takes a whole number ≥ 1, got "two"/);
  t.equal(cli(['keys', 'list', '--threads', '0']).status, 2);
  t.equal(cli(['keys', 'get']).status, 2, 'missing key id');
  t.equal(cli(['keys', 'get', 'a', 'b']).status, 2, 'two key ids');
  t.equal(cli(['keys', 'import-token', '--ttl-ms', '-5']).status, 2);
  t.equal(cli(['demo', '--size', 'big']).status, 2);
  t.equal(cli(['bench', 'nope']).status, 2);

  const file = join(root, 'small.bin');
  writeFileSync(file, randomBytes(100));
  const store = ['--store', dirs.join(',')];
  const noKey = cli(['put', file, '--key', 'no-such-key', '--shards', '2+1', ...store]);
  t.equal(noKey.status, 3, 'KeyNotFoundError from putObject');
  t.match(noKey.stderr, /^error: ERR_KEY_NOT_FOUND: /);
  t.equal(cli(['keys', 'create', '--alias', 'shape-key']).status, 0);
  const badShape = cli(['put', file, '--key', 'shape-key', '--shards', '0+1', ...store]);
  t.equal(badShape.status, 1, 'an engine RangeError on a value that parsed is a failure, not a usage error');
  t.match(badShape.stderr, /^error: RangeError: /);
  t.notMatch(badShape.stderr, /usage:/);
});

t.test('bench outside a source checkout says how to run it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hce-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const root = fileURLToPath(new URL('..', import.meta.url));
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
  cpSync(join(root, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  symlinkSync(join(root, 'native'), join(dir, 'native'));
  const r = spawnSync(process.execPath, [join(dir, 'dist/cli/main.js'), 'bench', 'hsm'], { env, encoding: 'utf8' });
  t.equal(r.status, 1);
  t.match(r.stderr, /^error: benchmarks are not installed with the package: in a source checkout run `npm ci && npm run build && npm run bench:hsm`/);
});
