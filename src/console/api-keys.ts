// The console's root-key routes: list (with the buckets each protects), create, rotate, disable/enable, destroy
// (refused while the key protects buckets unless forced and confirmed by the alias) and BYOK import.
import type { FastifyInstance } from 'fastify';
import type { CryptoEngine } from '../engine.js';
import type { RootKeyInfo } from '../hsm/key-service.js';
import { ConsoleRequestError } from './operator-errors.js';
import { bodyOf, stringField } from './request.js';

/** The buckets a key protects, by name (the order an operator scans a list in). */
async function registrationsOf(engine: CryptoEngine, idOrAlias: string) {
  return (await engine.keys.registrations(idOrAlias)).sort((a, b) => (a.bucket < b.bucket ? -1 : a.bucket > b.bucket ? 1 : 0));
}

async function withBuckets(engine: CryptoEngine, key: RootKeyInfo) {
  const registrations = await registrationsOf(engine, key.id);
  return { ...key, buckets: registrations.map((r) => r.bucket) };
}

/** Base64 (the form a browser's FileReader gives) of at most a few KiB: an RSA-4096 OAEP ciphertext is 512 bytes. */
function encryptedKeyField(body: Record<string, unknown>): Buffer {
  const text = stringField(body, 'encryptedKey', 16 * 1024).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(text)) throw new ConsoleRequestError(400, 'ERR_INVALID_ARGUMENT', 'The encrypted key file must be the RSA-OAEP ciphertext, raw or base64.');
  return Buffer.from(text, 'base64');
}

export function keyRoutes(app: FastifyInstance, engine: CryptoEngine): void {
  app.get('/api/keys', async () => {
    const keys = await engine.keys.list();
    return { keys: await Promise.all(keys.map((key) => withBuckets(engine, key))) };
  });

  app.post('/api/keys', async (request) => {
    const alias = stringField(bodyOf(request), 'alias', 256);
    return { key: await withBuckets(engine, await engine.keys.create({ alias })) };
  });

  const lifecycle = { rotate: 'rotate', disable: 'disable', enable: 'enable' } as const;
  for (const action of Object.keys(lifecycle) as (keyof typeof lifecycle)[]) {
    app.post<{ Params: { id: string } }>(`/api/keys/:id/${action}`, async (request) => {
      return { key: await withBuckets(engine, await engine.keys[action](request.params.id)) };
    });
  }

  app.get<{ Params: { id: string } }>('/api/keys/:id/registrations', async (request) => {
    const key = await engine.keys.get(request.params.id);
    return { key, registrations: await registrationsOf(engine, key.id) };
  });

  app.post<{ Params: { id: string } }>('/api/keys/:id/destroy', async (request) => {
    const body = bodyOf(request);
    const force = body.force === true;
    const key = await engine.keys.get(request.params.id);
    const registrations = await registrationsOf(engine, key.id);
    if (registrations.length > 0 && !force) {
      const names = registrations.map((r) => r.bucket).join(', ');
      throw new ConsoleRequestError(409, 'ERR_KEY_PROTECTS_BUCKETS', `Refused: "${key.alias}" protects ${registrations.length} bucket(s) (${names}). Destroying it makes every object in them unreadable for good; to do so anyway, confirm a forced destroy by typing the alias.`);
    }
    if (force && body.confirmAlias !== key.alias) {
      throw new ConsoleRequestError(400, 'ERR_CONFIRMATION', `A forced destroy needs the alias typed exactly ("${key.alias}").`);
    }
    await engine.keys.destroy(key.id, { force });
    return { destroyed: { id: key.id, alias: key.alias }, buckets: registrations.map((r) => r.bucket) };
  });

  app.post('/api/import-tokens', async () => {
    const token = await engine.keys.createImportToken({});
    return { importToken: token };
  });

  app.post('/api/keys/import', async (request) => {
    const body = bodyOf(request);
    const alias = stringField(body, 'alias', 256);
    const importTokenId = stringField(body, 'importTokenId', 256);
    return { key: await withBuckets(engine, await engine.keys.import({ alias, importTokenId, encryptedKey: encryptedKeyField(body) })) };
  });
}
