// The crash test's child process: runs one object operation (re-put, repair or rewrap) on shard folders and
// SIGKILLs itself just before its Nth store call (helpers/fault-store.ts counts them), or runs to the end and
// prints how many store calls the operation made. Keys: a seeded in-memory provider shared with the parent.
import { FsShardStore } from '../../dist/index.js';
import { ObjectService } from '../../dist/object/object-service.js';
import { WorkerPool } from '../../dist/pool/pool.js';
import { WORKER_ENTRY } from '../../dist/worker-entry.js';
import { FaultStore } from './fault-store.js';
import { MemoryKeyProvider } from './memory-keys.js';
import { pseudoRandom } from './aead-fixture.js';

const job = JSON.parse(process.argv[2]!) as {
  dirs: string[]; op: 'put' | 'repair' | 'rewrap'; killAt: number; seed: string; rotations: number; id: string; size: number; dataSeed: number;
  k: number; m: number; segmentBytes: number;
};
const keys = new MemoryKeyProvider({ seed: Buffer.from(job.seed, 'hex') });
const keyId = keys.createKey('crash');
for (let i = 0; i < job.rotations; i++) keys.rotate(keyId);
const pool = new WorkerPool(1, { entry: WORKER_ENTRY });
const objects = new ObjectService({ keys, pool: () => pool, threads: 1 });
const store = new FaultStore(new FsShardStore(job.dirs), [], (_op, n) => {
  if (n === job.killAt) process.kill(process.pid, 'SIGKILL');
});
if (job.op === 'put') {
  await objects.putObject(job.id, pseudoRandom(job.size, job.dataSeed), { keyId, dataShards: job.k, parityShards: job.m, store, segmentBytes: job.segmentBytes });
} else if (job.op === 'repair') {
  await objects.repairObject(job.id, { store, staleAfterMs: 0 });
} else {
  await objects.rewrapObject(job.id, { store });
}
process.stdout.write(JSON.stringify({ calls: store.calls }));
objects.close();
await pool.close();
