// The one place PKCS#11 failures become engine errors: every CK_RV test and every HsmError is made here.
// pkcs11js reports a CK_RV as `Pkcs11Error.code`, but some calls throw a plain Error whose message is
// "CKR_NAME:NN" with no code (seen with C_SetAttributeValue): `ckrOf` reads that form too, and nowhere else parses text.
import pkcs11js from 'pkcs11js';
import { DecryptionError, HsmError } from '../errors.js';

const CKR_NAMES = new Map<bigint, string>();
for (const [name, value] of Object.entries(pkcs11js)) {
  if (name.startsWith('CKR_') && typeof value === 'number' && !CKR_NAMES.has(BigInt(value))) CKR_NAMES.set(BigInt(value), name);
}
/** PKCS#11 §3.6: values from here up are the vendor's own. */
const CKR_VENDOR_DEFINED = 0x80000000n;

const CKR_IN_MESSAGE = /^(CKR_[A-Z0-9_]+):(\d+)/;

export const CKR = {
  OK: pkcs11js.CKR_OK,
  GENERAL_ERROR: pkcs11js.CKR_GENERAL_ERROR,
  CRYPTOKI_ALREADY_INITIALIZED: pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED,
  USER_ALREADY_LOGGED_IN: pkcs11js.CKR_USER_ALREADY_LOGGED_IN,
  KEY_FUNCTION_NOT_PERMITTED: pkcs11js.CKR_KEY_FUNCTION_NOT_PERMITTED,
  KEY_HANDLE_INVALID: pkcs11js.CKR_KEY_HANDLE_INVALID,
  OBJECT_HANDLE_INVALID: pkcs11js.CKR_OBJECT_HANDLE_INVALID,
  ENCRYPTED_DATA_INVALID: pkcs11js.CKR_ENCRYPTED_DATA_INVALID,
  ENCRYPTED_DATA_LEN_RANGE: pkcs11js.CKR_ENCRYPTED_DATA_LEN_RANGE,
  WRAPPED_KEY_INVALID: pkcs11js.CKR_WRAPPED_KEY_INVALID,
  WRAPPED_KEY_LEN_RANGE: pkcs11js.CKR_WRAPPED_KEY_LEN_RANGE,
  ARGUMENTS_BAD: pkcs11js.CKR_ARGUMENTS_BAD,
  MECHANISM_INVALID: pkcs11js.CKR_MECHANISM_INVALID,
  MECHANISM_PARAM_INVALID: pkcs11js.CKR_MECHANISM_PARAM_INVALID,
  SESSION_HANDLE_INVALID: pkcs11js.CKR_SESSION_HANDLE_INVALID,
  SESSION_CLOSED: pkcs11js.CKR_SESSION_CLOSED,
  DEVICE_REMOVED: pkcs11js.CKR_DEVICE_REMOVED,
  TOKEN_NOT_PRESENT: pkcs11js.CKR_TOKEN_NOT_PRESENT,
  USER_NOT_LOGGED_IN: pkcs11js.CKR_USER_NOT_LOGGED_IN,
  BUFFER_TOO_SMALL: pkcs11js.CKR_BUFFER_TOO_SMALL,
  OPERATION_ACTIVE: pkcs11js.CKR_OPERATION_ACTIVE,
  SESSION_COUNT: pkcs11js.CKR_SESSION_COUNT,
  KEY_TYPE_INCONSISTENT: pkcs11js.CKR_KEY_TYPE_INCONSISTENT,
  KEY_SIZE_RANGE: pkcs11js.CKR_KEY_SIZE_RANGE,
  ATTRIBUTE_TYPE_INVALID: pkcs11js.CKR_ATTRIBUTE_TYPE_INVALID,
  ATTRIBUTE_VALUE_INVALID: pkcs11js.CKR_ATTRIBUTE_VALUE_INVALID,
  TEMPLATE_INCONSISTENT: pkcs11js.CKR_TEMPLATE_INCONSISTENT,
  SIGNATURE_INVALID: pkcs11js.CKR_SIGNATURE_INVALID,
  FUNCTION_FAILED: pkcs11js.CKR_FUNCTION_FAILED,
  DATA_LEN_RANGE: pkcs11js.CKR_DATA_LEN_RANGE,
} as const;

