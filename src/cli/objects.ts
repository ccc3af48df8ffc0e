// Object commands: put/get/repair/rewrap objects as K+M shards in folders (one folder per node).
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { FsShardStore } from '../object/fs-shard-store.js';
import { integerOption, onePositional } from './args.js';
import { UsageError, type Command } from './command.js';

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

/** --range A-B (first and last byte, inclusive) → { offset, length }. */
function rangeOf(values: Record<string, any>): { offset: number; length: number } | undefined {
  if (values.range === undefined) return undefined;
  const match = /^(\d+)-(\d+)$/.exec(values.range);
  if (!match || Number(match[2]) < Number(match[1])) throw new UsageError('--range takes A-B (first and last byte, inclusive)');
  return { offset: Number(match[1]), length: Number(match[2]) - Number(match[1]) + 1 };
}

export const objectCommands: Command[] = [
  {
    name: 'put',
    summary: 'encrypt FILE, erasure code it into K+M shards and store them (one folder per node)',
    usage: 'FILE --key ID|ALIAS --shards K+M --store DIR... [--id OBJECT_ID] [--context k=v ...] [--segment-bytes N]',
    options: { key: { type: 'string' }, shards: { type: 'string' }, id: { type: 'string' }, 'segment-bytes': { type: 'string' }, ...STORE_OPTION, ...CONTEXT_OPTION },
    async run({ values, positionals }, ctx) {
      const file = onePositional(positionals, 'FILE ("-" for standard input)');
      if (!values.key) throw new UsageError('--key is required');
      const shape = /^(\d+)\+(\d+)$/.exec(values.shards ?? '');
      if (!shape) throw new UsageError('--shards K+M is required, e.g. --shards 10+4');
      const segmentBytes = integerOption(values, 'segment-bytes', 1);
      const store = storeOf(values);
      const context = contextOf(values);
      const size = file === '-' ? undefined : (await stat(file)).size;
      const engine = await ctx.engine();
      const started = performance.now();
      const info = await engine.putObject(values.id ?? file, file === '-' ? process.stdin : createReadStream(file, { highWaterMark: 1 << 20 }), {
        keyId: values.key, context, dataShards: Number(shape[1]), parityShards: Number(shape[2]), store,
        ...(segmentBytes !== undefined ? { segmentBytes } : {}),
        ...(size !== undefined ? { size } : {}),
        onProgress: ctx.progress('put'),
      });
      const seconds = (performance.now() - started) / 1000;
      ctx.out(JSON.stringify({ ...info, seconds: Number(seconds.toFixed(3)), gbPerSecond: Number((info.size / 1e9 / seconds).toFixed(3)) }));
    },
  },
  {
    name: 'get',
    summary: 'read an object back from any K good shards (to standard output, or --out FILE)',
    usage: 'ID --store DIR... [--range A-B] [--context k=v ...] [--out FILE] > FILE',
    options: { range: { type: 'string' }, out: { type: 'string' }, ...STORE_OPTION, ...CONTEXT_OPTION },
    async run({ values, positionals }, ctx) {
      const id = onePositional(positionals, 'object id');
      const range = rangeOf(values);
      const store = storeOf(values);
      const context = contextOf(values);
      const engine = await ctx.engine();
      const readable = engine.getObject(id, { store, context, ...(range ? { range } : {}), onProgress: ctx.progress('get') });
      await pipeline(readable, values.out ? createWriteStream(values.out) : process.stdout);
    },
  },
  {
    name: 'repair',
    summary: 'check every shard of an object and rewrite the missing or corrupt ones',
    usage: 'ID --store DIR...',
    options: { ...STORE_OPTION },
    async run({ values, positionals }, ctx) {
      const id = onePositional(positionals, 'object id');
      const store = storeOf(values);
      ctx.out(JSON.stringify(await (await ctx.engine()).repairObject(id, { store, onProgress: ctx.progress('repair') })));
    },
  },
  {
    name: 'rewrap',
    summary: "rewrap an object's DEK under its root key's newest version (rewrites shard headers only)",
    usage: 'ID --store DIR...',
    options: { ...STORE_OPTION },
    async run({ values, positionals }, ctx) {
      const id = onePositional(positionals, 'object id');
      ctx.out(JSON.stringify(await (await ctx.engine()).rewrapObject(id, { store: storeOf(values) })));
    },
  },
];
