// ObjectService: objects encrypted in the sealed-object format, erasure coded into k+m self-describing shards
// (format.ts) in a ShardStore. A thin façade: it owns the stripe buffers and hands them, with the key provider
// and the pool, to put.ts, get.ts, repair.ts and rewrap.ts, where the work is.
import type { Readable } from 'node:stream';
import type { WorkerPool } from '../pool/pool.js';
import { SlabPool } from '../pool/slab-pool.js';
import type { ObjectDeps, ObjectKeyProvider } from './deps.js';
import { getObject } from './get.js';
import type {
  GetObjectOptions, ObjectInfo, ObjectSource, PutObjectOptions, RepairObjectOptions, RepairReport, RewrapObjectOptions, RewrapReport,
} from './options.js';
import { putObject } from './put.js';
import { repairObject } from './repair.js';
import { rewrapObject } from './rewrap.js';

export interface ObjectServiceDeps {
  keys: ObjectKeyProvider;
  pool(): WorkerPool;
  threads: number;
  segmentBytes?: number | undefined;
}

/** Free stripe buffers kept per stripe in flight: a put holds up to two windows (sealing, then writing). */
const FREE_BYTES_PER_STRIPE = 32 * 1024 * 1024;

export class ObjectService {
  readonly #deps: ObjectDeps;

  constructor(deps: ObjectServiceDeps) {
    const window = 2 * deps.threads;
    this.#deps = {
      keys: deps.keys,
      pool: deps.pool,
      window,
      buffers: new SlabPool(window * FREE_BYTES_PER_STRIPE),
      segmentBytes: deps.segmentBytes,
    };
  }

  putObject(objectId: string, source: ObjectSource, options: PutObjectOptions): Promise<ObjectInfo> {
    return putObject(this.#deps, objectId, source, options);
  }

  getObject(objectId: string, options: GetObjectOptions): Readable {
    return getObject(this.#deps, objectId, options);
  }

  repairObject(objectId: string, options: RepairObjectOptions): Promise<RepairReport> {
    return repairObject(this.#deps, objectId, options);
  }

  rewrapObject(objectId: string, options: RewrapObjectOptions): Promise<RewrapReport> {
    return rewrapObject(this.#deps, objectId, options);
  }

  /** Zeroes and drops the free stripe buffers. */
  close(): void {
    this.#deps.buffers.clear();
  }
}
