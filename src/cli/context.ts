// What a running command gets (CliContext): the engine opened lazily from the global options and the HSM env
// file, output lines, and a progress bar on stderr.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CryptoEngine } from '../engine.js';
import { readEnvFile } from '../env-file.js';
import { integerOption } from './args.js';
import { UsageError, type CliContext } from './command.js';

/** The project-local token's env file, made by `bash softhsm/setup.sh`. */
const LOCAL_ENV_FILE = fileURLToPath(new URL('../../softhsm/local/env', import.meta.url));

/** The HSM comes from HSM_* in the environment, else --env FILE, else the project-local token's env file. */
async function openEngine(globals: Record<string, any>): Promise<CryptoEngine> {
  const threads = integerOption(globals, 'threads', 1);
  const envFile = globals.env ?? (!process.env.HSM_PKCS11_LIBRARY && existsSync(LOCAL_ENV_FILE) ? LOCAL_ENV_FILE : undefined);
  if (envFile) Object.assign(process.env, readEnvFile(envFile));
  if (!process.env.HSM_PKCS11_LIBRARY) {
    throw new UsageError('no HSM configured: run `bash softhsm/setup.sh` or set HSM_PKCS11_LIBRARY, HSM_TOKEN_LABEL and HSM_PIN');
  }
  return CryptoEngine.open(threads !== undefined ? { threads } : {});
}

/** A context whose engine opens on first use; `close` closes it if it was opened. */
export function createContext(globals: Record<string, any>): CliContext & { close(): Promise<void> } {
  let engine: Promise<CryptoEngine> | undefined;
  return {
    engine: () => (engine ??= openEngine(globals)),
    out: (line) => process.stdout.write(line + '\n'),
    err: (line) => process.stderr.write(line + '\n'),
    progress: progressBar,
    async close() {
      const opened = await engine?.catch(() => undefined);
      await opened?.close();
    },
  };
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
