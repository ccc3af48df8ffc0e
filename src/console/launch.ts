// Starting the console from command-line options (`hsm-crypto-engine console`, src/cli/console.ts): the store
// folders, port, host, token file and TLS files turned into ConsoleOptions, and the one start line printed.
import { readFileSync } from 'node:fs';
import type { CryptoEngine } from '../engine.js';
import { FsShardStore } from '../object/fs-shard-store.js';
import { startConsole, type RunningConsole } from './server.js';

export const CONSOLE_USAGE = '[--port N] [--host H] [--store DIR,...] [--token-file FILE] [--tls-cert FILE --tls-key FILE]';
export const CONSOLE_SUMMARY = 'start the operator console (a web UI on 127.0.0.1) and print its sign-in URL';
export const DEFAULT_CONSOLE_PORT = 8765;

export const CONSOLE_OPTIONS = {
  port: { type: 'string' },
  host: { type: 'string' },
  store: { type: 'string', multiple: true },
  'token-file': { type: 'string' },
  'tls-cert': { type: 'string' },
  'tls-key': { type: 'string' },
} as const;

/** Starts the console on `engine` from parsed options and prints `console: URL` through `out` (the only output). */
export async function startConsoleFromOptions(values: Record<string, any>, engine: CryptoEngine, out: (line: string) => void): Promise<RunningConsole> {
  const dirs: string[] = (values.store ?? []).flatMap((d: string) => d.split(',')).filter(Boolean);
  const port = values.port === undefined ? DEFAULT_CONSOLE_PORT : /^\d+$/.test(values.port) ? Number(values.port) : NaN;
  if (!Number.isInteger(port) || port > 65535) throw new RangeError('--port must be a whole number from 0 to 65535');
  if (Boolean(values['tls-cert']) !== Boolean(values['tls-key'])) throw new RangeError('--tls-cert and --tls-key go together');
  const running = await startConsole({
    engine,
    // As `bucket …` commands do: folders are made on first write.
    ...(dirs.length > 0 ? { store: new FsShardStore(dirs, { createFolders: true }) } : {}),
    ...(values.host ? { host: values.host } : {}),
    port,
    ...(values['token-file'] ? { token: readFileSync(values['token-file'], 'utf8').trim() } : {}),
    ...(values['tls-cert'] ? { tls: { cert: readFileSync(values['tls-cert']), key: readFileSync(values['tls-key']) } } : {}),
  });
  out(`console: ${running.url}`);
  return running;
}

/** Resolves when the process is asked to stop (Ctrl-C or SIGTERM). */
export function untilStopped(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}
