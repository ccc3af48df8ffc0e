// Where the CLI's shards live: `--store DIR...` (one folder per node), `--store s3://HOST[:PORT]/BUCKET...` (one S3
// bucket per node; `s3+http://` for plain http), or `--store-config FILE.json` (S3ShardStore options: nodes with
// endpoint, bucket, region and credentials). S3 credentials missing from the file come from AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN), the region from AWS_REGION. No message here repeats a credential,
// a URL's user info or the file's content: only option names, node indexes and the file's path.
import { readFileSync } from 'node:fs';
import type { ShardStore } from '../object/blob-store.js';
import { FsShardStore } from '../object/fs-shard-store.js';
import { S3ShardStore, type S3Credentials, type S3NodeOptions, type S3ShardStoreOptions } from '../object/s3-shard-store.js';
import { UsageError } from './command.js';

export const STORE_OPTIONS = {
  store: { type: 'string', multiple: true },
  'store-config': { type: 'string' },
} as const;

export const STORE_USAGE = '--store DIR...|s3://HOST/BUCKET...|--store-config FILE.json';

const DEFAULT_REGION = 'us-east-1';
/** Settings a store config file may carry besides `nodes` (anything else there is ignored, e.g. a harness's notes). */
const TUNING = ['requestTimeoutMs', 'maxAttempts', 'partBytes', 'maxSockets'] as const;

type Env = Record<string, string | undefined>;

/** The store the options name; UsageError when they name none, or two kinds at once. Close it with closeStore. */
export function storeOf(values: Record<string, any>, env: Env = process.env): ShardStore {
  const entries: string[] = (values.store ?? []).flatMap((d: string) => d.split(',')).filter((d: string) => d !== '');
  const config: string | undefined = values['store-config'];
  if (config !== undefined && entries.length > 0) throw new UsageError('give either --store or --store-config, not both');
  if (config !== undefined) return s3Store(fromConfigFile(config, env), `--store-config ${config}`);
  if (entries.length === 0) throw new UsageError(`a store is required: ${STORE_USAGE} (one folder or bucket per node)`);
  const s3 = entries.filter(isS3Url);
  if (s3.length === 0) return new FsShardStore(entries);
  if (s3.length !== entries.length) throw new UsageError('--store: all folders or all s3:// URLs, not a mix');
  const credentials = envCredentials(env, '--store s3://…');
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION || DEFAULT_REGION;
  return s3Store({ nodes: s3.map((url, i) => ({ ...parseS3Url(url, i), region, credentials })) }, '--store');
}

/** Closes an S3 store's connections (a folder store holds none). */
export async function closeStore(store: ShardStore): Promise<void> {
  if (store instanceof S3ShardStore) await store.close();
}

function isS3Url(entry: string): boolean {
  return /^s3(\+https?)?:\/\//i.test(entry);
}

/** `s3://host[:port]/bucket` → https, `s3+http://…` → http; no user info, query, or path beyond the bucket. */
export function parseS3Url(entry: string, index: number): { endpoint: string; bucket: string } {
  const name = `--store entry ${index + 1}`;
  const scheme = /^s3(\+https?)?:\/\//i.exec(entry)![1]?.toLowerCase();
  let url: URL;
  try {
    url = new URL(`http://${entry.slice(entry.indexOf('://') + 3)}`);
  } catch {
    throw new UsageError(`${name} is not an s3://HOST[:PORT]/BUCKET URL`);
  }
  // Said before anything else, and without the entry: user info may be a secret.
  if (url.username !== '' || url.password !== '') {
    throw new UsageError(`${name} must not carry credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use --store-config)`);
  }
  const bucket = url.pathname.replace(/^\/|\/$/g, '');
  if (bucket === '' || bucket.includes('/') || url.search !== '' || url.hash !== '') {
    throw new UsageError(`${name} must be s3://HOST[:PORT]/BUCKET (one bucket, no path, query or fragment), got "${entry}"`);
  }
  const protocol = scheme === '+http' ? 'http:' : 'https:';
  return { endpoint: `${protocol}//${url.host}`, bucket };
}

function envCredentials(env: Env, what: string): S3Credentials {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) throw new UsageError(`${what} needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment`);
  return env.AWS_SESSION_TOKEN ? { accessKeyId, secretAccessKey, sessionToken: env.AWS_SESSION_TOKEN } : { accessKeyId, secretAccessKey };
}

/** Reads the file's S3ShardStore options: nodes (their known fields only), tuning, env fallbacks. */
function fromConfigFile(file: string, env: Env): S3ShardStoreOptions {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--store-config ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text around the fault, which may be a secret.
    throw new UsageError(`--store-config ${file}: not valid JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as { nodes?: unknown }).nodes)) {
    throw new UsageError(`--store-config ${file}: must be a JSON object with "nodes": [{ "endpoint", "bucket", "region"?, "credentials"? }, …]`);
  }
  const p = parsed as Record<string, unknown> & { nodes: unknown[] };
  const options: S3ShardStoreOptions = {
    nodes: p.nodes.map((n, i) => {
      if (typeof n !== 'object' || n === null) throw new UsageError(`--store-config ${file}: nodes[${i}] must be an object`);
      const { endpoint, bucket, region, credentials, forcePathStyle } = n as Partial<S3NodeOptions>;
      const node: S3NodeOptions = {
        endpoint: endpoint as string,
        bucket: bucket as string,
        region: region ?? (env.AWS_REGION || env.AWS_DEFAULT_REGION || DEFAULT_REGION),
        credentials: credentials ?? envCredentials(env, `--store-config ${file}: nodes[${i}] has no "credentials", so it`),
      };
      if (forcePathStyle !== undefined) node.forcePathStyle = forcePathStyle;
      return node;
    }),
  };
  for (const name of TUNING) if (p[name] !== undefined) (options as unknown as Record<string, unknown>)[name] = p[name];
  return options;
}

/** The store, with S3ShardStore's checks (which name the option, never its value) as usage errors. */
function s3Store(options: S3ShardStoreOptions, source: string): S3ShardStore {
  try {
    return new S3ShardStore(options);
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(`${source}: ${err.message}`);
    throw err;
  }
}
