// Buckets: (1) sealing + opening 4 KiB objects through a bucket's crypto path (bucket key, no store) vs the raw
// HSM wrap rate on the same token (goal ≥ 4×); (2) bucket putObject/getObject of 4 KiB and 64 KiB, 64 in flight,
// FsShardStore on tmpfs vs writing/reading the same files with the same fsync policy and no crypto (goal ≥ 0.5×);
// (3) listing 100k objects (seconds).   node bench/buckets.mjs [--seconds 2] [--rounds 3] [--list 100000]
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, readdirSync, statSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmt, median, tempToken, writeResult } from './common.mjs';

const args = process.argv.slice(2);
const arg = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
const SECONDS = arg('--seconds', 2);
const ROUNDS = arg('--rounds', 3);
const LIST = arg('--list', 100_000);
const CRYPTO_ONLY = args.includes('--crypto-only');
const K = 4, M = 2, IN_FLIGHT = 64;

const token = await tempToken();
const { CryptoEngine } = await import('../dist/index.js');
const { FsShardStore } = await import('../dist/object/fs-shard-store.js');
const { BucketKeyring } = await import('../dist/bucket/bucket-keys.js');
const { readManifest } = await import('../dist/bucket/manifest.js');
const { ObjectCipher } = await import('../dist/aead/object-cipher.js');
const { WorkerPool } = await import('../dist/pool/pool.js');
const { WORKER_ENTRY } = await import('../dist/worker-entry.js');
const pkcs11js = createRequire(import.meta.url)('pkcs11js');
const pkcs11 = { library: token.library, tokenLabel: token.tokenLabel, pin: token.pin };
const engine = await CryptoEngine.open({ pkcs11, threads: 2 });
const key = await engine.keys.create({ alias: 'bench-buckets' });

const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
function freshStore(nodes = K + M) {
  const root = mkdtempSync(join(base, 'hce-bench-buckets-'));
  const dirs = Array.from({ length: nodes }, (_, i) => join(root, `n${i}`));
  dirs.forEach((d) => mkdirSync(d));
  return { root, dirs, store: new FsShardStore(dirs) };
}
/** CPU time of the whole process (every thread: main, libuv pool, workers) per op in the last rate(): under load
 * from other processes this moves much less than ops/s. */
let lastCpuUsPerOp = NaN;
async function rate(fn) {
  await fn(); // warm-up round (JIT, caches), not counted
  const rates = [];
  const cpus = [];
  for (let r = 0; r < ROUNDS; r++) {
    rates.push(await fn());
    cpus.push(windowCpuUsPerOp);
  }
  lastCpuUsPerOp = median(cpus);
  return median(rates);
}
let windowCpuUsPerOp = NaN;
async function window(seconds, op) {
  const end = performance.now() + seconds * 1000;
  const cpu0 = process.cpuUsage();
  let ops = 0;
  let i = 0;
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (performance.now() < end) {
      await op(i++);
      ops++;
    }
  }));
  const cpu = process.cpuUsage(cpu0);
  windowCpuUsPerOp = (cpu.user + cpu.system) / ops;
  return ops / seconds;
}

