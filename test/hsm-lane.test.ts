// The native HSM lane (native/pkcs11-lane.cc, src/hsm/hsm-lane.ts) on a real SoftHSM token: calls that queue run
// on it, a lone call stays on this thread; every wrap mechanism round-trips through it; failures it reports map
// like pkcs11js's (bad blob → DecryptionError, disabled key → KeyStateError); it can be switched off; the addon
// checks its arguments again; a second lane takes calls only once the first has many.
import t from 'tap';
import { createRequire } from 'node:module';
import { engineOptions, testToken } from './helpers/token.js';
import { CryptoEngine, DecryptionError, KeyStateError } from '../dist/index.js';
import { moduleGate } from '../dist/hsm/module-gate.js';

const token = testToken();
process.env.HCE_HSM_LANE = '1'; // the default too (kept explicit: these tests are about the lane); read when an engine opens
const require = createRequire(import.meta.url);
let addon: { Lane: new (...args: any[]) => { submit(...args: unknown[]): void; close(): void } } | undefined; // eslint-disable-line @typescript-eslint/no-explicit-any
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

// SoftHSM 2.6.1 lost a key for the rest of the process when C_SetAttributeValue on it raced a lane C_EncryptInit
// (the object's file re-read half-written on the lane thread), and creating objects raced re-indexing: object
// management now runs alone on the module (src/hsm/module-gate.ts). 64 callers keep wraps and unwraps on the lane
// while keys are created, rotated, disabled, enabled, listed and destroyed — including the key in use.
t.test('object management while many lane calls run: no HSM error, the key in use survives', { skip: addon ? false : 'hsm_pkcs11 addon not built' }, async (t) => {
  const engine = await CryptoEngine.open(engineOptions({ dataKeyCache: false }));
  t.teardown(() => engine.close());
  const gate = moduleGate(testToken().library);
  const key = await engine.keys.create({ alias: 'lane-busy' });
  const dek = Buffer.alloc(32, 9);
  const blob = await engine.keys.wrap(key.id, dek, { aad: ['busy'] });
  const lane0 = laneCalls(engine);
  const unexpected: string[] = [];
  let keyState = 0;
  let done = false;
  let crypts = 0;
  const traffic = Array.from({ length: 64 }, async (_, i) => {
    while (!done) {
      try {
        const w = await engine.keys.wrap(key.id, dek, { aad: ['busy', String(i)] });
        if (!Buffer.from(await engine.keys.unwrap(w, { aad: ['busy', String(i)] })).equals(dek)) unexpected.push('round trip differs');
        if (!Buffer.from(await engine.keys.unwrap(blob, { aad: ['busy'] })).equals(dek)) unexpected.push('old blob differs');
        crypts += 3;
      } catch (err) {
        // While the key is disabled its calls fail with KeyStateError; nothing else may fail.
        if (!(err instanceof KeyStateError)) unexpected.push(`${(err as Error).name}: ${(err as Error).message}`);
        else keyState++;
      }
    }
  });
  let waited = 0; // management calls begun while lane calls held the module
  const manage = async <T>(call: () => Promise<T>): Promise<T> => {
    if (gate.state.shared > 0) waited++;
    try {
      return await call();
    } catch (err) {
      unexpected.push(`management: ${(err as Error).name}: ${(err as Error).message}`);
      throw err;
    }
  };
  try {
    for (let round = 0; round < 6; round++) {
      const other = await manage(() => engine.keys.create({ alias: `lane-busy-${round}` }));
      await manage(() => engine.keys.rotate(other.id));
      await manage(() => engine.keys.disable(other.id));
      await manage(() => engine.keys.enable(other.id));
      await manage(() => engine.keys.list());
      await manage(() => engine.keys.destroy(other.id, { force: true }));
    }
    // The key the traffic uses: its object file is rewritten each time.
    for (let round = 0; round < 20; round++) {
      await manage(() => engine.keys.disable(key.id));
      await manage(() => engine.keys.enable(key.id));
    }
  } finally {
    done = true;
    await Promise.all(traffic);
  }
  t.same([...new Set(unexpected)], [], 'no call failed but with KeyStateError while its key was disabled');
  t.ok(waited > 0, `management calls met lane calls in flight (${waited})`);
  t.ok(laneCalls(engine) - lane0 > crypts / 2, 'most calls ran on the lane');
  t.match(await engine.keys.get(key.id), { id: key.id, state: 'active' }, 'the key in use is still found');
  t.ok((await roundTrips(engine, key.id, 64)).ok, 'and wraps and unwraps on the lane');
  t.same(Buffer.from(await engine.keys.unwrap(blob, { aad: ['busy'] })), dek, 'a blob made before unwraps');
  t.comment(`${crypts} calls, ${keyState} refused while disabled`);
});

