// A bucket's binding record (manifest): its name, root key, geometry and creation, fixed at creation. Stored as
// `br/<bucket>/m/<gen>` on every node, authenticated by an HMAC computed inside the HSM (hsm/record-mac.ts), so a
// changed byte is detected whatever the root key's state (listing still works on a disabled or destroyed key).
// Should two creators race, each writes its own generation: the OLDEST generation that verifies is the bucket
// (first creation wins; the loser sees it and backs out), so the binding never changes once anyone has used it.
import { BucketNotFoundError, BucketRecordError } from '../errors.js';
import type { RecordMac, RecordMacValue } from '../hsm/record-mac.js';
import type { ShardStore } from '../object/blob-store.js';
import { manifestKey, parseRecordKey, recordsPrefix } from './layout.js';
import { listUnion, readVerified } from './replicated.js';

const MAC_DOMAIN = 'hce/bucket-manifest/v1';
const MAX_MANIFEST_BYTES = 4096;

export interface Manifest {
  name: string;
  keyId: string;
  keyAlias: string;
  createdAt: number;
  dataShards: number;
  parityShards: number;
  /** The creation's generation: binds bucket keys and registrations to this creation of the name. */
  gen: string;
}

const macInput = (m: Manifest) =>
  Buffer.from(JSON.stringify([MAC_DOMAIN, m.name, m.keyId, m.keyAlias, m.createdAt, m.dataShards, m.parityShards, m.gen]));

export async function encodeManifest(mac: RecordMac, m: Manifest): Promise<Buffer> {
  return Buffer.from(JSON.stringify({ v: 1, ...m, mac: await mac.sign(macInput(m)) }));
}

/** The manifest in `bytes` when it is well-formed, names `bucket`/`gen` and its MAC verifies; else undefined. */
export async function decodeManifest(mac: RecordMac, bytes: Buffer, bucket: string, gen: string): Promise<Manifest | undefined> {
  let raw: Partial<Manifest> & { v?: unknown; mac?: RecordMacValue };
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
  const { v, name, keyId, keyAlias, createdAt, dataShards, parityShards } = raw;
  if (v !== 1 || name !== bucket || raw.gen !== gen || typeof keyId !== 'string' || typeof keyAlias !== 'string') return undefined;
  if (!Number.isSafeInteger(createdAt) || !Number.isSafeInteger(dataShards) || !Number.isSafeInteger(parityShards) || !raw.mac) return undefined;
  const m: Manifest = { name, keyId, keyAlias, createdAt: createdAt!, dataShards: dataShards!, parityShards: parityShards!, gen };
  return (await mac.verify(macInput(m), raw.mac)) ? m : undefined;
}

/** Manifest generations of `bucket` found in the store (listing every node), oldest first. */
export async function manifestGenerations(store: ShardStore, bucket: string): Promise<string[]> {
  const keys = await listUnion(store, `${recordsPrefix(bucket)}m/`);
  return keys.flatMap((key) => {
    const parsed = parseRecordKey(bucket, key);
    return parsed?.kind === 'manifest' ? [parsed.gen] : [];
  });
}

/**
 * The bucket's manifest: the oldest generation that has copies, when one of them verifies. BucketNotFoundError when there is none;
 * BucketRecordError when copies exist but none verifies (a changed byte on every node).
 */
export async function readManifest(mac: RecordMac, store: ShardStore, bucket: string, gens?: string[]): Promise<Manifest> {
  for (const gen of gens ?? (await manifestGenerations(store, bucket))) {
    const { value, copies } = await readVerified(store, manifestKey(bucket, gen), MAX_MANIFEST_BYTES, (b) => decodeManifest(mac, b, bucket, gen));
    if (value) return value;
    // Never fall through to a newer generation: that would be a silently different binding.
    if (copies > 0) throw new BucketRecordError(`bucket "${bucket}": its binding record fails its integrity check on every node`);
  }
  throw new BucketNotFoundError(`bucket "${bucket}" not found`);
}