// ---- (1) crypto path ---------------------------------------------------------------------------------------
const results = {};
{
  const { root, store } = freshStore();
  await engine.buckets.create('crypto', { store, keyId: key.id, dataShards: K, parityShards: M });
  const manifest = await readManifest(engine.keys.bucketSupport().mac, store, 'crypto');
  const keyring = new BucketKeyring(engine.keys, engine.keys.bucketSupport(), store, manifest);
  await keyring.load();
  const pool = new WorkerPool(1, { entry: WORKER_ENTRY });
  const bucketCipher = new ObjectCipher({ keys: keyring, pool });
  const plain = randomBytes(4096);
  const context = { bucket: 'crypto', object: 'o' };
  const check = await bucketCipher.decrypt(await bucketCipher.encrypt(plain, { keyId: key.id, context }), { context });
  if (!check.equals(plain)) throw new Error('bucket crypto round trip failed');
  const sealOpen = async () => {
    const sealed = await bucketCipher.encrypt(plain, { keyId: key.id, context });
    await bucketCipher.decrypt(sealed, { context });
  };
  // V8 needs ~20k calls of this path before its rate stops rising (measured): warm up before any timing.
  for (let i = 0; i < 20_000; i++) await sealOpen();
  // The part bucket keys replace: a fresh DEK wrapped per object, and unwrapped again (no payload).
  const objectAad = ['hce/object/v1', 'o'];
  const keyOnly = async () => {
    const { plaintext, wrapped } = await keyring.generateDataKey(key.id, { aad: objectAad });
    plaintext.fill(0);
    (await keyring.unwrap(wrapped, { aad: objectAad })).fill(0);
  };
  for (let i = 0; i < 20_000; i++) await keyOnly();
  results.bucketDekWrapUnwrapPerSec = await rate(() => window(SECONDS, keyOnly));
  console.log(`bucket keys: DEK wrap+unwrap per object  ${fmt(results.bucketDekWrapUnwrapPerSec)} objects/s`);
  results.bucketSealOpen4KiBPerSec = await rate(() => window(SECONDS, sealOpen));
  console.log(`bucket crypto path: seal+open 4 KiB      ${fmt(results.bucketSealOpen4KiBPerSec)} objects/s`);
  const hsmEngine = await CryptoEngine.open({ pkcs11, threads: 1, dataKeyCache: false });
  const perObject = async () => {
    const sealed = await hsmEngine.encrypt(plain, { keyId: key.id, context });
    await hsmEngine.decrypt(sealed, { context });
  };
  results.hsmPerObjectSealOpen4KiBPerSec = await rate(() => window(SECONDS, perObject));
  console.log(`HSM per object (engine, no cache):       ${fmt(results.hsmPerObjectSealOpen4KiBPerSec)} objects/s`);
  await hsmEngine.close();
  await pool.close();
  rmSync(root, { recursive: true, force: true });

  // Raw HSM wrap: same token, same key, one session, synchronous pkcs11js calls.
  const p = new pkcs11js.PKCS11();
  p.load(token.library);
  try { p.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK }); } catch {}
  const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === token.tokenLabel);
  const session = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  p.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }, { type: pkcs11js.CKA_ID, value: Buffer.concat([Buffer.from(key.id.replace(/-/g, ''), 'hex'), Buffer.from([0, 0, 0, 1])]) }]); // id ‖ version 1
  const [handle] = p.C_FindObjects(session, 1);
  p.C_FindObjectsFinal(session);
  const dek = randomBytes(32);
  const out = Buffer.alloc(48);
  const gcm = (iv) => ({ mechanism: pkcs11js.CKM_AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_AES_GCM_v240, iv, ivBits: 96, aad: Buffer.alloc(57), tagBits: 128 } });
  results.rawHsmWrapPerSec = await rate(async () => {
    const end = performance.now() + SECONDS * 1000;
    let ops = 0;
    while (performance.now() < end) {
      for (let i = 0; i < 100; i++) {
        p.C_EncryptInit(session, gcm(randomBytes(12)), handle);
        p.C_Encrypt(session, dek, out);
      }
      ops += 100;
    }
    return ops / SECONDS;
  });
  results.bucketVsRawWrap = results.bucketSealOpen4KiBPerSec / results.rawHsmWrapPerSec;
  results.bucketKeysVsRawWrap = results.bucketDekWrapUnwrapPerSec / results.rawHsmWrapPerSec;
  console.log(`raw HSM wrap (pkcs11js, 1 session):       ${fmt(results.rawHsmWrapPerSec)} wraps/s → seal+open ${fmt(results.bucketVsRawWrap)}×, DEK wrap+unwrap ${fmt(results.bucketKeysVsRawWrap)}× (goal ≥ 4)\n`);
}
if (CRYPTO_ONLY) {
  await engine.close();
  writeResult('buckets-crypto', { seconds: SECONDS, rounds: ROUNDS, results });
  process.exit(0);
}

// ---- (2) put/get vs plain files --------------------------------------------------------------------------------
/** The baseline: k+m files per object written (temp, fsync, rename, fsync folder) as FsShardStore does, no crypto. */
async function plainPut(dirs, name, body) {
  const part = Math.ceil(body.length / K);
  await Promise.all(dirs.map(async (dir, j) => {
    const folder = join(dir, name);
    mkdirSync(folder, { recursive: true });
    const temp = join(dir, `.tmp-${randomBytes(8).toString('hex')}`);
    const h = await open(temp, 'wx');
    await h.write(body.subarray(Math.min(j, K - 1) * part, Math.min(j, K - 1) * part + part));
    await h.sync();
    await h.close();
    const { rename } = await import('node:fs/promises');
    await rename(temp, join(folder, String(j)));
    const d = await open(folder, 'r');
    await d.sync();
    await d.close();
  }));
}
async function plainGet(dirs, name) {
  const parts = await Promise.all(dirs.slice(0, K).map((dir, j) => readFile(join(dir, name, String(j)))));
  return Buffer.concat(parts);
}
for (const size of [4096, 65536]) {
  const { root, dirs, store } = freshStore();
  const bucket = await engine.buckets.create(`io-${size}`, { store, keyId: key.id, dataShards: K, parityShards: M });
  const body = randomBytes(size);
  await bucket.putObject('check', body);
  const chunks = [];
  for await (const c of bucket.getObject('check')) chunks.push(c);
  if (!Buffer.concat(chunks).equals(body)) throw new Error('bucket round trip failed');
  const row = {};
  let n = 0;
  row.putPerSec = await rate(() => window(SECONDS, async () => void (await bucket.putObject(`p/${n++ % 2000}`, body))));
  row.getPerSec = await rate(() => window(SECONDS, async (i) => {
    let got = 0;
    for await (const c of bucket.getObject(`p/${i % 2000 % Math.max(1, Math.min(n, 2000))}`)) got += c.length;
    if (got !== size) throw new Error('short read');
  }));
  row.getCpuUsPerOp = lastCpuUsPerOp;
  const plainRoot = freshStore();
  let p = 0;
  row.plainPutPerSec = await rate(() => window(SECONDS, async () => plainPut(plainRoot.dirs, `p${p++ % 2000}`, body)));
  row.plainGetPerSec = await rate(() => window(SECONDS, async (i) => void (await plainGet(plainRoot.dirs, `p${i % Math.min(p, 2000)}`))));
  row.plainGetCpuUsPerOp = lastCpuUsPerOp;
  row.putVsPlain = row.putPerSec / row.plainPutPerSec;
  row.getVsPlain = row.getPerSec / row.plainGetPerSec;
  console.log(`${size / 1024} KiB: put ${fmt(row.putPerSec)}/s vs plain ${fmt(row.plainPutPerSec)}/s (${fmt(row.putVsPlain)}×); get ${fmt(row.getPerSec)}/s vs plain ${fmt(row.plainGetPerSec)}/s (${fmt(row.getVsPlain)}×) (goal ≥ 0.5); CPU per get ${fmt(row.getCpuUsPerOp)} µs vs plain ${fmt(row.plainGetCpuUsPerOp)} µs`);
  results[`io${size / 1024}KiB`] = row;
  rmSync(root, { recursive: true, force: true });
  rmSync(plainRoot.root, { recursive: true, force: true });
}

