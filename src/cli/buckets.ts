// `bucket …` commands: buckets bound to a root key, and their objects (BUCKET/OBJECT), in folders (one per node).
// Also `keys registrations` and `keys destroy --force`, which exist for buckets. Each prints JSON, one object a line.
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { FsShardStore } from '../object/fs-shard-store.js';
import { onePositional } from './args.js';
import { UsageError, type Command } from './command.js';
import { writeChunks } from './write-chunks.js';

const STORE_OPTION = { store: { type: 'string', multiple: true } } as const;

function storeOf(values: Record<string, any>): FsShardStore {
  const dirs: string[] = (values.store ?? []).flatMap((d: string) => d.split(','));
  if (dirs.length === 0) throw new UsageError('--store DIR is required (repeat it, or comma-separate, one folder per node)');
  return new FsShardStore(dirs, { createFolders: true });
}

/** BUCKET/OBJECT → [bucket, object]; the object part may hold more slashes. */
function splitPath(path: string, needObject = true): [string, string] {
  const at = path.indexOf('/');
  if (at < 0) {
    if (needObject) throw new UsageError(`give BUCKET/OBJECT, got "${path}"`);
    return [path, ''];
  }
  if (needObject && at === path.length - 1) throw new UsageError(`give BUCKET/OBJECT, got "${path}"`);
  return [path.slice(0, at), path.slice(at + 1)];
}

const bucketObject = (name: string, summary: string, usage: string, run: Command['run'], options = {}): Command => ({
  name, summary, usage, options: { ...STORE_OPTION, ...options }, run,
});

