// Keys and blobs made by the engine before per-token mechanisms (one CKA_ID shared by every version, metadata as a
// private data object "hce-meta/<id>", blobs with mechanism byte 1 sealed with pkcs11js's CK_PARAMS_AES_GCM), made
// here in-test by that old code path on SoftHSM, still work; key records are authenticated (tamper-evident).
import t from 'tap';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { engineOptions, testToken } from './helpers/token.js';
import { BucketRecordError, CryptoEngine, KeyNotFoundError, KeyStateError } from '../dist/index.js';
import { layoutWrapped, parseWrapped, MECHANISM_AES_GCM } from '../dist/hsm/wrapped-key.js';
import { encodeAad } from '../dist/hsm/aad.js';

const pkcs11js = createRequire(import.meta.url)('pkcs11js');
const token = testToken();
const opts = engineOptions({ keyInfoMaxAgeMs: 0 });

function rawSession() {
  const p = new pkcs11js.PKCS11();
  p.load(token.library);
  try {
    p.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch {
    /* already initialised by an engine in this process */
  }
  const slot = p.C_GetSlotList(true).find((s: Buffer) => p.C_GetTokenInfo(s).label.trim() === token.tokenLabel);
  const session = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    p.C_Login(session, pkcs11js.CKU_USER, token.pin);
  } catch {
    /* already logged in */
  }
  return { p, session };
}

/** What the old code did for create() and wrap(), call for call. */
function legacyKeyAndBlob(alias: string, dek: Buffer, aad: string[]) {
  const { p, session } = rawSession();
  const idBytes = randomBytes(16);
  const createdAt = Date.now();
  const key = p.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }, { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
    { type: pkcs11js.CKA_VALUE_LEN, value: 32 }, { type: pkcs11js.CKA_TOKEN, value: true }, { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_SENSITIVE, value: true }, { type: pkcs11js.CKA_EXTRACTABLE, value: false }, { type: pkcs11js.CKA_MODIFIABLE, value: true },
    { type: pkcs11js.CKA_COPYABLE, value: false }, { type: pkcs11js.CKA_DESTROYABLE, value: true },
    { type: pkcs11js.CKA_ENCRYPT, value: true }, { type: pkcs11js.CKA_DECRYPT, value: true },
    { type: pkcs11js.CKA_ID, value: idBytes }, { type: pkcs11js.CKA_LABEL, value: `hce-root/${idBytes.toString('hex')}/v1/${createdAt}` },
  ]);
  p.C_CreateObject(session, [
    { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_DATA }, { type: pkcs11js.CKA_TOKEN, value: true }, { type: pkcs11js.CKA_PRIVATE, value: true },
    { type: pkcs11js.CKA_MODIFIABLE, value: false }, { type: pkcs11js.CKA_APPLICATION, value: 'hsm-crypto-engine' },
    { type: pkcs11js.CKA_LABEL, value: `hce-meta/${idBytes.toString('hex')}` },
    { type: pkcs11js.CKA_VALUE, value: Buffer.from(JSON.stringify({ alias, createdAt, imported: false })) },
  ]);
  const iv = randomBytes(12);
  const { blob, gcmAad, sealed } = layoutWrapped(idBytes, 1, iv, encodeAad(aad), dek.length);
  p.C_EncryptInit(session, { mechanism: pkcs11js.CKM_AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_AES_GCM, iv, ivBits: 96, aad: gcmAad, tagBits: 128 } }, key);
  p.C_Encrypt(session, dek, sealed);
  p.C_CloseSession(session);
  return { id: `${idBytes.toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-')}`, blob };
}

t.test('a key and a blob made by the old code: read, unwrapped, rotated, destroyed', async (t) => {
  const dek = randomBytes(32);
  const aad = ['bucket', 'legacy'];
  const legacy = legacyKeyAndBlob('legacy-key', dek, aad);
  t.equal(parseWrapped(legacy.blob).mechanism, MECHANISM_AES_GCM, 'the old layout parses as mechanism 1');
  const engine = await CryptoEngine.open(opts);
  t.teardown(() => engine.close());
  t.match(await engine.keys.get('legacy-key'), { id: legacy.id, version: 1, state: 'active' });
  t.same(Buffer.from(await engine.keys.unwrap(legacy.blob, { aad })), dek, 'the old blob unwraps');
  await engine.keys.rotate(legacy.id);
  t.match(await engine.keys.get(legacy.id), { version: 2 });
  const fresh = await CryptoEngine.open({ ...opts, dataKeyCache: false });
  t.teardown(() => fresh.close());
  t.same(Buffer.from(await fresh.keys.unwrap(legacy.blob, { aad })), dek, 'still, after a rotation, in a fresh engine');
  const w2 = await fresh.keys.wrap(legacy.id, dek, { aad });
  t.equal(parseWrapped(w2).version, 2);
  await fresh.keys.disable(legacy.id);
  await t.rejects(engine.keys.unwrap(legacy.blob, { aad: ['x'] }), KeyStateError);
  await fresh.keys.enable(legacy.id);
  await engine.keys.destroy(legacy.id);
  await t.rejects(fresh.keys.get('legacy-key'), KeyNotFoundError);
  await t.rejects(fresh.keys.unwrap(legacy.blob, { aad }), { constructor: KeyStateError, message: 'root key has been destroyed' });
  await t.rejects(fresh.keys.unwrap(w2, { aad }), { constructor: KeyStateError, message: 'root key has been destroyed' });
});

