// Root keys on a real SoftHSM token: lifecycle, wrapping, errors, persistence.
import t from 'tap';
import { engineOptions, testToken } from './helpers/token.js';
import { CryptoEngine, DecryptionError, HsmError, KeyNotFoundError, KeyStateError, CryptoEngineError } from '../dist/index.js';

const token = testToken();
const opts = engineOptions();

t.test('create, get, list, rotate, disable, enable, destroy', async (t) => {
  const engine = await CryptoEngine.open(opts);
  t.teardown(() => engine.close());
  const info = await engine.keys.create({ alias: 'lifecycle' });
  t.match(info, { alias: 'lifecycle', version: 1, state: 'active', imported: false });
  t.match(info.id, /^[0-9a-f-]{36}$/);
  t.type(info.createdAt, Date);
  t.equal(info.rotatedAt, undefined);
  t.same(await engine.keys.get(info.id), info);
  t.same(await engine.keys.get('lifecycle'), info);
  t.same((await engine.keys.list()).find((k) => k.id === info.id), info);

  const dek = Buffer.alloc(32, 9);
  const w1 = await engine.keys.wrap('lifecycle', dek, { aad: ['bucket', 'object'] });
  const rotated = await engine.keys.rotate(info.id);
  t.equal(rotated.version, 2);
  t.equal(rotated.id, info.id);
  t.type(rotated.rotatedAt, Date);
  const w2 = await engine.keys.wrap(info.id, dek, { aad: ['bucket', 'object'] });
  t.equal(w2.length, w1.length, 'wrapped length is the same across versions');
  t.equal(Buffer.from(w1).readUInt32BE(20), 1);
  t.equal(Buffer.from(w2).readUInt32BE(20), 2);
  t.same(Buffer.from(await engine.keys.unwrap(w1, { aad: ['bucket', 'object'] })), dek, 'old version still unwraps');
  t.same(Buffer.from(await engine.keys.unwrap(w2, { aad: ['bucket', 'object'] })), dek);
  const re = await engine.keys.rewrap(w1, { aad: ['bucket', 'object'] });
  t.equal(Buffer.from(re).readUInt32BE(20), 2, 'rewrap moves to the newest version');
  t.same(Buffer.from(await engine.keys.unwrap(re, { aad: ['bucket', 'object'] })), dek);

  const disabled = await engine.keys.disable('lifecycle');
  t.equal(disabled.state, 'disabled');
  const isDisabled = { constructor: KeyStateError, message: 'root key is disabled' };
  const isDestroyed = { constructor: KeyStateError, message: 'root key has been destroyed' };
  await t.rejects(engine.keys.wrap(info.id, dek), isDisabled);
  await t.rejects(engine.keys.unwrap(w1, { aad: ['bucket', 'object'] }), isDisabled, 'cached DEK dropped at once');
  await t.rejects(engine.keys.rewrap(w1, { aad: ['bucket', 'object'] }), isDisabled);
  await t.rejects(engine.keys.generateDataKey(info.id), isDisabled);
  await t.rejects(engine.keys.rotate(info.id), isDisabled);
  t.equal((await engine.keys.enable(info.id)).state, 'active');
  t.same(Buffer.from(await engine.keys.unwrap(w1, { aad: ['bucket', 'object'] })), dek);

  await engine.keys.destroy(info.id);
  await t.rejects(engine.keys.get(info.id), KeyNotFoundError);
  await t.rejects(engine.keys.get('lifecycle'), KeyNotFoundError);
  await t.rejects(engine.keys.wrap(info.id, dek), KeyNotFoundError);
  await t.rejects(engine.keys.unwrap(w1, { aad: ['bucket', 'object'] }), isDestroyed, 'shredded');
  await t.rejects(engine.keys.unwrap(w2, { aad: ['bucket', 'object'] }), isDestroyed, 'every version shredded');
  t.notOk((await engine.keys.list()).some((k) => k.id === info.id));
  // The alias is free again after destroy.
  const again = await engine.keys.create({ alias: 'lifecycle' });
  t.not(again.id, info.id);
});

