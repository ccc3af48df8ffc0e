// bench/hsm.mjs --providers: engine wrap/unwrap per PKCS#11 provider and wrap mechanism vs a raw pkcs11js loop of
// the same HSM calls on the same token key. Each provider runs in a child process (openCryptoki inside its
// namespace, test/peers/opencryptoki.sh); the parent collects their JSON lines.
import { execFileSync, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fmt, median, ROOT, tempToken, writeResult } from './common.mjs';

const args = process.argv.slice(2);
const arg = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
const SECONDS = arg('--seconds', 0.5);
const ROUNDS = arg('--rounds', 3);
const MECHANISMS = { softhsm: ['AES-GCM', 'AES-CBC-PAD+HMAC-SHA256'], nss: ['AES-GCM', 'AES-KWP', 'AES-CBC-PAD+HMAC-SHA256'], opencryptoki: ['AES-CBC-PAD+HMAC-SHA256'] };

export async function providerBench() {
  if (args.includes('--peer')) return peerChild(args[args.indexOf('--peer') + 1], args[args.indexOf('--peer') + 2]);
  const rows = [];
  const run = (cmd, cmdArgs) => {
    const out = spawnSync(cmd, cmdArgs, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
    for (const line of out.stdout.split('\n')) if (line.startsWith('{')) rows.push(JSON.parse(line));
  };
  const self = [join(ROOT, 'bench/hsm.mjs'), '--seconds', String(SECONDS), '--rounds', String(ROUNDS), '--peer'];
  run(process.execPath, [...self, 'softhsm', '-']);
  const nssDir = mkdtempSync(join(tmpdir(), 'hce-bench-nss-'));
  try {
    execFileSync('bash', [join(ROOT, 'test/peers/nss.sh'), nssDir], { stdio: ['ignore', 'ignore', 'inherit'] });
    run(process.execPath, [...self, 'nss', join(nssDir, 'env.json')]);
  } finally {
    rmSync(nssDir, { recursive: true, force: true });
  }
  run('bash', [join(ROOT, 'test/peers/opencryptoki.sh'), 'run', '--', 'bash', '-c', `exec "$0" "$@" opencryptoki "$HCE_OPENCRYPTOKI_ENV"`, process.execPath, ...self]);
  console.log(`\n${'provider / mechanism'.padEnd(42)} ${'raw wrap'.padStart(9)} ${'eng c1'.padStart(9)} ${'eng c8'.padStart(9)} ${'raw unwrap'.padStart(11)} ${'eng c1'.padStart(9)} ${'eng c8'.padStart(9)}  ops/s`);
  for (const r of rows) {
    console.log(`${`${r.provider} / ${r.mechanism}`.padEnd(42)} ${fmt(r.rawWrap).padStart(9)} ${fmt(r.wrap_c1).padStart(9)} ${fmt(r.wrap_c8).padStart(9)} ${fmt(r.rawUnwrap).padStart(11)} ${fmt(r.unwrap_c1).padStart(9)} ${fmt(r.unwrap_c8).padStart(9)}` +
      `   c1/raw ${fmt(r.wrap_c1 / r.rawWrap)} / ${fmt(r.unwrap_c1 / r.rawUnwrap)}`);
  }
  writeResult('hsm-providers', { seconds: SECONDS, rounds: ROUNDS, rows });
}

async function peerChild(provider, envFile) {
  let env;
  if (provider === 'softhsm') {
    const t = await tempToken();
    env = { HSM_PKCS11_LIBRARY: t.library, HSM_TOKEN_LABEL: t.tokenLabel, HSM_PIN: t.pin };
  } else env = JSON.parse(readFileSync(envFile, 'utf8'));
  const { CryptoEngine } = await import('../dist/index.js');
  const pkcs11js = createRequire(import.meta.url)('pkcs11js');
  const p = new pkcs11js.PKCS11();
  p.load(env.HSM_PKCS11_LIBRARY);
  const base = { library: env.HSM_PKCS11_LIBRARY, tokenLabel: env.HSM_TOKEN_LABEL, pin: env.HSM_PIN, ...(env.HSM_INIT_ARGS ? { initArgs: env.HSM_INIT_ARGS } : {}) };
  for (const mechanism of MECHANISMS[provider]) {
    const engine = await CryptoEngine.open({ pkcs11: { ...base, wrapMechanism: mechanism }, dataKeyCache: false, threads: 1 });
    try { p.C_Initialize(env.HSM_INIT_ARGS ? { libraryParameters: `${env.HSM_INIT_ARGS} `, flags: pkcs11js.CKF_OS_LOCKING_OK } : { flags: pkcs11js.CKF_OS_LOCKING_OK }); } catch {}
    const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === env.HSM_TOKEN_LABEL);
    const session = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    const key = await engine.keys.create({ alias: `bench-${mechanism.replace(/[^A-Za-z0-9]/g, '')}-${Date.now()}` });
    const dek = randomBytes(32);
    const aad = ['bucket', 'object'];
    const wrapped = await engine.keys.wrap(key.id, dek, { aad });
    if (!Buffer.from(await engine.keys.unwrap(wrapped, { aad })).equals(dek)) throw new Error('round trip failed');
    const find = (id) => {
      p.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }, { type: pkcs11js.CKA_ID, value: id }]);
      const [h] = p.C_FindObjects(session, 1);
      p.C_FindObjectsFinal(session);
      return h;
    };
    const vid = Buffer.concat([Buffer.from(key.id.replace(/-/g, ''), 'hex'), Buffer.from([0, 0, 0, 1])]);
    const aesKey = find(vid);
    const macKey = mechanism.includes('HMAC') ? find(Buffer.concat([vid, Buffer.from('M')])) : undefined;
    const raw = rawCalls(p, pkcs11js, session, mechanism, aesKey, macKey, dek);
    const timed = (fn) => {
      const end = performance.now() + SECONDS * 1000;
      let ops = 0;
      while (performance.now() < end) { for (let i = 0; i < 20; i++) fn(); ops += 20; }
      return ops / SECONDS;
    };
    const engineLoop = async (op, concurrency) => {
      const end = performance.now() + SECONDS * 1000;
      let ops = 0;
      await Promise.all(Array.from({ length: concurrency }, async () => { while (performance.now() < end) { await op(); ops++; } }));
      return ops / SECONDS;
    };
    const rounds = async (fn) => { const r = []; for (let i = 0; i < ROUNDS; i++) r.push(await fn()); return median(r); };
    const row = {
      provider, mechanism, info: engine.hsmInfo(),
      rawWrap: await rounds(() => timed(raw.wrap)),
      rawUnwrap: await rounds(() => timed(raw.unwrap)),
      wrap_c1: await rounds(() => engineLoop(() => engine.keys.wrap(key.id, dek, { aad }), 1)),
      wrap_c8: await rounds(() => engineLoop(() => engine.keys.wrap(key.id, dek, { aad }), 8)),
      unwrap_c1: await rounds(() => engineLoop(() => engine.keys.unwrap(wrapped, { aad }), 1)),
      unwrap_c8: await rounds(() => engineLoop(() => engine.keys.unwrap(wrapped, { aad }), 8)),
    };
    console.log(JSON.stringify(row));
    p.C_CloseSession(session);
    await engine.close();
  }
}

