// One S3 request as the shard store makes it: bounded by a deadline (no call outlives it, even across retries or an
// SDK phase that ignores the abort), retried with jittered backoff on 5xx/throttling/network errors and never on
// other 4xx, and every failure turned into a StoreError that names node, bucket, operation and cause — built from the
// SDK error's code and status only, so nothing the request carried (credentials, signatures) can reach a message.

import { setTimeout as sleep } from 'node:timers/promises';
import { StoreError } from '../errors.js';
import type { LazyS3Client } from './s3-client.js';

/** One node as requests see it: its index, where it is, and its client (the credentials stay inside the client). */
export interface S3Node {
  readonly index: number;
  readonly endpoint: string;
  readonly bucket: string;
  readonly client: LazyS3Client;
}

export interface RetryPolicy {
  readonly timeoutMs: number;
  readonly maxAttempts: number;
}

const BACKOFF_BASE_MS = 50;
const BACKOFF_CAP_MS = 1000;
/** A retry is pointless if less than this would remain for the attempt itself. */
const MIN_ATTEMPT_MS = 50;

// Codes the SDK gives transient failures: throttling (S3 answers 503 SlowDown, some peers 429), S3's own idle-request
// 400 RequestTimeout, and the Node socket errors of a node that restarts or drops connections.
const RETRYABLE_REASONS = new Set([
  'SlowDown', 'Throttling', 'ThrottlingException', 'RequestLimitExceeded', 'TooManyRequests', 'RequestTimeout',
  'ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ECONNABORTED', 'TimeoutError',
]);
const TIMEOUT_REASONS = new Set(['TimeoutError', 'AbortError', 'Timeout', 'RequestTimeout']);

/** The deadline of one store call: every request (and retry) inside the call shares it. */
export interface Deadline {
  readonly signal: AbortSignal;
  /** performance.now() when it fires. */
  readonly at: number;
}

export function deadline(policy: RetryPolicy): Deadline {
  return { signal: AbortSignal.timeout(policy.timeoutMs), at: performance.now() + policy.timeoutMs };
}

/**
 * Runs `attempt` until it succeeds, fails for good, or `signal` (the call's deadline) fires.
 * `operation` names the store call and the S3 request (`openReader/HeadObject`).
 */
export async function s3Request<T>(
  node: S3Node,
  policy: RetryPolicy,
  call: Deadline,
  operation: string,
  attempt: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const { signal } = call;
  for (let n = 1; ; n++) {
    if (signal.aborted) throw timeoutError(node, operation, policy);
    try {
      return await untilAborted(attempt(signal), signal);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      if (signal.aborted) throw timeoutError(node, operation, policy);
      const { reason, status } = describe(err);
      if (!isRetryable(reason, status) || n >= policy.maxAttempts) {
        if (TIMEOUT_REASONS.has(reason) && status === undefined) throw timeoutError(node, operation, policy);
        throw storeError(node, operation, reason, status);
      }
      const wait = backoffMs(n);
      // Waiting out the backoff must not outlive the deadline either; give up now if too little would remain.
      if (call.at - performance.now() < wait + MIN_ATTEMPT_MS) throw storeError(node, operation, reason, status);
      await sleep(wait, undefined, { signal }).catch(() => {});
    }
  }
}

/** Whether a failure with this reason and status is worth another attempt: 5xx, throttling, socket errors. */
export function isRetryable(reason: string, status: number | undefined): boolean {
  return (status !== undefined && (status >= 500 || status === 429)) || RETRYABLE_REASONS.has(reason);
}

/** The backoff before attempt n + 1 (jittered, capped). */
export function backoffMs(n: number): number {
  return Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (n - 1)) * (0.5 + Math.random() / 2);
}

export function storeError(node: S3Node, operation: string, reason: string, status?: number, detail?: string): StoreError {
  const http = status === undefined ? '' : ` (HTTP ${status})`;
  const message = `S3 node ${node.index} (${node.endpoint}, bucket ${node.bucket}): ${operation} failed: ${reason}${http}`;
  return new StoreError(node.index, operation, detail ? `${message}: ${detail}` : message, { reason, status });
}

export function timeoutError(node: S3Node, operation: string, policy: RetryPolicy): StoreError {
  return storeError(node, operation, 'Timeout', undefined, `no answer within ${policy.timeoutMs} ms`);
}

/** The SDK error's code and HTTP status, as short safe tokens (never its message, which may quote the request). */
export function describe(err: unknown): { reason: string; status: number | undefined } {
  const e = (typeof err === 'object' && err !== null ? err : {}) as {
    name?: unknown; code?: unknown; Code?: unknown; $metadata?: { httpStatusCode?: unknown };
  };
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : undefined;
  // Socket errors carry `code` (ECONNREFUSED); S3 service errors carry their code as `name` (NoSuchBucket). A HEAD
  // error has no body, so the SDK can only say 'Unknown' or the status name: fall back to the status then.
  for (const c of [e.code, e.Code, e.name]) {
    if (typeof c === 'string' && /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(c) && !GENERIC_NAMES.has(c)) return { reason: c, status };
  }
  if (status === undefined) return { reason: 'NetworkError', status };
  return { reason: STATUS_REASONS.get(status) ?? `HTTP${status}`, status };
}

const GENERIC_NAMES = new Set(['Error', 'S3ServiceException', 'Unknown', 'UnknownError']);
const STATUS_REASONS = new Map([
  [400, 'BadRequest'], [401, 'Unauthorized'], [403, 'Forbidden'], [404, 'NotFound'], [405, 'MethodNotAllowed'],
  [409, 'Conflict'], [411, 'LengthRequired'], [412, 'PreconditionFailed'], [416, 'InvalidRange'], [429, 'TooManyRequests'],
  [500, 'InternalError'], [501, 'NotImplemented'], [502, 'BadGateway'], [503, 'ServiceUnavailable'], [504, 'GatewayTimeout'],
]);

export function isNotFound(err: unknown): boolean {
  return err instanceof StoreError && err.status === 404 && (err.reason === 'NotFound' || err.reason === 'NoSuchKey');
}

/** `promise`, or a rejection as soon as `signal` aborts (the abandoned promise's outcome is observed and dropped). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    if (signal.aborted) {
      promise.catch(() => {});
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
