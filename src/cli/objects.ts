// Object commands: put/get/repair/rewrap objects as K+M shards in a store: folders or S3 buckets, one per node
// (store.ts reads the store options).
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { ShardStore } from '../object/blob-store.js';
import { integerOption, onePositional } from './args.js';
import { UsageError, type Command } from './command.js';
import { closeStore, STORE_OPTIONS as STORE_OPTION, STORE_USAGE, storeOf } from './store.js';
import { writeChunks } from './write-chunks.js';

const CONTEXT_OPTION = { context: { type: 'string', multiple: true } } as const;

/** Runs `fn` with the store the options name (checked before the engine opens), closing its connections afterwards. */
async function withStore<T>(values: Record<string, any>, fn: (store: ShardStore) => Promise<T>): Promise<T> {
  const store = storeOf(values);
  try {
    return await fn(store);
  } finally {
    await closeStore(store);
  }
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
    summary: 'encrypt FILE, erasure code it into K+M shards and store them (one folder or S3 bucket per node)',
    usage: `FILE --key ID|ALIAS --shards K+M ${STORE_USAGE} [--id OBJECT_ID] [--context k=v ...] [--segment-bytes N]`,
    options: { key: { type: 'string' }, shards: { type: 'string' }, id: { type: 'string' }, 'segment-bytes': { type: 'string' }, ...STORE_OPTION, ...CONTEXT_OPTION },
    async run({ values, positionals }, ctx) {
      const file = onePositional(positionals, 'FILE ("-" for standard input)');
      if (!values.key) throw new UsageError('--key is required');
      const shape = /^(\d+)\+(\d+)$/.exec(values.shards ?? '');
      if (!shape) throw new UsageError('--shards K+M is required, e.g. --shards 10+4');
      const segmentBytes = integerOption(values, 'segment-bytes', 1);
      const context = contextOf(values);
      const size = file === '-' ? undefined : (await stat(file)).size;
      await withStore(values, async (store) => {
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
      });
    },
  },
  {
    name: 'get',
    summary: 'read an object back from any K good shards (to standard output, or --out FILE)',
    usage: `ID ${STORE_USAGE} [--range A-B] [--context k=v ...] [--out FILE] > FILE`,
    options: { range: { type: 'string' }, out: { type: 'string' }, ...STORE_OPTION, ...CONTEXT_OPTION },
    async run({ values, positionals }, ctx) {
      const id = onePositional(positionals, 'object id');
      const range = rangeOf(values);
      const context = contextOf(values);
      await withStore(values, async (store) => {
        const engine = await ctx.engine();
        const chunks = engine.getObjectChunks(id, { store, context, ...(range ? { range } : {}), onProgress: ctx.progress('get') });
        await writeChunks(chunks, values.out ? createWriteStream(values.out) : process.stdout);
      });
    },
  },
  {
    name: 'repair',
    summary: 'check every shard of an object and rewrite the missing or corrupt ones',
    usage: `ID ${STORE_USAGE}`,
    options: { ...STORE_OPTION },
    async run({ values, positionals }, ctx) {
      const id = onePositional(positionals, 'object id');
      await withStore(values, async (store) => ctx.out(JSON.stringify(await (await ctx.engine()).repairObject(id, { store, onProgress: ctx.progress('repair') }))));
    },
  },
  {
    name: 'rewrap',
    summary: "rewrap an object's DEK under its root key's newest version (writes a small rewrap record per node)",
    usage: `ID ${STORE_USAGE}`,
    options: { ...STORE_OPTION },
    async run({ values, positionals }, ctx) {
      const id = onePositional(positionals, 'object id');
      await withStore(values, async (store) => ctx.out(JSON.stringify(await (await ctx.engine()).rewrapObject(id, { store }))));
    },
  },
];
