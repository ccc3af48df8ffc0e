// CryptoEngine.open() options: one resolver that validates and fills defaults, with messages naming the option.
import { availableParallelism } from 'node:os';
import type { DataKeyCacheOptions } from './hsm/data-key-cache.js';

export interface Pkcs11Options {
  /** Path of the PKCS#11 module (.so). */
  library: string;
  /** Token label (preferred: slot ids can change when tokens are added), or `slot`. */
  tokenLabel?: string;
  slot?: number;
  /** User PIN. Used for C_Login and then dropped; never logged or put in an error. */
  pin: string;
}

export interface CryptoEngineOptions {
  pkcs11?: Pkcs11Options;
  /** Worker pool size; default os.availableParallelism(). */
  threads?: number;
  /** Unwrapped-DEK cache, or false. Default { maxAgeMs: 60_000, maxEntries: 10_000 }. */
  dataKeyCache?: Partial<DataKeyCacheOptions> | false;
  /** Most PKCS#11 sessions this engine opens (one HSM operation per session at a time). Default 16. */
  maxSessions?: number;
  /** How long key metadata read from the token is trusted before re-reading (another process may rotate). Default 1000. */
  keyInfoMaxAgeMs?: number;
  /** Segment size of sealed objects, bytes. */
  segmentBytes?: number;
}

export interface ResolvedEngineOptions {
  pkcs11: { library: string; tokenLabel?: string; slot?: number; pin: string };
  threads: number;
  dataKeyCache: DataKeyCacheOptions | false;
  maxSessions: number;
  keyInfoMaxAgeMs: number;
  segmentBytes?: number;
}

export const DEFAULT_DATA_KEY_CACHE: DataKeyCacheOptions = { maxAgeMs: 60_000, maxEntries: 10_000 };
export const DEFAULT_MAX_SESSIONS = 16;
export const DEFAULT_KEY_INFO_MAX_AGE_MS = 1000;

const positiveInteger = (value: unknown) => Number.isSafeInteger(value) && (value as number) > 0;

export function resolveEngineOptions(options: CryptoEngineOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedEngineOptions {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const pkcs11 = resolvePkcs11Options(options.pkcs11, env);

  const threads = options.threads ?? availableParallelism();
  if (!positiveInteger(threads) || threads > 256) throw new RangeError('options.threads must be an integer from 1 to 256');

  let dataKeyCache: DataKeyCacheOptions | false;
  if (options.dataKeyCache === false) dataKeyCache = false;
  else {
    const given = options.dataKeyCache ?? {};
    if (typeof given !== 'object' || given === null) throw new TypeError('options.dataKeyCache must be an object or false');
    dataKeyCache = { ...DEFAULT_DATA_KEY_CACHE, ...given };
    if (!positiveInteger(dataKeyCache.maxAgeMs)) throw new RangeError('options.dataKeyCache.maxAgeMs must be a positive integer');
    if (!positiveInteger(dataKeyCache.maxEntries)) throw new RangeError('options.dataKeyCache.maxEntries must be a positive integer');
  }

  const maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
  if (!positiveInteger(maxSessions)) throw new RangeError('options.maxSessions must be a positive integer');
  const keyInfoMaxAgeMs = options.keyInfoMaxAgeMs ?? DEFAULT_KEY_INFO_MAX_AGE_MS;
  if (!Number.isSafeInteger(keyInfoMaxAgeMs) || keyInfoMaxAgeMs < 0) throw new RangeError('options.keyInfoMaxAgeMs must be a non-negative integer');
  if (options.segmentBytes !== undefined && !positiveInteger(options.segmentBytes)) {
    throw new RangeError('options.segmentBytes must be a positive integer');
  }
  return { pkcs11, threads, dataKeyCache, maxSessions, keyInfoMaxAgeMs, segmentBytes: options.segmentBytes };
}

function resolvePkcs11Options(given: Pkcs11Options | undefined, env: NodeJS.ProcessEnv): ResolvedEngineOptions['pkcs11'] {
  if (given === undefined) {
    const library = env.HSM_PKCS11_LIBRARY;
    const pin = env.HSM_PIN;
    if (!library) throw new TypeError('options.pkcs11 is missing and HSM_PKCS11_LIBRARY is not set');
    if (pin === undefined) throw new TypeError('options.pkcs11 is missing and HSM_PIN is not set');
    if (env.HSM_TOKEN_LABEL) return { library, tokenLabel: env.HSM_TOKEN_LABEL, pin };
    if (env.HSM_SLOT !== undefined && /^\d+$/.test(env.HSM_SLOT)) return { library, slot: Number(env.HSM_SLOT), pin };
    throw new TypeError('options.pkcs11 is missing and neither HSM_TOKEN_LABEL nor a numeric HSM_SLOT is set');
  }
  if (typeof given !== 'object' || given === null) throw new TypeError('options.pkcs11 must be an object');
  if (typeof given.library !== 'string' || given.library.length === 0) throw new TypeError('options.pkcs11.library must be a non-empty string');
  if (typeof given.pin !== 'string') throw new TypeError('options.pkcs11.pin must be a string');
  if (given.tokenLabel !== undefined) {
    if (typeof given.tokenLabel !== 'string' || given.tokenLabel.length === 0 || given.tokenLabel.length > 32) {
      throw new TypeError('options.pkcs11.tokenLabel must be a string of 1 to 32 characters');
    }
    return { library: given.library, tokenLabel: given.tokenLabel, pin: given.pin };
  }
  if (given.slot !== undefined) {
    if (!Number.isSafeInteger(given.slot) || given.slot < 0) throw new TypeError('options.pkcs11.slot must be a non-negative integer');
    return { library: given.library, slot: given.slot, pin: given.pin };
  }
  throw new TypeError('options.pkcs11 needs tokenLabel or slot');
}
