// Processes killed (SIGKILL) in the middle of object operations. First: a put of an endless stream leaves only
// temp files, which readers never see. Then re-put, repair and rewrap killed at spread points (before the Nth
// store call, counted in the child): after each, the object reads back as exactly its old or its new content,
// and a repair then leaves one complete generation.
import t from 'tap';
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import ts from 'typescript';
import { join } from 'node:path';
import { engineOptions } from './helpers/token.js';
import { collect, generationsOn, objectFolder, shardDirs } from './helpers/shards.js';
import { pseudoRandom } from './helpers/aead-fixture.js';
import { MemoryKeyProvider } from './helpers/memory-keys.js';
import { CryptoEngine, ObjectNotFoundError } from '../dist/index.js';
import { ObjectService } from '../dist/object/object-service.js';
import { WorkerPool } from '../dist/pool/pool.js';
import { WORKER_ENTRY } from '../dist/worker-entry.js';

t.test('SIGKILL mid-put', async (t) => {
  const options = engineOptions();
  const { root, dirs, store } = shardDirs(6);
  const engine = await CryptoEngine.open(options);
  t.teardown(() => engine.close());
  const key = await engine.keys.create({ alias: 'crash' });
  const script = join(root, 'put.mjs');
  writeFileSync(script, `
    import { randomBytes } from 'node:crypto';
    const { CryptoEngine, FsShardStore } = await import(${JSON.stringify(new URL('../dist/index.js', import.meta.url).href)});
    const engine = await CryptoEngine.open(${JSON.stringify(options)});
    const store = new FsShardStore(${JSON.stringify(dirs)});
    async function* endless() { const block = randomBytes(1 << 20); for (;;) yield block; }
    await engine.putObject('crashed', endless(), {
      keyId: ${JSON.stringify(key.id)}, dataShards: 4, parityShards: 2, store,
      onProgress: (done) => { if (done >= 32 << 20) process.stdout.write('far enough\\n'); },
    });
  `);
  const child = spawn(process.execPath, [script], { env: process.env, stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  const files = dirs.flatMap((d) => readdirSync(d));
  t.ok(files.length > 0 && files.every((f) => f.startsWith('.tmp-')), `only temp files left (${files.length})`);
  await t.rejects(collect(engine.getObject('crashed', { store })), ObjectNotFoundError, 'nothing reads as the object');
  t.equal(await store.sweepTempFiles(60_000), 0, 'fresh temp files are left alone (a writer may still own them)');
  t.equal(await store.sweepTempFiles(0), 6, 'stale temp files are swept');
  t.same(dirs.flatMap((d) => readdirSync(d)), []);
});

t.test('re-put, repair and rewrap killed at spread points: old or new, then one complete generation', async (t) => {
  const K = 4;
  const M = 2;
  const SEG = 16 * 1024;
  const SIZE = 300 * 1024;
  const seed = 'c0ffee'.repeat(4);
  const id = 'crash/object';
  const OLD = 1;
  const NEW = 2;
  const keys = new MemoryKeyProvider({ seed: Buffer.from(seed, 'hex') });
  const keyId = keys.createKey('crash');
  const pool = new WorkerPool(1, { entry: WORKER_ENTRY });
  const objects = new ObjectService({ keys, pool: () => pool, threads: 1 });
  t.teardown(async () => {
    objects.close();
    await pool.close();
  });
  const content = (which: number) => pseudoRandom(SIZE + which * 1000, which);
  const { root, dirs, store } = shardDirs(K + M);
  const pristine = join(root, 'pristine');

  // The child runs as plain JavaScript (the TypeScript loader costs seconds per process): its helpers are
  // transpiled once, here, with the TypeScript compiler's transpileModule.
  const childDir = join(root, 'child');
  mkdirSync(childDir);
  writeFileSync(join(childDir, 'package.json'), '{"type":"module"}');
  const dist = new URL('../dist/', import.meta.url).href;
  for (const name of ['crash-child', 'fault-store', 'memory-keys', 'aead-fixture']) {
    const source = readFileSync(new URL(`./helpers/${name}.ts`, import.meta.url), 'utf8');
    const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    writeFileSync(join(childDir, `${name}.js`), js.replaceAll("'../../dist/", `'${dist}`));
  }
  const child = (op: string, killAt: number, rotations: number) => new Promise<{ killed: boolean; calls: number }>((resolve, reject) => {
    const job = { dirs, op, killAt, seed, rotations, id, size: SIZE + NEW * 1000, dataSeed: NEW, k: K, m: M, segmentBytes: SEG };
    const p = spawn(process.execPath, [join(childDir, 'crash-child.js'), JSON.stringify(job)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.once('error', reject);
    p.once('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ killed: true, calls: 0 });
      else if (code === 0) resolve({ killed: false, calls: JSON.parse(out).calls });
      else reject(new Error(`child exited with ${code}`));
    });
  });
  const snapshot = () => {
    rmSync(pristine, { recursive: true, force: true });
    for (const [i, d] of dirs.entries()) cpSync(d, join(pristine, String(i)), { recursive: true });
  };
  const restore = () => {
    for (const [i, d] of dirs.entries()) {
      rmSync(d, { recursive: true, force: true });
      cpSync(join(pristine, String(i)), d, { recursive: true });
    }
  };
  /** Reads the object and says which content it is (or fails the test). */
  const which = async (label: string): Promise<number> => {
    const back = await collect(objects.getObject(id, { store })).catch((e) => e);
    const got = Buffer.isBuffer(back) ? [OLD, NEW].find((w) => back.equals(content(w))) : undefined;
    if (got === undefined) t.fail(`${label}: read ${back instanceof Error ? back.name + ' ' + back.message : 'other bytes'}`);
    return got ?? 0;
  };
  const oneCompleteGeneration = (label: string) => {
    const gens = new Set(dirs.flatMap((d) => generationsOn(d, id)));
    const gen = [...gens][0];
    const complete = gens.size === 1 && dirs.every((d, j) => readdirSync(join(objectFolder(d, id), `-${gen}`)).includes(String(j)));
    if (!complete) t.fail(`${label}: ${gens.size} generations after repair`);
    return complete;
  };

  let points = 0;
  const run = async (op: 'put' | 'repair' | 'rewrap', rotations: number, allowed: number[]) => {
    snapshot();
    const dry = await child(op, 0, rotations);
    restore();
    const total = dry.calls;
    const kills = Array.from({ length: 12 }, (_, i) => 1 + Math.floor((i * (total - 1)) / 11));
    const seen = new Map<number, number>();
    for (const killAt of kills) {
      restore();
      const r = await child(op, killAt, rotations);
      const label = `${op} killed before store call ${killAt} of ${total}`;
      const got = await which(label);
      seen.set(got, (seen.get(got) ?? 0) + 1);
      if (!allowed.includes(got)) t.fail(`${label}: read content ${got}`);
      await objects.repairObject(id, { store, staleAfterMs: 0 });
      const after = await which(`${label}, repaired`);
      if (after !== got) t.fail(`${label}: repair changed the content`);
      oneCompleteGeneration(label);
      if (r.killed) points++;
    }
    t.pass(`${op}: ${kills.length} kill points over ${total} store calls; read ${[...seen].map(([w, n]) => `${w === OLD ? 'old' : 'new'} ×${n}`).join(', ')}`);
  };

  // Re-put: the old content is there, the child puts the new one.
  await objects.putObject(id, content(OLD), { keyId, dataShards: K, parityShards: M, store, segmentBytes: SEG });
  await run('put', 0, [OLD, NEW]);

  // Repair: the new content with one shard lost and one corrupt.
  restore();
  await objects.putObject(id, content(NEW), { keyId, dataShards: K, parityShards: M, store, segmentBytes: SEG });
  const gen = generationsOn(dirs[0]!, id)[0]!;
  for (const j of [4]) rmSync(join(objectFolder(dirs[j]!, id), `-${gen}`, String(j)));
  const victim = join(objectFolder(dirs[2]!, id), `-${gen}`, '2');
  const bytes = readFileSync(victim);
  bytes[bytes.length >> 1] ^= 1;
  writeFileSync(victim, bytes);
  await run('repair', 0, [NEW]);

  // Rewrap after a rotation; the parent rotates too (same seed, same key versions).
  restore();
  await objects.repairObject(id, { store });
  keys.rotate(keyId);
  await run('rewrap', 1, [NEW]);
  const report = await objects.rewrapObject(id, { store });
  t.equal(report.keyVersion, 2);
  keys.retire(keyId, 1);
  t.ok((await collect(objects.getObject(id, { store }))).equals(content(NEW)), 'after a last rewrap, the old key version is not needed');
  t.ok(points >= 30, `${points} processes SIGKILLed mid-operation`);
});
