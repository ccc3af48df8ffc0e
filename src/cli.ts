#!/usr/bin/env node
// The command-line front end: root keys, objects as shards, benchmarks and the demo.
// The HSM comes from HSM_PKCS11_LIBRARY / HSM_TOKEN_LABEL (or HSM_SLOT) / HSM_PIN, else from --env FILE, else from
// the project-local token's env file (softhsm/local/env, made by `bash softhsm/setup.sh`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CryptoEngine } from './engine.js';
import { readEnvFile } from './env-file.js';
import { CryptoEngineError } from './errors.js';
import { OBJECT_COMMANDS } from './cli-objects.js';

export const EXIT = { ok: 0, failure: 1, usage: 2, keyNotFound: 3, keyState: 4, decryption: 5, erasure: 6, objectNotFound: 7, hsm: 8 } as const;
const EXIT_BY_CODE: Record<string, number> = {
  ERR_KEY_NOT_FOUND: EXIT.keyNotFound,
  ERR_KEY_STATE: EXIT.keyState,
  ERR_DECRYPTION: EXIT.decryption,
  ERR_ERASURE: EXIT.erasure,
  ERR_OBJECT_NOT_FOUND: EXIT.objectNotFound,
  ERR_HSM: EXIT.hsm,
};
const LOCAL_ENV_FILE = fileURLToPath(new URL('../softhsm/local/env', import.meta.url));

export class UsageError extends Error {}

export interface Command {
  summary: string;
  usage: string;
  options?: ParseArgsConfig['options'];
  run(args: { values: Record<string, any>; positionals: string[] }, ctx: CliContext): Promise<void>;
}

export interface CliContext {
  engine(): Promise<CryptoEngine>;
  out(line: string): void;
  err(line: string): void;
  progress(label: string): (done: number, total: number) => void;
}

const KEY_COMMANDS: Record<string, Command> = {
  'keys create': {
    summary: 'create a root key inside the HSM',
    usage: 'keys create --alias ALIAS',
    options: { alias: { type: 'string' } },
    async run({ values }, ctx) {
      if (!values.alias) throw new UsageError('--alias is required');
      ctx.out(JSON.stringify(await (await ctx.engine()).keys.create({ alias: values.alias })));
    },
  },
  'keys list': {
    summary: 'list root keys (one JSON object a line)',
    usage: 'keys list',
    async run(_args, ctx) {
      for (const key of await (await ctx.engine()).keys.list()) ctx.out(JSON.stringify(key));
    },
  },
  'keys get': oneKey('show one root key', (engine, ref) => engine.keys.get(ref)),
  'keys rotate': oneKey('add a new version; new wraps use it, old versions still unwrap', (engine, ref) => engine.keys.rotate(ref)),
  'keys disable': oneKey('refuse every use of the key until enabled', (engine, ref) => engine.keys.disable(ref)),
  'keys enable': oneKey('allow the key again', (engine, ref) => engine.keys.enable(ref)),
  'keys destroy': oneKey('destroy every version: all data under the key becomes unreadable', async (engine, ref) => {
    await engine.keys.destroy(ref);
    return { destroyed: ref };
  }),
  'keys import-token': {
    summary: 'create an RSA-4096 import token; prints its id, public key (PEM) and OAEP hash',
    usage: 'keys import-token [--ttl-ms N] [--max-uses N]',
    options: { 'ttl-ms': { type: 'string' }, 'max-uses': { type: 'string' } },
    async run({ values }, ctx) {
      const options: { ttlMs?: number; maxUses?: number } = {};
      if (values['ttl-ms'] !== undefined) options.ttlMs = Number(values['ttl-ms']);
      if (values['max-uses'] !== undefined) options.maxUses = Number(values['max-uses']);
      ctx.out(JSON.stringify(await (await ctx.engine()).keys.createImportToken(options)));
    },
  },
  'keys import': {
    summary: 'import key material encrypted under an import token (RSA-OAEP), inside the HSM',
    usage: 'keys import --alias ALIAS --token TOKEN_ID --key-file FILE   (FILE: the RSA-OAEP ciphertext, raw or base64)',
    options: { alias: { type: 'string' }, token: { type: 'string' }, 'key-file': { type: 'string' } },
    async run({ values }, ctx) {
      if (!values.alias || !values.token || !values['key-file']) throw new UsageError('--alias, --token and --key-file are required');
      const { readFile } = await import('node:fs/promises');
      let encryptedKey = await readFile(values['key-file']);
      const text = encryptedKey.toString('latin1').trim();
      if (/^[A-Za-z0-9+/=\s]+$/.test(text)) encryptedKey = Buffer.from(text, 'base64');
      ctx.out(JSON.stringify(await (await ctx.engine()).keys.import({ alias: values.alias, importTokenId: values.token, encryptedKey })));
    },
  },
};

