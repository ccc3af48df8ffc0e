// How HSM encrypt/decrypt calls run: synchronously on this thread or *Async on the libuv pool, chosen from the
// HSM's measured call time and how many calls wait; synchronous runs are cut into slices so the event loop turns.
import type pkcs11js from 'pkcs11js';
import type { Pkcs11 } from './module.js';
import type { SessionPool } from './session-pool.js';

export interface CallSchedulerOptions {
  /** HSM calls run on the libuv pool at once while others wait; the rest run on this thread. Env HCE_HSM_ASYNC_LANES. */
  asyncLanes: number;
  /** An HSM whose calls take longer than this (µs, moving average) is only called asynchronously. Env HCE_HSM_SYNC_MAX_US. */
  syncCallMaxMicros: number;
}

export const DEFAULT_CALL_SCHEDULER: CallSchedulerOptions = { asyncLanes: 2, syncCallMaxMicros: 250 };

/** Longest run of synchronous HSM work before the event loop gets a turn. */
const SLICE_MS = 1;
const CACHE_HITS_PER_CLOCK_CHECK = 64; // a power of two
const CALL_TIME_SMOOTHING = 0.05;

export class CallScheduler {
  readonly #module: Pkcs11;
  readonly #sessions: SessionPool;
  readonly #asyncLanes: number;
  readonly #syncCallMaxMicros: number;
  /** Public calls started and not settled: one alone may take the synchronous fast path. */
  #pending = 0;
  #asyncInFlight = 0;
  #sliceStart = -1;
  #cacheHits = 0;
  #callMicros = 0;

  constructor(module: Pkcs11, sessions: SessionPool, options: CallSchedulerOptions) {
    this.#module = module;
    this.#sessions = sessions;
    this.#asyncLanes = options.asyncLanes;
    this.#syncCallMaxMicros = options.syncCallMaxMicros;
  }

  /** A public call begins (pair with `leave` in a finally): calls that overlap may go async. */
  enter(): void {
    this.#pending++;
  }

  leave(): void {
    this.#pending--;
  }

  /** A cache hit costs ~1 µs: look at the clock only every CACHE_HITS_PER_CLOCK_CHECK of them (a promise then). */
  afterCacheHit(): Promise<void> | undefined {
    return (++this.#cacheHits & (CACHE_HITS_PER_CLOCK_CHECK - 1)) === 0 ? this.#yieldIfHogging() : undefined;
  }

  /**
   * One Init + single-part call on a session, output written into `output` (decrypt output is sized as the input:
   * SoftHSM asks room for the tag too). How it runs depends on the HSM's measured call time:
   * - fast (a local token such as SoftHSM: ~20 µs, less than a libuv hop): synchronously on this thread, yielding
   *   to the event loop every SLICE_MS; while others wait, up to asyncLanes run as *Async on the libuv pool;
   * - slow (a network HSM: ~1 ms and more): always *Async, one session each, so calls overlap and the event loop
   *   never waits on the HSM.
   * Failures are thrown as pkcs11js raised them: the caller maps them (ckr.ts).
   */
  async crypt(fn: 'C_Encrypt' | 'C_Decrypt' | 'C_Sign', key: Buffer, mechanism: pkcs11js.Mechanism, input: Buffer, output: Buffer): Promise<Buffer> {
    const module = this.#module;
    const init = (session: Buffer) => {
      if (fn === 'C_Encrypt') module.C_EncryptInit(session, mechanism, key);
      else if (fn === 'C_Decrypt') module.C_DecryptInit(session, mechanism, key);
      else module.C_SignInit(session, mechanism, key);
    };
    const callSync = (session: Buffer) =>
      fn === 'C_Encrypt' ? module.C_Encrypt(session, input, output) : fn === 'C_Decrypt' ? module.C_Decrypt(session, input, output) : module.C_Sign(session, input, output);
    const callAsync = (session: Buffer) =>
      fn === 'C_Encrypt' ? module.C_EncryptAsync(session, input, output) : fn === 'C_Decrypt' ? module.C_DecryptAsync(session, input, output) : module.C_SignAsync(session, input, output);
    const fast = this.#callMicros < this.#syncCallMaxMicros;
    if (fast && (this.#pending <= 1 || this.#asyncInFlight >= this.#asyncLanes)) {
      await this.#yieldIfHogging();
      const started = performance.now();
      const done = this.#sessions.tryUseSync((session) => {
        init(session);
        return callSync(session);
      });
      if (done) {
        this.#observe(started);
        return done.value;
      }
    }
    this.#asyncInFlight++;
    try {
      return await this.#sessions.use(async (session) => {
        init(session);
        const started = performance.now();
        // input and output stay referenced by this closure until the call settles.
        const result = await callAsync(session);
        // An async call also pays the thread hop: count half, so a fast HSM is not mistaken for a slow one.
        this.#observe(started, 0.5);
        return result;
      });
    } finally {
      this.#asyncInFlight--;
    }
  }

  /** Moving average of the HSM's call time (µs). */
  #observe(started: number, weight = 1): void {
    const micros = (performance.now() - started) * 1000 * weight;
    this.#callMicros += (micros - this.#callMicros) * CALL_TIME_SMOOTHING;
  }

  /**
   * Synchronous HSM calls (and cache hits) chained through promises never let the event loop turn: a caller
   * looping over them would starve timers and I/O for as long as it runs. After SLICE_MS of that, yield once.
   * A natural turn of the loop resets the slice (the setImmediate armed when the slice began).
   */
  async #yieldIfHogging(): Promise<void> {
    const now = performance.now();
    if (this.#sliceStart < 0) {
      this.#sliceStart = now;
      setImmediate(() => {
        this.#sliceStart = -1;
      });
    } else if (now - this.#sliceStart >= SLICE_MS) {
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
}
