// HSM wrap/unwrap throughput through engine.keys vs a raw pkcs11js loop on the same token key.
//   node bench/hsm.mjs [--seconds 1] [--rounds 5]
// Single-caller rows (raw loop, engine at concurrency 1, cached unwrap) are op rates from benchmark.js (ops/s ± rme,
// at most rounds × seconds each); the concurrency 8/64 rows keep a timed loop (medians of rounds × seconds), and
// their ratios are medians of per-round ratios against a timed raw loop run in the same round (raw, A, B, raw, …):
// on a loaded machine a raw figure taken minutes earlier says little.
// Goals (issue #2, #13): engine ≥ 0.9× raw at concurrency 1; ≥ raw single-session at concurrency ≥ 8;
// event-loop delay p99 < 5 ms; cached unwrap ≥ 1M ops/s. Writes bench/results/hsm.json.
// The concurrency rows run A/B in one process, interleaved round by round: the engine with its native HSM lane
// and a second engine without it (HCE_HSM_LANE=0: synchronous calls and *Async lanes); the lane rows also give the
// lane thread's CPU per call, the share of time it spent in module calls, and the whole process's CPU; the load
// average is recorded.
//   node bench/hsm.mjs --providers [--seconds 0.5] [--rounds 3]
// Per provider (SoftHSM, NSS softokn, openCryptoki: fresh tokens via test/peers/*.sh) and per wrap mechanism it
// offers: engine wrap/unwrap (cache off, concurrency 1 and 8) vs a raw loop of the same calls on that provider.
// Writes bench/results/hsm-providers.json.
import { providerBench } from './hsm-providers.mjs';
if (process.argv.includes('--providers') || process.argv.includes('--peer')) {
  await providerBench();
  process.exit(0);
}
import { createRequire } from 'node:module';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { fmt, fmtRate, median, opsRate, tempToken, writeResult } from './common.mjs';

const args = process.argv.slice(2);
const arg = (name, dflt) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : dflt);
const SECONDS = arg('--seconds', 1);
const ROUNDS = arg('--rounds', 5);

const token = await tempToken();
const { CryptoEngine } = await import('../dist/index.js');
const pkcs11js = createRequire(import.meta.url)('pkcs11js');

const pkcs11 = { library: token.library, tokenLabel: token.tokenLabel, pin: token.pin };
process.env.HCE_HSM_LANE = '1'; // the first engine runs with the lane (whatever the default)
const engine = await CryptoEngine.open({ pkcs11, dataKeyCache: false, threads: 1 });
const cachedEngine = await CryptoEngine.open({ pkcs11, threads: 1 });
process.env.HCE_HSM_LANE = '0'; // read when an engine opens
const noLaneEngine = await CryptoEngine.open({ pkcs11, dataKeyCache: false, threads: 1 });
delete process.env.HCE_HSM_LANE;
if (!engine.keys.hsmLaneStats()) console.log('(no native HSM lane here: both engines take the same paths)');
const key = await engine.keys.create({ alias: 'bench' });
const dek = randomBytes(32);
const aad = ['bucket', 'object'];
const wrapped = await engine.keys.wrap(key.id, dek, { aad });
if (!Buffer.from(await engine.keys.unwrap(wrapped, { aad })).equals(dek)) throw new Error('round trip failed');

// Raw loop: same key object, same mechanism, one session, synchronous calls.
const p = new pkcs11js.PKCS11();
p.load(token.library);
try { p.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK }); } catch {}
const slot = p.C_GetSlotList(true).find((s) => p.C_GetTokenInfo(s).label.trim() === token.tokenLabel);
const session = p.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
// Version 1's CKA_ID: key id ‖ version (u32 BE).
const versionId = Buffer.concat([Buffer.from(key.id.replace(/-/g, ''), 'hex'), Buffer.from([0, 0, 0, 1])]);
p.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY }, { type: pkcs11js.CKA_ID, value: versionId }]);
const [handle] = p.C_FindObjects(session, 1);
p.C_FindObjectsFinal(session);
// The AAD the engine binds for aad ["bucket", "object"]: 36-byte blob header + 21 bytes of encoded aad.
const gcm = (iv) => ({ mechanism: pkcs11js.CKM_AES_GCM, parameter: { type: pkcs11js.CK_PARAMS_AES_GCM_v240, iv, ivBits: 96, aad: Buffer.alloc(57), tagBits: 128 } });
const rawIv = randomBytes(12);
p.C_EncryptInit(session, gcm(rawIv), handle);
const rawSealed = Buffer.from(p.C_Encrypt(session, dek, Buffer.alloc(48)));

