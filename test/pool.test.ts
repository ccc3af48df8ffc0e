// The worker pool on its own: it takes its entry from the caller, and the dispatcher refuses unknown or doubled kinds.
import t from 'tap';
import { WorkerPool } from '../dist/pool/pool.js';
import { createDispatcher } from '../dist/pool/worker.js';
import { WORKER_ENTRY } from '../dist/worker-entry.js';

t.test('WorkerPool requires a worker entry', async (t) => {
  t.throws(() => new WorkerPool(1, undefined as never), TypeError);
  t.throws(() => new WorkerPool(1, { entry: '' }), { name: 'TypeError', message: /options\.entry/ });
  t.throws(() => new WorkerPool(1, { entry: 42 as never }), TypeError);
});

t.test('tasks run on the given entry; an unknown kind rejects with TypeError', async (t) => {
  const pool = new WorkerPool(1, { entry: new URL(WORKER_ENTRY) });
  t.teardown(() => pool.close());
  await t.rejects(pool.run({ kind: 'no.such.kind' }), { name: 'TypeError', message: 'unknown pool task kind: no.such.kind' });
  await pool.close();
  await t.rejects(pool.run({ kind: 'no.such.kind' }), { message: 'worker pool is closed' });
});

t.test('createDispatcher dispatches by kind and refuses a kind registered twice', async (t) => {
  const run = createDispatcher({ a: (task: { n: number }) => task.n + 1 }, { b: () => 'b' });
  t.equal(run({ kind: 'a', n: 1 } as never), 2);
  t.equal(run({ kind: 'b' }), 'b');
  t.throws(() => run({ kind: 'c' }), new TypeError('unknown pool task kind: c'));
  t.throws(() => createDispatcher({ a: () => 1 }, { a: () => 2 }), new TypeError('pool task kind registered twice: a'));
});
