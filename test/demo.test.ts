// The quick start's demo (`npm start`) runs to the end: the object story and the bucket story, in a child process.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

t.test('the demo runs to the end', async (t) => {
  const cli = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
  const run = spawnSync(process.execPath, [cli, 'demo', '--size', '4'], { encoding: 'utf8', timeout: 600_000 });
  t.equal(run.status, 0, `exit code (stderr: ${run.stderr.slice(-500)})`);
  t.match(run.stdout, /bucket demo finished/);
  t.match(run.stdout, /\ndemo finished/);
  t.notMatch(run.stdout + run.stderr, /ERR_HSM/, 'no HSM error on the way');
});
