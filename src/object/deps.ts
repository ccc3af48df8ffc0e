// What the object calls run on: the data-key provider (the HSM side, with the AAD form objects use: their
// namespace and name as a list of strings), the worker pool, the stripes in flight per call, the reusable stripe
// buffers and the memory budget they are taken from.
import type { DataKeyProvider } from '../aead/data-key-provider.js';
import type { WorkerPool } from '../pool/pool.js';
import type { SlabPool } from '../pool/slab-pool.js';
import type { MemoryBudget } from './budget.js';

export type ObjectKeyProvider = DataKeyProvider<readonly string[]>;

export interface ObjectDeps {
  keys: ObjectKeyProvider;
  /** The pool is started lazily by the engine: asked for on each task. */
  pool(): WorkerPool;
  /** Stripes in flight per call (2 × threads: every worker has the next stripe ready). */
  window: number;
  /** Threads for bulk work (the engine's `threads`): workers, or native pool threads. */
  threads: number;
  /** Stripe buffers, recycled across stripes and objects (fresh memory costs page faults on first touch). */
  buffers: SlabPool;
  /** Bytes of stripe buffers in use across all calls (budget.ts). */
  budget: MemoryBudget;
  /** Default plaintext bytes per segment. */
  segmentBytes?: number | undefined;
}
