// The engine's worker-thread pool: a thin, typed wrapper over piscina.
// Bulk work (AES-GCM segments, erasure stripes) runs here; the main thread only does bookkeeping.
// Buffers travel as SharedArrayBuffer views (no copy, no transfer of caller memory), so a task message
// carries offsets and lengths, never bytes to be structured-cloned.
import { Piscina } from 'piscina';

/** A task for the worker entry: `kind` selects the handler an area registered there. */
export interface PoolTask {
  kind: string;
}

export interface WorkerPoolOptions {
  /** URL (or absolute path) of the worker entry module; its default export dispatches tasks (see worker.ts). */
  entry: string | URL;
}

export class WorkerPool {
  readonly threads: number;
  readonly #entry: string;
  #piscina: Piscina | undefined;
  #closed = false;

  constructor(threads: number, options: WorkerPoolOptions) {
    const entry = options?.entry;
    if (!(entry instanceof URL) && (typeof entry !== 'string' || entry.length === 0)) {
      throw new TypeError('options.entry must be the worker entry module (a URL or a non-empty string)');
    }
    this.threads = threads;
    this.#entry = entry instanceof URL ? entry.href : entry;
  }

  /** Threads start on the first task, so an engine used only for keys costs none. */
  #start(): Piscina {
    this.#piscina ??= new Piscina({
      filename: this.#entry,
      minThreads: this.threads,
      maxThreads: this.threads,
      // Keep workers alive and spinning briefly: waking an idle core costs most of a 60-80 µs round trip.
      idleTimeout: 60_000,
      atomics: 'sync',
      // Callers bound their own in-flight tasks (the AEAD paths keep 2 × threads per object); piscina's
      // 'auto' limit (threads²) would reject when a few objects or streams run at once.
      maxQueue: Infinity,
    });
    return this.#piscina;
  }

  /** Runs one task on a worker. The caller keeps every buffer referenced until the promise settles. */
  run<R>(task: PoolTask, signal?: AbortSignal): Promise<R> {
    if (this.#closed) return Promise.reject(new Error('worker pool is closed'));
    return this.#start().run(task, signal ? { signal } : {}) as Promise<R>;
  }

  /** Tasks queued or running. */
  get pending(): number {
    return this.#piscina ? this.#piscina.queueSize + this.#piscina.threads.length : 0;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#piscina?.destroy();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
