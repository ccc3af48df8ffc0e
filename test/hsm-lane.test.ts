// The native HSM lane (native/pkcs11-lane.cc, src/hsm/hsm-lane.ts) on a real SoftHSM token: calls that queue run
// on it, a lone call stays on this thread; every wrap mechanism round-trips through it; failures it reports map
// like pkcs11js's (bad blob → DecryptionError, disabled key → KeyStateError); it can be switched off; the addon
// checks its arguments again.
import t from 'tap';
import { createRequire } from 'node:module';
import { engineOptions, testToken } from './helpers/token.js';
import { CryptoEngine, DecryptionError, KeyStateError } from '../dist/index.js';

const token = testToken();
process.env.HCE_HSM_LANE = '1'; // opt-in; read when an engine opens
const require = createRequire(import.meta.url);
let addon: { Lane: new (...args: unknown[]) => { submit(...args: unknown[]): void; close(): void } } | undefined;
try {
  addon = require('../native/build/Release/hsm_pkcs11.node');
} catch {
  addon = undefined;
}

const laneCalls = (engine: CryptoEngine) => engine.keys.hsmLaneStats()?.[0] ?? 0;

async function roundTrips(engine: CryptoEngine, keyId: string, n: number) {
  const deks = Array.from({ length: n }, (_, i) => Buffer.alloc(32, i));
  const wrapped = await Promise.all(deks.map((dek, i) => engine.keys.wrap(keyId, dek, { aad: ['lane', String(i)] })));
  const opened = await Promise.all(wrapped.map((w, i) => engine.keys.unwrap(w, { aad: ['lane', String(i)] })));
  return { wrapped, ok: opened.every((p, i) => Buffer.from(p).equals(deks[i]!)) };
}

t.test('queued calls run on the lane, a lone call on this thread', { skip: addon ? false : 'hsm_pkcs11 addon not built' }, async (t) => {
  const engine = await CryptoEngine.open(engineOptions({ dataKeyCache: false }));
  t.teardown(() => engine.close());
  const key = await engine.keys.create({ alias: 'lane-basic' });
  t.equal(laneCalls(engine), 0);
  for (let i = 0; i < 10; i++) await engine.keys.unwrap(await engine.keys.wrap(key.id, Buffer.alloc(32, i)));
  t.equal(laneCalls(engine), 0, 'one call at a time: none on the lane');
  const { ok } = await roundTrips(engine, key.id, 64);
  t.ok(ok, 'every round trip equal');
  t.ok(laneCalls(engine) > 0, 'concurrent calls ran on the lane');
});

// SoftHSM offers no AES-KWP: KWP through the lane is covered on NSS (test/helpers/peer-lifecycle.ts).
for (const wrapMechanism of ['AES-GCM', 'AES-CBC-PAD+HMAC-SHA256'] as const) {
  t.test(`${wrapMechanism} through the lane: round trips, bad blobs, a disabled key`, { skip: addon ? false : 'hsm_pkcs11 addon not built' }, async (t) => {
    const options = engineOptions({ dataKeyCache: false });
    const engine = await CryptoEngine.open({ ...options, pkcs11: { ...options.pkcs11, wrapMechanism } });
    t.teardown(() => engine.close());
    t.equal(engine.hsmInfo().wrapMechanism, wrapMechanism);
    const key = await engine.keys.create({ alias: `lane-${wrapMechanism.slice(0, 7).toLowerCase()}` });
    const before = laneCalls(engine);
    const { wrapped, ok } = await roundTrips(engine, key.id, 32);
    t.ok(ok, 'every round trip equal');
    t.ok(laneCalls(engine) > before, 'on the lane');

    const results = await Promise.allSettled(
      wrapped.map((w, i) => {
        const bad = Buffer.from(w);
        bad[bad.length - 1 - (i % 8)]! ^= 1 << (i % 8);
        return engine.keys.unwrap(bad, { aad: ['lane', String(i)] });
      }),
    );
    t.ok(results.every((r) => r.status === 'rejected' && r.reason instanceof DecryptionError), 'a changed byte is a DecryptionError');
    const wrongAad = await Promise.allSettled(wrapped.map((w) => engine.keys.unwrap(w, { aad: ['other'] })));
    t.ok(wrongAad.every((r) => r.status === 'rejected' && r.reason instanceof DecryptionError), 'another aad is a DecryptionError');

    await engine.keys.disable(key.id);
    const disabled = await Promise.allSettled(wrapped.map((w, i) => engine.keys.unwrap(w, { aad: ['lane', String(i)] })));
    t.ok(disabled.every((r) => r.status === 'rejected' && r.reason instanceof KeyStateError), 'a disabled key is a KeyStateError');
    await engine.keys.enable(key.id);
    t.ok((await roundTrips(engine, key.id, 16)).ok, 'enabled again');
  });
}