/** The HSM calls one engine wrap/unwrap makes under `mechanism`, on one session, synchronously. */
function rawCalls(p, pkcs11js, session, mechanism, aesKey, macKey, dek) {
  const out = Buffer.alloc(128);
  if (mechanism === 'AES-GCM') {
    const gcm = (iv) => ({ mechanism: pkcs11js.CKM_AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_AES_GCM_v240, iv, ivBits: 96, aad: Buffer.alloc(57), tagBits: 128 } });
    const iv = randomBytes(12);
    p.C_EncryptInit(session, gcm(iv), aesKey);
    const sealed = Buffer.from(p.C_Encrypt(session, dek, Buffer.alloc(48)));
    return {
      wrap: () => { p.C_EncryptInit(session, gcm(randomBytes(12)), aesKey); p.C_Encrypt(session, dek, out); },
      unwrap: () => { p.C_DecryptInit(session, gcm(iv), aesKey); p.C_Decrypt(session, sealed, out); },
    };
  }
  if (mechanism === 'AES-KWP') {
    const input = Buffer.concat([randomBytes(32), dek]);
    let kwp = 0x210b;
    try { p.C_EncryptInit(session, { mechanism: kwp }, aesKey); p.C_Encrypt(session, input, out); } catch { kwp = 0x210a; }
    p.C_EncryptInit(session, { mechanism: kwp }, aesKey);
    const sealed = Buffer.from(p.C_Encrypt(session, input, out));
    return {
      wrap: () => { p.C_EncryptInit(session, { mechanism: kwp }, aesKey); p.C_Encrypt(session, input, out); },
      unwrap: () => { p.C_DecryptInit(session, { mechanism: kwp }, aesKey); p.C_Decrypt(session, sealed, out); },
    };
  }
  const cbc = (iv) => ({ mechanism: pkcs11js.CKM_AES_CBC_PAD, parameter: iv });
  const iv = randomBytes(16);
  p.C_EncryptInit(session, cbc(iv), aesKey);
  const sealed = Buffer.from(p.C_Encrypt(session, dek, Buffer.alloc(64)));
  const macInput = Buffer.alloc(24 + 16 + 48 + 21);
  const mac = Buffer.alloc(32);
  const sign = () => { p.C_SignInit(session, { mechanism: pkcs11js.CKM_SHA256_HMAC }, macKey); p.C_Sign(session, macInput, mac); };
  return {
    wrap: () => { p.C_EncryptInit(session, cbc(randomBytes(16)), aesKey); p.C_Encrypt(session, dek, out); sign(); },
    unwrap: () => { sign(); p.C_DecryptInit(session, cbc(iv), aesKey); p.C_Decrypt(session, sealed, out); },
  };
}