const rawOut = Buffer.alloc(48);
const rawOps = {
  wrap() {
    p.C_EncryptInit(session, gcm(randomBytes(12)), handle);
    p.C_Encrypt(session, dek, rawOut);
  },
  unwrap() {
    p.C_DecryptInit(session, gcm(rawIv), handle);
    p.C_Decrypt(session, rawSealed, rawOut);
  },
};

async function engineLoop(target, op, concurrency) {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const end = performance.now() + SECONDS * 1000;
  let ops = 0;
  const lane0 = target.keys.hsmLaneStats();
  const cpu0 = process.cpuUsage();
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      await op(target);
      ops++;
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const lane1 = target.keys.hsmLaneStats();
  // Let the loop turn once more: a starved loop records its delay only when its timer finally fires.
  await new Promise((resolve) => setTimeout(resolve, 5));
  histogram.disable();
  const laneCalls = lane1 ? lane1[0] - lane0[0] : 0;
  return {
    opsPerSec: ops / seconds,
    loopP99Ms: histogram.percentile(99) / 1e6,
    loopMaxMs: histogram.max / 1e6,
    processCpuMicrosPerOp: (cpu.user + cpu.system) / ops,
    ...(laneCalls > 0 ? { laneShare: laneCalls / ops, laneCpuMicrosPerCall: ((lane1[2] - lane0[2]) * 1e6) / laneCalls, laneBusy: (lane1[3] - lane0[3]) / seconds, laneDryPer1kCalls: ((lane1[4] - lane0[4]) * 1000) / laneCalls } : {}),
  };
}

const wrapOp = (e) => e.keys.wrap(key.id, dek, { aad });
const unwrapOp = (e) => e.keys.unwrap(wrapped, { aad });

const rows = [];
/**
 * One caller, one op at a time, through benchmark.js. No event-loop figure here: benchmark.js runs its timed
 * cycles back to back, so the loop delay would measure the harness; the concurrency rows report it.
 */
async function measureRate(name, fn, async) {
  const rate = await opsRate(name, fn, { maxTime: SECONDS * ROUNDS, minSamples: ROUNDS, async });
  rows.push({ name, opsPerSec: rate.opsPerSec, rmePercent: rate.rmePercent, samples: rate.samples });
  console.log(`${name.padEnd(34)} ${fmtRate(rate)}`);
  return rate.opsPerSec;
}

/** The raw loop for SECONDS as a timed loop (no benchmark.js), to run between the engine rounds. */
function rawLoop(fn) {
  const end = performance.now() + SECONDS * 1000;
  const started = performance.now();
  let ops = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 100; i++) fn();
    ops += 100;
  }
  return ops / ((performance.now() - started) / 1000);
}

/**
 * Rounds of the raw loop and each variant in turn (raw, A, B, raw, A, B …), so a change in machine load hits all
 * alike; each variant's ratio is taken against the raw loop of its own round, and the medians are reported.
 */
async function measureAB(raw, variants) {
  const runs = variants.map(() => []);
  const raws = [];
  for (let r = 0; r < ROUNDS; r++) {
    const base = rawLoop(raw);
    raws.push(base);
    for (const [i, [, fn]] of variants.entries()) {
      const run = await fn();
      runs[i].push({ ...run, vsRaw: run.opsPerSec / base });
    }
  }
  return variants.map(([name], i) => {
    const pick = (key) => (runs[i][0][key] === undefined ? undefined : median(runs[i].map((x) => x[key])));
    const row = { name, opsPerSec: pick('opsPerSec'), vsRawInterleaved: pick('vsRaw'), rawOpsPerSec: median(raws), loopP99Ms: pick('loopP99Ms'), loopMaxMs: pick('loopMaxMs'), processCpuMicrosPerOp: pick('processCpuMicrosPerOp') };
    if (runs[i][0].laneShare !== undefined) Object.assign(row, { laneShare: pick('laneShare'), laneCpuMicrosPerCall: pick('laneCpuMicrosPerCall'), laneBusy: pick('laneBusy'), laneDryPer1kCalls: pick('laneDryPer1kCalls') });
    rows.push(row);
    const lane = row.laneShare === undefined ? '' : `, lane ${(row.laneShare * 100).toFixed(0)}% of calls at ${row.laneCpuMicrosPerCall.toFixed(1)} µs CPU, busy ${(row.laneBusy * 100).toFixed(0)}%, ran dry ${row.laneDryPer1kCalls.toFixed(1)}× per 1k calls`;
    console.log(`${name.padEnd(44)} ${fmt(row.opsPerSec).padStart(10)} ops/s = ${fmt(row.vsRawInterleaved)}× raw (medians)  loop p99 ${row.loopP99Ms.toFixed(2)} ms, max ${row.loopMaxMs.toFixed(2)} ms; process ${row.processCpuMicrosPerOp.toFixed(1)} µs CPU/op${lane}`);
    return row.vsRawInterleaved;
  });
}

