// CryptoEngine.open() options: one resolver that validates and fills defaults, with messages naming the option.
import { availableParallelism } from 'node:os';
import { DEFAULT_CALL_SCHEDULER, type CallSchedulerOptions } from './hsm/call-scheduler.js';
import { MAX_SEGMENT_BYTES, MIN_SEGMENT_BYTES } from './aead/header.js';
import { WRAP_MECHANISMS, type WrapMechanismName } from './hsm/capabilities.js';
import type { DataKeyCacheOptions } from './hsm/data-key-cache.js';
import { envInteger, nonEmptyStringArg, nonNegativeIntegerArg, optionsArg, positiveIntegerArg } from './validate.js';

export interface Pkcs11Options {
  /** Path of the PKCS#11 module (.so). */
  library: string;
  /** Token label (preferred: slot ids can change when tokens are added), or `slot`. */
  tokenLabel?: string;
  slot?: number;
  /**
   * User PIN. Copied into engine-owned memory and kept there, deliberately, to log in again after a lost login
   * (another handle's C_Logout, a token reset, an HSM failover); zeroed by close(). Never logged or put in an error.
   */
  pin: string;
  /** C_Initialize's reserved argument (pReserved), for modules that need one (NSS softokn). Env HSM_INIT_ARGS. */
  initArgs?: string;
  /** Wrap new DEKs with this mechanism rather than the token's best (it must offer it). Env HSM_WRAP_MECHANISM. */
  wrapMechanism?: WrapMechanismName;
}

export interface CryptoEngineOptions {
  pkcs11?: Pkcs11Options;
  /** Worker pool size; default os.availableParallelism(). */
  threads?: number;
  /** Unwrapped-DEK cache, or false. Default { maxAgeMs: 60_000, maxEntries: 10_000, maxBytes: 8 MiB }. */
  dataKeyCache?: Partial<DataKeyCacheOptions> | false;
  /** Most PKCS#11 sessions this engine opens (one HSM operation per session at a time); capped by the token. Default 16. */
  maxSessions?: number;
  /** Longest wait for a free session: beyond it the call fails with HsmError CKR_SESSION_COUNT. Default 30 000. */
  sessionWaitMs?: number;
  /** How long key metadata read from the token is trusted before re-reading (another process may rotate). Default 1000. */
  keyInfoMaxAgeMs?: number;
  /** Segment size of sealed objects, bytes. */
  segmentBytes?: number;
}

export interface ResolvedEngineOptions {
  pkcs11: { library: string; tokenLabel?: string; slot?: number; pin: string; initArgs?: string; wrapMechanism?: WrapMechanismName };
  threads: number;
  dataKeyCache: DataKeyCacheOptions | false;
  maxSessions: number;
  sessionWaitMs: number;
  keyInfoMaxAgeMs: number;
  segmentBytes?: number;
  /** How HSM calls are scheduled: from HCE_HSM_ASYNC_LANES and HCE_HSM_SYNC_MAX_US, read when the engine opens. */
  hsmCalls: CallSchedulerOptions;
}

export const DEFAULT_DATA_KEY_CACHE: DataKeyCacheOptions = { maxAgeMs: 60_000, maxEntries: 10_000, maxBytes: 8 * 1024 * 1024 };
export const DEFAULT_MAX_SESSIONS = 16;
export const DEFAULT_SESSION_WAIT_MS = 30_000;
export const DEFAULT_KEY_INFO_MAX_AGE_MS = 1000;

