// Real PKCS#11 peers for tap tests, each a fresh token in a temp dir: SoftHSM2 (the suite's token, helpers/token.ts),
// NSS softokn (test/peers/nss.sh) and openCryptoki's soft token (test/peers/opencryptoki.sh, in a private mount +
// IPC namespace). One process may load all three: they are different .so files, each C_Initialize'd once.
//
//   await reexecInOpenCryptokiNamespace();   // first thing in a test file that wants openCryptoki (see below)
//   for (const peer of peerTokens()) { ... peer.env.HSM_PKCS11_LIBRARY ... }
//   skippedPeers()                           // [{ name, reason }] for the providers not available here
//
// openCryptoki's paths are compiled in, so its token is only reachable from inside the namespace its pkcsslotd
// runs in, and a Node process cannot join a mount namespace (setns refuses multi-threaded callers): the test file
// re-executes itself under `opencryptoki.sh run -- node <same argv>` (fresh token, pkcsslotd stopped and the dir
// removed when the file's process exits). Set HCE_PEERS_NO_OPENCRYPTOKI=1 to skip that.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testToken } from './token.js';

export type PeerName = 'softhsm' | 'nss' | 'opencryptoki';

export interface PeerEnv {
  HSM_PKCS11_LIBRARY: string;
  HSM_TOKEN_LABEL: string;
  HSM_PIN: string;
  /** C_Initialize's reserved argument string (NSS softokn). */
  HSM_INIT_ARGS?: string;
  /** SoftHSM only; already set in process.env (SoftHSM reads it at C_Initialize). */
  SOFTHSM2_CONF?: string;
}

export interface PeerToken {
  name: PeerName;
  env: PeerEnv;
  /** Removes the token (idempotent); also done at process exit. */
  cleanup(): void;
}

const PEERS_DIR = fileURLToPath(new URL('../peers/', import.meta.url));
// Exit status `opencryptoki.sh run` uses when the token could not be set up (the command never ran).
const OCK_SETUP_FAILED = 97;

const made = new Map<PeerName, PeerToken>();
const skipped = new Map<PeerName, string>();

function readEnvJson(path: string): PeerEnv {
  const env = JSON.parse(readFileSync(path, 'utf8')) as PeerEnv;
  for (const k of ['HSM_PKCS11_LIBRARY', 'HSM_TOKEN_LABEL', 'HSM_PIN'] as const) {
    if (typeof env[k] !== 'string' || env[k] === '') throw new Error(`${path}: ${k} missing`);
  }
  return env;
}

function softhsm(): PeerToken {
  const token = testToken(); // the suite's fresh SoftHSM token; removed at exit by helpers/token.ts
  return {
    name: 'softhsm',
    env: { HSM_PKCS11_LIBRARY: token.library, HSM_TOKEN_LABEL: token.tokenLabel, HSM_PIN: token.pin!, SOFTHSM2_CONF: process.env.SOFTHSM2_CONF },
    cleanup: () => {},
  };
}

function nss(): PeerToken {
  const dir = mkdtempSync(join(tmpdir(), 'hce-nss-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  process.once('exit', cleanup);
  try {
    execFileSync('bash', [join(PEERS_DIR, 'nss.sh'), dir], { stdio: ['ignore', 'ignore', 'pipe'] });
    return { name: 'nss', env: readEnvJson(join(dir, 'env.json')), cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}

function opencryptoki(): PeerToken {
  const envFile = process.env.HCE_OPENCRYPTOKI_ENV;
  if (!envFile) throw new Error('not inside an openCryptoki namespace: call reexecInOpenCryptokiNamespace() first');
  // Inside the namespace the socket is at /run/pkcsslotd.socket; outside it is not (so a leaked variable is caught).
  if (!existsSync('/run/pkcsslotd.socket')) throw new Error(`HCE_OPENCRYPTOKI_ENV is set but no pkcsslotd socket is visible`);
  // The token belongs to the `opencryptoki.sh run` wrapper, which stops pkcsslotd and removes it after this process.
  return { name: 'opencryptoki', env: readEnvJson(envFile), cleanup: () => {} };
}

const makers: Record<PeerName, () => PeerToken> = { softhsm, nss, opencryptoki };

/** The providers available here, each made once per process (fresh in a temp dir). */
export function peerTokens(only: readonly PeerName[] = ['softhsm', 'nss', 'opencryptoki']): PeerToken[] {
  const out: PeerToken[] = [];
  for (const name of only) {
    let peer = made.get(name);
    if (!peer && !skipped.has(name)) {
      try {
        peer = makers[name]();
        made.set(name, peer);
      } catch (err) {
        const e = err as Error & { stderr?: Buffer };
        skipped.set(name, (e.stderr?.toString().trim() || e.message).split('\n').slice(-3).join(' '));
      }
    }
    if (peer) out.push(peer);
  }
  return out;
}

/** The providers peerTokens() could not make, with why. */
export function skippedPeers(): { name: PeerName; reason: string }[] {
  return [...skipped].map(([name, reason]) => ({ name, reason }));
}

/**
 * Re-runs this process inside a fresh openCryptoki namespace (same node, flags and argv, stdio inherited), then
 * exits with the child's status; returns only when this process should go on itself: already inside, opted out,
 * not root, or the token could not be set up (then openCryptoki is recorded as skipped, with the reason).
 */
export function reexecInOpenCryptokiNamespace(): void {
  if (process.env.HCE_OPENCRYPTOKI_ENV) return;
  const why = process.env.HCE_PEERS_NO_OPENCRYPTOKI === '1' ? 'HCE_PEERS_NO_OPENCRYPTOKI=1'
    : process.getuid?.() !== 0 ? 'needs root (mount namespace)'
      : !['/usr/bin/unshare', '/bin/unshare'].some((p) => existsSync(p)) ? 'unshare (util-linux) missing' : undefined;
  if (why) { skipped.set('opencryptoki', why); return; }
  const script = join(PEERS_DIR, 'opencryptoki.sh');
  const child = spawnSync('bash', [script, 'run', '--', process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: ['inherit', 'inherit', 'pipe'],
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, HCE_OCK_SETUP_FAILED_STATUS: String(OCK_SETUP_FAILED) },
  });
  const stderr = child.stderr?.toString() ?? '';
  if (child.status === OCK_SETUP_FAILED) {
    skipped.set('opencryptoki', stderr.trim().split('\n').slice(-3).join(' ') || 'setup failed');
    return; // the child never ran: carry on here without openCryptoki
  }
  process.stderr.write(stderr);
  process.exit(child.status ?? 1);
}
