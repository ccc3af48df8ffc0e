#!/usr/bin/env node
// Probes what a PKCS#11 token really offers, with raw pkcs11js calls (no engine code): token info, mechanisms,
// and one try per capability the engine may rely on, each recorded as 'ok' or the CKR it failed with. Input for
// the engine's capability probing (issue #10). Every key and object it makes is destroyed at the end.
//
//   node test/peers/probe.mjs ENV_FILE [--name NAME] [--json OUT.json]   probe one token (env.json or shell env)
//   node test/peers/probe.mjs --table OUT.md A.json B.json ...           merge probe results into a markdown table
//
// The env file gives HSM_PKCS11_LIBRARY, HSM_TOKEN_LABEL, HSM_PIN and optionally HSM_INIT_ARGS (C_Initialize's
// reserved string, NSS) and SOFTHSM2_CONF. openCryptoki must be probed inside its namespace
// (test/peers/opencryptoki.sh exec DIR -- node test/peers/probe.mjs DIR/env.json).
import { createCipheriv, createHmac, createPublicKey, publicEncrypt, constants, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const pkcs11js = createRequire(import.meta.url)('pkcs11js');
const P = pkcs11js;

// Mechanisms by number: pkcs11js 2.1.7 lacks names for some v2.40/v3.0 ones (KWP) and NSS vendor ones.
const CKM_NSS = 0x80000000 + 0x4e534350;
const MECHS = {
  AES_KEY_GEN: 0x1080, AES_ECB: 0x1081, AES_CBC: 0x1082, AES_CBC_PAD: 0x1085, AES_CTR: 0x1086, AES_GCM: 0x1087,
  AES_KEY_WRAP: 0x2109, AES_KEY_WRAP_PAD: 0x210a, AES_KEY_WRAP_KWP: 0x210b,
  NSS_AES_KEY_WRAP: CKM_NSS + 1, NSS_AES_KEY_WRAP_PAD: CKM_NSS + 2,
  SHA256_HMAC: 0x251, SHA256: 0x250, GENERIC_SECRET_KEY_GEN: 0x350, SHA256_KEY_DERIVATION: 0x396,
  RSA_PKCS_KEY_PAIR_GEN: 0x0, RSA_PKCS: 0x1, RSA_PKCS_OAEP: 0x9, SHA256_RSA_PKCS_PSS: 0x43,
  EC_KEY_PAIR_GEN: 0x1040, ECDSA: 0x1041, ECDH1_DERIVE: 0x1050, HKDF_DERIVE: 0x402a,
};
const MECH_FLAGS = { ENCRYPT: 0x100, DECRYPT: 0x200, DIGEST: 0x400, SIGN: 0x800, VERIFY: 0x2000, GENERATE: 0x8000,
  GENERATE_KEY_PAIR: 0x10000, WRAP: 0x20000, UNWRAP: 0x40000, DERIVE: 0x80000 };
const TOKEN_FLAGS = { RNG: 0x1, WRITE_PROTECTED: 0x2, LOGIN_REQUIRED: 0x4, USER_PIN_INITIALIZED: 0x8,
  PROTECTED_AUTHENTICATION_PATH: 0x100, TOKEN_INITIALIZED: 0x400, USER_PIN_TO_BE_CHANGED: 0x80000, SO_PIN_TO_BE_CHANGED: 0x800000 };
const CKA_COPYABLE = 0x171, CKA_DESTROYABLE = 0x172;

const ckrNames = new Map(Object.entries(P).filter(([k, v]) => k.startsWith('CKR_') && typeof v === 'number').map(([k, v]) => [v, k]));
// Some pkcs11js calls (C_SetAttributeValue) throw a plain Error whose message is 'CKR_NAME:number'.
const ckr = (e) => (typeof e?.code === 'number' ? ckrNames.get(e.code) ?? `0x${e.code.toString(16)}`
  : /^(CKR_[A-Z0-9_]+)/.exec(String(e?.message))?.[1] ?? `JS ${e?.name}: ${e?.message}`);
const flagList = (flags, table) => Object.entries(table).filter(([, bit]) => (flags & bit) !== 0).map(([n]) => n);
const trimmed = (s) => String(s).replace(/\0/g, '').trim();

function readEnv(path) {
  const text = readFileSync(path, 'utf8');
  if (text.trimStart().startsWith('{')) return JSON.parse(text);
  const vars = {};
  for (const line of text.split('\n')) {
    const m = /^export ([A-Z0-9_]+)=(?:'([^']*)'|"([^"]*)")$/.exec(line.trim());
    if (m) vars[m[1]] = m[2] ?? m[3];
  }
  return vars;
}

