// ObjectService: objects encrypted in the sealed-object format, erasure coded into k+m self-describing shards
// (format.ts) stored as immutable generations in a blob store (layout.ts). A thin façade: it owns the stripe
// buffers and the memory budget and hands them, with the key provider and the pool, to put.ts, get.ts,
// repair.ts, rewrap.ts, delete.ts and listing.ts, where the work is.
import type { Readable } from 'node:stream';
import type { WorkerPool } from '../pool/pool.js';
import { SlabPool } from '../pool/slab-pool.js';
import { envInteger } from '../validate.js';
import { MemoryBudget } from './budget.js';
import { deleteObject } from './delete.js';
import type { ObjectDeps, ObjectKeyProvider } from './deps.js';
import { getObject, getObjectChunks } from './get.js';
import { listNames } from './listing.js';
import {
  resolveListObjectsOptions, type DeleteObjectOptions, type DeleteReport, type GetObjectOptions, type ListObjectsOptions, type ObjectInfo,
  type ObjectSource, type PutObjectOptions, type RepairObjectOptions, type RepairReport, type RewrapObjectOptions, type RewrapReport,
} from './options.js';
import { putObject } from './put.js';
import { repairObject } from './repair.js';
import { rewrapObject } from './rewrap.js';

export interface ObjectServiceDeps {
  keys: ObjectKeyProvider;
  pool(): WorkerPool;
  threads: number;
  segmentBytes?: number | undefined;
  /** Stripe buffer bytes in use across all calls at once (plus one stripe per call); default 128 MiB, or HCE_OBJECT_MEMORY_BYTES. */
  memoryBytes?: number | undefined;
}

export const DEFAULT_OBJECT_MEMORY_BYTES = 128 * 1024 * 1024;

export class ObjectService {
  readonly #deps: ObjectDeps;

  constructor(deps: ObjectServiceDeps) {
    const window = 2 * deps.threads;
    const memoryBytes = deps.memoryBytes ?? envInteger(process.env, 'HCE_OBJECT_MEMORY_BYTES', DEFAULT_OBJECT_MEMORY_BYTES, 16 * 1024 * 1024);
    this.#deps = {
      keys: deps.keys,
      pool: deps.pool,
      window,
      threads: deps.threads,
      // Free slabs up to the budget: recycled rather than dropped (a dropped shared slab lingers until a worker's GC).
      buffers: new SlabPool(memoryBytes),
      budget: new MemoryBudget(memoryBytes),
      segmentBytes: deps.segmentBytes,
    };
  }

  /** @internal The same buffers, budget and pool under another key provider (a bucket's keyring). */
  depsWith(keys: ObjectKeyProvider): ObjectDeps {
    return { ...this.#deps, keys };
  }

  putObject(objectId: string, source: ObjectSource, options: PutObjectOptions): Promise<ObjectInfo> {
    return putObject(this.#deps, objectId, source, options);
  }

  getObject(objectId: string, options: GetObjectOptions): Readable {
    return getObject(this.#deps, objectId, options);
  }

  getObjectChunks(objectId: string, options: GetObjectOptions): AsyncGenerator<Buffer, void, undefined> {
    return getObjectChunks(this.#deps, objectId, options);
  }

  repairObject(objectId: string, options: RepairObjectOptions): Promise<RepairReport> {
    return repairObject(this.#deps, objectId, options);
  }

  rewrapObject(objectId: string, options: RewrapObjectOptions): Promise<RewrapReport> {
    return rewrapObject(this.#deps, objectId, options);
  }

  deleteObject(objectId: string, options: DeleteObjectOptions): Promise<DeleteReport> {
    return deleteObject(objectId, options);
  }

  /** Names in a namespace, in order; lists the store page by page as it is iterated. */
  listObjects(options: ListObjectsOptions): AsyncGenerator<string> {
    const { store, ns, prefix, startAfter } = resolveListObjectsOptions(options);
    return listNames(store, { ns, prefix, startAfter });
  }

  /** Zeroes and drops the free stripe buffers. */
  close(): void {
    this.#deps.buffers.clear();
  }
}
