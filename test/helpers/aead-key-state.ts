// TEST HOOK for the HSM-backed suite: `checkDisabledRootKeyStopsObjects` runs the root-key-state checks of the
// object cipher against any DataKeyProvider. test/aead-range-rewrap.test.ts runs it with the in-memory
// provider; the HSM-backed test (a real SoftHSM token) is to call it with the engine's PKCS#11 provider:
//
//   import { checkDisabledRootKeyStopsObjects } from './helpers/aead-key-state.js';
//   await checkDisabledRootKeyStopsObjects(t, {
//     cipher: new ObjectCipher({ keys: hsmProvider, pool }), keyId,
//     disable: () => engine.keys.disable(keyId), enable: () => engine.keys.enable(keyId),
//   });
import type { Test } from 'tap';
import type { ObjectCipher } from '../../dist/index.js';
import { KeyStateError } from '../../dist/index.js';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface KeyStateSubject {
  cipher: ObjectCipher;
  keyId: string;
  disable(): unknown | Promise<unknown>;
  enable(): unknown | Promise<unknown>;
}

export async function checkDisabledRootKeyStopsObjects(t: Test, s: KeyStateSubject): Promise<void> {
  const context = { bucket: 'key-state' };
  const small = Buffer.from('small object');
  const large = Buffer.alloc(3 * 1024 * 1024 + 1, 7);
  const sealedSmall = await s.cipher.encrypt(small, { keyId: s.keyId, context });
  const sealedLarge = await s.cipher.encrypt(large, { keyId: s.keyId, context });
  await s.disable();
  try {
    await t.rejects(s.cipher.decrypt(sealedSmall, { context }), KeyStateError, 'decrypt (main thread) → KeyStateError');
    await t.rejects(s.cipher.decrypt(sealedLarge, { context }), KeyStateError, 'decrypt (pool) → KeyStateError');
    await t.rejects(s.cipher.decryptRange(sealedLarge, { offset: 5, length: 10, context }), KeyStateError, 'decryptRange → KeyStateError');
    await t.rejects(s.cipher.encrypt(small, { keyId: s.keyId, context }), KeyStateError, 'encrypt → KeyStateError');
    await t.rejects(s.cipher.rewrapHeader(sealedSmall, { context }), KeyStateError, 'rewrapHeader → KeyStateError');
    const out: Buffer[] = [];
    await t.rejects(
      pipeline(Readable.from([sealedLarge]), s.cipher.createDecryptStream({ context }), new Writable({ write(c, _e, cb) { out.push(c); cb(); } })),
      KeyStateError,
      'decrypt stream → KeyStateError',
    );
    t.equal(out.length, 0, 'no plaintext from the stream');
  } finally {
    await s.enable();
  }
  t.same(await s.cipher.decrypt(sealedSmall, { context }), small, 'enabled again: decrypts');
}