function probe(env, name) {
  for (const [k, v] of Object.entries(env)) if (k === 'SOFTHSM2_CONF') process.env[k] = v; // read at C_Initialize
  const out = { provider: name, library: env.HSM_PKCS11_LIBRARY, tries: {}, notes: [] };
  const note = (s) => out.notes.push(s);
  const tries = out.tries;
  // Each try runs in a fresh session (a failed call may leave an operation active, CKR_OPERATION_ACTIVE); the
  // anchor session keeps the login and the session objects used across tries.
  let s, anchor, slot;
  const attempt = (key, fn) => {
    s = p.C_OpenSession(slot, P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION);
    try { const r = fn(); tries[key] = r === undefined ? 'ok' : r; } catch (e) { tries[key] = ckr(e); }
    try { p.C_CloseSession(s); } catch { /* closed by the try itself */ }
    s = anchor;
    return tries[key];
  };

  const p = new P.PKCS11();
  p.load(env.HSM_PKCS11_LIBRARY);
  const init = { flags: P.CKF_OS_LOCKING_OK };
  // pkcs11js 2.1.7 drops the last character of libraryParameters (napi_get_value_string_utf8 into a buffer of
  // the string's length, no room for the NUL): a trailing space is sacrificed.
  if (env.HSM_INIT_ARGS) init.libraryParameters = `${env.HSM_INIT_ARGS} `;
  p.C_Initialize(init);
  try {
    const info = p.C_GetInfo();
    out.module = { cryptokiVersion: `${info.cryptokiVersion.major}.${info.cryptokiVersion.minor}`,
      manufacturer: trimmed(info.manufacturerID), description: trimmed(info.libraryDescription),
      version: `${info.libraryVersion.major}.${info.libraryVersion.minor}` };
    const slots = p.C_GetSlotList(true);
    out.slots = slots.map((s) => trimmed(p.C_GetTokenInfo(s).label));
    slot = slots.find((s) => trimmed(p.C_GetTokenInfo(s).label) === env.HSM_TOKEN_LABEL);
    if (!slot) throw new Error(`no token labelled ${env.HSM_TOKEN_LABEL} (have: ${out.slots.join(', ')})`);
    const ti = p.C_GetTokenInfo(slot);
    out.token = { label: trimmed(ti.label), manufacturer: trimmed(ti.manufacturerID), model: trimmed(ti.model),
      flags: flagList(ti.flags, TOKEN_FLAGS), flagsHex: `0x${ti.flags.toString(16)}`,
      maxSessionCount: ti.maxSessionCount, maxRwSessionCount: ti.maxRwSessionCount,
      pinLen: `${ti.minPinLen}-${ti.maxPinLen}` };

    const have = new Set(p.C_GetMechanismList(slot));
    out.mechanismCount = have.size;
    out.mechanisms = {};
    for (const [n, m] of Object.entries(MECHS)) {
      if (!have.has(m)) { out.mechanisms[n] = null; continue; }
      const mi = p.C_GetMechanismInfo(slot, m);
      out.mechanisms[n] = { flags: flagList(mi.flags, MECH_FLAGS), keySize: `${mi.minKeySize}-${mi.maxKeySize}` };
    }

    const rw = P.CKF_SERIAL_SESSION | P.CKF_RW_SESSION;
    anchor = s = p.C_OpenSession(slot, rw);
    p.C_Login(s, P.CKU_USER, env.HSM_PIN);
    const track = (h) => h; // every probe object is labelled probe-TAG-… and found again for cleanup
    const tag = randomBytes(4).toString('hex');

    // --- AES token keys: sensitive, non-extractable, with and without the v2.40 attributes ---
    const aesTemplate = (label, extra = []) => [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
      { type: P.CKA_VALUE_LEN, value: 32 }, { type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: true },
      { type: P.CKA_SENSITIVE, value: true }, { type: P.CKA_EXTRACTABLE, value: false },
      { type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_DECRYPT, value: true },
      { type: P.CKA_WRAP, value: true }, { type: P.CKA_UNWRAP, value: true },
      { type: P.CKA_LABEL, value: `probe-${tag}-${label}` }, { type: P.CKA_ID, value: Buffer.from(`${tag}-${label}`) }, ...extra];
    const gen = (label, extra) => track(p.C_GenerateKey(s, { mechanism: P.CKM_AES_KEY_GEN }, aesTemplate(label, extra)));
    let tokenKey;
    attempt('aes256TokenKey', () => { tokenKey = gen('root'); });
    attempt('aes256TokenKey+COPYABLE=false', () => { gen('copy', [{ type: CKA_COPYABLE, value: false }]); });
    attempt('aes256TokenKey+DESTROYABLE=true', () => { gen('destr', [{ type: CKA_DESTROYABLE, value: true }]); });
    attempt('aes256TokenKey+both', () => { gen('both', [{ type: CKA_COPYABLE, value: false }, { type: CKA_DESTROYABLE, value: true }]); });
    if (!tokenKey) throw new Error('cannot generate an AES token key: nothing else to probe');

    // A session key whose value we can read, for known-answer checks against node:crypto.
    const sessionAes = (extra = []) => p.C_GenerateKey(s, { mechanism: P.CKM_AES_KEY_GEN }, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
      { type: P.CKA_VALUE_LEN, value: 32 }, { type: P.CKA_TOKEN, value: false }, { type: P.CKA_SENSITIVE, value: false },
      { type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_DECRYPT, value: true },
      { type: P.CKA_WRAP, value: true }, { type: P.CKA_UNWRAP, value: true }, ...extra]);
    const valueOf = (h) => p.C_GetAttributeValue(s, h, [{ type: P.CKA_VALUE }])[0].value;
    let kat = null; // created in the anchor session so that it outlives each try's session
    try { kat = sessionAes(); valueOf(kat); tries.sessionKeyValueReadable = 'ok'; } catch (e) { kat = null; tries.sessionKeyValueReadable = ckr(e); }

    // --- AES-GCM: each pkcs11js parameter flavour ---
    const iv = randomBytes(12), aad = Buffer.from('probe-aad'), plain = Buffer.from('thirty-two bytes of plaintext!!!');
    const gcmParam = (kind, ivBuf = iv) => {
      if (kind === 'AES_GCM') return { type: P.CK_PARAMS_AES_GCM, iv: ivBuf, aad, tagBits: 128 };
      if (kind === 'AES_GCM_v240') return { type: P.CK_PARAMS_AES_GCM_v240, iv: ivBuf, ivBits: 96, aad, tagBits: 128 };
      return { type: P.CK_PARAMS_GCM, iv: ivBuf, ivBits: 96, aad, tagBits: 128 };
    };
    const outLen = (n) => Math.max(n + 64, 1024); // RSA output is the modulus size
    const dec = (key, mech, data) => { p.C_DecryptInit(s, mech, key); return Buffer.from(p.C_Decrypt(s, data, Buffer.alloc(outLen(data.length)))); };
    const encrypt = (key, mech, data) => { p.C_EncryptInit(s, mech, key); return Buffer.from(p.C_Encrypt(s, data, Buffer.alloc(outLen(data.length)))); };
    let gcmWorking = null;
    for (const kind of ['AES_GCM', 'AES_GCM_v240', 'GCM']) {
      attempt(`gcm[${kind}] token key round trip`, () => {
        const ivCopy = Buffer.from(iv);
        const ct = encrypt(tokenKey, { mechanism: MECHS.AES_GCM, parameter: gcmParam(kind, ivCopy) }, plain);
        if (!ivCopy.equals(iv)) note(`GCM[${kind}]: the token overwrote the caller's IV buffer (token-generated IV)`);
        const back = dec(tokenKey, { mechanism: MECHS.AES_GCM, parameter: gcmParam(kind, ivCopy) }, ct);
        if (!back.equals(plain)) return 'WRONG round trip';
        gcmWorking ??= kind;
        return undefined;
      });
      if (kat) attempt(`gcm[${kind}] matches node:crypto`, () => {
        const ct = encrypt(kat, { mechanism: MECHS.AES_GCM, parameter: gcmParam(kind) }, plain);
        const c = createCipheriv('aes-256-gcm', valueOf(kat), iv); c.setAAD(aad);
        const want = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
        return ct.equals(want) ? undefined : 'MISMATCH';
      });
    }
    if (gcmWorking) {
      attempt('gcm bad tag → ?', () => {
        const m = { mechanism: MECHS.AES_GCM, parameter: gcmParam(gcmWorking) };
        const ct = encrypt(tokenKey, m, plain); ct[ct.length - 1] ^= 1;
        dec(tokenKey, m, ct);
        return 'ACCEPTED a bad tag';
      });
      attempt('gcm wrong aad → ?', () => {
        const ct = encrypt(tokenKey, { mechanism: MECHS.AES_GCM, parameter: gcmParam(gcmWorking) }, plain);
        dec(tokenKey, { mechanism: MECHS.AES_GCM, parameter: { ...gcmParam(gcmWorking), aad: Buffer.from('other') } }, ct);
        return 'ACCEPTED a wrong aad';
      });
      attempt('gcm calls/s (one thread, 32-byte encrypts, informational)', () => {
        const m = { mechanism: MECHS.AES_GCM, parameter: gcmParam(gcmWorking) };
        const n = 300, t0 = process.hrtime.bigint();
        for (let i = 0; i < n; i++) encrypt(tokenKey, m, plain);
        return `${Math.round(n / (Number(process.hrtime.bigint() - t0) / 1e9))}/s`;
      });
      attempt('gcm empty plaintext', () => {
        const m = { mechanism: MECHS.AES_GCM, parameter: gcmParam(gcmWorking) };
        const ct = encrypt(tokenKey, m, Buffer.alloc(0));
        return ct.length === 16 && dec(tokenKey, m, ct).length === 0 ? undefined : `ct ${ct.length} bytes`;
      });
    }
    // Raw parameter bytes: pkcs11js copies a Buffer parameter verbatim (CK_PARAMS_BUFFER), so a struct holding
    // pointers (CK_GCM_PARAMS) cannot be passed that way; flat ones (a CBC IV) can.
    attempt('gcm raw Buffer parameter (no pointers possible)', () => {
      encrypt(tokenKey, { mechanism: MECHS.AES_GCM, parameter: Buffer.alloc(48) }, plain);
      return 'accepted a zeroed 48-byte struct';
    });

    // --- AES key wrap of an extractable session key under the token key ---
    const dek = () => p.C_GenerateKey(s, { mechanism: P.CKM_AES_KEY_GEN }, [
      { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
      { type: P.CKA_VALUE_LEN, value: 32 }, { type: P.CKA_TOKEN, value: false },
      { type: P.CKA_SENSITIVE, value: false }, { type: P.CKA_EXTRACTABLE, value: true }, { type: P.CKA_ENCRYPT, value: true }]);
    const unwrapTemplate = [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES },
      { type: P.CKA_TOKEN, value: false }, { type: P.CKA_SENSITIVE, value: false }, { type: P.CKA_EXTRACTABLE, value: true },
      { type: P.CKA_ENCRYPT, value: true }];
    // node:crypto's RFC 3394 (KW) and RFC 5649 (KWP) as the reference: tells which one a token's *_PAD really is.
    const nodeWrap = { AES_KEY_WRAP: 'id-aes256-wrap', AES_KEY_WRAP_PAD: 'id-aes256-wrap-pad', AES_KEY_WRAP_KWP: 'id-aes256-wrap-pad',
      NSS_AES_KEY_WRAP: 'id-aes256-wrap', NSS_AES_KEY_WRAP_PAD: 'id-aes256-wrap-pad' };
    const wrapWorks = [];
    for (const n of ['AES_KEY_WRAP', 'AES_KEY_WRAP_PAD', 'AES_KEY_WRAP_KWP', 'NSS_AES_KEY_WRAP', 'NSS_AES_KEY_WRAP_PAD', 'AES_CBC_PAD']) {
      const m = n === 'AES_CBC_PAD' ? { mechanism: MECHS[n], parameter: randomBytes(16) } : { mechanism: MECHS[n] };
      attempt(`wrap[${n}] session DEK under token key + unwrap`, () => {
        const d = dek();
        const w = Buffer.from(p.C_WrapKey(s, m, tokenKey, d, Buffer.alloc(128)));
        const u = p.C_UnwrapKey(s, m, tokenKey, w, unwrapTemplate);
        const same = valueOf(u).equals(valueOf(d));
        p.C_DestroyObject(s, u); p.C_DestroyObject(s, d);
        if (same) wrapWorks.push(m);
        return same ? (w.length === 40 ? undefined : `ok (${w.length}-byte blob)`) : 'WRONG value after unwrap';
      });
      if (kat && nodeWrap[n]) attempt(`wrap[${n}] matches node:crypto ${nodeWrap[n]}`, () => {
        const d = dek();
        const w = Buffer.from(p.C_WrapKey(s, m, kat, d, Buffer.alloc(128)));
        const kw = (alg, data) => { const c = createCipheriv(alg, valueOf(kat), alg.endsWith('pad') ? Buffer.from('a65959a6', 'hex') : Buffer.alloc(8, 0xa6)); return Buffer.concat([c.update(data), c.final()]); };
        const value = valueOf(d);
        p.C_DestroyObject(s, d);
        if (w.equals(kw(nodeWrap[n], value))) return undefined;
        if (w.equals(kw('id-aes256-wrap', value))) return 'MISMATCH: is plain RFC 3394 KW';
        if (w.equals(kw('id-aes256-wrap', Buffer.concat([value, Buffer.alloc(16, 16)])))) return 'MISMATCH: is KW over PKCS#7-padded key (48 bytes)';
        return `MISMATCH (${w.length} bytes)`;
      });
    }
    // C_Encrypt with KW/KWP (some tokens only wrap keys; the engine's DEKs could be raw bytes)
    for (const n of ['AES_KEY_WRAP', 'AES_KEY_WRAP_KWP']) attempt(`encrypt[${n}] 32 raw bytes`, () => {
      const ct = encrypt(tokenKey, { mechanism: MECHS[n] }, randomBytes(32));
      return ct.length === 40 ? undefined : `ok (${ct.length} bytes)`;
    });

    // --- CBC-PAD + HMAC-SHA256 (the fallback wrap) ---
    attempt('cbcPad token key round trip', () => {
      const m = { mechanism: MECHS.AES_CBC_PAD, parameter: randomBytes(16) };
      const ct = encrypt(tokenKey, m, plain);
      return dec(tokenKey, m, ct).equals(plain) && ct.length === 48 ? undefined : 'WRONG';
    });
    if (kat) attempt('cbcPad matches node:crypto', () => {
      const cbcIv = randomBytes(16);
      const ct = encrypt(kat, { mechanism: MECHS.AES_CBC_PAD, parameter: cbcIv }, plain);
      const c = createCipheriv('aes-256-cbc', valueOf(kat), cbcIv);
      return ct.equals(Buffer.concat([c.update(plain), c.final()])) ? undefined : 'MISMATCH';
    });
    const genericTemplate = (extra) => [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_GENERIC_SECRET },
      { type: P.CKA_VALUE_LEN, value: 32 }, { type: P.CKA_SIGN, value: true }, { type: P.CKA_VERIFY, value: true }, ...extra];
    let macKey;
    attempt('generic secret token key (sensitive, non-extractable)', () => {
      macKey = track(p.C_GenerateKey(s, { mechanism: MECHS.GENERIC_SECRET_KEY_GEN }, genericTemplate([
        { type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: true }, { type: P.CKA_SENSITIVE, value: true },
        { type: P.CKA_EXTRACTABLE, value: false }, { type: P.CKA_LABEL, value: `probe-${tag}-mac` }])));
    });
    const sign = (key, data) => { p.C_SignInit(s, { mechanism: MECHS.SHA256_HMAC }, key); return Buffer.from(p.C_Sign(s, data, Buffer.alloc(64))); };
    const verify = (key, data, sig) => { p.C_VerifyInit(s, { mechanism: MECHS.SHA256_HMAC }, key); return p.C_Verify(s, data, sig); };
    if (macKey) {
      attempt('hmacSha256 sign+verify (generic secret)', () => {
        const sig = sign(macKey, plain);
        if (sig.length !== 32) return `sig ${sig.length} bytes`;
        if (!verify(macKey, plain, sig)) return 'verify false';
        const bad = Buffer.from(sig); bad[0] ^= 1;
        try { return verify(macKey, plain, bad) ? 'ACCEPTED a bad MAC' : undefined; } catch (e) { note(`HMAC bad signature → ${ckr(e)}`); return undefined; }
      });
    }
    attempt('hmacSha256 matches node:crypto (session generic secret)', () => {
      const k = p.C_GenerateKey(s, { mechanism: MECHS.GENERIC_SECRET_KEY_GEN }, genericTemplate([
        { type: P.CKA_TOKEN, value: false }, { type: P.CKA_SENSITIVE, value: false }, { type: P.CKA_EXTRACTABLE, value: true }]));
      const ok = sign(k, plain).equals(createHmac('sha256', valueOf(k)).update(plain).digest());
      p.C_DestroyObject(s, k);
      return ok ? undefined : 'MISMATCH';
    });
    attempt('hmacSha256 with an AES key (CKA_SIGN on AES)', () => {
      const k = p.C_GenerateKey(s, { mechanism: P.CKM_AES_KEY_GEN }, [
        { type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_KEY_TYPE, value: P.CKK_AES }, { type: P.CKA_VALUE_LEN, value: 32 },
        { type: P.CKA_TOKEN, value: false }, { type: P.CKA_SIGN, value: true }, { type: P.CKA_VERIFY, value: true }]);
      try { sign(k, plain); } finally { p.C_DestroyObject(s, k); }
    });

    // --- same CKA_ID twice ---
    attempt('two token keys, same CKA_ID+label → both kept?', () => {
      const same = [{ type: P.CKA_LABEL, value: `probe-${tag}-dup` }, { type: P.CKA_ID, value: Buffer.from(`${tag}-dup`) }];
      const t1 = aesTemplate('x').filter((a) => a.type !== P.CKA_LABEL && a.type !== P.CKA_ID).concat(same);
      const k1 = track(p.C_GenerateKey(s, { mechanism: P.CKM_AES_KEY_GEN }, t1));
      const k2 = track(p.C_GenerateKey(s, { mechanism: P.CKM_AES_KEY_GEN }, t1));
      p.C_FindObjectsInit(s, [{ type: P.CKA_ID, value: Buffer.from(`${tag}-dup`) }]);
      const found = p.C_FindObjects(s, 10); p.C_FindObjectsFinal(s);
      let first = 'valid';
      try { p.C_GetAttributeValue(s, k1, [{ type: P.CKA_LABEL }]); } catch (e) { first = ckr(e); }
      const sameHandle = k1.equals(k2);
      if (found.length === 2 && first === 'valid' && !sameHandle) return undefined;
      return `REPLACED: ${found.length} found, first handle ${first}${sameHandle ? ', same handle returned' : ''}`;
    });
    attempt('two token keys, same CKA_ID, different label', () => {
      const id = Buffer.from(`${tag}-dupid`);
      const mk = (l) => track(p.C_GenerateKey(s, { mechanism: P.CKM_AES_KEY_GEN },
        aesTemplate(l).filter((a) => a.type !== P.CKA_ID).concat([{ type: P.CKA_ID, value: id }])));
      mk('v1'); mk('v2');
      p.C_FindObjectsInit(s, [{ type: P.CKA_ID, value: id }]);
      const found = p.C_FindObjects(s, 10); p.C_FindObjectsFinal(s);
      return found.length === 2 ? undefined : `REPLACED: ${found.length} found`;
    });

    // --- CKO_DATA token objects ---
    for (const priv of [false, true]) attempt(`data object token ${priv ? 'private' : 'public'}`, () => {
      const value = Buffer.from(`probe data ${priv}`);
      const h = track(p.C_CreateObject(s, [{ type: P.CKA_CLASS, value: P.CKO_DATA }, { type: P.CKA_TOKEN, value: true },
        { type: P.CKA_PRIVATE, value: priv }, { type: P.CKA_MODIFIABLE, value: true }, { type: P.CKA_LABEL, value: `probe-${tag}-data-${priv}` },
        { type: P.CKA_APPLICATION, value: 'hsm-crypto-engine-probe' }, { type: P.CKA_VALUE, value }]));
      const back = p.C_GetAttributeValue(s, h, [{ type: P.CKA_VALUE }])[0].value;
      if (!Buffer.from(back).equals(value)) return 'WRONG value';
      const value2 = Buffer.from(`changed ${priv}`);
      try { p.C_SetAttributeValue(s, h, [{ type: P.CKA_VALUE, value: value2 }]); } catch (e) { return `ok, but CKA_VALUE update → ${ckr(e)}`; }
      return Buffer.from(p.C_GetAttributeValue(s, h, [{ type: P.CKA_VALUE }])[0].value).equals(value2) ? undefined : 'update not applied';
    });

    for (const [label, attrs] of [['minimal public (CLASS TOKEN LABEL VALUE)', []], ['minimal private', [{ type: P.CKA_PRIVATE, value: true }]],
      ['public + CKA_APPLICATION', [{ type: P.CKA_PRIVATE, value: false }, { type: P.CKA_APPLICATION, value: 'hce' }]]]) {
      attempt(`data object token ${label}`, () => {
        track(p.C_CreateObject(s, [{ type: P.CKA_CLASS, value: P.CKO_DATA }, { type: P.CKA_TOKEN, value: true },
          { type: P.CKA_LABEL, value: `probe-${tag}-d-${label.length}` }, { type: P.CKA_VALUE, value: Buffer.from('x') }, ...attrs]));
      });
    }

    // --- disabling a key by flipping its usage attributes ---
    const usable = (key) => gcmWorking
      ? { mechanism: MECHS.AES_GCM, parameter: gcmParam(gcmWorking) }
      : { mechanism: MECHS.AES_CBC_PAD, parameter: Buffer.alloc(16) };
    attempt('flip CKA_ENCRYPT=false then encrypt → ?', () => {
      const k = gen('flipE');
      p.C_SetAttributeValue(s, k, [{ type: P.CKA_ENCRYPT, value: false }]);
      const now = p.C_GetAttributeValue(s, k, [{ type: P.CKA_ENCRYPT }])[0].value;
      try { encrypt(k, usable(), plain); } catch (e) { return `refused: ${ckr(e)}${now[0] ? ' (attribute still reads true)' : ''}`; }
      return 'STILL ENCRYPTS';
    });
    attempt('flip CKA_DECRYPT=false then decrypt → ?', () => {
      const k = gen('flipD');
      const m = usable();
      const ct = encrypt(k, m, plain);
      p.C_SetAttributeValue(s, k, [{ type: P.CKA_DECRYPT, value: false }]);
      try { dec(k, m, ct); } catch (e) { return `refused: ${ckr(e)}`; }
      return 'STILL DECRYPTS';
    });
    attempt('flip CKA_WRAP=false then wrap → ?', () => {
      const k = gen('flipW');
      if (!wrapWorks.length) return 'n/a (no C_WrapKey mechanism works)';
      p.C_SetAttributeValue(s, k, [{ type: P.CKA_WRAP, value: false }]);
      const d = dek();
      try { p.C_WrapKey(s, wrapWorks[0], k, d, Buffer.alloc(128)); } catch (e) { return `refused: ${ckr(e)}`; } finally { p.C_DestroyObject(s, d); }
      return 'STILL WRAPS';
    });
    attempt('flip CKA_ENCRYPT back to true', () => {
      const k = gen('flipBack');
      p.C_SetAttributeValue(s, k, [{ type: P.CKA_ENCRYPT, value: false }]);
      p.C_SetAttributeValue(s, k, [{ type: P.CKA_ENCRYPT, value: true }]);
      encrypt(k, usable(), plain);
    });
    attempt('set CKA_LABEL on a token key (rename)', () => {
      const k = gen('rename');
      p.C_SetAttributeValue(s, k, [{ type: P.CKA_LABEL, value: `probe-${tag}-renamed` }]);
    });
    attempt('CKA_EXTRACTABLE false→true refused', () => {
      const k = gen('extr');
      try { p.C_SetAttributeValue(s, k, [{ type: P.CKA_EXTRACTABLE, value: true }]); } catch (e) { return `refused: ${ckr(e)}`; }
      return 'ALLOWED';
    });
    attempt('read CKA_VALUE of sensitive key refused', () => {
      try { p.C_GetAttributeValue(s, tokenKey, [{ type: P.CKA_VALUE }]); } catch (e) { return `refused: ${ckr(e)}`; }
      return 'READABLE';
    });

    // --- RSA-OAEP: decrypt and unwrap, SHA-256 and SHA-1 ---
    for (const bits of [2048, 4096]) {
      let pair;
      const r = attempt(`rsa${bits} key pair (token, private sensitive)`, () => {
        pair = p.C_GenerateKeyPair(s, { mechanism: P.CKM_RSA_PKCS_KEY_PAIR_GEN }, [
          { type: P.CKA_TOKEN, value: true }, { type: P.CKA_MODULUS_BITS, value: bits }, { type: P.CKA_PUBLIC_EXPONENT, value: Buffer.from([1, 0, 1]) },
          { type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_WRAP, value: true }, { type: P.CKA_LABEL, value: `probe-${tag}-rsa${bits}` }],
        [{ type: P.CKA_TOKEN, value: true }, { type: P.CKA_PRIVATE, value: true }, { type: P.CKA_SENSITIVE, value: true },
          { type: P.CKA_EXTRACTABLE, value: false }, { type: P.CKA_DECRYPT, value: true }, { type: P.CKA_UNWRAP, value: true },
          { type: P.CKA_LABEL, value: `probe-${tag}-rsa${bits}` }]);
        track(pair.privateKey); track(pair.publicKey);
      });
      if (r !== 'ok' || bits !== 2048) continue; // 4096: generation only (what the import token uses)
      const [mod, exp] = p.C_GetAttributeValue(s, pair.publicKey, [{ type: P.CKA_MODULUS }, { type: P.CKA_PUBLIC_EXPONENT }]).map((a) => a.value);
      const pub = createPublicKey({ key: { kty: 'RSA', n: Buffer.from(mod).toString('base64url'), e: Buffer.from(exp).toString('base64url') }, format: 'jwk' });
      for (const [hash, ckm, mgf] of [['sha256', P.CKM_SHA256, P.CKG_MGF1_SHA256], ['sha1', P.CKM_SHA_1, P.CKG_MGF1_SHA1]]) {
        const oaep = { mechanism: P.CKM_RSA_PKCS_OAEP, parameter: { type: P.CK_PARAMS_RSA_OAEP, hashAlg: ckm, mgf, source: 1 } };
        const secret = randomBytes(32);
        const ct = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: hash }, secret);
        attempt(`oaep[${hash}] decrypt`, () => (dec(pair.privateKey, oaep, ct).equals(secret) ? undefined : 'WRONG'));
        attempt(`oaep[${hash}] unwrap into non-extractable AES key`, () => {
          const k = p.C_UnwrapKey(s, oaep, pair.privateKey, ct, [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY },
            { type: P.CKA_KEY_TYPE, value: P.CKK_AES }, { type: P.CKA_TOKEN, value: false }, { type: P.CKA_SENSITIVE, value: true },
            { type: P.CKA_EXTRACTABLE, value: false }, { type: P.CKA_ENCRYPT, value: true }, { type: P.CKA_DECRYPT, value: true }]);
          // check it is the right key: CBC-PAD under it must match node:crypto with `secret`
          const cbcIv = randomBytes(16);
          const got = encrypt(k, { mechanism: MECHS.AES_CBC_PAD, parameter: cbcIv }, plain);
          const c = createCipheriv('aes-256-cbc', secret, cbcIv);
          p.C_DestroyObject(s, k);
          return got.equals(Buffer.concat([c.update(plain), c.final()])) ? undefined : 'WRONG key';
        });
        attempt(`oaep[${hash}] token encrypt + token decrypt`, () => {
          const c2 = encrypt(pair.publicKey, oaep, secret);
          return dec(pair.privateKey, oaep, c2).equals(secret) ? undefined : 'WRONG';
        });
      }
      attempt('oaep bad ciphertext → ?', () => {
        const oaep = { mechanism: P.CKM_RSA_PKCS_OAEP, parameter: { type: P.CK_PARAMS_RSA_OAEP, hashAlg: P.CKM_SHA_1, mgf: P.CKG_MGF1_SHA1, source: 1 } };
        dec(pair.privateKey, oaep, randomBytes(256));
        return 'ACCEPTED garbage';
      });
    }

    // --- random ---
    attempt('C_GenerateRandom 32', () => { p.C_GenerateRandom(s, Buffer.alloc(32)); });

    // --- sessions: logout / close-all from a second session; the login is per token per process ---
    const privCount = (sess) => { p.C_FindObjectsInit(sess, [{ type: P.CKA_CLASS, value: P.CKO_SECRET_KEY }, { type: P.CKA_PRIVATE, value: true }]); const n = p.C_FindObjects(sess, 100).length; p.C_FindObjectsFinal(sess); return n; };
    const useKey = (sess) => { p.C_EncryptInit(sess, { mechanism: MECHS.AES_CBC_PAD, parameter: Buffer.alloc(16) }, tokenKey); p.C_Encrypt(sess, plain, Buffer.alloc(64)); };
    attempt('second session sees login (no C_Login)', () => { const b = p.C_OpenSession(slot, rw); try { useKey(b); } finally { p.C_CloseSession(b); } });
    attempt('C_Login on second session → ?', () => {
      const b = p.C_OpenSession(slot, rw);
      try { p.C_Login(b, P.CKU_USER, env.HSM_PIN); return 'ok (no error)'; } catch (e) { return ckr(e); } finally { p.C_CloseSession(b); }
    });
    // These two act on the anchor session (A) from another session (B), so they run outside attempt().
    const record = (key, fn) => { try { tries[key] = fn(); } catch (e) { tries[key] = `threw ${ckr(e)}`; } };
    record('C_Logout from session B → session A then', () => {
      const b = p.C_OpenSession(slot, rw);
      p.C_Logout(b);
      let a;
      try { useKey(anchor); a = 'A still uses private key'; } catch (e) { a = `A using key: ${ckr(e)}`; }
      a += `; A finds ${privCount(anchor)} private keys`;
      try { p.C_Login(anchor, P.CKU_USER, env.HSM_PIN); a += '; re-login on A ok'; } catch (e) { a += `; re-login on A: ${ckr(e)}`; }
      try { useKey(anchor); a += ', key usable again'; } catch (e) { a += `, key then: ${ckr(e)}`; }
      p.C_CloseSession(b);
      return a;
    });
    record('C_CloseAllSessions → session A then', () => {
      const keep = gen('closeall'); // a token key, to see whether old object handles survive
      p.C_OpenSession(slot, rw);
      p.C_CloseAllSessions(slot);
      let a;
      try { p.C_GetSessionInfo(anchor); a = 'A still open'; } catch (e) { a = `A: ${ckr(e)}`; }
      const c = p.C_OpenSession(slot, rw);
      s = c;
      try { useKey(c); a += '; new session: still logged in'; } catch (e) { a += `; new session using old key handle: ${ckr(e)}`; }
      try { p.C_Login(c, P.CKU_USER, env.HSM_PIN); a += '; re-login ok'; } catch (e) { a += `; re-login: ${ckr(e)}`; }
      try { useKey(c); a += ', old handle works again'; } catch (e) { a += `, old handle then: ${ckr(e)}`; }
      void keep;
      return a;
    });
    // Cleanup: every probe object carries the label prefix (handles may have changed across the logouts above).
    try {
      try { p.C_Login(s, P.CKU_USER, env.HSM_PIN); } catch { /* already logged in */ }
      p.C_FindObjectsInit(s, []);
      const all = p.C_FindObjects(s, 10000); p.C_FindObjectsFinal(s);
      let removed = 0;
      for (const h of all) {
        let label = '';
        try { label = String(p.C_GetAttributeValue(s, h, [{ type: P.CKA_LABEL }])[0].value); } catch { continue; }
        if (label.startsWith(`probe-${tag}`)) { try { p.C_DestroyObject(s, h); removed++; } catch (e) { note(`cleanup: destroy → ${ckr(e)}`); } }
      }
      out.cleanup = `${removed} probe objects destroyed`;
    } catch (e) { note(`cleanup failed: ${ckr(e)}`); }
    try { p.C_CloseAllSessions(slot); } catch { /* */ }
  } finally {
    p.C_Finalize();
  }
  return out;
}

