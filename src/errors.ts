// Every error the engine throws on purpose: one base class, one stable `code` each.
// Messages never carry a PIN, key or DEK byte; callers switch on `code` or `instanceof`, never on text.

export class CryptoEngineError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A PKCS#11 call failed. `fn` is the function (`C_Login`), `ckr` the return value's name (`CKR_PIN_INCORRECT`). */
export class HsmError extends CryptoEngineError {
  readonly fn: string;
  readonly ckr: string;
  constructor(fn: string, ckr: string, message?: string, options?: { cause?: unknown }) {
    super('ERR_HSM', message ?? `${fn} failed: ${ckr}`, options);
    this.fn = fn;
    this.ckr = ckr;
  }
}

export class KeyNotFoundError extends CryptoEngineError {
  constructor(message = 'root key not found') {
    super('ERR_KEY_NOT_FOUND', message);
  }
}

/** The key exists but its state forbids the operation (disabled, destroyed, import token expired or used up, duplicate alias). */
export class KeyStateError extends CryptoEngineError {
  constructor(message: string) {
    super('ERR_KEY_STATE', message);
  }
}

/** One uninformative message whatever failed: tag, header, context, truncation, key commitment. */
export const DECRYPTION_FAILED_MESSAGE = 'decryption failed';
export class DecryptionError extends CryptoEngineError {
  constructor(options?: { cause?: unknown }) {
    super('ERR_DECRYPTION', DECRYPTION_FAILED_MESSAGE, options);
  }
}

export class ErasureError extends CryptoEngineError {
  constructor(message: string) {
    super('ERR_ERASURE', message);
  }
}

export class ObjectNotFoundError extends CryptoEngineError {
  constructor(message = 'object not found') {
    super('ERR_OBJECT_NOT_FOUND', message);
  }
}

/**
 * A storage node failed (an I/O error, a refusal, a time-out, bad credentials, a missing bucket or folder).
 * `node` is the node's index in its store, `operation` what was attempted, `reason` a short stable cause (an S3
 * error code such as `NoSuchBucket`, `Timeout`, an errno such as `ENOSPC`), `status` the HTTP status where a node
 * answered. Never carries credentials, nor an SDK error that could quote the request.
 */
export class StoreError extends CryptoEngineError {
  readonly node: number;
  readonly operation: string;
  readonly reason: string;
  readonly status: number | undefined;
  constructor(node: number, operation: string, message: string, options?: { cause?: unknown; reason?: string; status?: number }) {
    super('ERR_STORE', message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.node = node;
    this.operation = operation;
    this.reason = options?.reason ?? 'IO';
    this.status = options?.status;
  }
}

/** No bucket of that name in the store. */
export class BucketNotFoundError extends CryptoEngineError {
  constructor(message = 'bucket not found') {
    super('ERR_BUCKET_NOT_FOUND', message);
  }
}

export class BucketExistsError extends CryptoEngineError {
  constructor(message = 'bucket already exists') {
    super('ERR_BUCKET_EXISTS', message);
  }
}

export class BucketNotEmptyError extends CryptoEngineError {
  constructor(message = 'bucket is not empty') {
    super('ERR_BUCKET_NOT_EMPTY', message);
  }
}

/**
 * A stored bucket record (its binding in the store, a bucket key record, or a registration in the token) fails its
 * integrity check on every copy: a changed byte is reported, never read as a different binding.
 */
export class BucketRecordError extends CryptoEngineError {
  constructor(message: string) {
    super('ERR_BUCKET_RECORD', message);
  }
}
