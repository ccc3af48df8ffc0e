// The operator console's HTTP server (fastify): serves the static front end, signs a browser in with the start token,
// guards every API route by session cookie + CSRF token + Host/Origin checks, and mounts the key and bucket routes.
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { CryptoEngine } from '../engine.js';
import type { ShardStore } from '../object/blob-store.js';
import { nonEmptyStringArg, optionsArg } from '../validate.js';
import { bucketRoutes, logUnexpected, type Log } from './api-buckets.js';
import { keyRoutes } from './api-keys.js';
import { toOperatorError } from './operator-errors.js';
import {
  clearedSessionCookie, isLoopback, MIN_TOKEN_CHARS, newAccessToken, sameSecret, SECURITY_HEADERS, sessionCookie, Sessions,
  SignInLimiter, type SignInLimitOptions,
} from './security.js';

export const STATIC_DIR = fileURLToPath(new URL('../../src/console/static/', import.meta.url));
const JSON_BODY_LIMIT_BYTES = 64 * 1024;
const SAFE_METHODS = new Set(['GET', 'HEAD']);

export interface ConsoleOptions {
  engine: CryptoEngine;
  /** Where buckets live; without one the console manages keys only. */
  store?: ShardStore;
  /** Default 127.0.0.1. Any other address needs `tls`. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** The access token; default a fresh random one. At least 16 characters. */
  token?: string;
  tls?: { cert: string | Buffer; key: string | Buffer };
  signInLimit?: SignInLimitOptions;
  /** Where unexpected errors are logged (code and message only). Default: standard error. */
  log?: Log;
}

export interface RunningConsole {
  /** The sign-in URL: origin + `/#token=…` (the fragment never reaches a server or a log). */
  url: string;
  origin: string;
  token: string;
  close(): Promise<void>;
}

export async function startConsole(options: ConsoleOptions): Promise<RunningConsole> {
  const given = optionsArg(options);
  if (!given.engine) throw new TypeError('options.engine is required');
  const host = given.host ?? '127.0.0.1';
  nonEmptyStringArg(host, 'options.host');
  if (!isLoopback(host) && !given.tls) {
    throw new RangeError(`options.host: refusing to listen on ${host} without TLS; give a certificate and key (--tls-cert, --tls-key)`);
  }
  const token = given.token ?? newAccessToken();
  if (typeof token !== 'string' || token.length < MIN_TOKEN_CHARS) throw new RangeError(`options.token must be at least ${MIN_TOKEN_CHARS} characters`);
  const log = given.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const secure = Boolean(given.tls);
  const loopback = isLoopback(host);

  const app: FastifyInstance = Fastify({
    logger: false,
    bodyLimit: JSON_BODY_LIMIT_BYTES,
    ...(given.tls ? { https: { cert: given.tls.cert, key: given.tls.key } } : {}),
  } as Record<string, unknown>) as unknown as FastifyInstance;

  const sessions = new Sessions();
  const limiter = new SignInLimiter(given.signInLimit ?? { maxFailures: 5, windowMs: 60_000 });
  let allowedHosts = new Set<string>();
  let origins = new Set<string>();

  // Uploads: the request stream itself is the body, so no size limit applies and nothing is buffered.
  app.addContentTypeParser('application/octet-stream', (_request: FastifyRequest, payload: unknown, done: (err: Error | null, body?: unknown) => void) => done(null, payload));

  app.addHook('onSend', async (request, reply, payload) => {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) reply.header(name, value);
    if (request.url.startsWith('/api/')) reply.header('cache-control', 'no-store');
    return payload;
  });

  app.addHook('onRequest', async (request, reply) => {
    // DNS rebinding: on loopback, a page on another name that resolves here must not reach the console. (Behind TLS on
    // another address the certificate names the host, and the operator may reach it by any name it has.)
    const hostHeader = String(request.headers.host ?? '').toLowerCase();
    if (loopback && !allowedHosts.has(hostHeader)) return refuse(reply, 421, 'ERR_HOST', 'Unknown host name.');
    if (!request.url.startsWith('/api/')) return;
    const origin = request.headers.origin;
    const sameOrigin = origin === undefined || origins.has(origin) || (!loopback && origin === `https://${hostHeader}`);
    if (!sameOrigin) return refuse(reply, 403, 'ERR_ORIGIN', 'Requests from other sites are refused.');
    if (request.url === '/api/session' && request.method === 'POST') return;
    const session = sessions.find(request.headers.cookie);
    if (!session) return refuse(reply, 401, 'ERR_SIGNED_OUT', 'Not signed in: open the console URL printed at start.');
    if (!SAFE_METHODS.has(request.method)) {
      const csrf = request.headers['x-csrf-token'];
      if (typeof csrf !== 'string' || !sameSecret(csrf, session.csrf)) return refuse(reply, 403, 'ERR_CSRF', 'The request lacks a valid CSRF token: reload the page.');
    }
    (request as FastifyRequest & { sessionId?: string }).sessionId = session.id;
  });

  app.setErrorHandler((err, _request, reply) => {
    logUnexpected(log, err);
    const { status, code, message } = toOperatorError(err);
    reply.status(status).type('application/json; charset=utf-8').send({ error: { code, message } });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send(request.url.startsWith('/api/') ? { error: { code: 'ERR_NOT_FOUND', message: 'No such page.' } } : 'Not found');
  });

  app.post('/api/session', async (request, reply) => {
    const client = request.ip;
    const waitMs = limiter.retryAfterMs(client);
    if (waitMs > 0) {
      reply.header('retry-after', String(Math.ceil(waitMs / 1000)));
      return refuse(reply, 429, 'ERR_RATE_LIMITED', 'Too many failed sign-ins: wait a minute, then try again.');
    }
    const given = (request.body as { token?: unknown } | undefined)?.token;
    if (typeof given !== 'string' || !sameSecret(given, token)) {
      limiter.fail(client);
      return refuse(reply, 401, 'ERR_BAD_TOKEN', 'That access token is not right.');
    }
    const session = sessions.create();
    reply.header('set-cookie', sessionCookie(session.id, secure));
    return { csrf: session.csrf };
  });
  app.get('/api/session', async (request) => ({ csrf: sessions.find(request.headers.cookie)!.csrf }));
  app.delete('/api/session', async (request, reply) => {
    sessions.end((request as FastifyRequest & { sessionId?: string }).sessionId!);
    reply.header('set-cookie', clearedSessionCookie(secure));
    return { signedOut: true };
  });

  keyRoutes(app, given.engine);
  bucketRoutes(app, given.engine, given.store, log);
  await app.register(fastifyStatic, { root: STATIC_DIR, index: 'index.html', wildcard: false, serveDotFiles: false });

  await app.listen({ host, port: given.port ?? 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : given.port ?? 0;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  const origin = `${secure ? 'https' : 'http'}://${shownHost}:${port}`;
  const names = loopback ? [shownHost, 'localhost', '127.0.0.1', '[::1]'] : [shownHost];
  allowedHosts = new Set(names.map((name) => `${name}:${port}`.toLowerCase()));
  origins = new Set(names.map((name) => `${secure ? 'https' : 'http'}://${name}:${port}`));
  return {
    url: `${origin}/#token=${token}`,
    origin,
    token,
    close: () => app.close(),
  };
}

function refuse(reply: FastifyReply, status: number, code: string, message: string): FastifyReply {
  return reply.status(status).type('application/json; charset=utf-8').send({ error: { code, message } });
}