const loadBefore = loadavg();
console.log(`HSM benchmark: SoftHSM via pkcs11js, AES-256-GCM wrap of a 32-byte DEK, ${ROUNDS} rounds × ${SECONDS}s; load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')}\n`);
const rawWrap = await measureRate('raw pkcs11js wrap (1 session, sync)', rawOps.wrap, false);
const rawUnwrap = await measureRate('raw pkcs11js unwrap (1 session, sync)', rawOps.unwrap, false);
const result = { rawWrap, rawUnwrap, engine: {} };
result.engine.wrap_c1 = await measureRate('engine.keys.wrap   concurrency 1', () => wrapOp(engine), true);
result.engine.unwrap_c1 = await measureRate('engine.keys.unwrap concurrency 1', () => unwrapOp(engine), true);
const ratios = {};
for (const concurrency of [8, 64]) {
  for (const [opName, op] of [['wrap  ', wrapOp], ['unwrap', unwrapOp]]) {
    const [withLane, withoutLane] = await measureAB(opName === 'wrap  ' ? rawOps.wrap : rawOps.unwrap, [
      [`engine.keys.${opName} concurrency ${concurrency} (HSM lane, default)`, () => engineLoop(engine, op, concurrency)],
      [`  same, HCE_HSM_LANE=0: no HSM lane`, () => engineLoop(noLaneEngine, op, concurrency)],
    ]);
    ratios[`${opName.trim()}_c${concurrency}`] = withLane;
    ratios[`${opName.trim()}_c${concurrency}_noLane`] = withoutLane;
  }
}
const cached = await measureRate('engine.keys.unwrap cached (c1)', () => unwrapOp(cachedEngine), true);

const p99 = Math.max(...rows.filter((r) => r.loopP99Ms !== undefined && !r.name.includes('no HSM lane')).map((r) => r.loopP99Ms));
const p99NoLane = Math.max(...rows.filter((r) => r.loopP99Ms !== undefined && r.name.includes('no HSM lane')).map((r) => r.loopP99Ms));
const goals = {
  wrapC1VsRaw: result.engine.wrap_c1 / rawWrap,
  unwrapC1VsRaw: result.engine.unwrap_c1 / rawUnwrap,
  // c8/c64: medians of the per-round ratios against the raw loop run between the engine rounds.
  wrapC8VsRaw: ratios.wrap_c8,
  unwrapC8VsRaw: ratios.unwrap_c8,
  wrapC64VsRaw: ratios.wrap_c64,
  unwrapC64VsRaw: ratios.unwrap_c64,
  noLane: {
    wrapC8VsRaw: ratios.wrap_c8_noLane,
    unwrapC8VsRaw: ratios.unwrap_c8_noLane,
    wrapC64VsRaw: ratios.wrap_c64_noLane,
    unwrapC64VsRaw: ratios.unwrap_c64_noLane,
  },
  worstEventLoopP99Ms: p99,
  worstEventLoopP99MsNoLane: p99NoLane,
  cachedUnwrapOpsPerSec: cached,
};
console.log('\nratios vs raw loop (goal ≥ 0.9 at c1, ≥ 1 at c ≥ 8):');
for (const [k, v] of Object.entries(goals)) console.log(`  ${k.padEnd(24)} ${typeof v === 'number' ? fmt(v) : Object.entries(v).map(([a, b]) => `${a} ${fmt(b)}`).join(', ')}`);
const loadAfter = loadavg();
writeResult('hsm', { seconds: SECONDS, rounds: ROUNDS, loadAverage: { before: loadBefore, after: loadAfter }, rows, goals });
p.C_CloseSession(session);
await engine.close();
await cachedEngine.close();
await noLaneEngine.close();