t.test('no lane unless HCE_HSM_LANE=1', async (t) => {
  delete process.env.HCE_HSM_LANE;
  try {
    const engine = await CryptoEngine.open(engineOptions({ dataKeyCache: false }));
    t.equal(engine.keys.hsmLaneStats(), undefined, 'default: no lane');
    await engine.close();
  } finally {
    process.env.HCE_HSM_LANE = '1';
  }
});

t.test('no lane with HCE_HSM_ASYNC_LANES=0 or HCE_HSM_LANE=0: the same results on the other paths', async (t) => {
  for (const [name, value] of [['HCE_HSM_ASYNC_LANES', '0'], ['HCE_HSM_LANE', '0']] as const) {
    const saved = process.env[name];
    process.env[name] = value;
    let engine: CryptoEngine;
    try {
      engine = await CryptoEngine.open(engineOptions({ dataKeyCache: false }));
    } finally {
      if (saved === undefined) delete process.env[name];
      else process.env[name] = saved;
    }
    const key = await engine.keys.create({ alias: `lane-off-${name.length}` });
    t.equal(engine.keys.hsmLaneStats(), undefined, `${name}=${value}: no lane`);
    t.ok((await roundTrips(engine, key.id, 32)).ok, `${name}=${value}: round trips equal`);
    await engine.close();
  }
});

t.test('the addon checks its arguments', { skip: addon ? false : 'hsm_pkcs11 addon not built' }, async (t) => {
  const Lane = addon!.Lane;
  t.throws(() => new Lane(), { constructor: TypeError });
  t.throws(() => new Lane(token.library, 'not a function', new Uint32Array(5)), { constructor: TypeError });
  const words = new Uint32Array(5 * 16);
  t.throws(() => new Lane(token.library, () => {}, new Uint8Array(80)), { constructor: TypeError }, 'result words not a Uint32Array');
  t.throws(() => new Lane('/nonexistent/libnothing.so', () => {}, words), { constructor: Error, message: /not loaded/ });
  await CryptoEngine.open(engineOptions()).then((e) => e.close()); // the module is loaded from here on
  const lane = new Lane(token.library, () => {}, words);
  t.teardown(() => lane.close());
  const handle = Buffer.alloc(8);
  const b = Buffer.alloc(16);
  t.throws(() => lane.submit(1, 0, Buffer.alloc(4), handle, 0x1087, 0, undefined, undefined, b, b), { constructor: TypeError }, 'session handle of the wrong size');
  t.throws(() => lane.submit(1, 3, handle, handle, 0x1087, 0, undefined, undefined, b, b), { constructor: TypeError }, 'unknown function');
  t.throws(() => lane.submit(1, 0, handle, handle, 0x1087, 2, b, 'aad', b, b), { constructor: TypeError }, 'GCM without aad bytes');
  t.throws(() => lane.submit(1, 0, handle, handle, 0x1087, 0, undefined, undefined, 'in', b), { constructor: TypeError }, 'input not bytes');
  t.throws(() => (lane as unknown as { call(...a: unknown[]): number }).call(0, handle, handle, 0x1087, 1, 'iv', undefined, b, b), { constructor: TypeError }, 'call: iv not bytes');
  const failed = (lane as unknown as { call(...a: unknown[]): number; lastError(): number[] }).call(0, handle, handle, 0x1087, 0, undefined, undefined, b, b);
  t.equal(failed, -1, 'call on a session that does not exist fails');
  t.same((lane as unknown as { lastError(): number[] }).lastError(), [0xb3, 0, 1], 'CKR_SESSION_HANDLE_INVALID from C_EncryptInit');
  lane.close();
  t.throws(() => lane.submit(1, 0, handle, handle, 0x1087, 0, undefined, undefined, b, b), { constructor: Error, message: /closed/ });
});