/**
 * The CK_RV carried by an error thrown from pkcs11js, exactly (CK_RV is 64-bit on LP64), or undefined when it is
 * not a PKCS#11 failure. The message's digits are exact; `code` is a double, exact only up to 2^53.
 */
export function ckrValueOf(err: unknown): bigint | undefined {
  if (!(err instanceof Error)) return undefined;
  const match = CKR_IN_MESSAGE.exec(err.message);
  if (match) return BigInt(match[2]!);
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'number' && code > 0) return Number.isSafeInteger(code) ? BigInt(code) : -1n; // -1n: rounded upstream
  return undefined;
}

/** The CK_RV of a pkcs11js error as a number, for comparison with `CKR`; undefined when not a PKCS#11 failure. */
export function ckrOf(err: unknown): number | undefined {
  const value = ckrValueOf(err);
  return value === undefined ? undefined : Number(value);
}

/**
 * The name of a CK_RV: the standard's name, `CKR_VENDOR_DEFINED+0x…` (offset from CKR_VENDOR_DEFINED, in hex) for a
 * vendor's value, `CKR_0x…` for any other unknown one. A value pkcs11js already rounded (above 2^53, passed as -1n or
 * an unsafe number) has no exact hex left: it is named `CKR_VENDOR_DEFINED` rather than printed wrong.
 */
export function ckrName(ckr: number | bigint | undefined): string {
  if (ckr === undefined) return 'CKR_GENERAL_ERROR';
  if (typeof ckr === 'number' && !Number.isSafeInteger(ckr)) return 'CKR_VENDOR_DEFINED';
  const value = BigInt(ckr);
  if (value < 0n) return 'CKR_VENDOR_DEFINED';
  const known = CKR_NAMES.get(value);
  if (known) return known;
  if (value === CKR_VENDOR_DEFINED) return 'CKR_VENDOR_DEFINED';
  if (value > CKR_VENDOR_DEFINED) return `CKR_VENDOR_DEFINED+0x${(value - CKR_VENDOR_DEFINED).toString(16).toUpperCase()}`;
  return `CKR_0x${value.toString(16).toUpperCase()}`;
}

/** An HsmError for a failed call. The message names the function and return value only, never arguments. */
export function toHsmError(fn: string, err: unknown): HsmError {
  if (err instanceof HsmError) return err;
  return new HsmError(fn, ckrName(ckrValueOf(err)), undefined, { cause: sanitizedCause(err) });
}

/** toHsmError for a PKCS#11 failure; an Error that is none (already ours, or not from the HSM) passes as it is. */
export function hsmFailure(fn: string, err: unknown): Error {
  if (err instanceof Error && ckrValueOf(err) === undefined) return err;
  return toHsmError(fn, err);
}

// pkcs11js messages hold the native stack, never arguments; keep only name and message as the cause.
function sanitizedCause(err: unknown): Error | undefined {
  return err instanceof Error ? Object.assign(new Error(err.message.split('\n')[0]), { name: err.name }) : undefined;
}

const is = (err: unknown, ...ckrs: number[]) => {
  // An HsmError made here (a synthetic one, or one mapped early) answers by its CK_RV name.
  const ckr = err instanceof HsmError ? (CKR_VALUES.get(err.ckr) ?? ckrOf(err.cause)) : ckrOf(err);
  return ckr !== undefined && ckrs.includes(ckr);
};
const CKR_VALUES = new Map<string, number>([...CKR_NAMES].map(([value, name]) => [name, Number(value)]));

// ---- what a failure means, per call site ------------------------------------------------------------------------

