// Where an object's blobs live in a blob store (blob-store.ts): one home for the key layout, so that listing in
// key order is listing in name order. README "Objects v2: generations".
//
//   <ns>/<enc(name)>/-<gen>/<j>        shard j of generation gen (on node j % nodes)
//   <ns>/<enc(name)>/-<gen>/w<rgen>    a rewrap record of that generation (on every node)
//
// enc(name) is the name's UTF-8 in an order-preserving base64 (alphabet 0-9 = A-Z _ a-z, ascending, no padding),
// cut into 200-character segments joined by '/'. Every alphabet character sorts above '/' and '-', so a name that
// is a prefix of another sorts first, as in byte order. Names longer than 450 bytes are stored as
// enc(first 450 bytes) '~' sha256-hex(name): they sort by their first 450 bytes, then by hash.
// gen (and rgen) is 12 hex digits of milliseconds since the epoch and 8 random hex digits: sortable.
import { createHash } from 'node:crypto';
import { randomHex } from '../random.js';
import { MAX_KEY_SEGMENT_BYTES } from './blob-store.js';

const ALPHABET = '0123456789=ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';
const DECODE = new Map([...ALPHABET].map((c, i) => [c, i]));
/** Names up to this many UTF-8 bytes are stored whole (600 characters); longer ones are cut and hashed. */
export const PLAIN_NAME_BYTES = 450;
export const GEN_CHARS = 20;
const GEN_PATTERN = /^[0-9a-f]{20}$/;
const SHARD_PATTERN = /^(0|[1-9][0-9]{0,2})$/;
/** Namespaces: '/'-separated segments of [A-Za-z0-9._-] (engine objects: "o", bucket objects "b/<bucket>/o"). */
const NAMESPACE_PATTERN = /^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;
export const MAX_NAMESPACE_BYTES = 100;

export function isValidNamespace(ns: unknown): ns is string {
  return typeof ns === 'string' && ns.length <= MAX_NAMESPACE_BYTES && NAMESPACE_PATTERN.test(ns) && ns.split('/').every((s) => s !== '.' && s !== '..');
}

/** Order-preserving base64 (ascending alphabet, no padding): byte order of inputs = string order of outputs. */
export function encodeOrdered(bytes: Uint8Array): string {
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += ALPHABET[(acc >> bits) & 63];
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += ALPHABET[(acc << (6 - bits)) & 63];
  return out;
}

/** The bytes of an encoding, or undefined when it is not one. */
export function decodeOrdered(text: string): Buffer | undefined {
  if (text.length % 4 === 1) return undefined;
  const out: number[] = [];
  let bits = 0;
  let acc = 0;
  for (const c of text) {
    const v = DECODE.get(c);
    if (v === undefined) return undefined;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >> bits) & 0xff);
    }
    acc &= (1 << bits) - 1;
  }
  return acc === 0 ? Buffer.from(out) : undefined; // the pad bits must be zero (one encoding per name)
}

function segments(text: string): string {
  const parts: string[] = [];
  for (let at = 0; at < text.length; at += MAX_KEY_SEGMENT_BYTES) parts.push(text.slice(at, at + MAX_KEY_SEGMENT_BYTES));
  return parts.join('/');
}

/** The key part of a name (see the module comment). */
export function encodeName(name: string): string {
  const utf8 = Buffer.from(name, 'utf8');
  if (utf8.length <= PLAIN_NAME_BYTES) return segments(encodeOrdered(utf8));
  return segments(`${encodeOrdered(utf8.subarray(0, PLAIN_NAME_BYTES))}~${createHash('sha256').update(utf8).digest('hex')}`);
}

/** The name of a key part: a string, or `{ hashed }` when only a head (shard header) can tell the full name. */
export function decodeName(encoded: string): string | { prefix: Buffer; hash: string } | undefined {
  const text = encoded.split('/').join('');
  const tilde = text.indexOf('~');
  if (tilde < 0) {
    const bytes = decodeOrdered(text);
    if (!bytes || bytes.length === 0 || bytes.length > PLAIN_NAME_BYTES) return undefined;
    const name = bytes.toString('utf8');
    return Buffer.from(name, 'utf8').equals(bytes) ? name : undefined;
  }
  const prefix = decodeOrdered(text.slice(0, tilde));
  const hash = text.slice(tilde + 1);
  if (!prefix || prefix.length !== PLAIN_NAME_BYTES || !/^[0-9a-f]{64}$/.test(hash)) return undefined;
  return { prefix, hash };
}

/** True when `name` is the full name behind a hashed key part. */
export function matchesHashed(name: string, hashed: { prefix: Buffer; hash: string }): boolean {
  const utf8 = Buffer.from(name, 'utf8');
  return utf8.length > PLAIN_NAME_BYTES && createHash('sha256').update(utf8).digest('hex') === hashed.hash;
}

/** `<ns>/<enc>/`: every key of the object starts with this followed by '-'. */
export function objectPrefix(ns: string, name: string): string {
  return `${ns}/${encodeName(name)}/-`;
}

export function shardKey(prefix: string, gen: string, j: number): string {
  return `${prefix}${gen}/${j}`;
}

export function recordKey(prefix: string, gen: string, rgen: string): string {
  return `${prefix}${gen}/w${rgen}`;
}

/** What a key under an object's prefix names: a shard, a rewrap record, or nothing of ours (ignored). */
export type ObjectKey = { gen: string; shard: number } | { gen: string; record: string };

export function parseObjectKey(prefix: string, key: string): ObjectKey | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const rest = key.slice(prefix.length);
  const gen = rest.slice(0, GEN_CHARS);
  if (!GEN_PATTERN.test(gen) || rest[GEN_CHARS] !== '/') return undefined;
  const leaf = rest.slice(GEN_CHARS + 1);
  if (SHARD_PATTERN.test(leaf) && Number(leaf) < 256) return { gen, shard: Number(leaf) };
  if (leaf[0] === 'w' && GEN_PATTERN.test(leaf.slice(1))) return { gen, record: leaf.slice(1) };
  return undefined;
}

/**
 * A new generation id, above every one in `after` (a clock that went back must not make a re-put older than
 * what it replaces).
 */
export function newGeneration(after: Iterable<string> = []): string {
  let ms = Date.now();
  for (const gen of after) ms = Math.max(ms, parseInt(gen.slice(0, 12), 16) + 1);
  return ms.toString(16).padStart(12, '0') + randomHex(4);
}

export function isGeneration(gen: string): boolean {
  return GEN_PATTERN.test(gen);
}