t.test('wrap binds aad; every changed byte fails with DecryptionError', async (t) => {
  const engine = await CryptoEngine.open(engineOptions({ dataKeyCache: false }));
  t.teardown(() => engine.close());
  const key = await engine.keys.create({ alias: 'aad-binding' });
  const { plaintext, wrapped } = await engine.keys.generateDataKey(key.id, { aad: ['a', 'b'] });
  t.equal(plaintext.length, 32);
  t.same(Buffer.from(await engine.keys.unwrap(wrapped, { aad: ['a', 'b'] })), Buffer.from(plaintext));
  for (const aad of [undefined, [], ['a'], ['ab'], ['a', 'b', ''], ['b', 'a'], Buffer.from('ab')]) {
    await t.rejects(engine.keys.unwrap(wrapped, { aad: aad as any }), DecryptionError, `aad ${JSON.stringify(aad)}`);
  }
  for (let i = 0; i < wrapped.length; i++) {
    const bad = Buffer.from(wrapped);
    bad[i] ^= 0x01;
    await t.rejects(engine.keys.unwrap(bad, { aad: ['a', 'b'] }), DecryptionError, `byte ${i}`);
  }
  await t.rejects(engine.keys.unwrap(wrapped.subarray(0, wrapped.length - 1), { aad: ['a', 'b'] }), DecryptionError);
  await t.rejects(engine.keys.unwrap(Buffer.concat([wrapped, Buffer.from([0])]), { aad: ['a', 'b'] }), DecryptionError);
  await t.rejects(engine.keys.unwrap(new Uint8Array(0)), DecryptionError);
  // Byte aad works as well, at an unaligned offset.
  const big = new Uint8Array(40);
  const view = big.subarray(3, 35);
  view.fill(5);
  const w = await engine.keys.wrap('aad-binding', view, { aad: new Uint8Array([1, 2, 3]) });
  t.same(Buffer.from(await engine.keys.unwrap(w, { aad: new Uint8Array([1, 2, 3]) })), Buffer.from(view));
  t.same(Array.from(big.subarray(0, 3)), [0, 0, 0], 'caller buffer untouched');
});

t.test('bad arguments are TypeError/RangeError (as rejections)', async (t) => {
  const engine = await CryptoEngine.open(opts);
  t.teardown(() => engine.close());
  await t.rejects(engine.keys.create({ alias: '' }), TypeError);
  await t.rejects(engine.keys.create({ alias: 'has space' }), TypeError);
  await t.rejects(engine.keys.create({ alias: '123e4567-e89b-12d3-a456-426614174000' }), TypeError);
  await t.rejects(engine.keys.create(undefined as any), TypeError);
  await t.rejects(engine.keys.get(42 as any), { constructor: TypeError, message: 'idOrAlias must be a non-empty string' });
  await t.rejects(engine.keys.get('123e4567-e89b-12d3-a456-426614174000'), KeyNotFoundError);
  await t.rejects(engine.keys.get('no-such-alias'), KeyNotFoundError);
  await engine.keys.create({ alias: 'args' });
  await t.rejects(engine.keys.create({ alias: 'args' }), { constructor: KeyStateError, message: 'alias is already in use' }, 'duplicate alias');
  await t.rejects(engine.keys.wrap('args', 'text' as any), { constructor: TypeError, message: 'plaintext must be a Uint8Array' });
  await t.rejects(engine.keys.wrap('args', new Uint8Array(0)), { constructor: RangeError, message: 'plaintext must be 1 to 4096 bytes' });
  await t.rejects(engine.keys.wrap('args', new Uint8Array(5000)), { constructor: RangeError, message: 'plaintext must be 1 to 4096 bytes' });
  await t.rejects(engine.keys.wrap('args', new Uint8Array(32), { aad: 'x' as any }), TypeError);
  await t.rejects(engine.keys.wrap('args', new Uint8Array(32), { aad: [1] as any }), TypeError);
  await t.rejects(engine.keys.unwrap([1, 2] as any), { constructor: TypeError, message: 'wrapped must be a Uint8Array' });
  await t.rejects(engine.keys.createImportToken({ ttlMs: -1 }), { constructor: RangeError, message: 'options.ttlMs must be a positive integer' });
  await t.rejects(engine.keys.createImportToken({ maxUses: 0 }), { constructor: RangeError, message: 'options.maxUses must be a positive integer' });
});