function oneKey(summary: string, action: (engine: CryptoEngine, ref: string) => Promise<unknown>): Command {
  return {
    summary,
    usage: '',
    async run({ positionals }, ctx) {
      const ref = positionals[0];
      if (!ref || positionals.length > 1) throw new UsageError('give exactly one key id or alias');
      ctx.out(JSON.stringify(await action(await ctx.engine(), ref)));
    },
  };
}

export const COMMANDS: Record<string, Command> = { ...KEY_COMMANDS, ...OBJECT_COMMANDS };
for (const [name, command] of Object.entries(COMMANDS)) if (!command.usage) command.usage = `${name} ID|ALIAS`;

const GLOBAL_OPTIONS = {
  env: { type: 'string' },
  threads: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function helpText(): string {
  const lines = ['usage: hsm-crypto-engine <command> [options]   (--help after a command for its options)', '', 'commands:'];
  for (const [name, command] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(18)} ${command.summary}`);
  lines.push('', 'global options:', '  --env FILE     env file with HSM_PKCS11_LIBRARY, HSM_TOKEN_LABEL, HSM_PIN (default: the environment, else softhsm/local/env)');
  lines.push('  --threads N    worker threads (default: all cores)');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const words = argv.filter((a) => !a.startsWith('-'));
  const name = [`${words[0]} ${words[1]}`, words[0]].find((candidate) => candidate && COMMANDS[candidate]);
  if (!name) {
    process.stdout.write(helpText() + '\n');
    return argv.length === 0 || argv.includes('--help') || argv.includes('-h') ? EXIT.ok : EXIT.usage;
  }
  const command = COMMANDS[name]!;
  const rest = [...argv];
  for (const word of name.split(' ')) rest.splice(rest.indexOf(word), 1);
  let engine: CryptoEngine | undefined;
  const ctx: CliContext = {
    async engine() {
      engine ??= await openEngine(parsed.values);
      return engine;
    },
    out: (line) => process.stdout.write(line + '\n'),
    err: (line) => process.stderr.write(line + '\n'),
    progress: progressBar,
  };
  let parsed: { values: Record<string, any>; positionals: string[] };
  try {
    parsed = parseArgs({ args: rest, options: { ...GLOBAL_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\nusage: hsm-crypto-engine ${command.usage}\n`);
    return EXIT.usage;
  }
  if (parsed.values.help) {
    process.stdout.write(`usage: hsm-crypto-engine ${command.usage}\n${command.summary}\n`);
    return EXIT.ok;
  }
  try {
    await command.run(parsed, ctx);
    return EXIT.ok;
  } catch (err) {
    return report(err, command);
  } finally {
    await engine?.close();
  }
}

async function openEngine(values: Record<string, any>): Promise<CryptoEngine> {
  const envFile = values.env ?? (!process.env.HSM_PKCS11_LIBRARY && existsSync(LOCAL_ENV_FILE) ? LOCAL_ENV_FILE : undefined);
  if (envFile) Object.assign(process.env, readEnvFile(envFile));
  const options: { threads?: number } = {};
  if (values.threads !== undefined) options.threads = Number(values.threads);
  if (!process.env.HSM_PKCS11_LIBRARY) {
    throw new UsageError('no HSM configured: run `bash softhsm/setup.sh` or set HSM_PKCS11_LIBRARY, HSM_TOKEN_LABEL and HSM_PIN');
  }
  return CryptoEngine.open(options);
}

function report(err: unknown, command: Command): number {
  if (err instanceof UsageError) {
    process.stderr.write(`error: ${err.message}\nusage: hsm-crypto-engine ${command.usage}\n`);
    return EXIT.usage;
  }
  if (err instanceof CryptoEngineError) {
    process.stderr.write(`error: ${err.code}: ${err.message}\n`);
    return EXIT_BY_CODE[err.code] ?? EXIT.failure;
  }
  if (err instanceof TypeError || err instanceof RangeError) {
    process.stderr.write(`error: ${err.message}\n`);
    return EXIT.usage;
  }
  process.stderr.write(`error: ${(err as Error)?.message ?? String(err)}\n`);
  return EXIT.failure;
}

/** A one-line progress bar on stderr when it is a terminal; silent otherwise. */
function progressBar(label: string): (done: number, total: number) => void {
  if (!process.stderr.isTTY) return () => {};
  const started = performance.now();
  let last = 0;
  return (done, total) => {
    const now = performance.now();
    if (now - last < 100 && done < total) return;
    last = now;
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const width = 30;
    const filled = Math.round(fraction * width);
    const rate = done / 1e9 / Math.max((now - started) / 1000, 1e-3);
    process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}%  ${rate.toFixed(2)} GB/s${done >= total ? '\n' : ''}`);
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === (await import('node:fs')).realpathSync(process.argv[1])) {
  process.exitCode = await main(process.argv.slice(2));
}
