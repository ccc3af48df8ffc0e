// Each real PKCS#11 peer (SoftHSM2, NSS softokn, openCryptoki) opened with raw pkcs11js: find the token by label,
// log in, see the login in a second session, log out. The skeleton for the engine's multi-provider lifecycle tests.
import t from 'tap';
import { createRequire } from 'node:module';
import { peerTokens, reexecInOpenCryptokiNamespace, skippedPeers } from './helpers/peer-tokens.js';

reexecInOpenCryptokiNamespace(); // returns here only inside the namespace (or when openCryptoki is unavailable)
const pkcs11js = createRequire(import.meta.url)('pkcs11js') as typeof import('pkcs11js');
// Session states (pkcs11js 2.1.7 exports no CKS_* constants).
const CKS_RW_PUBLIC_SESSION = 2;
const CKS_RW_USER_FUNCTIONS = 3;

const peers = peerTokens();
for (const { name, reason } of skippedPeers()) t.comment(`peer ${name} skipped: ${reason}`);

t.test('the suite always has SoftHSM and NSS here', async (t) => {
  const names = peers.map((p) => p.name);
  t.ok(names.includes('softhsm'), 'softhsm available');
  t.ok(names.includes('nss'), 'nss available');
  if (process.getuid?.() === 0 && process.env.HCE_PEERS_NO_OPENCRYPTOKI !== '1') t.ok(names.includes('opencryptoki'), 'opencryptoki available (root)');
});

for (const peer of peers) {
  t.test(`${peer.name}: open, log in, second session, log out`, async (t) => {
    const { HSM_PKCS11_LIBRARY: library, HSM_TOKEN_LABEL: label, HSM_PIN: pin, HSM_INIT_ARGS: initArgs } = peer.env;
    const p = new pkcs11js.PKCS11();
    p.load(library);
    // pkcs11js 2.1.7 drops the last character of libraryParameters: a trailing space is sacrificed.
    p.C_Initialize(initArgs ? { libraryParameters: `${initArgs} `, flags: pkcs11js.CKF_OS_LOCKING_OK } : { flags: pkcs11js.CKF_OS_LOCKING_OK });
    t.teardown(() => p.C_Finalize());
    const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === label);
    t.ok(slot, `token "${label}" found`);
    if (!slot) return;
    const info = p.C_GetTokenInfo(slot);
    t.ok(info.flags & pkcs11js.CKF_LOGIN_REQUIRED, 'login required');
    t.ok(info.flags & pkcs11js.CKF_USER_PIN_INITIALIZED, 'user PIN initialised');
    const rw = pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION;
    const a = p.C_OpenSession(slot, rw);
    t.throws(() => p.C_Login(a, pkcs11js.CKU_USER, `${pin}x`.slice(-Math.max(4, pin.length))), 'a wrong PIN is refused');
    p.C_Login(a, pkcs11js.CKU_USER, pin);
    t.equal(p.C_GetSessionInfo(a).state, CKS_RW_USER_FUNCTIONS, 'session A logged in');
    const b = p.C_OpenSession(slot, rw);
    t.equal(p.C_GetSessionInfo(b).state, CKS_RW_USER_FUNCTIONS, 'session B shares the login');
    const key = p.C_GenerateKey(a, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }, { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 }, { type: pkcs11js.CKA_TOKEN, value: false }, { type: pkcs11js.CKA_ENCRYPT, value: true }]);
    t.ok(key.length > 0, 'an AES-256 session key is generated');
    p.C_Logout(a);
    t.equal(p.C_GetSessionInfo(b).state, CKS_RW_PUBLIC_SESSION, 'logging out one session logs out all');
    p.C_CloseAllSessions(slot);
  });
}
