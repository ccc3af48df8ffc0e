// Real Ceph for S3 tests: starts test/peers/ceph.sh in a fresh temp dir (stopped in teardown, also when tests fail),
// and a counting TCP proxy to see what a client actually fetched and which requests it made.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { S3ShardStore, type S3NodeOptions, type S3ShardStoreOptions } from '../../dist/index.js';

const run = promisify(execFile);
const HARNESS = new URL('../peers/ceph.sh', import.meta.url).pathname;

export interface CephNode {
  endpoint: string;
  bucket: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  rgwPidFile: string;
  dir: string;
}

/** A node's S3ShardStore options (what S3NodeOptions needs of it). */
export function nodeOptions(n: CephNode): { endpoint: string; bucket: string; region: string; credentials: CephNode['credentials'] } {
  return { endpoint: n.endpoint, bucket: n.bucket, region: n.region, credentials: n.credentials };
}

/** Opens S3ShardStores over a list of nodes with a test file's `defaults` (and a call's `extra`); each is closed in teardown. */
export function storeOpener(t: TeardownHost, defaults: Omit<S3ShardStoreOptions, 'nodes'>) {
  return (list: S3NodeOptions[], extra: Omit<S3ShardStoreOptions, 'nodes'> = {}): S3ShardStore => {
    const s = new S3ShardStore({ nodes: list, ...defaults, ...extra });
    t.teardown(() => s.close());
    return s;
  };
}

/** Why S3 tests cannot run here, or undefined when they can. */
export function cephSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'S3 tests need root (they install and run Ceph daemons): SKIPPED';
  return undefined;
}

interface TeardownHost {
  teardown(fn: () => unknown): void;
}

/** Starts `count` nodes; teardown stops every daemon by pid and removes the dir. */
export async function startCeph(t: TeardownHost, count: number): Promise<{ nodes: CephNode[]; startupMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'ceph-s3-'));
  t.teardown(async () => {
    await run('bash', [HARNESS, 'stop', dir], { timeout: 60_000 });
  });
  try {
    await run('bash', [HARNESS, 'start', dir, String(count)], { timeout: 400_000, maxBuffer: 16 << 20 });
  } catch (err) {
    const e = err as { stderr?: string };
    throw new Error(`ceph harness failed to start: ${e.stderr?.slice(-2000) ?? String(err)}`);
  }
  const { nodes, startupMs } = JSON.parse(readFileSync(join(dir, 'nodes.json'), 'utf8')) as { nodes: CephNode[]; startupMs: number };
  return { nodes, startupMs };
}

export function rgwPid(node: CephNode): number {
  return Number(readFileSync(node.rgwPidFile, 'utf8').trim());
}

/** S3 requests by kind, as a proxy saw them go by. */
export interface RequestCounts {
  /** ListObjectsV2. */
  list: number;
  /** GetObject (plain or ranged). */
  get: number;
  /** PutObject, UploadPart. */
  put: number;
  delete: number;
  head: number;
  /** Create/CompleteMultipartUpload and other POSTs. */
  post: number;
}

export const noRequests = (): RequestCounts => ({ list: 0, get: 0, put: 0, delete: 0, head: 0, post: 0 });

/** Counts per kind summed over proxies. */
export function sumRequests(counts: RequestCounts[]): RequestCounts {
  const sum = noRequests();
  for (const c of counts) for (const k of Object.keys(sum) as Array<keyof RequestCounts>) sum[k] += c[k];
  return sum;
}

// A request line at the start of what the client sent or after a line end (a keep-alive client sends the next
// request only after the previous answer, so it starts a chunk; PUT bodies are random bytes, never a request line).
const REQUEST_LINE = /(?:^|\n)(GET|PUT|POST|DELETE|HEAD) (\S+) HTTP\/1\.1\r\n/g;

/**
 * A TCP proxy in front of `endpoint` that counts the bytes the server sent back and the requests the client sent
 * (by their request lines).
 */
export async function countingProxy(endpoint: string): Promise<{
  endpoint: string; received: () => number; requests: () => RequestCounts; close: () => Promise<void>;
}> {
  const target = new URL(endpoint);
  let received = 0;
  const requests = noRequests();
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    client.pipe(upstream);
    client.on('data', (chunk: Buffer) => {
      for (const [, method, path] of chunk.toString('latin1').matchAll(REQUEST_LINE)) {
        if (method === 'GET') requests[/[?&]list-type=2(&|$)/.test(path!) ? 'list' : 'get']++;
        else requests[method!.toLowerCase() as 'put' | 'post' | 'delete' | 'head']++;
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    upstream.pipe(client);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    endpoint: `http://127.0.0.1:${port}`,
    received: () => received,
    requests: () => ({ ...requests }),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Stops a node's radosgw (its endpoint then refuses connections; the cluster and its data stay). */
export async function rgwStop(node: CephNode): Promise<void> {
  await run('bash', [HARNESS, 'rgw-stop', node.dir], { timeout: 30_000 });
}

/** Starts a node's radosgw again (same port) and waits until it listens. */
export async function rgwStart(node: CephNode): Promise<void> {
  await run('bash', [HARNESS, 'rgw-start', node.dir], { timeout: 150_000 });
}
