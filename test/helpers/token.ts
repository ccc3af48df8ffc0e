// A fresh SoftHSM2 token in a temp dir for one test process, removed at exit.
// Must run before the PKCS#11 module is first initialised in the process: SoftHSM reads SOFTHSM2_CONF then.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

export interface TestToken {
  library: string;
  tokenLabel: string;
  pin: string;
  soPin: string;
  dir: string;
  conf: string;
}

let current: TestToken | undefined;
const root = new URL('../../', import.meta.url).pathname;

export function softhsmLibrary(): string {
  return execFileSync('bash', [join(root, 'softhsm/find-library.sh')], { encoding: 'utf8' }).trim();
}

/** Creates the process's token (once) and points SOFTHSM2_CONF at it. */
export function testToken(): TestToken {
  if (current) return current;
  const dir = mkdtempSync(join(tmpdir(), 'hce-token-'));
  mkdirSync(join(dir, 'tokens'));
  const conf = join(dir, 'softhsm2.conf');
  const template = readFileSync(join(root, 'softhsm/softhsm2.conf.template'), 'utf8');
  writeFileSync(conf, template.replace('@TOKEN_DIR@', join(dir, 'tokens')));
  process.env.SOFTHSM2_CONF = conf;
  const tokenLabel = `test-${randomBytes(4).toString('hex')}`;
  const pin = randomBytes(8).toString('hex');
  const soPin = randomBytes(8).toString('hex');
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', tokenLabel, '--so-pin', soPin, '--pin', pin], {
    env: process.env,
    stdio: 'ignore',
  });
  current = { library: softhsmLibrary(), tokenLabel, pin, soPin, dir, conf };
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return current;
}

/** Initialises one more token in the same SoftHSM config (it appears as a new slot). */
export function extraToken(label: string): { tokenLabel: string; pin: string } {
  const token = testToken();
  const pin = randomBytes(8).toString('hex');
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--so-pin', token.soPin, '--pin', pin], {
    env: process.env,
    stdio: 'ignore',
  });
  return { tokenLabel: label, pin };
}

export function engineOptions(extra: Record<string, unknown> = {}) {
  const token = testToken();
  return { pkcs11: { library: token.library, tokenLabel: token.tokenLabel, pin: token.pin }, threads: 2, ...extra };
}
