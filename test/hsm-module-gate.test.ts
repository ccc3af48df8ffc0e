// The module gate (src/hsm/module-gate.ts) on its own: crypt calls share the module, object management runs alone
// after the shares in flight, holds new ones back, and the two kinds take turns so neither starves the other.
import t from 'tap';
import { ModuleGate, moduleGate } from '../dist/hsm/module-gate.js';

const turn = () => new Promise((resolve) => setImmediate(resolve));

t.test('shares are taken at once while nothing exclusive holds or waits', async (t) => {
  const gate = new ModuleGate();
  t.equal(gate.share(), undefined);
  t.ok(gate.tryShare());
  t.ok(gate.open);
  t.same(gate.state, { shared: 2, exclusive: false, waiting: 0 });
  gate.release();
  gate.release();
  t.same(gate.state, { shared: 0, exclusive: false, waiting: 0 });
});

t.test('an exclusive call waits for the shares in flight and holds new ones back', async (t) => {
  const gate = new ModuleGate();
  const log: string[] = [];
  gate.share();
  gate.share();
  const exclusive = gate.exclusive(() => {
    log.push(`exclusive with ${gate.state.shared} shares`);
    return 'result';
  });
  t.notOk(gate.open, 'closed to new crypt calls while it waits');
  t.notOk(gate.tryShare());
  const later = gate.share();
  t.ok(later, 'a new share waits');
  void later!.then(() => log.push('late share'));
  await turn();
  t.same(log, [], 'not before the shares are given back');
  gate.release();
  await turn();
  t.same(log, []);
  gate.release();
  t.equal(await exclusive, 'result');
  await turn();
  t.same(log, ['exclusive with 0 shares', 'late share'], 'the waiting share after the exclusive call');
  t.same(gate.state, { shared: 1, exclusive: false, waiting: 0 });
  gate.release();
});

t.test('an exclusive call queued behind another runs when nothing else waits (no share lost)', async (t) => {
  const gate = new ModuleGate();
  const order: string[] = [];
  let releaseFirst!: () => void;
  const first = gate.exclusive(() => new Promise<void>((resolve) => (releaseFirst = resolve)).then(() => void order.push('first')));
  await turn();
  const second = gate.exclusive(() => void order.push('second'));
  const share = gate.share();
  t.ok(share, 'a share waits behind them');
  releaseFirst();
  await share;
  order.push('share');
  gate.release();
  await Promise.all([first, second]);
  t.same(order, ['first', 'share', 'second'], 'turns: the waiting share after the first, then the second');
  t.same(gate.state, { shared: 0, exclusive: false, waiting: 0 });
});

t.test('exclusive calls run one at a time, across awaits, and a failure releases the module', async (t) => {
  const gate = new ModuleGate();
  let running = 0;
  let most = 0;
  const work = Array.from({ length: 5 }, (_, i) =>
    gate.exclusive(async () => {
      most = Math.max(most, ++running);
      await turn();
      running--;
      if (i === 2) throw new RangeError('operation failed');
      return i;
    }),
  );
  const settled = await Promise.allSettled(work);
  t.equal(most, 1, 'never two at once');
  t.same(settled.map((r) => r.status), ['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
  t.type((settled[2] as PromiseRejectedResult).reason, RangeError, 'the operation error comes through unchanged');
  t.ok(gate.open, 'free again');
  t.same(gate.state, { shared: 0, exclusive: false, waiting: 0 });
});

t.test('turns: a steady stream of shares cannot starve an exclusive call, nor exclusive calls the shares', async (t) => {
  const gate = new ModuleGate();
  const order: string[] = [];
  // A crypt stream that always has a share in flight: each call hands over to the next when it finishes.
  let stop = false;
  let calls = 0;
  const stream = async () => {
    while (!stop) {
      const wait = gate.share();
      if (wait) await wait;
      order.push('share');
      calls++;
      await turn();
      gate.release();
    }
  };
  const streams = [stream(), stream()];
  await turn();
  for (let i = 0; i < 5; i++) await gate.exclusive(() => void order.push('exclusive'));
  stop = true;
  await Promise.all(streams);
  t.equal(order.filter((x) => x === 'exclusive').length, 5, 'every exclusive call ran while the stream went on');
  const firstExclusive = order.indexOf('exclusive');
  const between = order.slice(firstExclusive, order.lastIndexOf('exclusive')).filter((x) => x === 'share').length;
  t.ok(between > 0, 'shares ran between the exclusive calls');
  t.ok(calls > 5);
});

t.test('one gate per module library in the process', async (t) => {
  t.equal(moduleGate('/lib/a.so'), moduleGate('/lib/a.so'));
  t.not(moduleGate('/lib/a.so'), moduleGate('/lib/b.so'));
});
