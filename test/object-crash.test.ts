// A process killed (SIGKILL) in the middle of a put leaves no shard that looks complete: only temp files,
// which readers never see.
import t from 'tap';
import { spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { engineOptions } from './helpers/token.js';
import { collect, shardDirs } from './helpers/shards.js';
import { CryptoEngine, ObjectNotFoundError } from '../dist/index.js';

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