// The same race at its smallest, on the parts the engine composes (the addon's lane thread, the module gate, SoftHSM):
// a stream of lane C_EncryptInit/C_Encrypt on a key while this thread rewrites the key's attributes. Without the
// gate SoftHSM lost the key (CKR_GENERAL_ERROR, then CKR_OBJECT_HANDLE_INVALID on every call) within 4 s in every
// scratch run; with it, C_SetAttributeValue runs only between lane calls.
t.test('C_SetAttributeValue through the gate never meets a lane call on the same key', { skip: addon ? false : 'hsm_pkcs11 addon not built' }, async (t) => {
  await CryptoEngine.open(engineOptions()).then((e) => e.close()); // the module is loaded from here on
  const pk = require('pkcs11js');
  const p = new pk.PKCS11();
  p.load(token.library);
  try {
    p.C_Initialize({ flags: pk.CKF_OS_LOCKING_OK });
  } catch {
    /* initialised by the engine */
  }
  const slot = p.C_GetSlotList(true).find((s: Buffer) => p.C_GetTokenInfo(s).label.trim() === token.tokenLabel);
  const rw = pk.CKF_SERIAL_SESSION | pk.CKF_RW_SESSION;
  const laneSession: Buffer = p.C_OpenSession(slot, rw);
  const session: Buffer = p.C_OpenSession(slot, rw);
  try {
    p.C_Login(session, pk.CKU_USER, token.pin);
  } catch {
    /* logged in already (the login is process-wide) */
  }
  t.teardown(() => {
    p.C_CloseSession(laneSession);
    p.C_CloseSession(session);
  });
  const key: Buffer = p.C_GenerateKey(session, { mechanism: pk.CKM_AES_KEY_GEN }, [
    { type: pk.CKA_CLASS, value: pk.CKO_SECRET_KEY }, { type: pk.CKA_KEY_TYPE, value: pk.CKK_AES }, { type: pk.CKA_VALUE_LEN, value: 32 },
    { type: pk.CKA_TOKEN, value: true }, { type: pk.CKA_PRIVATE, value: true }, { type: pk.CKA_SENSITIVE, value: true },
    { type: pk.CKA_ENCRYPT, value: true }, { type: pk.CKA_MODIFIABLE, value: true }, { type: pk.CKA_LABEL, value: 'lane-gate-race' },
  ]);
  const gate = moduleGate(token.library);
  const words = new Uint32Array(5 * 256);
  const failures = new Map<string, number>();
  const fail = (what: string) => failures.set(what, (failures.get(what) ?? 0) + 1);
  let inFlight = 0;
  let nextId = 0;
  let ran = 0;
  let stop = false;
  const iv = Buffer.alloc(12, 1);
  const aad = Buffer.alloc(16);
  const input = Buffer.alloc(32, 2);
  const outputs = Array.from({ length: 64 }, () => Buffer.alloc(48));
  const submit = async () => {
    inFlight++;
    const wait = gate.share();
    if (wait) await wait;
    lane.submit(++nextId, 0, laneSession, key, pk.CKM_AES_GCM, 2, iv, aad, input, outputs[nextId % 64]!);
  };
  const lane = new addon!.Lane(token.library, (count: number) => {
    for (let i = 0; i < count; i++) {
      gate.release();
      inFlight--;
      ran++;
      if (words[i * 5 + 1] !== 0 || words[i * 5 + 2] !== 0) fail(`lane 0x${words[i * 5 + 1]!.toString(16)}`);
    }
    while (!stop && inFlight < 64) void submit();
  }, words);
  t.teardown(() => lane.close());
  while (inFlight < 64) void submit();
  let rewrites = 0;
  for (let round = 0; round < 600; round++) {
    await gate.exclusive(() => {
      try {
        p.C_SetAttributeValue(session, key, [{ type: pk.CKA_ENCRYPT, value: true }]);
        rewrites++;
      } catch (err) {
        fail(`C_SetAttributeValue ${(err as Error).message.split(':')[0]}`);
      }
    });
    await new Promise((resolve) => setImmediate(resolve));
  }
  stop = true;
  while (inFlight > 0) await new Promise((resolve) => setImmediate(resolve));
  t.same(Object.fromEntries(failures), {}, 'no lane call and no attribute write failed');
  t.equal(rewrites, 600);
  t.ok(ran > 600, `lane calls ran between the writes (${ran})`);
  p.C_EncryptInit(session, { mechanism: pk.CKM_AES_GCM, parameter: { type: pk.CK_PARAMS_AES_GCM_v240, iv, ivBits: 96, aad, tagBits: 128 } }, key);
  t.equal(p.C_Encrypt(session, input, Buffer.alloc(48)).length, 48, 'the key still encrypts');
});

