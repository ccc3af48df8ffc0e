// The one place PKCS#11 failures become engine errors.
// pkcs11js reports a CK_RV as `Pkcs11Error.code`, but some calls throw a plain Error whose message is
// "CKR_NAME:NN" with no code (seen with C_SetAttributeValue): `ckrOf` reads that form too, and nowhere else parses text.
import pkcs11js from 'pkcs11js';
import { HsmError } from '../errors.js';

const CKR_NAMES = new Map<number, string>();
for (const [name, value] of Object.entries(pkcs11js)) {
  if (name.startsWith('CKR_') && typeof value === 'number' && !CKR_NAMES.has(value)) CKR_NAMES.set(value, name);
}

const CKR_IN_MESSAGE = /^(CKR_[A-Z0-9_]+):(\d+)/;

/** The CK_RV carried by an error thrown from pkcs11js, or undefined when it is not a PKCS#11 failure. */
export function ckrOf(err: unknown): number | undefined {
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'number' && code > 0) return code;
  const match = CKR_IN_MESSAGE.exec(err.message);
  return match ? Number(match[2]) : undefined;
}

export function ckrName(ckr: number | undefined): string {
  if (ckr === undefined) return 'CKR_GENERAL_ERROR';
  return CKR_NAMES.get(ckr) ?? `CKR_0x${ckr.toString(16).toUpperCase()}`;
}

/** An HsmError for a failed call. The message names the function and return value only, never arguments. */
export function toHsmError(fn: string, err: unknown): HsmError {
  if (err instanceof HsmError) return err;
  return new HsmError(fn, ckrName(ckrOf(err)), undefined, { cause: sanitizedCause(err) });
}

// pkcs11js messages hold the native stack, never arguments; keep only name and message as the cause.
function sanitizedCause(err: unknown): Error | undefined {
  return err instanceof Error ? Object.assign(new Error(err.message.split('\n')[0]), { name: err.name }) : undefined;
}

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
} as const;
