// The console's bucket routes: create/list/delete buckets (by root key too), browse a bucket's objects a page at a
// time, stream uploads and downloads, delete, and repair/rewrap with progress as NDJSON lines.
import { PassThrough, type Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { CryptoEngine } from '../engine.js';
import type { Bucket } from '../bucket/bucket.js';
import type { ShardStore } from '../object/blob-store.js';
import { ConsoleRequestError, toOperatorError } from './operator-errors.js';
import { bodyOf, integerField, queryString, stringField } from './request.js';

const PAGE_SIZE_MAX = 500;
const PAGE_SIZE_DEFAULT = 50;

type Params = { Params: { bucket: string } };

/** Resolves once the stream has its first byte (or ended), so a key or read error becomes a JSON answer, not a cut download. */
function firstByte(readable: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      readable.off('readable', done).off('end', done).off('error', fail);
      resolve();
    };
    const fail = (err: unknown) => {
      readable.off('readable', done).off('end', done);
      reject(err);
    };
    readable.once('readable', done).once('end', done).once('error', fail);
  });
}

function attachment(name: string): string {
  const base = name.split('/').pop() || 'object';
  const ascii = base.replace(/[^A-Za-z0-9._-]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(base)}`;
}

/** Starts an NDJSON reply: progress lines `{done,total}`, then `{result}` or `{error}` as the last line. */
function progressReply(log: Log, reply: FastifyReply, request: FastifyRequest, work: (progress: (done: number, total: number) => void, signal: AbortSignal) => Promise<unknown>) {
  const out = new PassThrough();
  const abort = new AbortController();
  request.raw.on('close', () => {
    if (!reply.raw.writableFinished) abort.abort();
  });
  let last = -1;
  const progress = (done: number, total: number) => {
    const percent = total > 0 ? Math.floor((done / total) * 100) : 100;
    if (percent === last) return; // one line per percent at most
    last = percent;
    out.write(JSON.stringify({ done, total }) + '\n');
  };
  work(progress, abort.signal).then(
    (result) => out.end(JSON.stringify({ result }) + '\n'),
    (err) => {
      const { code, message } = toOperatorError(err);
      logUnexpected(log, err);
      out.end(JSON.stringify({ error: { code, message } }) + '\n');
    },
  );
  return reply.type('application/x-ndjson; charset=utf-8').send(out);
}

export type Log = (line: string) => void;

/** Server-side log of what the operator saw as "unexpected": the error's code and message, never a body or header. */
export function logUnexpected(log: Log, err: unknown): void {
  if (toOperatorError(err).status >= 500) log(`console: request failed: ${(err as { code?: string })?.code ?? ''} ${(err as Error)?.message ?? String(err)}`);
}

export function bucketRoutes(app: FastifyInstance, engine: CryptoEngine, store: ShardStore | undefined, log: Log): void {
  const needStore = (): ShardStore => {
    if (!store) throw new ConsoleRequestError(409, 'ERR_NO_STORE', 'The console was started without --store: buckets need a shard store.');
    return store;
  };
  const open = (name: string): Promise<Bucket> => engine.buckets.open(name, { store: needStore() });

  app.get('/api/buckets', async (request) => {
    const keyRef = queryString(request.query, 'keyId', 256);
    const keyId = keyRef ? (await engine.keys.get(keyRef)).id : undefined;
    return { buckets: await engine.buckets.list({ store: needStore(), ...(keyId ? { keyId } : {}) }) };
  });

  app.post('/api/buckets', async (request) => {
    const body = bodyOf(request);
    const name = stringField(body, 'name', 63);
    const keyId = stringField(body, 'keyId', 256);
    const dataShards = integerField(body, 'dataShards', 1, 256);
    const parityShards = integerField(body, 'parityShards', 0, 255);
    const bucket = await engine.buckets.create(name, { store: needStore(), keyId, dataShards, parityShards });
    return { bucket: bucket.info };
  });

  app.get<Params>('/api/buckets/:bucket', async (request) => {
    return { bucket: (await open(request.params.bucket)).info };
  });

  app.delete<Params>('/api/buckets/:bucket', async (request) => {
    await engine.buckets.delete(request.params.bucket, { store: needStore() });
    return { deleted: request.params.bucket };
  });

  app.get<Params>('/api/buckets/:bucket/objects', async (request) => {
    const prefix = queryString(request.query, 'prefix');
    const startAfter = queryString(request.query, 'startAfter');
    const rawLimit = queryString(request.query, 'limit', 4);
    const limit = rawLimit ? integerField({ limit: rawLimit }, 'limit', 1, PAGE_SIZE_MAX) : PAGE_SIZE_DEFAULT;
    const bucket = await open(request.params.bucket);
    const objects = [];
    let more = false;
    for await (const object of bucket.listObjects({ ...(prefix ? { prefix } : {}), ...(startAfter ? { startAfter } : {}) })) {
      if (objects.length === limit) {
        more = true;
        break;
      }
      objects.push(object);
    }
    return { objects, next: more ? objects[objects.length - 1]!.name : null };
  });

  app.put<Params>('/api/buckets/:bucket/object', async (request) => {
    const name = stringField({ name: queryString(request.query, 'name') }, 'name', 4096);
    const bucket = await open(request.params.bucket);
    const abort = new AbortController();
    request.raw.on('close', () => {
      if (!request.raw.complete) abort.abort();
    });
    // The body is the request stream itself (see the octet-stream parser in server.ts): bounded memory at any size.
    const size = Number(request.headers['content-length']);
    const object = await bucket.putObject(name, request.body as Readable, { signal: abort.signal, ...(Number.isSafeInteger(size) ? { size } : {}) });
    return { object };
  });

  app.get<Params>('/api/buckets/:bucket/object', async (request, reply) => {
    const name = stringField({ name: queryString(request.query, 'name') }, 'name', 4096);
    const bucket = await open(request.params.bucket);
    if (queryString(request.query, 'probe')) {
      // Reading up to the first authenticated segment proves the key is usable and enough shards read, before the
      // browser starts a download it could only show as "failed".
      const readable = bucket.getObject(name);
      try {
        await firstByte(readable);
      } finally {
        readable.destroy();
      }
      return { object: await bucket.headObject(name) };
    }
    const head = await bucket.headObject(name);
    const abort = new AbortController();
    request.raw.on('close', () => abort.abort());
    const readable = bucket.getObject(name, { signal: abort.signal });
    await firstByte(readable);
    return reply
      .header('content-type', 'application/octet-stream')
      .header('content-length', String(head.size))
      .header('content-disposition', attachment(name))
      .send(readable);
  });

  app.delete<Params>('/api/buckets/:bucket/object', async (request) => {
    const name = stringField({ name: queryString(request.query, 'name') }, 'name', 4096);
    await (await open(request.params.bucket)).deleteObject(name);
    return { deleted: name };
  });

  app.post<Params>('/api/buckets/:bucket/repair', async (request, reply) => {
    const only = queryString(request.query, 'name');
    const bucket = await open(request.params.bucket);
    return progressReply(log, reply, request, async (progress, signal) => {
      const names: string[] = [];
      if (only) names.push(only);
      else for await (const object of bucket.listObjects({})) names.push(object.name);
      const reports = [];
      progress(0, names.length);
      for (const [i, name] of names.entries()) {
        if (signal.aborted) throw signal.reason;
        reports.push({ name, report: await bucket.repairObject(name, { signal }) });
        progress(i + 1, names.length);
      }
      return { objects: names.length, reports };
    });
  });

  app.post<Params>('/api/buckets/:bucket/rewrap', async (request, reply) => {
    const bucket = await open(request.params.bucket);
    return progressReply(log, reply, request, (onProgress, signal) => bucket.rewrap({ signal, onProgress }));
  });
}
