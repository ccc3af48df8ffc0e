// Engine options of the HSM layer, resolved without a token: env settings read (and checked) when the engine opens.
import t from 'tap';
import { resolveEngineOptions } from '../dist/options.js';
import { CryptoEngine } from '../dist/index.js';
import { engineOptions } from './helpers/token.js';

const pkcs11 = { library: '/x.so', tokenLabel: 't', pin: '1' };

t.test('HCE_HSM_ASYNC_LANES and HCE_HSM_SYNC_MAX_US: defaults, values, bad values naming the variable', async (t) => {
  t.same(resolveEngineOptions({ pkcs11 }, {}).hsmCalls, { asyncLanes: 2, syncCallMaxMicros: 250 });
  t.same(resolveEngineOptions({ pkcs11 }, { HCE_HSM_ASYNC_LANES: '4', HCE_HSM_SYNC_MAX_US: '0' }).hsmCalls, { asyncLanes: 4, syncCallMaxMicros: 0 });
  t.throws(() => resolveEngineOptions({ pkcs11 }, { HCE_HSM_ASYNC_LANES: 'two' }), { constructor: RangeError, message: /^HCE_HSM_ASYNC_LANES must be/ });
  t.throws(() => resolveEngineOptions({ pkcs11 }, { HCE_HSM_ASYNC_LANES: '-1' }), { constructor: RangeError, message: /^HCE_HSM_ASYNC_LANES must be/ });
  t.throws(() => resolveEngineOptions({ pkcs11 }, { HCE_HSM_SYNC_MAX_US: '1.5' }), { constructor: RangeError, message: /^HCE_HSM_SYNC_MAX_US must be/ });
});

t.test('env settings are read when the engine opens, not at import', async (t) => {
  const saved = process.env.HCE_HSM_ASYNC_LANES;
  t.teardown(() => {
    if (saved === undefined) delete process.env.HCE_HSM_ASYNC_LANES;
    else process.env.HCE_HSM_ASYNC_LANES = saved;
  });
  process.env.HCE_HSM_ASYNC_LANES = 'lots';
  await t.rejects(CryptoEngine.open(engineOptions()), { constructor: RangeError, message: /HCE_HSM_ASYNC_LANES/ });
  process.env.HCE_HSM_ASYNC_LANES = '1';
  const engine = await CryptoEngine.open(engineOptions());
  const key = await engine.keys.create({ alias: 'one-lane' });
  const w = await Promise.all([1, 2, 3].map((i) => engine.keys.wrap(key.id, Buffer.alloc(32, i))));
  t.same(await Promise.all(w.map((x) => engine.keys.unwrap(x).then(Buffer.from))), [1, 2, 3].map((i) => Buffer.alloc(32, i)));
  await engine.close();
});

t.test('data-key cache and session options: exact errors', async (t) => {
  t.same(resolveEngineOptions({ pkcs11 }, {}).dataKeyCache, { maxAgeMs: 60_000, maxEntries: 10_000, maxBytes: 8 * 1024 * 1024 });
  t.throws(() => resolveEngineOptions({ pkcs11, dataKeyCache: { maxBytes: 0 } }, {}), { constructor: RangeError, message: 'options.dataKeyCache.maxBytes must be a positive integer' });
  t.throws(() => resolveEngineOptions({ pkcs11, dataKeyCache: { maxEntries: 1.5 } }, {}), { constructor: RangeError, message: 'options.dataKeyCache.maxEntries must be a positive integer' });
  t.throws(() => resolveEngineOptions({ pkcs11, maxSessions: 0 }, {}), { constructor: RangeError, message: 'options.maxSessions must be a positive integer' });
  t.throws(() => resolveEngineOptions({ pkcs11, keyInfoMaxAgeMs: -1 }, {}), { constructor: RangeError, message: 'options.keyInfoMaxAgeMs must be a non-negative integer' });
  t.throws(() => resolveEngineOptions({ pkcs11, threads: 257 }, {}), { constructor: RangeError, message: 'options.threads must be an integer from 1 to 256' });
  t.throws(() => resolveEngineOptions({ pkcs11, dataKeyCache: 'big' as any }, {}), { constructor: TypeError, message: 'options.dataKeyCache must be an object or false' });
  t.equal(resolveEngineOptions({ pkcs11, dataKeyCache: false }, {}).dataKeyCache, false);
});
