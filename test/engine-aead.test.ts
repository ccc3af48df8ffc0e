// Sealed objects through the engine on a real SoftHSM token: DEKs generated and wrapped in the HSM.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { engineOptions } from './helpers/token.js';
import { collect } from './helpers/shards.js';
import { checkDisabledRootKeyStopsObjects } from './helpers/aead-key-state.js';
import { CryptoEngine, DecryptionError, KeyStateError } from '../dist/index.js';

const engine = await CryptoEngine.open(engineOptions({ dataKeyCache: false }));
t.teardown(() => engine.close());
const key = await engine.keys.create({ alias: 'aead-hsm' });
const context = { bucket: 'b', object: 'o' };

t.test('round trips, context binding, ranges, streams', async (t) => {
  for (const size of [0, 1, 4096, (1 << 20) + 5, 5 * (1 << 20) + 3]) {
    const data = randomBytes(size);
    const sealed = await engine.encrypt(data, { keyId: key.id, context });
    t.ok((await engine.decrypt(sealed, { context })).equals(data), `${size} bytes`);
    await t.rejects(engine.decrypt(sealed, { context: { bucket: 'b' } }), DecryptionError, 'missing entry');
    await t.rejects(engine.decrypt(sealed), DecryptionError, 'no context');
    if (size > 10) {
      const offset = Math.floor(size / 3);
      t.ok((await engine.decryptRange(sealed, { offset, length: 7, context })).equals(data.subarray(offset, offset + 7)));
    }
  }
  const data = randomBytes(3 << 20);
  const sealed = await collect(Readable.from([data]).pipe(engine.createEncryptStream({ keyId: key.id, context })));
  t.ok((await collect(Readable.from([sealed]).pipe(engine.createDecryptStream({ context })))).equals(data), 'streams');
  const copies = async (chunks: AsyncIterable<Buffer>) => {
    const parts: Buffer[] = [];
    for await (const c of chunks) parts.push(Buffer.from(c));
    return Buffer.concat(parts);
  };
  const sealedChunks = await copies(engine.encryptChunks([data], { keyId: key.id, context }));
  t.ok((await engine.decrypt(sealedChunks, { context })).equals(data), 'encryptChunks');
  t.ok((await copies(engine.decryptChunks([sealed], { context }))).equals(data), 'decryptChunks');
});

t.test('rewrapHeader after rotation keeps length and payload, still decrypts', async (t) => {
  const data = randomBytes(300_000);
  const sealed = await engine.encrypt(data, { keyId: key.id, context });
  await engine.keys.rotate(key.id);
  const rewrapped = await engine.rewrapHeader(sealed, { context });
  t.equal(rewrapped.length, sealed.length);
  t.notSame(rewrapped.subarray(0, 200), sealed.subarray(0, 200), 'header changed');
  const headerLength = 168; // 82 + 84-byte wrapped DEK, padded to 8
  t.ok(Buffer.from(rewrapped.subarray(headerLength)).equals(Buffer.from(sealed.subarray(headerLength))), 'payload untouched');
  t.ok((await engine.decrypt(rewrapped, { context })).equals(data));
  t.equal(Buffer.from(rewrapped.subarray(82)).readUInt32BE(20), (await engine.keys.get(key.id)).version, 'wrapped under the newest version');
});

t.test('a disabled root key stops every object operation (KeyStateError)', async (t) => {
  await checkDisabledRootKeyStopsObjects(t, {
    cipher: engine as any,
    keyId: key.id,
    disable: () => engine.keys.disable(key.id),
    enable: () => engine.keys.enable(key.id),
  });
  const sealed = await engine.encrypt(Buffer.from('gone'), { keyId: key.id, context });
  const other = await engine.keys.create({ alias: 'aead-hsm-destroy' });
  const doomed = await engine.encrypt(Buffer.from('gone'), { keyId: other.id, context });
  await engine.keys.destroy(other.id);
  await t.rejects(engine.decrypt(doomed, { context }), KeyStateError, 'crypto-shredded');
  t.equal((await engine.decrypt(sealed, { context })).toString(), 'gone');
});
