// Small readers for JSON request bodies and query strings: each refusal says which field is wrong, in words.
import type { FastifyRequest } from 'fastify';
import { ConsoleRequestError } from './operator-errors.js';

export function bodyOf(request: FastifyRequest): Record<string, unknown> {
  const body = request.body;
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw new ConsoleRequestError(400, 'ERR_INVALID_ARGUMENT', 'The request body must be a JSON object.');
  return body as Record<string, unknown>;
}

export function stringField(body: Record<string, unknown>, name: string, maxLength: number): string {
  const value = body[name];
  if (typeof value !== 'string' || value.trim() === '') throw new ConsoleRequestError(400, 'ERR_INVALID_ARGUMENT', `${label(name)} is required.`);
  if (value.length > maxLength) throw new ConsoleRequestError(400, 'ERR_INVALID_ARGUMENT', `${label(name)} is too long (at most ${maxLength} characters).`);
  return value.trim();
}

export function integerField(body: Record<string, unknown>, name: string, min: number, max: number): number {
  const raw = body[name];
  const value = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new ConsoleRequestError(400, 'ERR_INVALID_ARGUMENT', `${label(name)} must be a whole number from ${min} to ${max}.`);
  }
  return value;
}

export function queryString(query: unknown, name: string, maxLength = 4096): string | undefined {
  const value = (query as Record<string, unknown> | undefined)?.[name];
  if (value === undefined || value === '') return undefined;
  if (typeof value !== 'string' || value.length > maxLength) throw new ConsoleRequestError(400, 'ERR_INVALID_ARGUMENT', `${label(name)} is not valid.`);
  return value;
}

const LABELS: Record<string, string> = {
  alias: 'Alias', importTokenId: 'Import token', encryptedKey: 'Encrypted key file', name: 'Name', keyId: 'Root key',
  dataShards: 'Data shards (k)', parityShards: 'Parity shards (m)', prefix: 'Prefix', startAfter: 'Start after', limit: 'Page size',
};

function label(name: string): string {
  return LABELS[name] ?? name;
}
