// The engine's lifecycle on one real PKCS#11 provider (test/hsm-peers*.test.ts): the key lifecycle, BYOK, sealed
// objects, objects as shards and buckets bound to the key (registrations in the token), under the wrap mechanism the engine picks on the token and under each other one it
// can be told to use; mechanisms the token lacks refused by name.
import { constants, publicEncrypt, randomBytes } from 'node:crypto';
import type { Test } from 'tap';
import type { PeerToken } from './peer-tokens.js';
import { shardDirs } from './shards.js';
import { CryptoEngine, DecryptionError, HsmError, KeyNotFoundError, KeyStateError } from '../../dist/index.js';

/** What the engine must pick on each token, and which other mechanisms each can be told to use. */
const EXPECTED = {
  softhsm: { picks: 'AES-GCM', manufacturer: 'SoftHSM project', oaepHash: 'sha1', also: ['AES-CBC-PAD+HMAC-SHA256'], refuses: ['AES-KWP'] },
  nss: { picks: 'AES-GCM', manufacturer: 'Mozilla Foundation', oaepHash: 'sha256', also: ['AES-KWP', 'AES-CBC-PAD+HMAC-SHA256'], refuses: [] },
  opencryptoki: { picks: 'AES-CBC-PAD+HMAC-SHA256', manufacturer: 'IBM Corp.', oaepHash: 'sha256', also: [], refuses: ['AES-GCM', 'AES-KWP'] },
} as const;

const optionsFor = (peer: PeerToken, extra: Record<string, unknown> = {}, wrapMechanism?: string) => ({
  pkcs11: {
    library: peer.env.HSM_PKCS11_LIBRARY,
    tokenLabel: peer.env.HSM_TOKEN_LABEL,
    pin: peer.env.HSM_PIN,
    ...(peer.env.HSM_INIT_ARGS ? { initArgs: peer.env.HSM_INIT_ARGS } : {}),
    ...(wrapMechanism ? { wrapMechanism } : {}),
  },
  threads: 1,
  ...extra,
});

const isDisabled = { constructor: KeyStateError, message: 'root key is disabled' };
const isDestroyed = { constructor: KeyStateError, message: 'root key has been destroyed' };
const collect = async (stream: AsyncIterable<Buffer>) => {
  const parts: Buffer[] = [];
  for await (const part of stream) parts.push(part);
  return Buffer.concat(parts);
};

