// `keys …` commands: root keys inside the HSM and BYOK import. Each prints JSON, one object a line.
import { readFile } from 'node:fs/promises';
import type { CryptoEngine } from '../engine.js';
import { integerOption, onePositional } from './args.js';
import { UsageError, type Command } from './command.js';

/** A command taking exactly one key id or alias and printing what `action` returns. */
function oneKey(name: string, summary: string, action: (engine: CryptoEngine, ref: string) => Promise<unknown>): Command {
  return {
    name,
    summary,
    usage: 'ID|ALIAS',
    async run({ positionals }, ctx) {
      const ref = onePositional(positionals, 'key id or alias');
      ctx.out(JSON.stringify(await action(await ctx.engine(), ref)));
    },
  };
}

export const keyCommands: Command[] = [
  {
    name: 'keys create',
    summary: 'create a root key inside the HSM',
    usage: '--alias ALIAS',
    options: { alias: { type: 'string' } },
    async run({ values }, ctx) {
      if (!values.alias) throw new UsageError('--alias is required');
      ctx.out(JSON.stringify(await (await ctx.engine()).keys.create({ alias: values.alias })));
    },
  },
  {
    name: 'keys list',
    summary: 'list root keys (one JSON object a line)',
    usage: '',
    async run(_args, ctx) {
      for (const key of await (await ctx.engine()).keys.list()) ctx.out(JSON.stringify(key));
    },
  },
  oneKey('keys get', 'show one root key', (engine, ref) => engine.keys.get(ref)),
  oneKey('keys rotate', 'add a new version; new wraps use it, old versions still unwrap', (engine, ref) => engine.keys.rotate(ref)),
  oneKey('keys disable', 'refuse every use of the key until enabled', (engine, ref) => engine.keys.disable(ref)),
  oneKey('keys enable', 'allow the key again', (engine, ref) => engine.keys.enable(ref)),
  {
    name: 'keys destroy',
    summary: 'destroy every version: all data under the key becomes unreadable (refused while buckets are registered, unless --force)',
    usage: 'ID|ALIAS [--force]',
    options: { force: { type: 'boolean' } },
    async run({ values, positionals }, ctx) {
      const ref = onePositional(positionals, 'key id or alias');
      await (await ctx.engine()).keys.destroy(ref, { force: values.force === true });
      ctx.out(JSON.stringify({ destroyed: ref }));
    },
  },
  {
    name: 'keys import-token',
    summary: 'create an RSA-4096 import token; prints its id, public key (PEM) and OAEP hash',
    usage: '[--ttl-ms N] [--max-uses N]',
    options: { 'ttl-ms': { type: 'string' }, 'max-uses': { type: 'string' } },
    async run({ values }, ctx) {
      const ttlMs = integerOption(values, 'ttl-ms');
      const maxUses = integerOption(values, 'max-uses');
      const options = { ...(ttlMs !== undefined ? { ttlMs } : {}), ...(maxUses !== undefined ? { maxUses } : {}) };
      ctx.out(JSON.stringify(await (await ctx.engine()).keys.createImportToken(options)));
    },
  },
  {
    name: 'keys import',
    summary: 'import key material encrypted under an import token (RSA-OAEP), inside the HSM',
    usage: '--alias ALIAS --token TOKEN_ID --key-file FILE   (FILE: the RSA-OAEP ciphertext, raw or base64)',
    options: { alias: { type: 'string' }, token: { type: 'string' }, 'key-file': { type: 'string' } },
    async run({ values }, ctx) {
      if (!values.alias || !values.token || !values['key-file']) throw new UsageError('--alias, --token and --key-file are required');
      let encryptedKey = await readFile(values['key-file']);
      const text = encryptedKey.toString('latin1').trim();
      if (/^[A-Za-z0-9+/=\s]+$/.test(text)) encryptedKey = Buffer.from(text, 'base64');
      ctx.out(JSON.stringify(await (await ctx.engine()).keys.import({ alias: values.alias, importTokenId: values.token, encryptedKey })));
    },
  },
];
