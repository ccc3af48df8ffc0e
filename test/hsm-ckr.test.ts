// CK_RV → engine error mapping (src/hsm/ckr.ts), without a token: pkcs11js errors are built as pkcs11js builds them.
import t from 'tap';
import { createRequire } from 'node:module';
import { ckrName, ckrOf, toHsmError } from '../dist/hsm/ckr.js';
import { DecryptionError, HsmError } from '../dist/index.js';
import {
  ckrProfileFor, decryptFailure, hsmFailure, isUnsupportedMechanism, keyStateOfFailure, lostLogin, lostSession, staleHandle, unwrapKeyFailure,
} from '../dist/hsm/ckr.js';

const pkcs11js = createRequire(import.meta.url)('pkcs11js');
// What pkcs11js throws: the native "NAME:decimal" message goes through Pkcs11Error, which keeps `code` as a double.
const pkcs11Error = (name: string, value: bigint | number) => new pkcs11js.Pkcs11Error(`Error: ${name}:${value}\n    at PKCS11.C_Decrypt (native)`);

t.test('standard values are named', async (t) => {
  t.equal(ckrName(pkcs11js.CKR_PIN_INCORRECT), 'CKR_PIN_INCORRECT');
  t.equal(ckrName(0), 'CKR_OK');
  t.equal(ckrName(undefined), 'CKR_GENERAL_ERROR');
  t.equal(ckrOf(pkcs11Error('CKR_KEY_HANDLE_INVALID', pkcs11js.CKR_KEY_HANDLE_INVALID)), pkcs11js.CKR_KEY_HANDLE_INVALID);
  t.equal(ckrOf(new Error('not from the HSM')), undefined);
  t.equal(ckrName(0x1234), 'CKR_0x1234', 'unknown, below the vendor range');
});

t.test('vendor-defined and 64-bit values print as their real hex', async (t) => {
  t.equal(ckrName(0x80000000), 'CKR_VENDOR_DEFINED');
  t.equal(ckrName(0x80000001), 'CKR_VENDOR_DEFINED+0x1');
  t.equal(ckrName(0x1_0000_0000 + 0x80000000 + 0xab), 'CKR_VENDOR_DEFINED+0x1000000AB');
  t.equal(ckrName(0xffffffffffffffffn), 'CKR_VENDOR_DEFINED+0xFFFFFFFF7FFFFFFF');
  // The plain-Error form (message "NAME:decimal") keeps every digit of a 64-bit CK_RV.
  const plain = new Error('CKR_VENDOR_DEFINED:18446744073709551615');
  t.equal(toHsmError('C_Login', plain).ckr, 'CKR_VENDOR_DEFINED+0xFFFFFFFF7FFFFFFF');
  t.equal(toHsmError('C_Login', plain).message, 'C_Login failed: CKR_VENDOR_DEFINED+0xFFFFFFFF7FFFFFFF');
  // pkcs11js's Pkcs11Error already rounded it to a double (2^64): no exact hex is left, and none is made up.
  const rounded = toHsmError('C_Login', pkcs11Error('CKR_VENDOR_DEFINED', 0xffffffffffffffffn));
  t.equal(rounded.ckr, 'CKR_VENDOR_DEFINED');
  t.notMatch(rounded.message, /0x1000000000000000/);
  // Below 2^53 the double is exact.
  t.equal(toHsmError('C_Login', pkcs11Error('CKR_VENDOR_DEFINED', 0x8000_0000_1234)).ckr, 'CKR_VENDOR_DEFINED+0x7FFF80001234');
});

