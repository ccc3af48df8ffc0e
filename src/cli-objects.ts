// CLI commands on objects (put/get/repair/rewrap), the benchmarks and the demo.
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { FsShardStore } from './object/fs-shard-store.js';
import { UsageError, type Command } from './cli.js';

const STORE_OPTION = { store: { type: 'string', multiple: true } } as const;
const CONTEXT_OPTION = { context: { type: 'string', multiple: true } } as const;

function storeOf(values: Record<string, any>): FsShardStore {
  const dirs: string[] = (values.store ?? []).flatMap((d: string) => d.split(','));
  if (dirs.length === 0) throw new UsageError('--store DIR is required (repeat it, or comma-separate, one folder per node)');
  return new FsShardStore(dirs);
}

/** --context key=value (repeatable) → { key: value }. */
function contextOf(values: Record<string, any>): Record<string, string> {
  const context: Record<string, string> = {};
  for (const pair of values.context ?? []) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--context takes key=value, got "${pair}"`);
    context[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return context;
}

function oneId(positionals: string[]): string {
  if (positionals.length !== 1) throw new UsageError('give exactly one object id');
  return positionals[0]!;
}

export const OBJECT_COMMANDS: Record<string, Command> = {
  put: {
    summary: 'encrypt FILE, erasure code it into K+M shards and store them (one folder per node)',
    usage: 'put FILE --key ID|ALIAS --shards K+M --store DIR... [--id OBJECT_ID] [--context k=v ...] [--segment-bytes N]',
    options: { key: { type: 'string' }, shards: { type: 'string' }, id: { type: 'string' }, 'segment-bytes': { type: 'string' }, ...STORE_OPTION, ...CONTEXT_OPTION },
    async run({ values, positionals }, ctx) {
      const file = positionals[0];
      if (!file || positionals.length > 1) throw new UsageError('give exactly one FILE ("-" for standard input)');
      if (!values.key) throw new UsageError('--key is required');
      const shape = /^(\d+)\+(\d+)$/.exec(values.shards ?? '');
      if (!shape) throw new UsageError('--shards K+M is required, e.g. --shards 10+4');
      const store = storeOf(values);
      const size = file === '-' ? undefined : (await stat(file)).size;
      const engine = await ctx.engine();
      const started = performance.now();
      const info = await engine.putObject(values.id ?? file, file === '-' ? process.stdin : createReadStream(file, { highWaterMark: 1 << 20 }), {
        keyId: values.key, context: contextOf(values), dataShards: Number(shape[1]), parityShards: Number(shape[2]), store,
        ...(values['segment-bytes'] ? { segmentBytes: Number(values['segment-bytes']) } : {}),
        ...(size !== undefined ? { size } : {}),
        onProgress: ctx.progress('put'),
      });
      const seconds = (performance.now() - started) / 1000;
      ctx.out(JSON.stringify({ ...info, seconds: Number(seconds.toFixed(3)), gbPerSecond: Number((info.size / 1e9 / seconds).toFixed(3)) }));
    },
  },
  get: {
    summary: 'read an object back from any K good shards (to standard output, or --out FILE)',
    usage: 'get ID --store DIR... [--range A-B] [--context k=v ...] [--out FILE] > FILE',
    options: { range: { type: 'string' }, out: { type: 'string' }, ...STORE_OPTION, ...CONTEXT_OPTION },
    async run({ values, positionals }, ctx) {
      const id = oneId(positionals);
      let range: { offset: number; length: number } | undefined;
      if (values.range !== undefined) {
        const match = /^(\d+)-(\d+)$/.exec(values.range);
        if (!match || Number(match[2]) < Number(match[1])) throw new UsageError('--range takes A-B (first and last byte, inclusive)');
        range = { offset: Number(match[1]), length: Number(match[2]) - Number(match[1]) + 1 };
      }
      const engine = await ctx.engine();
      const readable = engine.getObject(id, { store: storeOf(values), context: contextOf(values), ...(range ? { range } : {}), onProgress: ctx.progress('get') });
      await pipeline(readable, values.out ? createWriteStream(values.out) : process.stdout);
    },
  },
  repair: {
    summary: 'check every shard of an object and rewrite the missing or corrupt ones',
    usage: 'repair ID --store DIR...',
    options: { ...STORE_OPTION },
    async run({ values, positionals }, ctx) {
      const engine = await ctx.engine();
      ctx.out(JSON.stringify(await engine.repairObject(oneId(positionals), { store: storeOf(values), onProgress: ctx.progress('repair') })));
    },
  },
  rewrap: {
    summary: "rewrap an object's DEK under its root key's newest version (rewrites shard headers only)",
    usage: 'rewrap ID --store DIR...',
    options: { ...STORE_OPTION },
    async run({ values, positionals }, ctx) {
      const engine = await ctx.engine();
      ctx.out(JSON.stringify(await engine.rewrapObject(oneId(positionals), { store: storeOf(values) })));
    },
  },
  bench: {
    summary: 'run a benchmark: hsm, aead, erasure or objects (results in bench/results/)',
    usage: 'bench hsm|aead|erasure|objects [-- options for the benchmark]',
    async run({ positionals }) {
      const name = positionals[0];
      if (!name || !['hsm', 'aead', 'erasure', 'objects'].includes(name)) throw new UsageError('name one benchmark: hsm, aead, erasure or objects');
      const script = fileURLToPath(new URL(`../bench/${name}.mjs`, import.meta.url));
      execFileSync(process.execPath, [script, ...positionals.slice(1)], { stdio: 'inherit' });
    },
  },
  demo: {
    summary: 'run the demo on a fresh SoftHSM token and temp shard folders',
    usage: 'demo [--size MiB]',
    options: { size: { type: 'string' } },
    async run({ values }) {
      const { runDemo } = await import('./demo.js');
      await runDemo(values.size ? { sizeMiB: Number(values.size) } : {});
    },
  },
};