t.test('a second lane takes calls only once the first has many (and never with HCE_HSM_ASYNC_LANES=1)', { skip: addon ? false : 'hsm_pkcs11 addon not built' }, async (t) => {
  const lanesUsed = (engine: CryptoEngine) => engine.keys.hsmLaneStats()?.[5];
  const engine = await CryptoEngine.open(engineOptions({ dataKeyCache: false }));
  t.teardown(() => engine.close());
  const key = await engine.keys.create({ alias: 'lane-spill' });
  for (let i = 0; i < 3; i++) t.ok((await roundTrips(engine, key.id, 8)).ok, '8 at once: round trips equal');
  t.equal(lanesUsed(engine), 1, '8 at once: one lane');
  t.ok((await roundTrips(engine, key.id, 128)).ok, '128 at once: round trips equal');
  t.equal(lanesUsed(engine), 2, '128 at once: the second lane took some');

  const saved = process.env.HCE_HSM_ASYNC_LANES;
  process.env.HCE_HSM_ASYNC_LANES = '1';
  let single: CryptoEngine;
  try {
    single = await CryptoEngine.open(engineOptions({ dataKeyCache: false }));
  } finally {
    if (saved === undefined) delete process.env.HCE_HSM_ASYNC_LANES;
    else process.env.HCE_HSM_ASYNC_LANES = saved;
  }
  t.teardown(() => single.close());
  t.ok((await roundTrips(single, key.id, 128)).ok, 'HCE_HSM_ASYNC_LANES=1: round trips equal');
  t.equal(lanesUsed(single), 1, 'HCE_HSM_ASYNC_LANES=1: one lane');
});

t.test('queued calls go to the lane by default; HCE_HSM_LANE=queue-off keeps them on the direct calls', async (t) => {
  for (const [value, expectLane] of [[undefined, true], ['queue-off', false]] as const) {
    if (value === undefined) delete process.env.HCE_HSM_LANE;
    else process.env.HCE_HSM_LANE = value;
    try {
      const engine = await CryptoEngine.open(engineOptions({ dataKeyCache: false }));
      const key = await engine.keys.create({ alias: `lane-default-${value ?? 'unset'}` });
      t.ok((await roundTrips(engine, key.id, 64)).ok, `${value ?? 'unset'}: round trips equal`);
      const stats = engine.keys.hsmLaneStats();
      if (expectLane) t.ok(stats && stats[0]! > 0, 'default: the lane ran calls');
      else t.ok(stats === undefined || stats[0] === 0, 'queue-off: no call ran on a lane thread');
      await engine.close();
    } finally {
      process.env.HCE_HSM_LANE = '1';
    }
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
