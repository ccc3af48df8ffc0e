// Engine errors told to an operator: an HTTP status, the error's stable code and a sentence in plain words.
// Never a stack trace; engine messages carry no PIN, key or DEK byte (API.md "Errors"), so they may be quoted.
import { CryptoEngineError, StoreError } from '../errors.js';

export interface OperatorError {
  status: number;
  code: string;
  message: string;
}

/** A refusal the console itself makes (a missing field, a wrong confirmation), with the words to show. */
export class ConsoleRequestError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const BY_CODE: Record<string, (message: string) => Omit<OperatorError, 'code'>> = {
  ERR_KEY_STATE: (m) => ({
    status: 409,
    message: /disabled/i.test(m)
      ? 'The root key is disabled: nothing under it can be read or written until it is enabled again.'
      : /destroyed/i.test(m)
        ? 'The root key has been destroyed: everything it protected is permanently unreadable.'
        : /alias/i.test(m)
          ? 'That alias is already in use: choose another.'
          : /import token/i.test(m)
            ? 'The import token has expired or is used up: create a new one.'
            : `The root key cannot be used for this: ${m}.`,
  }),
  ERR_KEY_NOT_FOUND: (m) => ({ status: 404, message: m === 'root key not found' ? 'There is no such root key (it may have been destroyed).' : `Not found: ${m}.` }),
  ERR_DECRYPTION: () => ({
    status: 422,
    message: 'The object cannot be read: its data does not authenticate (it was changed or damaged, or its root key was destroyed).',
  }),
  ERR_ERASURE: (m) => ({ status: 503, message: `Too many storage nodes are down or damaged to read this object (${m}). Bring nodes back, then repair.` }),
  ERR_OBJECT_NOT_FOUND: () => ({ status: 404, message: 'There is no such object in this bucket.' }),
  ERR_BUCKET_NOT_FOUND: () => ({ status: 404, message: 'There is no such bucket.' }),
  ERR_BUCKET_EXISTS: () => ({ status: 409, message: 'A bucket with that name already exists.' }),
  ERR_BUCKET_NOT_EMPTY: () => ({ status: 409, message: 'The bucket still holds objects: delete them first.' }),
  ERR_BUCKET_RECORD: (m) => ({ status: 422, message: `The bucket's stored records fail their integrity check (changed or damaged): ${m}.` }),
  ERR_HSM: (m) => ({ status: 502, message: `The HSM refused the operation (${m}).` }),
};

export function toOperatorError(err: unknown): OperatorError {
  if (err instanceof ConsoleRequestError) return { status: err.status, code: err.code, message: err.message };
  if (err instanceof StoreError) return { status: 502, code: err.code, message: `Storage node ${err.node} failed (${err.operation}): ${err.message}.` };
  if (err instanceof CryptoEngineError) {
    const known = BY_CODE[err.code];
    if (known) return { code: err.code, ...known(err.message) };
    return { status: 500, code: err.code, message: `${err.message}.` };
  }
  if (err instanceof TypeError || err instanceof RangeError) return { status: 400, code: 'ERR_INVALID_ARGUMENT', message: `Invalid input: ${err.message}.` };
  const fastifyCode = (err as { code?: unknown; statusCode?: unknown })?.code;
  const statusCode = (err as { statusCode?: unknown })?.statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return { status: statusCode, code: typeof fastifyCode === 'string' ? fastifyCode : 'ERR_BAD_REQUEST', message: 'The request was not understood.' };
  }
  return { status: 500, code: 'ERR_INTERNAL', message: 'The console hit an unexpected error; its log has the details.' };
}