/** The lifecycle tests for each peer, as tap subtests of `t`. */
export function peerLifecycleTests(t: Test, peers: PeerToken[]): void {
for (const peer of peers) {
  const expected = EXPECTED[peer.name];
  for (const mechanism of [undefined, ...expected.also]) {
    const tag = `${peer.name}${mechanism ? ` forced to ${mechanism}` : ''}`;
    t.test(`${tag}: key lifecycle, BYOK, objects`, async (t) => {
      const engine = await CryptoEngine.open(optionsFor(peer, {}, mechanism));
      t.teardown(() => engine.close());
      const info = engine.hsmInfo();
      t.match(info, { library: peer.env.HSM_PKCS11_LIBRARY, manufacturer: expected.manufacturer, tokenLabel: peer.env.HSM_TOKEN_LABEL, wrapMechanism: mechanism ?? expected.picks, oaepHash: expected.oaepHash });
      t.comment(`${tag}: ${JSON.stringify(info)}`);
      const alias = `peer-${mechanism ? mechanism.replace(/[^A-Za-z0-9]/g, '') : 'default'}`;

      const key = await engine.keys.create({ alias });
      t.match(key, { alias, version: 1, state: 'active', imported: false });
      t.ok((await engine.keys.list()).some((k) => k.id === key.id), 'listed');
      t.same(await engine.keys.get(alias), key);
      const dek = randomBytes(32);
      const aad = ['bucket', 'object'];
      const w1 = await engine.keys.wrap(key.id, dek, { aad });
      t.same(Buffer.from(await engine.keys.unwrap(w1, { aad })), dek, 'round trip with aad');
      await t.rejects(engine.keys.unwrap(w1, { aad: ['bucket', 'other'] }), DecryptionError, 'wrong aad');
      const flipped = Buffer.from(w1);
      flipped[flipped.length - 1]! ^= 1;
      await t.rejects(engine.keys.unwrap(flipped, { aad }), DecryptionError, 'changed byte');
      const odd = randomBytes(17);
      t.same(Buffer.from(await engine.keys.unwrap(await engine.keys.wrap(key.id, odd), {})), odd, 'a 17-byte secret');
      // Concurrent calls (the native HSM lane where it is built): the same answers as one at a time.
      const deks = Array.from({ length: 24 }, (_, i) => randomBytes(1 + i * 3));
      const many = await Promise.all(deks.map((d, i) => engine.keys.wrap(key.id, d, { aad: [String(i)] })));
      const back = await Promise.all(many.map((w, i) => engine.keys.unwrap(w, { aad: [String(i)] })));
      t.ok(back.every((b, i) => Buffer.from(b).equals(deks[i]!)), 'concurrent round trips');
      const bad = await Promise.allSettled(many.map((w, i) => engine.keys.unwrap(w, { aad: [String(i + 1)] })));
      t.ok(bad.every((r) => r.status === 'rejected' && r.reason instanceof DecryptionError), 'concurrent wrong aad: DecryptionError');

      const rotated = await engine.keys.rotate(key.id);
      t.equal(rotated.version, 2);
      const w2 = await engine.keys.wrap(key.id, dek, { aad });
      t.equal(Buffer.from(w2).readUInt32BE(20), 2);
      t.equal(w2.length, w1.length, 'same length across versions');
      // A fresh engine, cache off: version 1 is still there (a shared CKA_ID would have let NSS replace it).
      const fresh = await CryptoEngine.open(optionsFor(peer, { dataKeyCache: false, keyInfoMaxAgeMs: 0 }, mechanism));
      t.teardown(() => fresh.close());
      t.match(await fresh.keys.get(key.id), { version: 2, state: 'active' });
      t.same(Buffer.from(await fresh.keys.unwrap(w1, { aad })), dek, 'version 1 unwraps in a fresh engine');
      t.same(Buffer.from(await fresh.keys.unwrap(await engine.keys.rewrap(w1, { aad }), { aad })), dek, 'rewrapped');

      await engine.keys.disable(key.id);
      await t.rejects(fresh.keys.unwrap(w1, { aad }), isDisabled, 'disable is seen by a second engine (held in the token)');
      await t.rejects(fresh.keys.wrap(key.id, dek), isDisabled);
      await t.rejects(engine.keys.wrap(key.id, dek), isDisabled);
      await engine.keys.enable(key.id);
      t.same(Buffer.from(await fresh.keys.unwrap(w2, { aad })), dek, 'enabled again');

      // Sealed objects (always: the header's wrapped DEK is the mechanism's) and objects as shards (default only).
      const data = randomBytes(50_000);
      const context = { bucket: 'peer', object: tag };
      const sealed = await engine.encrypt(data, { keyId: key.id, context, segmentBytes: 4096 });
      t.ok((await fresh.decrypt(sealed, { context })).equals(data), 'encrypt / decrypt');
      if (!mechanism) {
        const { store, remove } = shardDirs(3);
        t.teardown(remove);
        await engine.putObject('peer-object', data, { keyId: key.id, context, dataShards: 2, parityShards: 1, store, segmentBytes: 4096 });
        t.ok((await collect(fresh.getObject('peer-object', { store, context }))).equals(data), 'putObject / getObject');
      }

      // BYOK (with the default mechanism only: RSA-4096 generation is slow on software tokens).
      if (!mechanism) await byok(t, engine, fresh, alias, expected.oaepHash);
      if (!mechanism) await buckets(t, engine, fresh, key.id, data);

      await engine.keys.destroy(key.id, { force: true });
      await t.rejects(engine.keys.get(key.id), KeyNotFoundError);
      await t.rejects(fresh.keys.get(key.id), KeyNotFoundError, 'destroy seen by the second engine');
      await t.rejects(fresh.keys.unwrap(w1, { aad }), isDestroyed, 'shredded');
      await t.rejects(fresh.decrypt(sealed, { context }), isDestroyed);
    });
  }

  t.test(`${peer.name}: mechanisms it lacks are refused by name`, async (t) => {
    for (const mechanism of expected.refuses) {
      await t.rejects(CryptoEngine.open(optionsFor(peer, {}, mechanism)), { constructor: HsmError, ckr: 'CKR_MECHANISM_INVALID', message: new RegExp(`does not offer ${mechanism}`) });
    }
  });
}
}

