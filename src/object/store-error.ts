// The error a shard store throws when its medium fails (a node refusing, timing out, answering 4xx/5xx).
// Lives here until it moves into src/errors.ts. It carries what a caller can act on (node, operation, reason,
// HTTP status), never the underlying SDK error: those can echo request details, and no credential may leak.

import { CryptoEngineError } from '../errors.js';

export class StoreError extends CryptoEngineError {
  /** Index of the node that failed. */
  readonly node: number;
  /** The store operation (`openReader`, `write`, `commit`, `list`, …) and the S3 call inside it (`GetObject`). */
  readonly operation: string;
  /** A stable short cause: an S3 error code (`NoSuchBucket`, `InvalidAccessKeyId`), `Timeout`, `ECONNREFUSED`, … */
  readonly reason: string;
  /** The HTTP status when the node answered, else undefined. */
  readonly status: number | undefined;

  constructor(node: number, operation: string, reason: string, message: string, status?: number) {
    super('ERR_STORE', message);
    this.node = node;
    this.operation = operation;
    this.reason = reason;
    this.status = status;
  }
}