/** Someone else in the process initialised the module first: fine, the module is usable as it is. */
export const isAlreadyInitialized = (err: unknown) => is(err, CKR.CRYPTOKI_ALREADY_INITIALIZED);

/** C_Login on a token this process is already logged in to (login is process-wide per token). */
export const isAlreadyLoggedIn = (err: unknown) => is(err, CKR.USER_ALREADY_LOGGED_IN);

/** After these, the session is gone or may still hold an active operation (BUFFER_TOO_SMALL does not end one). */
export const leavesSessionUnusable = (err: unknown) =>
  is(err, CKR.SESSION_HANDLE_INVALID, CKR.SESSION_CLOSED, CKR.DEVICE_REMOVED, CKR.BUFFER_TOO_SMALL, CKR.OPERATION_ACTIVE);

/** The session is gone (closed by anyone, C_CloseAllSessions, the device reset or removed): open another. */
export const lostSession = (err: unknown) => is(err, CKR.SESSION_HANDLE_INVALID, CKR.SESSION_CLOSED, CKR.DEVICE_REMOVED);

/** The login is gone (another handle's C_Logout, a token reset): log in again. */
export const lostLogin = (err: unknown) => is(err, CKR.USER_NOT_LOGGED_IN);

/** A token-object handle no longer names an object: after a reset or re-login it may have a new handle. */
export const staleHandle = (err: unknown) => is(err, CKR.KEY_HANDLE_INVALID, CKR.OBJECT_HANDLE_INVALID);

/** C_OpenSession: the token has no more sessions to give (others in the process hold them). */
export const isSessionCountExceeded = (err: unknown) => is(err, CKR.SESSION_COUNT);

export const notLoggedInError = () => new HsmError('C_GetSessionInfo', 'CKR_USER_NOT_LOGGED_IN', 'the session lost its login');
export const sessionWaitTimeoutError = (ms: number) =>
  new HsmError('C_OpenSession', 'CKR_SESSION_COUNT', `no PKCS#11 session became free within ${ms} ms`);
export const pinIncorrectError = () => new HsmError('C_Login', 'CKR_PIN_INCORRECT');
export const engineClosedError = () => new HsmError('C_OpenSession', 'CKR_SESSION_CLOSED', 'the engine is closed');
export const tokenNotPresentError = (detail: string) => new HsmError('C_GetSlotList', 'CKR_TOKEN_NOT_PRESENT', detail);
export const initArgsConflictError = (library: string) =>
  new HsmError('C_Initialize', 'CKR_CRYPTOKI_ALREADY_INITIALIZED', `${library} is already initialised in this process with other initArgs`);
export const moduleLoadError = (library: string, err: unknown) =>
  new HsmError('C_GetFunctionList', 'CKR_GENERAL_ERROR', `PKCS#11 module could not be loaded from ${library}`, { cause: sanitizedCause(err) });

// ---- how each token says it ----------------------------------------------------------------------------------

/** How a token reports the answers the engine must tell apart; the standard's codes unless known otherwise. */
export interface CkrProfile {
  name: 'softhsm' | 'nss' | 'opencryptoki' | 'standard';
  /** Using a key whose CKA_ENCRYPT/CKA_DECRYPT is off (a disabled root key). */
  disabled: readonly number[];
  /** A failed tag or integrity check on C_Decrypt (GCM, KWP). */
  badTag: readonly number[];
  /** C_UnwrapKey of customer material that does not decrypt (RSA-OAEP). */
  badImport: readonly number[];
  /** "This mechanism or parameter is not supported" (what the OAEP-SHA-256 probe may fall back on). */
  unsupported: readonly number[];
}

