// Bring-your-own-key over RSA-OAEP with node:crypto as the client, and root keys proven non-extractable
// through raw PKCS#11 calls on the same token.
import t from 'tap';
import { constants, publicEncrypt, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { engineOptions, testToken } from './helpers/token.js';
import { CryptoEngine, DecryptionError, KeyNotFoundError, KeyStateError } from '../dist/index.js';

const pkcs11js = createRequire(import.meta.url)('pkcs11js');
const token = testToken();
const opts = engineOptions();

function encryptFor(importToken: { publicKeyPem: string; oaepHash: string }, material: Buffer): Buffer {
  return publicEncrypt({ key: importToken.publicKeyPem, oaepHash: importToken.oaepHash, padding: constants.RSA_PKCS1_OAEP_PADDING }, material);
}

t.test('import: round trip, then the material is usable only inside the HSM', async (t) => {
  const engine = await CryptoEngine.open(opts);
  t.teardown(() => engine.close());
  const before = Date.now();
  const importToken = await engine.keys.createImportToken({ maxUses: 3 });
  const after = Date.now();
  t.match(importToken.publicKeyPem, /^-----BEGIN PUBLIC KEY-----/);
  t.ok(['sha1', 'sha256'].includes(importToken.oaepHash));
  t.equal(importToken.remainingUses, 3);
  t.type(importToken.expiresAt, Date);
  // Default ttl 10 minutes, counted from creation.
  t.ok(importToken.expiresAt.getTime() >= before + 600_000 && importToken.expiresAt.getTime() <= after + 600_000, 'expires 10 min after creation');

  const info = await engine.keys.import({ alias: 'byok', importTokenId: importToken.id, encryptedKey: encryptFor(importToken, randomBytes(32)) });
  t.match(info, { alias: 'byok', version: 1, imported: true, state: 'active' });
  const { plaintext, wrapped } = await engine.keys.generateDataKey('byok', { aad: ['x'] });
  t.same(Buffer.from(await engine.keys.unwrap(wrapped, { aad: ['x'] })), Buffer.from(plaintext));

  for (const bytes of [16, 24]) {
    const k = await engine.keys.import({ alias: `byok-${bytes}`, importTokenId: importToken.id, encryptedKey: encryptFor(importToken, randomBytes(bytes)) });
    const w = await engine.keys.wrap(k.id, Buffer.alloc(32, 3));
    t.same(Buffer.from(await engine.keys.unwrap(w)), Buffer.alloc(32, 3), `AES-${bytes * 8} imported key wraps`);
  }
  await t.rejects(
    engine.keys.import({ alias: 'byok-4', importTokenId: importToken.id, encryptedKey: encryptFor(importToken, randomBytes(32)) }),
    { constructor: KeyStateError, message: 'import token has expired or is used up' },
    'used-up token',
  );
});

t.test('import errors: expired token, unknown token, garbage, bad length, duplicate alias', async (t) => {
  const engine = await CryptoEngine.open(opts);
  t.teardown(() => engine.close());
  const expiring = await engine.keys.createImportToken({ ttlMs: 1 });
  await new Promise((r) => setTimeout(r, 5));
  await t.rejects(engine.keys.import({ alias: 'late', importTokenId: expiring.id, encryptedKey: encryptFor(expiring, randomBytes(32)) }), { constructor: KeyStateError, message: 'import token has expired or is used up' });
  await t.rejects(engine.keys.import({ alias: 'nope', importTokenId: 'no-such-token', encryptedKey: Buffer.alloc(512) }), { constructor: KeyNotFoundError, message: 'import token not found' });
  const tok = await engine.keys.createImportToken({ maxUses: 5 });
  await t.rejects(engine.keys.import({ alias: 'garbage', importTokenId: tok.id, encryptedKey: randomBytes(512) }), DecryptionError);
  await t.rejects(engine.keys.import({ alias: 'short', importTokenId: tok.id, encryptedKey: encryptFor(tok, randomBytes(20)) }), { constructor: RangeError, message: 'imported key material must be 16, 24 or 32 bytes' });
  await t.rejects(engine.keys.import({ alias: 'wrap-only', importTokenId: tok.id, encryptedKey: 'abc' as any }), { constructor: TypeError, message: 'options.encryptedKey must be a Uint8Array' });
  await engine.keys.create({ alias: 'taken' });
  await t.rejects(engine.keys.import({ alias: 'taken', importTokenId: tok.id, encryptedKey: encryptFor(tok, randomBytes(32)) }), { constructor: KeyStateError, message: 'alias is already in use' });
  t.notOk((await engine.keys.list()).some((k) => ['garbage', 'short'].includes(k.alias)), 'failed imports leave no key');
});

t.test('root keys are sensitive and non-extractable (raw PKCS#11)', async (t) => {
  const engine = await CryptoEngine.open(opts);
  t.teardown(() => engine.close());
  const key = await engine.keys.create({ alias: 'locked' });
  await engine.keys.rotate(key.id);
  const importToken = await engine.keys.createImportToken();
  const imported = await engine.keys.import({ alias: 'locked-byok', importTokenId: importToken.id, encryptedKey: encryptFor(importToken, randomBytes(32)) });

  // The module is already initialised in this process by the engine: a second handle shares it.
  const p = new pkcs11js.PKCS11();
  p.load(token.library);
  try {
    p.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch {
    /* already initialised */
  }
  const slot = p.C_GetSlotList(true).find((s: Buffer) => p.C_GetTokenInfo(s).label.trim() === token.tokenLabel);
  const session = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  t.teardown(() => p.C_CloseSession(session));
  // Each version has a CKA_ID of its own (key id ‖ version): NSS replaces a key whose CKA_ID another key has.
  const find = (template: unknown[]): Buffer[] => {
    p.C_FindObjectsInit(session, template);
    const found: Buffer[] = p.C_FindObjects(session, 10);
    p.C_FindObjectsFinal(session);
    return found;
  };
  for (const id of [key.id, imported.id]) {
    const idBytes = Buffer.from(id.replace(/-/g, ''), 'hex');
    t.equal(find([{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }, { type: pkcs11js.CKA_ID, value: idBytes }]).length, 0, 'no CKA_ID shared by versions');
    const handles: Buffer[] = [];
    for (const version of id === key.id ? [1, 2] : [1]) {
      const versionId = Buffer.alloc(20);
      idBytes.copy(versionId);
      versionId.writeUInt32BE(version, 16);
      const found = find([{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }, { type: pkcs11js.CKA_ID, value: versionId }]);
      t.equal(found.length, 1, `one object for version ${version}`);
      handles.push(...found);
    }
    for (const h of handles) {
      const attrs = p.C_GetAttributeValue(session, h, [
        { type: pkcs11js.CKA_SENSITIVE }, { type: pkcs11js.CKA_EXTRACTABLE }, { type: pkcs11js.CKA_ALWAYS_SENSITIVE },
        { type: pkcs11js.CKA_NEVER_EXTRACTABLE }, { type: pkcs11js.CKA_TOKEN }, { type: pkcs11js.CKA_WRAP }, { type: pkcs11js.CKA_SIGN },
      ]);
      const flag = (i: number) => attrs[i].value[0] === 1;
      t.ok(flag(0), 'CKA_SENSITIVE');
      t.notOk(flag(1), 'CKA_EXTRACTABLE false');
      t.ok(flag(4), 'token object');
      t.notOk(flag(5), 'no CKA_WRAP');
      t.notOk(flag(6), 'no CKA_SIGN');
      if (id === key.id) {
        t.ok(flag(2), 'CKA_ALWAYS_SENSITIVE (generated inside)');
        t.ok(flag(3), 'CKA_NEVER_EXTRACTABLE (generated inside)');
      }
      t.throws(() => p.C_GetAttributeValue(session, h, [{ type: pkcs11js.CKA_VALUE }]), /CKR_ATTRIBUTE_SENSITIVE/, 'CKA_VALUE unreadable');
      t.throws(() => p.C_SetAttributeValue(session, h, [{ type: pkcs11js.CKA_EXTRACTABLE, value: true }]), /CKR_ATTRIBUTE_READ_ONLY|CKR_ATTRIBUTE_VALUE_INVALID/, 'CKA_EXTRACTABLE cannot be turned on');
      t.throws(() => p.C_SetAttributeValue(session, h, [{ type: pkcs11js.CKA_SENSITIVE, value: false }]), /CKR_ATTRIBUTE_READ_ONLY|CKR_ATTRIBUTE_VALUE_INVALID/, 'CKA_SENSITIVE cannot be turned off');
      // Wrapping the root key out with another key fails.
      const kek = p.C_GenerateKey(session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }, { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
        { type: pkcs11js.CKA_VALUE_LEN, value: 32 }, { type: pkcs11js.CKA_TOKEN, value: false }, { type: pkcs11js.CKA_WRAP, value: true },
      ]);
      t.throws(() => p.C_WrapKey(session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD }, kek, h, Buffer.alloc(256)), /CKR_KEY_UNEXTRACTABLE|CKR_KEY_NOT_WRAPPABLE/, 'C_WrapKey refused');
      p.C_DestroyObject(session, kek);
      t.throws(() => p.C_CopyObject(session, h, [{ type: pkcs11js.CKA_EXTRACTABLE, value: true }]), /CKR_/, 'C_CopyObject refused');
    }
  }
});