export function resolveEngineOptions(options?: CryptoEngineOptions, env: NodeJS.ProcessEnv = process.env): ResolvedEngineOptions {
  const given = optionsArg(options);
  const pkcs11 = resolvePkcs11Options(given.pkcs11, env);
  const wrapMechanism = given.pkcs11?.wrapMechanism ?? (env.HSM_WRAP_MECHANISM || undefined);
  if (wrapMechanism !== undefined) {
    if (!WRAP_MECHANISMS.includes(wrapMechanism as WrapMechanismName)) {
      throw new TypeError(`${given.pkcs11?.wrapMechanism !== undefined ? 'options.pkcs11.wrapMechanism' : 'HSM_WRAP_MECHANISM'} must be one of ${WRAP_MECHANISMS.join(', ')}`);
    }
    pkcs11.wrapMechanism = wrapMechanism as WrapMechanismName;
  }
  const threads = positiveIntegerArg(given.threads ?? availableParallelism(), 'options.threads', 256);

  let dataKeyCache: DataKeyCacheOptions | false;
  if (given.dataKeyCache === false) dataKeyCache = false;
  else {
    const cache = given.dataKeyCache ?? {};
    if (typeof cache !== 'object' || cache === null) throw new TypeError('options.dataKeyCache must be an object or false');
    const { maxAgeMs, maxEntries, maxBytes } = { ...DEFAULT_DATA_KEY_CACHE, ...cache };
    dataKeyCache = {
      maxAgeMs: positiveIntegerArg(maxAgeMs, 'options.dataKeyCache.maxAgeMs'),
      maxEntries: positiveIntegerArg(maxEntries, 'options.dataKeyCache.maxEntries'),
      maxBytes: positiveIntegerArg(maxBytes, 'options.dataKeyCache.maxBytes'),
    };
  }

  const maxSessions = positiveIntegerArg(given.maxSessions ?? DEFAULT_MAX_SESSIONS, 'options.maxSessions');
  const sessionWaitMs = positiveIntegerArg(given.sessionWaitMs ?? DEFAULT_SESSION_WAIT_MS, 'options.sessionWaitMs', 2 ** 31 - 1);
  const keyInfoMaxAgeMs = nonNegativeIntegerArg(given.keyInfoMaxAgeMs ?? DEFAULT_KEY_INFO_MAX_AGE_MS, 'options.keyInfoMaxAgeMs');
  // Every option checked here, before anything is acquired (module, login, sessions, workers): the same bounds
  // the object cipher would apply later, so a failed open() never has anything to release.
  const segmentBytes = given.segmentBytes === undefined ? undefined : segmentBytesArg(given.segmentBytes);
  const hsmCalls: CallSchedulerOptions = {
    asyncLanes: envInteger(env, 'HCE_HSM_ASYNC_LANES', DEFAULT_CALL_SCHEDULER.asyncLanes, 0, 1024),
    syncCallMaxMicros: envInteger(env, 'HCE_HSM_SYNC_MAX_US', DEFAULT_CALL_SCHEDULER.syncCallMaxMicros, 0),
  };
  return { pkcs11, threads, dataKeyCache, maxSessions, sessionWaitMs, keyInfoMaxAgeMs, segmentBytes, hsmCalls };
}

function segmentBytesArg(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new TypeError('options.segmentBytes must be a positive integer');
  // The object cipher's own wording, so the error is the same whichever layer would have caught it.
  if (value < MIN_SEGMENT_BYTES || value > MAX_SEGMENT_BYTES) {
    throw new RangeError(`options.segmentBytes must be between ${MIN_SEGMENT_BYTES} and ${MAX_SEGMENT_BYTES}`);
  }
  return value;
}

function initArgsOf(value: unknown, name: string): { initArgs?: string } {
  if (value === undefined || value === '') return {};
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string`);
  return { initArgs: value };
}

function resolvePkcs11Options(given: Pkcs11Options | undefined, env: NodeJS.ProcessEnv): ResolvedEngineOptions['pkcs11'] {
  if (given === undefined) {
    const library = env.HSM_PKCS11_LIBRARY;
    const pin = env.HSM_PIN;
    if (!library) throw new TypeError('options.pkcs11 is missing and HSM_PKCS11_LIBRARY is not set');
    if (pin === undefined) throw new TypeError('options.pkcs11 is missing and HSM_PIN is not set');
    const initArgs = initArgsOf(env.HSM_INIT_ARGS, 'HSM_INIT_ARGS');
    if (env.HSM_TOKEN_LABEL) return { library, tokenLabel: env.HSM_TOKEN_LABEL, pin, ...initArgs };
    if (env.HSM_SLOT !== undefined && /^\d+$/.test(env.HSM_SLOT)) return { library, slot: Number(env.HSM_SLOT), pin, ...initArgs };
    throw new TypeError('options.pkcs11 is missing and neither HSM_TOKEN_LABEL nor a numeric HSM_SLOT is set');
  }
  optionsArg(given, 'options.pkcs11');
  nonEmptyStringArg(given.library, 'options.pkcs11.library');
  if (typeof given.pin !== 'string') throw new TypeError('options.pkcs11.pin must be a string');
  const initArgs = initArgsOf(given.initArgs ?? env.HSM_INIT_ARGS, given.initArgs !== undefined ? 'options.pkcs11.initArgs' : 'HSM_INIT_ARGS');
  if (given.tokenLabel !== undefined) {
    if (typeof given.tokenLabel !== 'string' || given.tokenLabel.length === 0 || given.tokenLabel.length > 32) {
      throw new TypeError('options.pkcs11.tokenLabel must be a string of 1 to 32 characters');
    }
    return { library: given.library, tokenLabel: given.tokenLabel, pin: given.pin, ...initArgs };
  }
  if (given.slot !== undefined) {
    if (!Number.isSafeInteger(given.slot) || given.slot < 0) throw new TypeError('options.pkcs11.slot must be a non-negative integer');
    return { library: given.library, slot: given.slot, pin: given.pin, ...initArgs };
  }
  throw new TypeError('options.pkcs11 needs tokenLabel or slot');
}