t.test('opening: wrong PIN, missing module, unknown token, bad options; no PIN in messages', async (t) => {
  const wrong = 'not-the-pin-0000';
  const err = await CryptoEngine.open({ pkcs11: { ...opts.pkcs11, pin: wrong } }).then(
    () => undefined,
    (e: unknown) => e,
  );
  // A fresh process would see CKR_PIN_INCORRECT from C_Login; here the token may already be logged in by an
  // earlier test, and the engine must still refuse the wrong PIN.
  t.type(err, HsmError);
  t.match(err, { fn: 'C_Login', ckr: 'CKR_PIN_INCORRECT', code: 'ERR_HSM' });
  t.notMatch(String((err as Error).message) + String((err as Error).stack), wrong);
  await t.rejects(CryptoEngine.open({ pkcs11: { ...opts.pkcs11, library: '/nonexistent/libpkcs11.so' } }), {
    constructor: HsmError, fn: 'C_GetFunctionList', ckr: 'CKR_GENERAL_ERROR', message: 'PKCS#11 module could not be loaded from /nonexistent/libpkcs11.so',
  });
  await t.rejects(CryptoEngine.open({ pkcs11: { ...opts.pkcs11, tokenLabel: 'no-such-token' } }), { name: 'HsmError', ckr: 'CKR_TOKEN_NOT_PRESENT' });
  await t.rejects(CryptoEngine.open({ pkcs11: { library: opts.pkcs11.library, slot: 987654, pin: 'x' } }), {
    constructor: HsmError, fn: 'C_GetSlotList', ckr: 'CKR_TOKEN_NOT_PRESENT', message: 'no token in slot 987654',
  });
  await t.rejects(CryptoEngine.open({ ...opts, threads: 0 }), { constructor: RangeError, message: 'options.threads must be an integer from 1 to 256' });
  await t.rejects(CryptoEngine.open({ ...opts, dataKeyCache: { maxAgeMs: -5 } }), { constructor: RangeError, message: 'options.dataKeyCache.maxAgeMs must be a positive integer' });
  await t.rejects(CryptoEngine.open({ pkcs11: { library: opts.pkcs11.library, pin: 'x' } as any }), { constructor: TypeError, message: 'options.pkcs11 needs tokenLabel or slot' });
  t.type(new KeyNotFoundError(), CryptoEngineError);
  t.equal(new KeyNotFoundError().code, 'ERR_KEY_NOT_FOUND');
});

