// The console over plain HTTP: sign-in by token, the session cookie's flags, CSRF on every state change, Host and
// Origin checks, the strict CSP (and no inline script in what is served), the sign-in rate limit, refusal of a
// non-loopback address without TLS, the start line of the `console` command, and no PIN in any response.
import t from 'tap';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { consoleFixture, ConsoleClient } from './helpers/console.js';
import { testToken } from './helpers/token.js';
import { startConsole, STATIC_DIR } from '../dist/console/server.js';
import { CONTENT_SECURITY_POLICY } from '../dist/console/security.js';

const EXPECTED_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c)).on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject).end();
  });
}

t.test('sign-in: the token is exchanged for an HttpOnly SameSite=Strict cookie; nothing works without it', async (t) => {
  const c = await consoleFixture();
  t.teardown(() => c.close());
  t.match(c.url, new RegExp(`^http://127\\.0\\.0\\.1:\\d+/#token=[A-Za-z0-9_-]{43}$`), 'URL carries the token in the fragment');
  const client = new ConsoleClient(c.origin);

  for (const path of ['/api/keys', '/api/buckets', '/api/session']) {
    const answer = await client.request('GET', path);
    t.equal(answer.status, 401, `${path} without a session`);
    t.equal(answer.json.error.code, 'ERR_SIGNED_OUT');
  }
  const wrong = await client.signIn('x'.repeat(43));
  t.equal(wrong.status, 401);
  t.same(wrong.json, { error: { code: 'ERR_BAD_TOKEN', message: 'That access token is not right.' } });
  t.equal(wrong.headers.get('set-cookie'), null, 'no cookie for a wrong token');
  t.equal((await client.signIn(123 as unknown as string)).status, 401, 'a non-string token');

  const right = await client.signIn(c.token);
  t.equal(right.status, 200);
  t.same(Object.keys(right.json), ['csrf'], 'the answer carries the CSRF token only');
  const cookie = right.headers.get('set-cookie')!;
  t.match(cookie, /^hce_console=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict$/, 'HttpOnly, SameSite=Strict, not Secure on plain loopback');
  t.notOk(cookie.includes(c.token), 'the cookie is not the token');
  t.equal((await client.request('GET', '/api/keys')).status, 200, 'the cookie opens the API');
  t.equal((await client.request('GET', '/api/session')).json.csrf, client.csrf, 'GET /api/session gives the same CSRF token back');

  const out = await client.request('DELETE', '/api/session');
  t.equal(out.status, 200);
  t.match(out.headers.get('set-cookie'), /Max-Age=0/);
  t.equal((await client.request('GET', '/api/keys')).status, 401, 'signed out: the old cookie no longer works');
});

