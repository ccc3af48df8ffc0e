// Where a bucket's state lives in the store, as blob keys (the store sees opaque keys; this module owns them):
//   br/<bucket>/m/<gen>            the bucket's binding record (manifest), on every node
//   br/<bucket>/k/<bkid>/<rgen>    one bucket key wrapped by the root key (a rewrap adds a newer rgen), on every node
//   bi/<bucket>/<enc(name)>-<info> the object's listing entry, on nodes 0..m (flat: listing walks no shard folders)
//   bo/<bucket>/<enc(name)>/…      the object's shards (the object layer's namespace for this bucket)
// Listing buckets walks br/ only; listing objects walks bi/<bucket>/ only.
//
// enc(name) is the name's UTF-8 in an ORDER-PRESERVING base64 (alphabet 0-9 = A-Z _ a-z, ascending in ASCII, no
// padding), so keys sort as names do; every character after the encoding ('-', '/') sorts below the alphabet, so a
// name sorts before its extensions. Names over HASHED_AFTER_BYTES bytes are enc(first bytes) '~' sha256-hex(name):
// they sort by that prefix, then by hash (documented), and their full name is kept in the listing entry's body.
import { createHash } from 'node:crypto';
import { randomHex } from '../random.js';
import { MAX_KEY_SEGMENT_BYTES } from '../object/blob-store.js';
import { decodeOrdered, encodeOrdered } from '../object/layout.js';

export { decodeOrdered, encodeOrdered };

export const HASHED_AFTER_BYTES = 480;
/** Listing entries end with ~80 chars of info in the key's last segment, so their name segments are shorter. */
const INDEX_SEGMENT_CHARS = MAX_KEY_SEGMENT_BYTES - 80;

export function nameKey(name: string): string {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length <= HASHED_AFTER_BYTES) return encodeOrdered(bytes);
  return `${encodeOrdered(bytes.subarray(0, HASHED_AFTER_BYTES))}~${createHash('sha256').update(bytes).digest('hex')}`;
}

export const isHashedNameKey = (key: string) => key.includes('~');

/** The name a direct name key stands for (hashed ones: undefined; their entry's body holds the name). */
export function nameOfKey(key: string): string | undefined {
  if (isHashedNameKey(key)) return undefined;
  const bytes = decodeOrdered(key);
  return bytes ? bytes.toString('utf8') : undefined;
}

function segments(text: string, size: number): string {
  const parts: string[] = [];
  for (let i = 0; i < text.length; i += size) parts.push(text.slice(i, i + size));
  return parts.join('/');
}

/** Sortable generation ids: 12 hex digits of ms since the epoch, then 8 random hex (ties broken at random). */
export function newGeneration(now = Date.now()): string {
  return now.toString(16).padStart(12, '0') + randomHex(4);
}
export const GENERATION_PATTERN = /^[0-9a-f]{20}$/;
export const generationTime = (gen: string) => parseInt(gen.slice(0, 12), 16);

// ---- bucket records --------------------------------------------------------------------------------------------

export const RECORDS_ROOT = 'br/';
export const recordsPrefix = (bucket: string) => `${RECORDS_ROOT}${bucket}/`;
export const manifestKey = (bucket: string, gen: string) => `${RECORDS_ROOT}${bucket}/m/${gen}`;
export const bucketKeyRecordKey = (bucket: string, bkid: string, rgen: string) => `${RECORDS_ROOT}${bucket}/k/${bkid}/${rgen}`;

export type RecordKey = { kind: 'manifest'; gen: string } | { kind: 'bucket-key'; bkid: string; rgen: string };

/** What a key under recordsPrefix(bucket) is, or undefined for anything else. */
export function parseRecordKey(bucket: string, key: string): RecordKey | undefined {
  const rest = key.slice(recordsPrefix(bucket).length).split('/');
  if (rest[0] === 'm' && rest.length === 2 && GENERATION_PATTERN.test(rest[1]!)) return { kind: 'manifest', gen: rest[1]! };
  if (rest[0] === 'k' && rest.length === 3 && GENERATION_PATTERN.test(rest[1]!) && GENERATION_PATTERN.test(rest[2]!)) {
    return { kind: 'bucket-key', bkid: rest[1]!, rgen: rest[2]! };
  }
  return undefined;
}

// ---- objects ---------------------------------------------------------------------------------------------------

/** The object layer's namespace for a bucket's objects (object/layout.ts puts <enc(name)>/-<gen>/<j> under it). */
export const objectsNamespace = (bucket: string) => `bo/${bucket}`;
export const objectsPrefix = (bucket: string) => `${objectsNamespace(bucket)}/`;
export const indexPrefix = (bucket: string) => `bi/${bucket}/`;
/** The start of every listing-entry key of `name` (the entry's info follows the '-'). */
export const indexBase = (bucket: string, name: string) => indexPrefix(bucket) + segments(nameKey(name), INDEX_SEGMENT_CHARS) + '-';
/** A listing entry key: base ‖ info. */
export const indexKey = (bucket: string, name: string, info: string) => indexBase(bucket, name) + info;

/** Splits a listing-entry key into its name key (segments joined) and info; undefined when it is not one. */
export function parseIndexKey(bucket: string, key: string): { nameKey: string; info: string } | undefined {
  const rest = key.slice(indexPrefix(bucket).length).replace(/\//g, '');
  const dash = rest.indexOf('-');
  if (dash <= 0) return undefined;
  return { nameKey: rest.slice(0, dash), info: rest.slice(dash + 1) };
}

/** The listing key to start after so that every entry of names ≤ `name` is skipped. */
export const indexStartAfter = (bucket: string, name: string) => indexBase(bucket, name) + '~';
