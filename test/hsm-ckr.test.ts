// CK_RV → engine error mapping (src/hsm/ckr.ts), without a token: pkcs11js errors are built as pkcs11js builds them.
import t from 'tap';
import { createRequire } from 'node:module';
import { ckrName, ckrOf, toHsmError } from '../dist/hsm/ckr.js';
import { DecryptionError, HsmError } from '../dist/index.js';
import { decryptFailure, unwrapKeyFailure, keyStateOfFailure, hsmFailure } from '../dist/hsm/ckr.js';

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

t.test('call-site meanings', async (t) => {
  t.type(decryptFailure(pkcs11Error('CKR_ENCRYPTED_DATA_INVALID', pkcs11js.CKR_ENCRYPTED_DATA_INVALID)), DecryptionError);
  t.type(decryptFailure(pkcs11Error('CKR_GENERAL_ERROR', pkcs11js.CKR_GENERAL_ERROR)), DecryptionError);
  t.match(decryptFailure(pkcs11Error('CKR_DEVICE_ERROR', pkcs11js.CKR_DEVICE_ERROR)), { constructor: HsmError, fn: 'C_Decrypt', ckr: 'CKR_DEVICE_ERROR' });
  t.type(unwrapKeyFailure(pkcs11Error('CKR_WRAPPED_KEY_INVALID', pkcs11js.CKR_WRAPPED_KEY_INVALID)), DecryptionError);
  t.match(unwrapKeyFailure(pkcs11Error('CKR_DEVICE_ERROR', pkcs11js.CKR_DEVICE_ERROR)), { constructor: HsmError, fn: 'C_UnwrapKey' });
  t.equal(keyStateOfFailure(pkcs11Error('CKR_KEY_FUNCTION_NOT_PERMITTED', pkcs11js.CKR_KEY_FUNCTION_NOT_PERMITTED)), 'disabled');
  t.equal(keyStateOfFailure(pkcs11Error('CKR_OBJECT_HANDLE_INVALID', pkcs11js.CKR_OBJECT_HANDLE_INVALID)), 'gone');
  t.equal(keyStateOfFailure(pkcs11Error('CKR_DEVICE_ERROR', pkcs11js.CKR_DEVICE_ERROR)), undefined);
  const ours = new RangeError('ours');
  t.equal(hsmFailure('C_Encrypt', ours), ours, 'an error that is not a PKCS#11 failure passes as it is');
  const cause = toHsmError('C_Decrypt', pkcs11Error('CKR_DEVICE_ERROR', pkcs11js.CKR_DEVICE_ERROR)).cause as Error;
  t.notMatch(cause.message, /\n/, 'cause keeps one line, no native stack');
});