t.test('opening by slot number', async (t) => {
  const { createRequire } = await import('node:module');
  const pkcs11js = createRequire(import.meta.url)('pkcs11js');
  const p = new pkcs11js.PKCS11();
  p.load(token.library);
  try {
    p.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch {
    /* already initialised by an engine in this process */
  }
  const slot: Buffer = p.C_GetSlotList(true).find((s: Buffer) => p.C_GetTokenInfo(s).label.trim() === token.tokenLabel);
  const engine = await CryptoEngine.open({ pkcs11: { library: token.library, slot: Number(slot.readBigUInt64LE(0)), pin: token.pin } });
  const byLabel = await CryptoEngine.open(opts);
  const key = await engine.keys.create({ alias: 'by-slot' });
  t.same(await byLabel.keys.get(key.id), key, 'the same token as by label');
  await byLabel.close();
  await engine.close();
});

t.test('opening from the environment', async (t) => {
  const saved = { ...process.env };
  t.teardown(() => {
    process.env = saved;
  });
  process.env.HSM_PKCS11_LIBRARY = token.library;
  process.env.HSM_TOKEN_LABEL = token.tokenLabel;
  process.env.HSM_PIN = token.pin;
  const engine = await CryptoEngine.open();
  const key = await engine.keys.create({ alias: 'from-env' });
  t.same(await engine.keys.get('from-env'), key);
  await engine.close();
  delete process.env.HSM_PIN;
  await t.rejects(CryptoEngine.open(), { constructor: TypeError, message: 'options.pkcs11 is missing and HSM_PIN is not set' });
});

t.test('state survives close and reopen; two engines share the token', async (t) => {
  const a = await CryptoEngine.open(opts);
  const key = await a.keys.create({ alias: 'persist' });
  await a.keys.rotate(key.id);
  await a.keys.disable(key.id);
  const wrappedBefore = await (async () => {
    await a.keys.enable(key.id);
    const w = await a.keys.wrap(key.id, Buffer.alloc(32, 1));
    await a.keys.disable(key.id);
    return w;
  })();
  const b = await CryptoEngine.open({ ...opts, keyInfoMaxAgeMs: 0 });
  t.match(await b.keys.get('persist'), { version: 2, state: 'disabled' });
  await a.close();
  // Closing a must not break b (module and login are process-wide).
  t.match(await b.keys.enable('persist'), { state: 'active' });
  t.same(Buffer.from(await b.keys.unwrap(wrappedBefore)), Buffer.alloc(32, 1));
  const c = await CryptoEngine.open({ ...opts, keyInfoMaxAgeMs: 0, dataKeyCache: false });
  await b.keys.disable('persist');
  await t.rejects(c.keys.unwrap(wrappedBefore), { constructor: KeyStateError, message: 'root key is disabled' }, 'disable by another engine is seen at once (no cache)');
  await t.rejects(c.keys.wrap('persist', Buffer.alloc(32)), { constructor: KeyStateError, message: 'root key is disabled' });
  await b.keys.enable('persist');
  await c.keys.destroy('persist');
  await t.rejects(b.keys.unwrap(wrappedBefore), { constructor: KeyStateError, message: 'root key has been destroyed' }, 'destroy by another engine: shredded');
  await b.close();
  await c.close();
  await c.close(); // idempotent
});

t.test('a rotation by another engine is picked up within keyInfoMaxAgeMs', async (t) => {
  const a = await CryptoEngine.open(opts);
  const b = await CryptoEngine.open({ ...opts, keyInfoMaxAgeMs: 50 });
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const key = await a.keys.create({ alias: 'rotated-elsewhere' });
  const versionOf = (w: Uint8Array) => Buffer.from(w).readUInt32BE(20);
  t.equal(versionOf(await b.keys.wrap(key.id, Buffer.alloc(32))), 1);
  await a.keys.rotate(key.id);
  let version = 1;
  for (let i = 0; i < 50 && version === 1; i++) {
    await new Promise((r) => setTimeout(r, 20));
    version = versionOf(await b.keys.wrap(key.id, Buffer.alloc(32)));
  }
  t.equal(version, 2, 'b wraps under the new version');
});

t.test('concurrency: thousands of parallel wraps and unwraps', async (t) => {
  const engine = await CryptoEngine.open(engineOptions({ dataKeyCache: false }));
  t.teardown(() => engine.close());
  const key = await engine.keys.create({ alias: 'parallel' });
  const N = 3000;
  const deks = Array.from({ length: N }, (_, i) => Buffer.alloc(32, i & 0xff));
  const wrapped = await Promise.all(deks.map((d, i) => engine.keys.wrap(key.id, d, { aad: [String(i)] })));
  const plain = await Promise.all(wrapped.map((w, i) => engine.keys.unwrap(w, { aad: [String(i)] })));
  t.same(plain.map((p) => Buffer.from(p)), deks, 'all round trips equal');
  const failures = await Promise.allSettled(wrapped.slice(0, 200).map((w, i) => engine.keys.unwrap(w, { aad: [String(i + 1)] })));
  t.same(
    failures.map((r) => r.status === 'rejected' && r.reason instanceof DecryptionError),
    Array(200).fill(true),
    'wrong aad under load: all DecryptionError',
  );

  // Synchronous HSM calls must still let the event loop turn (timers, I/O) while a caller loops over them.
  let turns = 0;
  const immediateLoop = () => {
    turns++;
    if (!stop) setImmediate(immediateLoop);
  };
  let stop = false;
  setImmediate(immediateLoop);
  for (let i = 0; i < 2000; i++) await engine.keys.wrap(key.id, deks[i]!);
  stop = true;
  t.ok(turns > 1, `the event loop turned ${turns} times during 2000 sequential wraps`);
});