t.test('key records are authenticated: a forged or altered record is ignored', async (t) => {
  const engine = await CryptoEngine.open(opts);
  t.teardown(() => engine.close());
  const key = await engine.keys.create({ alias: 'records-real' });
  const records = engine.keys.tokenRecords;
  const keyId = Buffer.from(key.id.replace(/-/g, ''), 'hex');
  await records.put('test', keyId, 'a', Buffer.from('one'));
  await records.put('test', keyId, 'b', Buffer.from('two'));
  const listed = await records.list('test', keyId);
  t.same(listed.map((r) => [r.name, r.value.toString()]).sort(), [['a', 'one'], ['b', 'two']], 'put / list');
  await records.remove(listed.find((r) => r.name === 'a')!);
  t.same((await records.list('test', keyId)).map((r) => r.name), ['b'], 'remove');
  t.same(await records.list('test', randomBytes(16)), [], 'another key has none');

  // Copy the real metadata record with the alias changed (same length), and forge one for a key that is not there.
  const { p, session } = rawSession();
  p.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_DATA }, { type: pkcs11js.CKA_LABEL, value: 'hce-rec/meta' }]);
  const handles: Buffer[] = p.C_FindObjects(session, 100);
  p.C_FindObjectsFinal(session);
  const mine = handles.map((h) => p.C_GetAttributeValue(session, h, [{ type: pkcs11js.CKA_VALUE }])[0].value as Buffer).find((v) => v.subarray(19, 35).equals(keyId))!;
  t.ok(mine, 'the metadata record is in the token');
  const altered = Buffer.from(mine.toString('latin1').replace('records-real', 'records-fake'), 'latin1');
  const forged = Buffer.from(altered);
  randomBytes(16).copy(forged, 19); // another key id
  for (const value of [altered, forged]) {
    p.C_CreateObject(session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_DATA }, { type: pkcs11js.CKA_TOKEN, value: true }, { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_APPLICATION, value: 'hsm-crypto-engine' }, { type: pkcs11js.CKA_LABEL, value: 'hce-rec/meta' }, { type: pkcs11js.CKA_VALUE, value },
    ]);
  }
  p.C_CloseSession(session);
  t.match(await engine.keys.get(key.id), { alias: 'records-real' }, 'the altered copy does not change the key');
  await t.rejects(engine.keys.get('records-fake'), KeyNotFoundError, 'the altered alias is not seen');
  t.notOk((await engine.keys.list()).some((k) => k.alias === 'records-fake'), 'list ignores forged records');
});

t.test('a bucket registration of the first layout (a data object MACed by the record MAC) still counts and is removed', async (t) => {
  const engine = await CryptoEngine.open(opts);
  t.teardown(() => engine.close());
  const key = await engine.keys.create({ alias: 'legacy-registration' });
  const record = { keyId: key.id, bucket: 'old-bucket', store: 'fs:/old/n0,/old/n1', createdAt: 1_700_000_000_000, gen: '018bcfe568000a1b2c3d' };
  const input = Buffer.from(JSON.stringify(['hce/registration/v1', record.keyId, record.bucket, record.store, record.createdAt, record.gen]));
  const mac = await engine.keys.bucketSupport().mac.sign(input);
  const { p, session } = rawSession();
  const create = (value: object) =>
    p.C_CreateObject(session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_DATA }, { type: pkcs11js.CKA_TOKEN, value: true }, { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_MODIFIABLE, value: false }, { type: pkcs11js.CKA_APPLICATION, value: 'hsm-crypto-engine/registration' },
      { type: pkcs11js.CKA_LABEL, value: `hce-reg/${key.id.replace(/-/g, '')}` }, { type: pkcs11js.CKA_VALUE, value: Buffer.from(JSON.stringify(value)) },
    ]);
  create({ v: 1, ...record, mac });
  t.match(await engine.keys.registrations(key.id), [{ bucket: 'old-bucket', store: record.store, createdAt: new Date(record.createdAt) }], 'listed');
  await t.rejects(engine.keys.destroy(key.id), { constructor: KeyStateError, message: /registered buckets/ }, 'destroy refused');
  await engine.keys.bucketSupport().registrations.remove(key.id, record);
  t.same(await engine.keys.registrations(key.id), [], 'removed like a current one');

  create({ v: 1, ...record, bucket: 'tampered', mac });
  p.C_CloseSession(session);
  await t.rejects(engine.keys.registrations(key.id), BucketRecordError, 'an altered one fails its integrity check');
  await t.rejects(engine.keys.destroy(key.id), KeyStateError, 'and still blocks destroy');
  await engine.keys.destroy(key.id, { force: true });
  await t.rejects(engine.keys.get(key.id), KeyNotFoundError);
});
