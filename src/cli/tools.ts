// `demo` and `bench`: the guided demo on a throwaway token, and the benchmarks of a source checkout.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { numberOption } from './args.js';
import { UsageError, type Command } from './command.js';
import { closeStore, STORE_OPTIONS, STORE_USAGE, storeOf } from './store.js';

const BENCHMARKS = ['hsm', 'aead', 'erasure', 'objects'];

export const toolCommands: Command[] = [
  {
    name: 'bench',
    summary: 'run a benchmark: hsm, aead, erasure or objects (results in bench/results/; needs a source checkout)',
    usage: 'hsm|aead|erasure|objects [-- options for the benchmark]',
    async run({ positionals }) {
      const name = positionals[0];
      if (!name || !BENCHMARKS.includes(name)) throw new UsageError(`name one benchmark: ${BENCHMARKS.join(', ')}`);
      // bench/ is not in the published package (it needs the dev dependencies and the C harness); say so plainly.
      const script = fileURLToPath(new URL(`../../bench/${name}.mjs`, import.meta.url));
      if (!existsSync(script)) {
        throw new Error(`benchmarks are not installed with the package: in a source checkout run \`npm ci && npm run build && npm run bench:${name}\``);
      }
      execFileSync(process.execPath, [script, ...positionals.slice(1)], { stdio: 'inherit' });
    },
  },
  {
    name: 'demo',
    summary: 'run the demo on a fresh SoftHSM token and temp shard folders (or the store given, e.g. S3 buckets)',
    usage: `[--size MiB] [${STORE_USAGE}]`,
    options: { size: { type: 'string' }, ...STORE_OPTIONS },
    async run({ values }) {
      const sizeMiB = numberOption(values, 'size');
      const given = values.store !== undefined || values['store-config'] !== undefined;
      const store = given ? storeOf(values) : undefined;
      const storeLabel = values['store-config'] !== undefined ? `the ${store!.nodes} S3 nodes of ${values['store-config']}` : undefined;
      const { runDemo } = await import('../demo.js');
      try {
        await runDemo({ ...(sizeMiB !== undefined ? { sizeMiB } : {}), ...(store ? { store } : {}), ...(storeLabel ? { storeLabel } : {}) });
      } finally {
        if (store) await closeStore(store);
      }
    },
  },
];