// ---- (3) listing ---------------------------------------------------------------------------------------------
// The listing reads only the listing entries (keys under bi/<bucket>/ on m+1 nodes), so the bucket is filled with
// entries exactly as the bucket's index writer makes them (MACed under its bucket key) plus a few real objects,
// rather than 100k full puts (which would time the puts, not the listing).
{
  const { ObjectIndex } = await import('../dist/bucket/listing.js');
  const { root, store } = freshStore();
  const bucket = await engine.buckets.create('listing', { store, keyId: key.id, dataShards: K, parityShards: M });
  for (let i = 0; i < 10; i++) await bucket.putObject(`obj/${String(i).padStart(7, '0')}`, Buffer.from('x'));
  const manifest = await readManifest(engine.keys.bucketSupport().mac, store, 'listing');
  const keyring = new BucketKeyring(engine.keys, engine.keys.bucketSupport(), store, manifest);
  await keyring.load();
  const index = new ObjectIndex(store, manifest, keyring);
  const { bkid } = await index.read('obj/0000000');
  // Entries are made as index.write makes them (same key, same MAC under the bucket key), but written straight into
  // the node folders without fsync: the fill is setup, not what is timed.
  const { indexKey } = await import('../dist/bucket/layout.js');
  const { writeFileSync } = await import('node:fs');
  const t0 = performance.now();
  const hex12 = (n) => n.toString(16).padStart(12, '0');
  const BATCH = 1000;
  for (let from = 10; from < LIST; from += BATCH) {
    const entries = [];
    for (let i = from; i < Math.min(LIST, from + BATCH); i++) entries.push({ name: `obj/${String(i).padStart(7, '0')}`, createdAt: Date.now(), size: 1, bkid });
    const macs = await keyring.indexMacs(bkid, entries.map((e) => Buffer.from(JSON.stringify(['hce/bucket-index/v1', manifest.name, manifest.gen, e.name, e.createdAt, e.size, e.bkid]))));
    entries.forEach((e, j) => {
      const key = indexKey('listing', e.name, `${hex12(e.createdAt)}.${hex12(e.size)}.${e.bkid}.${macs[j].toString('hex')}`);
      for (let node = 0; node <= M; node++) writeFileSync(store.path(node, key), '');
    });
  }
  const fillSeconds = (performance.now() - t0) / 1000;
  const times = [];
  for (let r = 0; r < ROUNDS; r++) {
    const t1 = performance.now();
    let count = 0;
    let last = '';
    for await (const o of bucket.listObjects()) {
      if (o.name <= last) throw new Error('listing out of order');
      last = o.name;
      count++;
    }
    if (count !== LIST) throw new Error(`listed ${count} of ${LIST}`);
    times.push((performance.now() - t1) / 1000);
  }
  results.listing = { objects: LIST, filledWith: 'listing entries as index.write makes them (written without fsync) + 10 real objects', fillSeconds, listSeconds: median(times), objectsPerSec: LIST / median(times) };
  console.log(`\nlisting ${LIST} objects: ${fmt(results.listing.listSeconds)} s (${fmt(results.listing.objectsPerSec)} objects/s); filling took ${fmt(fillSeconds)} s`);
  rmSync(root, { recursive: true, force: true });
}

await engine.close();
writeResult('buckets', { shape: `${K}+${M}`, inFlight: IN_FLIGHT, seconds: SECONDS, rounds: ROUNDS, results });