const STANDARD: CkrProfile = {
  name: 'standard',
  disabled: [CKR.KEY_FUNCTION_NOT_PERMITTED],
  badTag: [CKR.ENCRYPTED_DATA_INVALID, CKR.ENCRYPTED_DATA_LEN_RANGE],
  badImport: [CKR.ENCRYPTED_DATA_INVALID, CKR.ENCRYPTED_DATA_LEN_RANGE, CKR.WRAPPED_KEY_INVALID, CKR.WRAPPED_KEY_LEN_RANGE],
  unsupported: [CKR.MECHANISM_INVALID, CKR.MECHANISM_PARAM_INVALID],
};

/** Found by running each token (test/peers/PROBE-RESULTS.md). */
const PROFILES: Record<Exclude<CkrProfile['name'], 'standard'>, CkrProfile> = {
  // SoftHSM 2.6: a failed GCM tag or OAEP decoding is CKR_GENERAL_ERROR; OAEP with SHA-256 is CKR_ARGUMENTS_BAD.
  softhsm: {
    ...STANDARD, name: 'softhsm',
    badTag: [...STANDARD.badTag, CKR.GENERAL_ERROR],
    badImport: [...STANDARD.badImport, CKR.GENERAL_ERROR],
    unsupported: [...STANDARD.unsupported, CKR.ARGUMENTS_BAD],
  },
  // NSS softokn: a key whose usage was turned off answers CKR_KEY_TYPE_INCONSISTENT.
  nss: { ...STANDARD, name: 'nss', disabled: [...STANDARD.disabled, CKR.KEY_TYPE_INCONSISTENT] },
  // openCryptoki soft token: OAEP garbage is CKR_FUNCTION_FAILED.
  opencryptoki: { ...STANDARD, name: 'opencryptoki', badImport: [...STANDARD.badImport, CKR.FUNCTION_FAILED] },
};

/** The profile of a token, by CK_TOKEN_INFO's manufacturer and model. */
export function ckrProfileFor(manufacturer: string, model: string): CkrProfile {
  if (/softhsm/i.test(manufacturer) || /softhsm/i.test(model)) return PROFILES.softhsm;
  if (/mozilla/i.test(manufacturer) || /^NSS/.test(model)) return PROFILES.nss;
  if (/^IBM/i.test(manufacturer) && /soft ?tok/i.test(model)) return PROFILES.opencryptoki;
  return STANDARD;
}
export const STANDARD_PROFILE = STANDARD;

/** The mechanism or its parameters are not supported (as this token says it). */
export const isUnsupportedMechanism = (err: unknown, profile: CkrProfile = STANDARD) => is(err, ...profile.unsupported);

/** A failed C_Decrypt of a wrapped DEK: a failed tag check is a DecryptionError, anything else an HsmError. */
export function decryptFailure(err: unknown, profile: CkrProfile): Error {
  if (is(err, ...profile.badTag)) return new DecryptionError();
  return hsmFailure('C_Decrypt', err);
}

/** A failed C_UnwrapKey of customer key material: material that does not decrypt is a DecryptionError. */
export function unwrapKeyFailure(err: unknown, profile: CkrProfile): Error {
  if (is(err, ...profile.badImport)) return new DecryptionError();
  return toHsmError('C_UnwrapKey', err);
}

/**
 * What a failed use of a root key says about the key's state, whoever changed it (this or another process):
 * 'disabled' (CKA_ENCRYPT/CKA_DECRYPT turned off), 'gone' (its object no longer exists), else undefined.
 */
export function keyStateOfFailure(err: unknown, profile: CkrProfile): 'disabled' | 'gone' | undefined {
  if (is(err, ...profile.disabled)) return 'disabled';
  if (is(err, CKR.KEY_HANDLE_INVALID, CKR.OBJECT_HANDLE_INVALID)) return 'gone';
  return undefined;
}

/** A key template the token refused for an attribute it does not know (v2.40 attributes on an older token). */
export const isTemplateRefused = (err: unknown) =>
  is(err, CKR.ATTRIBUTE_TYPE_INVALID, CKR.ATTRIBUTE_VALUE_INVALID, CKR.TEMPLATE_INCONSISTENT, CKR.GENERAL_ERROR);
