// Options of S3ShardStore: one validation pass with messages naming the option (`options.nodes[2].endpoint must be …`),
// defaults filled in. Messages never repeat a value that could be a secret (credentials, or an endpoint with user info).

import { integerArg, nonEmptyStringArg, optionsArg } from '../validate.js';

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3NodeOptions {
  /** `http(s)://host:port` of the S3 endpoint (no user info: credentials go in `credentials`). */
  endpoint: string;
  bucket: string;
  region: string;
  credentials: S3Credentials;
  /** Path-style URLs (`endpoint/bucket/key`); default true, which every S3-compatible store accepts. */
  forcePathStyle?: boolean;
}

export interface S3ShardStoreOptions {
  /** One entry per storage node (bucket), node i = nodes[i]. */
  nodes: S3NodeOptions[];
  /** No store call waits longer than this, retries included (default 10 000). */
  requestTimeoutMs?: number;
  /** Attempts per request on 5xx, throttling and network errors (default 3; 4xx is never retried). */
  maxAttempts?: number;
  /** Writers upload in parts of this size (multipart); smaller blobs go up in one PUT (default 8 MiB). */
  partBytes?: number;
  /** Open connections per node at most (default 64). */
  maxSockets?: number;
  /**
   * Opening a reader fetches the blob's first bytes up to this many along with its size, in one GET (default 64 KiB:
   * a shard header, and all of a small shard); 0 opens with a HEAD and fetches nothing before the first read.
   */
  readAheadBytes?: number;
}

export interface ResolvedS3Options {
  nodes: Required<S3NodeOptions>[];
  requestTimeoutMs: number;
  maxAttempts: number;
  partBytes: number;
  maxSockets: number;
  readAheadBytes: number;
}

export const MAX_NODES = 256;
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
export const MAX_REQUEST_TIMEOUT_MS = 3_600_000;
export const DEFAULT_MAX_ATTEMPTS = 3;
/** S3 refuses multipart parts under 5 MiB (all but the last), and caps parts at 5 GiB. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
export const MAX_PART_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_PART_BYTES = 8 * 1024 * 1024;
export const DEFAULT_MAX_SOCKETS = 64;
export const DEFAULT_READ_AHEAD_BYTES = 64 * 1024;
export const MAX_READ_AHEAD_BYTES = 16 * 1024 * 1024;

// S3 bucket naming rules (3–63 of lowercase letters, digits, '.', '-', starting and ending alphanumeric).
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function resolveS3Options(options: S3ShardStoreOptions): ResolvedS3Options {
  if (options === undefined) throw new TypeError('options must be an object');
  const o = optionsArg(options);
  if (!Array.isArray(o.nodes) || o.nodes.length === 0) throw new TypeError('options.nodes must be a non-empty array');
  if (o.nodes.length > MAX_NODES) throw new RangeError(`options.nodes must have at most ${MAX_NODES} entries`);
  return {
    nodes: o.nodes.map((node, i) => resolveNode(node, `options.nodes[${i}]`)),
    requestTimeoutMs: optionalInteger(o.requestTimeoutMs, 'options.requestTimeoutMs', DEFAULT_REQUEST_TIMEOUT_MS, 1, MAX_REQUEST_TIMEOUT_MS),
    maxAttempts: optionalInteger(o.maxAttempts, 'options.maxAttempts', DEFAULT_MAX_ATTEMPTS, 1, 10),
    partBytes: optionalInteger(o.partBytes, 'options.partBytes', DEFAULT_PART_BYTES, MIN_PART_BYTES, MAX_PART_BYTES),
    maxSockets: optionalInteger(o.maxSockets, 'options.maxSockets', DEFAULT_MAX_SOCKETS, 1, 4096),
    readAheadBytes: optionalInteger(o.readAheadBytes, 'options.readAheadBytes', DEFAULT_READ_AHEAD_BYTES, 0, MAX_READ_AHEAD_BYTES),
  };
}

function resolveNode(node: S3NodeOptions, name: string): Required<S3NodeOptions> {
  if (typeof node !== 'object' || node === null) throw new TypeError(`${name} must be an object`);
  const endpoint = nonEmptyStringArg(node.endpoint, `${name}.endpoint`);
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new RangeError(`${name}.endpoint must be an http:// or https:// URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RangeError(`${name}.endpoint must be an http:// or https:// URL`);
  if (url.username !== '' || url.password !== '') {
    throw new RangeError(`${name}.endpoint must not contain user info (credentials go in ${name}.credentials)`);
  }
  if (url.search !== '' || url.hash !== '') throw new RangeError(`${name}.endpoint must not have a query or fragment`);
  const bucket = nonEmptyStringArg(node.bucket, `${name}.bucket`);
  if (!BUCKET.test(bucket) || bucket.includes('..')) {
    throw new RangeError(`${name}.bucket must be an S3 bucket name (3 to 63 of a-z 0-9 . -, starting and ending with a letter or digit)`);
  }
  const region = nonEmptyStringArg(node.region, `${name}.region`);
  const c = node.credentials;
  if (typeof c !== 'object' || c === null) throw new TypeError(`${name}.credentials must be an object`);
  const credentials: S3Credentials = {
    accessKeyId: nonEmptyStringArg(c.accessKeyId, `${name}.credentials.accessKeyId`),
    secretAccessKey: nonEmptyStringArg(c.secretAccessKey, `${name}.credentials.secretAccessKey`),
  };
  if (c.sessionToken !== undefined) credentials.sessionToken = nonEmptyStringArg(c.sessionToken, `${name}.credentials.sessionToken`);
  if (node.forcePathStyle !== undefined && typeof node.forcePathStyle !== 'boolean') {
    throw new TypeError(`${name}.forcePathStyle must be a boolean`);
  }
  return { endpoint: url.href.replace(/\/$/, ''), bucket, region, credentials, forcePathStyle: node.forcePathStyle ?? true };
}

function optionalInteger(value: unknown, name: string, fallback: number, min: number, max: number): number {
  return value === undefined ? fallback : integerArg(value, name, min, max);
}