t.test('call-site meanings, per token profile', async (t) => {
  const softhsm = ckrProfileFor('SoftHSM project', 'SoftHSM v2');
  const nss = ckrProfileFor('Mozilla Foundation', 'NSS 3');
  const ock = ckrProfileFor('IBM Corp.', 'IBM SoftTok');
  const other = ckrProfileFor('Thales', 'Luna K7');
  t.same([softhsm.name, nss.name, ock.name, other.name], ['softhsm', 'nss', 'opencryptoki', 'standard']);
  const err = (name: string) => pkcs11Error(name, (pkcs11js as any)[name]);
  for (const profile of [softhsm, nss, ock, other]) {
    t.type(decryptFailure(err('CKR_ENCRYPTED_DATA_INVALID'), profile), DecryptionError, `${profile.name}: bad tag`);
    t.match(decryptFailure(err('CKR_DEVICE_ERROR'), profile), { constructor: HsmError, fn: 'C_Decrypt', ckr: 'CKR_DEVICE_ERROR' });
    t.type(unwrapKeyFailure(err('CKR_WRAPPED_KEY_INVALID'), profile), DecryptionError);
    t.match(unwrapKeyFailure(err('CKR_DEVICE_ERROR'), profile), { constructor: HsmError, fn: 'C_UnwrapKey' });
    t.equal(keyStateOfFailure(err('CKR_KEY_FUNCTION_NOT_PERMITTED'), profile), 'disabled');
    t.equal(keyStateOfFailure(err('CKR_OBJECT_HANDLE_INVALID'), profile), 'gone');
    t.equal(keyStateOfFailure(err('CKR_DEVICE_ERROR'), profile), undefined);
  }
  // CKR_GENERAL_ERROR is a failed tag only where the token is known to say it so (SoftHSM 2.6).
  t.type(decryptFailure(err('CKR_GENERAL_ERROR'), softhsm), DecryptionError);
  t.type(unwrapKeyFailure(err('CKR_GENERAL_ERROR'), softhsm), DecryptionError);
  for (const profile of [nss, ock, other]) {
    t.match(decryptFailure(err('CKR_GENERAL_ERROR'), profile), { constructor: HsmError, fn: 'C_Decrypt', ckr: 'CKR_GENERAL_ERROR' }, `${profile.name}: device fault`);
    t.match(unwrapKeyFailure(err('CKR_GENERAL_ERROR'), profile), { constructor: HsmError, fn: 'C_UnwrapKey', ckr: 'CKR_GENERAL_ERROR' });
  }
  // "Disabled": NSS says CKR_KEY_TYPE_INCONSISTENT; elsewhere that is a real error.
  t.equal(keyStateOfFailure(err('CKR_KEY_TYPE_INCONSISTENT'), nss), 'disabled');
  t.equal(keyStateOfFailure(err('CKR_KEY_TYPE_INCONSISTENT'), softhsm), undefined);
  t.type(unwrapKeyFailure(err('CKR_FUNCTION_FAILED'), ock), DecryptionError, 'openCryptoki: OAEP garbage');
  t.match(unwrapKeyFailure(err('CKR_FUNCTION_FAILED'), other), { constructor: HsmError });
  // The OAEP probe falls back to SHA-1 only on "not supported" answers.
  t.ok(isUnsupportedMechanism(err('CKR_MECHANISM_PARAM_INVALID'), other));
  t.ok(isUnsupportedMechanism(err('CKR_ARGUMENTS_BAD'), softhsm));
  t.notOk(isUnsupportedMechanism(err('CKR_ARGUMENTS_BAD'), nss));
  t.notOk(isUnsupportedMechanism(err('CKR_DEVICE_ERROR'), softhsm));
  t.notOk(isUnsupportedMechanism(new Error('CKR_SESSION_HANDLE_INVALID is not a CK_RV string'), softhsm));
  // Lost sessions and logins (recovered by the session pool) and stale handles (re-found).
  t.ok(lostSession(err('CKR_SESSION_HANDLE_INVALID')) && lostSession(err('CKR_SESSION_CLOSED')) && lostSession(err('CKR_DEVICE_REMOVED')));
  t.ok(lostLogin(err('CKR_USER_NOT_LOGGED_IN')));
  t.ok(lostSession(toHsmError('C_FindObjects', err('CKR_SESSION_HANDLE_INVALID'))), 'an HsmError made from one too');
  t.ok(staleHandle(err('CKR_KEY_HANDLE_INVALID')) && staleHandle(err('CKR_OBJECT_HANDLE_INVALID')));
  t.notOk(lostSession(err('CKR_DEVICE_ERROR')));
  const ours = new RangeError('ours');
  t.equal(hsmFailure('C_Encrypt', ours), ours, 'an error that is not a PKCS#11 failure passes as it is');
  const cause = toHsmError('C_Decrypt', err('CKR_DEVICE_ERROR')).cause as Error;
  t.notMatch(cause.message, /\n/, 'cause keeps one line, no native stack');
});