/** A bucket bound to the key: registered in the token (seen by the second engine), destroy refused while it is. */
async function buckets(t: Test, engine: CryptoEngine, fresh: CryptoEngine, keyId: string, data: Buffer) {
  const { dirs, store, remove } = shardDirs(3);
  t.teardown(remove);
  const bucket = await engine.buckets.create('peer-bucket', { store, keyId, dataShards: 2, parityShards: 1 });
  await bucket.putObject('a/b', data);
  const reopened = await fresh.buckets.open('peer-bucket', { store });
  t.ok((await collect(reopened.getObject('a/b'))).equals(data), 'bucket put / get from a second engine');
  t.match(await fresh.keys.registrations(keyId), [{ bucket: 'peer-bucket', store: `fs:${dirs.join(',')}` }], 'registration held in the token');
  await t.rejects(fresh.keys.destroy(keyId), { constructor: KeyStateError, message: /registered buckets/ }, 'destroy refused while registered');
  const empty = await engine.buckets.create('peer-empty', { store, keyId, dataShards: 2, parityShards: 1 });
  t.equal((await fresh.keys.registrations(keyId)).length, 2);
  await engine.buckets.delete(empty.name, { store });
  t.same((await fresh.keys.registrations(keyId)).map((r) => r.bucket), ['peer-bucket'], 'deleting a bucket removes its registration');
}

async function byok(t: Test, engine: CryptoEngine, fresh: CryptoEngine, alias: string, oaepHash: string) {
  const dek = randomBytes(32);
  const importToken = await engine.keys.createImportToken({ maxUses: 5 });
  t.equal(importToken.oaepHash, oaepHash);
  const material = randomBytes(32);
  const encryptedKey = publicEncrypt({ key: importToken.publicKeyPem, oaepHash: importToken.oaepHash, padding: constants.RSA_PKCS1_OAEP_PADDING }, material);
  const imported = await engine.keys.import({ alias: `${alias}-byok`, importTokenId: importToken.id, encryptedKey });
  t.match(imported, { imported: true, version: 1 });
  const wi = await engine.keys.wrap(imported.id, dek);
  t.same(Buffer.from(await fresh.keys.unwrap(wi)), dek, 'wrap under an imported key');
  // Garbage the token must judge (a number below the modulus), and garbage that is not even that.
  const garbage = randomBytes(512);
  garbage[0] = 0;
  await t.rejects(engine.keys.import({ alias: `${alias}-garbage`, importTokenId: importToken.id, encryptedKey: garbage }), DecryptionError, 'garbage material');
  garbage[0] = 0xff;
  await t.rejects(engine.keys.import({ alias: `${alias}-garbage`, importTokenId: importToken.id, encryptedKey: garbage }), DecryptionError, 'garbage ≥ modulus');
  const below = Buffer.from(encryptedKey);
  below[below.length - 1]! ^= 1;
  await t.rejects(engine.keys.import({ alias: `${alias}-changed`, importTokenId: importToken.id, encryptedKey: below }), DecryptionError, 'changed material');
  await engine.keys.destroy(imported.id);
}
