#!/usr/bin/env node
// `hsm-crypto-engine console`: opens the engine (HSM from the environment, --env FILE or softhsm/local/env, as the
// CLI does), starts the operator console and prints its one sign-in line. Runs until SIGINT/SIGTERM.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CryptoEngine } from '../engine.js';
import { readEnvFile } from '../env-file.js';
import { FsShardStore } from '../object/fs-shard-store.js';
import { startConsole, type RunningConsole } from './server.js';

const LOCAL_ENV_FILE = fileURLToPath(new URL('../../softhsm/local/env', import.meta.url));

export const CONSOLE_USAGE =
  'console [--port N] [--host H] [--store DIR...] [--token-file FILE] [--tls-cert FILE --tls-key FILE] [--env FILE] [--threads N]';
export const CONSOLE_SUMMARY = 'start the operator console (a web UI on 127.0.0.1) and print its sign-in URL';

export const CONSOLE_OPTIONS = {
  port: { type: 'string' },
  host: { type: 'string' },
  store: { type: 'string', multiple: true },
  'token-file': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
} as const;

/** Starts the console from parsed options; `engine` is the already opened engine. Prints the URL line via `out`. */
export async function startConsoleFromOptions(values: Record<string, any>, engine: CryptoEngine, out: (line: string) => void): Promise<RunningConsole> {
  const dirs: string[] = (values.store ?? []).flatMap((d: string) => d.split(',')).filter(Boolean);
  const port = values.port === undefined ? 8765 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError('--port must be a whole number from 0 to 65535');
  if (Boolean(values['tls-cert']) !== Boolean(values['tls-key'])) throw new RangeError('--tls-cert and --tls-key go together');
  const running = await startConsole({
    engine,
    ...(dirs.length > 0 ? { store: new FsShardStore(dirs) } : {}),
    ...(values.host ? { host: values.host } : {}),
    port,
    ...(values['token-file'] ? { token: readFileSync(values['token-file'], 'utf8').trim() } : {}),
    ...(values['tls-cert'] ? { tls: { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']) } } : {}),
  });
  out(`console: ${running.url}`);
  return running;
}

/** Resolves when the process is asked to stop. */
export function untilStopped(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv[0] === 'console' ? argv.slice(1) : argv,
    options: { ...CONSOLE_OPTIONS, env: { type: 'string' }, threads: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`usage: hsm-crypto-engine ${CONSOLE_USAGE}\n${CONSOLE_SUMMARY}\n`);
    return 0;
  }
  const envFile = values.env ?? (!process.env.HSM_PKCS11_LIBRARY && existsSync(LOCAL_ENV_FILE) ? LOCAL_ENV_FILE : undefined);
  if (envFile) Object.assign(process.env, readEnvFile(envFile));
  if (!process.env.HSM_PKCS11_LIBRARY) throw new RangeError('no HSM configured: run `bash softhsm/setup.sh` or set HSM_PKCS11_LIBRARY, HSM_TOKEN_LABEL and HSM_PIN');
  const engine = await CryptoEngine.open(values.threads ? { threads: Number(values.threads) } : {});
  try {
    const running = await startConsoleFromOptions(values, engine, (line) => process.stdout.write(line + '\n'));
    await untilStopped();
    await running.close();
  } finally {
    await engine.close();
  }
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === realpathSync(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (err) => {
      process.stderr.write(`error: ${(err as Error)?.message ?? String(err)}\n`);
      process.exitCode = 2;
    },
  );
}