export const bucketCommands: Command[] = [
  bucketObject('bucket create', 'create a bucket bound to a root key (registered with the key)', 'NAME --key ID|ALIAS --shards K+M --store DIR,...',
    async ({ values, positionals }, ctx) => {
      const name = onePositional(positionals, 'bucket name');
      if (!values.key) throw new UsageError('--key is required');
      const shape = /^(\d+)\+(\d+)$/.exec(values.shards ?? '');
      if (!shape) throw new UsageError('--shards K+M is required, e.g. --shards 10+4');
      const bucket = await (await ctx.engine()).buckets.create(name, {
        store: storeOf(values), keyId: values.key, dataShards: Number(shape[1]), parityShards: Number(shape[2]),
      });
      ctx.out(JSON.stringify(bucket.info));
    }, { key: { type: 'string' }, shards: { type: 'string' } }),
  bucketObject('bucket list', 'list buckets in the store (only those a root key protects, with --key)', '--store DIR,... [--key ID|ALIAS]',
    async ({ values }, ctx) => {
      const list = await (await ctx.engine()).buckets.list({ store: storeOf(values), ...(values.key ? { keyId: values.key } : {}) });
      for (const info of list) ctx.out(JSON.stringify(info));
    }, { key: { type: 'string' } }),
  bucketObject('bucket delete', 'delete an empty bucket (and its registration)', 'NAME --store DIR,...', async ({ values, positionals }, ctx) => {
    const name = onePositional(positionals, 'bucket name');
    await (await ctx.engine()).buckets.delete(name, { store: storeOf(values) });
    ctx.out(JSON.stringify({ deleted: name }));
  }),
  bucketObject('bucket rewrap', "re-protect a bucket's keys under its root key's newest version (no object rewritten)", 'NAME --store DIR,...',
    async ({ values, positionals }, ctx) => {
      const bucket = await (await ctx.engine()).buckets.open(onePositional(positionals, 'bucket name'), { store: storeOf(values) });
      ctx.out(JSON.stringify(await bucket.rewrap({ onProgress: ctx.progress('rewrap') })));
    }),
  bucketObject('bucket put', 'store FILE as BUCKET/OBJECT', 'BUCKET/OBJECT FILE --store DIR,...', async ({ values, positionals }, ctx) => {
    if (positionals.length !== 2) throw new UsageError('give BUCKET/OBJECT and FILE ("-" for standard input)');
    const [name, object] = splitPath(positionals[0]!);
    const file = positionals[1]!;
    const bucket = await (await ctx.engine()).buckets.open(name, { store: storeOf(values) });
    const source = file === '-' ? process.stdin : createReadStream(file, { highWaterMark: 1 << 20 });
    const size = file === '-' ? undefined : (await stat(file)).size;
    ctx.out(JSON.stringify(await bucket.putObject(object, source, { ...(size !== undefined ? { size } : {}), onProgress: ctx.progress('put') })));
  }),
  bucketObject('bucket get', 'read BUCKET/OBJECT (to standard output, or --out FILE)', 'BUCKET/OBJECT --store DIR,... [--out FILE]',
    async ({ values, positionals }, ctx) => {
      const [name, object] = splitPath(onePositional(positionals, 'BUCKET/OBJECT'));
      const bucket = await (await ctx.engine()).buckets.open(name, { store: storeOf(values) });
      const chunks = bucket.getObjectChunks(object, { onProgress: ctx.progress('get') });
      // Standard output is left open (ending it would close the shell's pipe for whatever runs next).
      if (values.out) await writeChunks(chunks, createWriteStream(values.out));
      else await writeChunks(chunks, process.stdout, { end: false });
    }, { out: { type: 'string' } }),
  bucketObject('bucket head', 'show one object of a bucket', 'BUCKET/OBJECT --store DIR,...', async ({ values, positionals }, ctx) => {
    const [name, object] = splitPath(onePositional(positionals, 'BUCKET/OBJECT'));
    const bucket = await (await ctx.engine()).buckets.open(name, { store: storeOf(values) });
    ctx.out(JSON.stringify(await bucket.headObject(object)));
  }),
  bucketObject('bucket ls', "list a bucket's objects in name order (BUCKET/PREFIX lists those starting with PREFIX)", 'BUCKET[/PREFIX] --store DIR,...',
    async ({ values, positionals }, ctx) => {
      const [name, prefix] = splitPath(onePositional(positionals, 'BUCKET[/PREFIX]'), false);
      const bucket = await (await ctx.engine()).buckets.open(name, { store: storeOf(values) });
      for await (const info of bucket.listObjects({ prefix })) ctx.out(JSON.stringify(info));
    }),
  bucketObject('bucket rm', 'delete one object of a bucket', 'BUCKET/OBJECT --store DIR,...', async ({ values, positionals }, ctx) => {
    const [name, object] = splitPath(onePositional(positionals, 'BUCKET/OBJECT'));
    const bucket = await (await ctx.engine()).buckets.open(name, { store: storeOf(values) });
    await bucket.deleteObject(object);
    ctx.out(JSON.stringify({ deleted: `${name}/${object}` }));
  }),
  bucketObject('bucket repair', 'rewrite the missing or corrupt shards of BUCKET/OBJECT', 'BUCKET/OBJECT --store DIR,...', async ({ values, positionals }, ctx) => {
    const [name, object] = splitPath(onePositional(positionals, 'BUCKET/OBJECT'));
    const bucket = await (await ctx.engine()).buckets.open(name, { store: storeOf(values) });
    ctx.out(JSON.stringify(await bucket.repairObject(object, { onProgress: ctx.progress('repair') })));
  }),
  {
    name: 'keys registrations',
    summary: 'the buckets a root key protects (one JSON object a line)',
    usage: 'ID|ALIAS',
    async run({ positionals }, ctx) {
      for (const r of await (await ctx.engine()).keys.registrations(onePositional(positionals, 'key id or alias'))) ctx.out(JSON.stringify(r));
    },
  },
];

/** Short forms of the bucket object commands (`head`, `ls`, `rm` take BUCKET/OBJECT). */
export const bucketShortCommands: Command[] = ['head', 'ls', 'rm'].map((verb) => {
  const full = bucketCommands.find((c) => c.name === `bucket ${verb}`)!;
  return { ...full, name: verb };
});