t.test('CSRF: every state-changing request needs the session CSRF token', async (t) => {
  const c = await consoleFixture();
  t.teardown(() => c.close());
  const client = new ConsoleClient(c.origin);
  await client.signIn(c.token);
  const missing = await client.request('POST', '/api/keys', { body: { alias: 'no-csrf' }, headers: { 'x-csrf-token': '' } });
  t.equal(missing.status, 403);
  t.equal(missing.json.error.code, 'ERR_CSRF');
  const wrong = await client.request('POST', '/api/keys', { body: { alias: 'bad-csrf' }, headers: { 'x-csrf-token': 'A'.repeat(43) } });
  t.equal(wrong.status, 403);
  const other = new ConsoleClient(c.origin);
  await other.signIn(c.token);
  const crossed = await client.request('POST', '/api/keys', { body: { alias: 'other-csrf' }, headers: { 'x-csrf-token': other.csrf } });
  t.equal(crossed.status, 403, "another session's CSRF token does not fit");
  for (const [method, path] of [['POST', '/api/keys/x/disable'], ['POST', '/api/import-tokens'], ['DELETE', '/api/session'], ['POST', '/api/buckets'], ['PUT', '/api/buckets/b/object?name=o']]) {
    t.equal((await client.request(method!, path!, { body: {}, headers: { 'x-csrf-token': '' } })).status, 403, `${method} ${path}`);
  }
  t.same((await c.engine.keys.list()).map((k) => k.alias), [], 'no refused request created a key');
  const ok = await client.request('POST', '/api/keys', { body: { alias: 'with-csrf' } });
  t.equal(ok.status, 200);
  t.match(ok.json.key, { alias: 'with-csrf', version: 1, state: 'active' });
  // A form post from another site: no CSRF header, wrong content type, and another Origin — each refused.
  const form = await client.request('POST', '/api/keys', { raw: 'alias=evil', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example' } });
  t.equal(form.status, 403);
  t.equal(form.json.error.code, 'ERR_ORIGIN');
  const plainForm = await client.request('POST', '/api/keys', { raw: 'alias=evil', headers: { 'content-type': 'text/plain', 'x-csrf-token': '' } });
  t.equal(plainForm.status, 403);
});

t.test('Host and Origin: another name (DNS rebinding) or another site is refused', async (t) => {
  const c = await consoleFixture();
  t.teardown(() => c.close());
  const port = new URL(c.origin).port;
  t.equal((await rawGet(`${c.origin}/`, { host: `evil.example:${port}` })).status, 421);
  t.equal((await rawGet(`${c.origin}/api/keys`, { host: `evil.example:${port}` })).status, 421);
  t.equal((await rawGet(`${c.origin}/`, { host: `localhost:${port}` })).status, 200, 'localhost is the same console');
  const client = new ConsoleClient(c.origin);
  await client.signIn(c.token);
  const cross = await client.request('GET', '/api/keys', { headers: { origin: 'http://evil.example' } });
  t.equal(cross.status, 403);
  t.equal((await client.request('GET', '/api/keys', { headers: { origin: c.origin } })).status, 200);
});

t.test('CSP and headers: strict policy on every answer, no inline script or handler in what is served', async (t) => {
  const c = await consoleFixture();
  t.teardown(() => c.close());
  t.equal(CONTENT_SECURITY_POLICY, EXPECTED_CSP);
  const client = new ConsoleClient(c.origin);
  const files = readdirSync(STATIC_DIR);
  t.ok(files.includes('index.html') && files.includes('app.js'));
  for (const path of ['/', ...files.map((f) => `/${f}`), '/api/keys', '/no-such-page']) {
    const answer = await client.request('GET', path);
    t.equal(answer.headers.get('content-security-policy'), EXPECTED_CSP, `CSP on ${path}`);
    t.equal(answer.headers.get('x-content-type-options'), 'nosniff');
    t.equal(answer.headers.get('x-frame-options'), 'DENY');
    t.equal(answer.headers.get('referrer-policy'), 'no-referrer');
  }
  t.equal((await client.request('GET', '/api/keys')).headers.get('cache-control'), 'no-store');
  const html = (await client.request('GET', '/')).text;
  const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
  t.ok(scripts.length > 0);
  for (const [, attrs, body] of scripts) {
    t.match(attrs, /\bsrc="\/[a-z-]+\.js"/, 'every script is a same-origin file');
    t.equal(body!.trim(), '', 'no inline script');
  }
  for (const file of files) {
    const text = readFileSync(join(STATIC_DIR, file), 'utf8');
    t.notMatch(text, /\son[a-z]+\s*=\s*["']/i, `${file}: no inline event handler attribute`);
    t.notMatch(text, /\beval\(|new Function\(|\.innerHTML\s*=|https?:\/\/(?!www\.w3\.org)/, `${file}: no eval, no innerHTML, no other origin`);
  }
});

t.test('failed sign-ins are rate-limited per client, even the right token waits', async (t) => {
  const c = await consoleFixture({ signInLimit: { maxFailures: 3, windowMs: 10 * 60_000 } });
  t.teardown(() => c.close());
  const client = new ConsoleClient(c.origin);
  for (let i = 0; i < 3; i++) t.equal((await client.signIn(`wrong-token-${i}-xxxxxxxxxxxx`)).status, 401);
  const limited = await client.signIn(c.token);
  t.equal(limited.status, 429);
  t.equal(limited.json.error.code, 'ERR_RATE_LIMITED');
  t.ok(Number(limited.headers.get('retry-after')) > 0, 'Retry-After is given');
  t.equal(limited.headers.get('set-cookie'), null);
});

t.test('binding: loopback only without TLS; with a certificate another address works and the cookie is Secure', async (t) => {
  const c = await consoleFixture();
  t.teardown(() => c.close());
  await t.rejects(startConsole({ engine: c.engine, host: '0.0.0.0' }), { constructor: RangeError, message: /refusing to listen on 0\.0\.0\.0 without TLS/ });
  await t.rejects(startConsole({ engine: c.engine, host: '192.0.2.1' }), RangeError);
  await t.rejects(startConsole({ engine: c.engine, token: 'short' }), { constructor: RangeError, message: 'options.token must be at least 16 characters' });
  await t.rejects(startConsole(undefined as any), { constructor: TypeError, message: 'options.engine is required' });

  const dir = mkdtempSync(join(tmpdir(), 'hce-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=console.test'], { stdio: 'ignore' });
  const tls = await startConsole({ engine: c.engine, host: '0.0.0.0', tls: { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) }, log: () => {} });
  t.teardown(() => tls.close());
  t.match(tls.url, /^https:\/\/0\.0\.0\.0:\d+\/#token=/);
  const port = new URL(tls.origin).port;
  const answer = await new Promise<{ status: number; cookie: string | undefined }>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/api/session', method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } }, (res) => {
      res.resume().on('end', () => resolve({ status: res.statusCode!, cookie: res.headers['set-cookie']?.[0] }));
    });
    req.on('error', reject).end(JSON.stringify({ token: tls.token }));
  });
  t.equal(answer.status, 200);
  t.match(answer.cookie, /; HttpOnly; SameSite=Strict; Secure$/);
});

t.test('errors are told in words, never a stack trace; no PIN in any answer', async (t) => {
  const c = await consoleFixture();
  t.teardown(() => c.close());
  const client = new ConsoleClient(c.origin);
  await client.signIn(c.token);
  t.same((await client.request('POST', '/api/keys', { body: {} })).json, { error: { code: 'ERR_INVALID_ARGUMENT', message: 'Alias is required.' } });
  const created = await client.request('POST', '/api/keys', { body: { alias: 'tenant-a' } });
  t.equal(created.json.key.alias, 'tenant-a');
  const dup = await client.request('POST', '/api/keys', { body: { alias: 'tenant-a' } });
  t.equal(dup.status, 409);
  t.equal(dup.json.error.code, 'ERR_KEY_STATE');
  const unknown = await client.request('POST', '/api/keys/no-such-key/rotate', { body: {} });
  t.same(unknown.json, { error: { code: 'ERR_KEY_NOT_FOUND', message: 'There is no such root key (it may have been destroyed).' } });
  t.equal(unknown.status, 404);
  t.equal((await client.request('POST', '/api/keys/tenant-a/disable', { body: {} })).json.key.state, 'disabled');
  const rotateDisabled = await client.request('POST', '/api/keys/tenant-a/rotate', { body: {} });
  t.equal(rotateDisabled.status, 409);
  t.same(rotateDisabled.json.error, { code: 'ERR_KEY_STATE', message: 'The root key is disabled: nothing under it can be read or written until it is enabled again.' });
  t.equal((await client.request('POST', '/api/keys/tenant-a/enable', { body: {} })).json.key.state, 'active');
  t.equal((await client.request('POST', '/api/keys/tenant-a/rotate', { body: {} })).json.key.version, 2);
  const badJson = await client.request('POST', '/api/keys', { raw: '{"alias":', headers: { 'content-type': 'application/json' } });
  t.equal(badJson.status, 400);
  t.same(badJson.json.error.message, 'The request was not understood.');
  const badKeyFile = await client.request('POST', '/api/keys/import', { body: { alias: 'byok', importTokenId: 'x', encryptedKey: '%%%%not base64%%%%' } });
  t.equal(badKeyFile.json.error.message, 'The encrypted key file must be the RSA-OAEP ciphertext, raw or base64.');
  const token = await client.request('POST', '/api/import-tokens', { body: {} });
  t.match(token.json.importToken.publicKeyPem, /^-----BEGIN PUBLIC KEY-----/);
  t.notOk('privateKey' in token.json.importToken);
  const garbage = await client.request('POST', '/api/keys/import', { body: { alias: 'byok', importTokenId: token.json.importToken.id, encryptedKey: Buffer.alloc(512, 7).toString('base64') } });
  t.equal(garbage.json.error.code, 'ERR_DECRYPTION');
  const forcedWithoutAlias = await client.request('POST', '/api/keys/tenant-a/destroy', { body: { force: true, confirmAlias: 'tenant' } });
  t.same(forcedWithoutAlias.json.error, { code: 'ERR_CONFIRMATION', message: 'A forced destroy needs the alias typed exactly ("tenant-a").' });
  t.equal((await client.request('GET', '/api/no-such-route')).status, 404);

  const pin = testToken().pin;
  t.ok(pin.length >= 4);
  for (const seen of client.seen) {
    t.notOk(seen.includes(pin), 'no PIN in an answer');
    t.notMatch(seen, /\n\s+at .+:\d+:\d+|\.ts:\d+|node_modules/, 'no stack trace');
  }
  t.ok(client.seen.length >= 12);
  t.same(c.logged, [], 'nothing unexpected was logged');
});

t.test('`console` command: prints one line with the URL, nothing else; refuses 0.0.0.0 without TLS', async (t) => {
  testToken();
  const main = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'hce-console-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tokenFile = join(dir, 'token');
  writeFileSync(tokenFile, 'a-fixed-console-token-for-tests\n');
  const child = spawn(process.execPath, [main, 'console', '--port', '0', '--store', join(dir, 'n0'), '--store', join(dir, 'n1'), '--token-file', tokenFile, '--threads', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (c) => {
      stdout += c;
      if (stdout.includes('\n')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`console exited ${code}: ${stderr}`)));
  });
  t.match(stdout, /^console: http:\/\/127\.0\.0\.1:\d+\/#token=a-fixed-console-token-for-tests\n$/);
  const origin = /http:\/\/[^/]+/.exec(stdout)![0];
  const client = new ConsoleClient(origin);
  t.equal((await client.signIn('a-fixed-console-token-for-tests')).status, 200, 'the token file is the token');
  t.equal((await client.request('GET', '/api/keys')).status, 200);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal)));
  child.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM stops it cleanly');
  t.equal(stdout.split('\n').filter(Boolean).length, 1, 'one line on stdout');
  t.notOk(stdout.includes(testToken().pin) || stderr.includes(testToken().pin), 'no PIN printed');
  t.equal(stderr, '');

  const refused = spawn(process.execPath, [main, 'console', '--host', '0.0.0.0', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let refusedErr = '';
  refused.stderr.on('data', (c) => (refusedErr += c));
  const code = await new Promise((resolve) => refused.once('exit', resolve));
  t.not(code, 0);
  t.match(refusedErr, /refusing to listen on 0\.0\.0\.0 without TLS/);
});

t.test('buckets over HTTP: streamed upload past the JSON limit, download, listing pages, progress lines, errors in words', async (t) => {
  const c = await consoleFixture();
  t.teardown(() => c.close());
  const client = new ConsoleClient(c.origin);
  await client.signIn(c.token);
  await client.request('POST', '/api/keys', { body: { alias: 'tenant-a' } });
  const created = await client.request('POST', '/api/buckets', { body: { name: 'photos', keyId: 'tenant-a', dataShards: 2, parityShards: 2 } });
  t.equal(created.status, 200);
  t.match(created.json.bucket, { name: 'photos', keyAlias: 'tenant-a', dataShards: 2, parityShards: 2 });
  t.same((await client.request('POST', '/api/buckets', { body: { name: 'photos', keyId: 'tenant-a', dataShards: 2, parityShards: 2 } })).json.error,
    { code: 'ERR_BUCKET_EXISTS', message: 'A bucket with that name already exists.' });
  t.equal((await client.request('POST', '/api/buckets', { body: { name: 'Bad_Name', keyId: 'tenant-a', dataShards: 2, parityShards: 2 } })).status, 400);
  t.same((await client.request('POST', '/api/buckets', { body: { name: 'zero', keyId: 'tenant-a', dataShards: 0, parityShards: 2 } })).json.error.message,
    'Data shards (k) must be a whole number from 1 to 256.');

  const big = Buffer.alloc(1024 * 1024 + 7, 0x5a); // 16× the JSON body limit: uploads are streams
  const put = await client.request('PUT', '/api/buckets/photos/object?name=a%2Fbig.bin', { raw: big, headers: { 'content-type': 'application/octet-stream' } });
  t.equal(put.status, 200, put.text);
  t.match(put.json.object, { bucket: 'photos', name: 'a/big.bin', size: big.length });
  for (const name of ['a/1', 'a/2', 'b/3']) await client.request('PUT', `/api/buckets/photos/object?name=${encodeURIComponent(name)}`, { raw: Buffer.from(name), headers: { 'content-type': 'application/octet-stream' } });

  const download = await fetch(`${c.origin}/api/buckets/photos/object?name=a%2Fbig.bin`, { headers: { cookie: client.cookie } });
  t.equal(download.status, 200);
  t.equal(download.headers.get('content-disposition'), `attachment; filename="big.bin"; filename*=UTF-8''big.bin`);
  t.ok(Buffer.from(await download.arrayBuffer()).equals(big), 'downloaded bytes equal');

  const page1 = (await client.request('GET', '/api/buckets/photos/objects?prefix=a%2F&limit=2')).json;
  t.same(page1.objects.map((o: { name: string }) => o.name), ['a/1', 'a/2']);
  t.equal(page1.next, 'a/2');
  const page2 = (await client.request('GET', `/api/buckets/photos/objects?prefix=a%2F&limit=2&startAfter=${encodeURIComponent(page1.next)}`)).json;
  t.same(page2.objects.map((o: { name: string }) => o.name), ['a/big.bin']);
  t.equal(page2.next, null);
  t.same((await client.request('GET', '/api/buckets?keyId=tenant-a')).json.buckets.map((b: { name: string }) => b.name), ['photos']);

  await c.engine.keys.rotate('tenant-a');
  const rewrap = await client.request('POST', '/api/buckets/photos/rewrap', { body: {} });
  t.equal(rewrap.headers.get('content-type'), 'application/x-ndjson; charset=utf-8');
  const lines = rewrap.text.trim().split('\n').map((line) => JSON.parse(line));
  t.match(lines.at(-1), { result: { bucketKeys: Number, rewrapped: Number } });
  const repair = (await client.request('POST', '/api/buckets/photos/repair', { body: {} })).text.trim().split('\n').map((line) => JSON.parse(line));
  t.same(repair[0], { done: 0, total: 4 });
  t.match(repair.at(-1), { result: { objects: 4 } });

  await c.engine.keys.disable('tenant-a');
  const disabled = await client.request('GET', '/api/buckets/photos/object?name=a%2F1&probe=1');
  t.equal(disabled.status, 409);
  t.same(disabled.json.error, { code: 'ERR_KEY_STATE', message: 'The root key is disabled: nothing under it can be read or written until it is enabled again.' });
  const disabledPut = await client.request('PUT', '/api/buckets/photos/object?name=x', { raw: Buffer.from('x'), headers: { 'content-type': 'application/octet-stream' } });
  t.equal(disabledPut.json.error.code, 'ERR_KEY_STATE');
  t.equal((await client.request('POST', '/api/buckets', { body: { name: 'later', keyId: 'tenant-a', dataShards: 2, parityShards: 1 } })).json.error.code, 'ERR_KEY_STATE');
  await c.engine.keys.enable('tenant-a');

  // Three of four nodes gone: more than m = 2 shards missing.
  for (const node of [0, 1, 2]) rmSync(join(c.root, `node${node}`), { recursive: true, force: true });
  const down = await client.request('GET', '/api/buckets/photos/object?name=a%2F1&probe=1');
  t.equal(down.status, 503);
  t.equal(down.json.error.code, 'ERR_ERASURE');
  t.match(down.json.error.message, /^Too many storage nodes are down or damaged to read this object \(.*\)\. Bring nodes back, then repair\.$/);
  t.same((await client.request('GET', '/api/buckets/nope/objects')).json.error, { code: 'ERR_BUCKET_NOT_FOUND', message: 'There is no such bucket.' });
  for (const seen of client.seen) t.notOk(seen.includes(c.pin), 'no PIN');
});
