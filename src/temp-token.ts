// A throwaway SoftHSM2 token in a temp dir, made by softhsm/setup.sh: the demo, tests and benches each get a fresh
// one and never touch a developer's token. Must run before the PKCS#11 module is first initialised in the process
// (SoftHSM reads SOFTHSM2_CONF then), and sets SOFTHSM2_CONF and the HSM_* variables in process.env.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readEnvFile } from './env-file.js';
import type { Pkcs11Options } from './options.js';

export const SETUP_SCRIPT = fileURLToPath(new URL('../softhsm/setup.sh', import.meta.url));

export interface TempToken {
  dir: string;
  pkcs11: Pkcs11Options & { tokenLabel: string };
  remove(): void;
}

/** Token folders still to remove at exit: one exit listener for all (one each warned past ten tokens a process). */
const leftAtExit = new Set<string>();
let exitHooked = false;

export function createTempToken(label = 'hce-temp'): TempToken {
  const dir = mkdtempSync(join(tmpdir(), 'hce-token-'));
  execFileSync('bash', [SETUP_SCRIPT, join(dir, 'hsm')], { env: { ...process.env, HSM_TOKEN_LABEL: label }, stdio: ['ignore', 'ignore', 'pipe'] });
  const vars = readEnvFile(join(dir, 'hsm', 'env'));
  Object.assign(process.env, vars);
  const remove = () => {
    leftAtExit.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  };
  if (!exitHooked) {
    exitHooked = true;
    process.once('exit', () => leftAtExit.forEach((d) => rmSync(d, { recursive: true, force: true })));
  }
  leftAtExit.add(dir);
  return { dir, pkcs11: { library: vars.HSM_PKCS11_LIBRARY!, tokenLabel: vars.HSM_TOKEN_LABEL!, pin: vars.HSM_PIN! }, remove };
}