function table(results) {
  const names = results.map((r) => r.provider);
  const row = (cells) => `| ${cells.join(' | ')} |`;
  const lines = [];
  const head = ['', ...names];
  lines.push(row(head), row(head.map(() => '---')));
  const esc = (v) => String(v ?? '—').replace(/\|/g, '\\|');
  lines.push(row(['module', ...results.map((r) => esc(r.module && `${r.module.description} ${r.module.version} (Cryptoki ${r.module.cryptokiVersion})`))]));
  for (const k of ['label', 'manufacturer', 'model', 'flags', 'maxRwSessionCount', 'pinLen']) {
    lines.push(row([`token ${k}`, ...results.map((r) => esc(Array.isArray(r.token?.[k]) ? r.token[k].join(' ') : r.token?.[k]))]));
  }
  lines.push(row(['mechanisms listed', ...results.map((r) => esc(r.mechanismCount))]));
  for (const m of Object.keys(MECHS)) {
    lines.push(row([`CKM_${m} (0x${MECHS[m].toString(16)})`, ...results.map((r) => {
      const v = r.mechanisms?.[m];
      return v ? esc(`${v.flags.join(' ')} ${v.keySize}`) : 'absent';
    })]));
  }
  const tryKeys = [...new Set(results.flatMap((r) => Object.keys(r.tries ?? {})))];
  for (const t of tryKeys) lines.push(row([esc(t), ...results.map((r) => esc(r.tries?.[t] ?? 'not tried'))]));
  return lines.join('\n');
}

const argv = process.argv.slice(2);
if (argv[0] === '--table') {
  const [outFile, ...inputs] = argv.slice(1);
  const results = inputs.map((f) => JSON.parse(readFileSync(f, 'utf8')));
  const notes = results.flatMap((r) => (r.notes ?? []).map((n) => `- ${r.provider}: ${n}`));
  const md = `${table(results)}\n${notes.length ? `\nNotes from the run:\n${notes.join('\n')}\n` : ''}`;
  if (outFile === '-') process.stdout.write(md); else writeFileSync(outFile, md);
} else {
  const envFile = argv[0];
  if (!envFile) { console.error('usage: probe.mjs ENV_FILE [--name NAME] [--json OUT] | --table OUT.md A.json ...'); process.exit(2); }
  const name = argv.includes('--name') ? argv[argv.indexOf('--name') + 1] : envFile;
  const jsonOut = argv.includes('--json') ? argv[argv.indexOf('--json') + 1] : undefined;
  const result = probe(readEnv(envFile), name);
  const text = JSON.stringify(result, null, 2);
  if (jsonOut) writeFileSync(jsonOut, `${text}\n`); else console.log(text);
}
