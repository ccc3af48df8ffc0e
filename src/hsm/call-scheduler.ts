// How HSM encrypt/decrypt calls run: synchronously on this thread, on a native HSM lane (hsm-lane.ts) or *Async on
// the libuv pool, chosen from the HSM's measured call time and how many calls wait; synchronous runs are cut into
// slices so the event loop turns.
import type pkcs11js from 'pkcs11js';
import { HsmLanes, laneMechanism, type LaneFn, type LaneStats } from './hsm-lane.js';
import type { Pkcs11 } from './module.js';
import type { SessionPool } from './session-pool.js';

export interface CallSchedulerOptions {
  /**
   * Lanes off this thread for a fast HSM while calls queue (native HSM lanes; without the addon, *Async calls on
   * the libuv pool, the rest on this thread); 0: all on this thread. Env HCE_HSM_ASYNC_LANES.
   */
  asyncLanes: number;
  /** An HSM whose calls take longer than this (µs, moving average) is only called asynchronously. Env HCE_HSM_SYNC_MAX_US. */
  syncCallMaxMicros: number;
}

export const DEFAULT_CALL_SCHEDULER: CallSchedulerOptions = { asyncLanes: 2, syncCallMaxMicros: 250 };

/** Longest run of synchronous HSM work before the event loop gets a turn. */
const SLICE_MS = 1;
const CACHE_HITS_PER_CLOCK_CHECK = 64; // a power of two
const CALL_TIME_WINDOW = 8;
/**
 * Calls waiting at once before they go to the lane. Measured here (2 vCPUs, raw loop interleaved, c8, medians of 7
 * rounds): from 4 waiting the lane beats synchronous calls (wrap 1.15× vs 0.94× raw, unwrap 0.92× vs 0.74×; from 2
 * or 8 about as good). Before the lane's calls left the GC alone (slots, not a Map), it lost at 8 and paid from 16.
 */
const LANE_MIN_PENDING = 4;
/** With a slow HSM, one call in this many still goes to the lane (which times the HSM alone). */
const SLOW_PROBE_CALLS = 64;
/**
 * Native lanes at most: SoftHSM serialises threads on its mutexes (two threads on one key: 1.0–1.5× one), and
 * the JS thread needs the other core to prepare calls, so a second lane only takes calls once the first has many
 * (hsm-lane.ts, LANE_SPILL_LOAD).
 */
const MAX_NATIVE_LANES = 2;

export class CallScheduler {
  readonly #module: Pkcs11;
  readonly #sessions: SessionPool;
  readonly #asyncLanes: number;
  readonly #syncCallMaxMicros: number;
  /** Public calls started and not settled: one alone may take the synchronous fast path. */
  #pending = 0;
  #asyncInFlight = 0;
  #sliceStart = -1;
  #turnScheduled = false;
  /** Callers waiting for a slice, oldest first. */
  readonly #waiters: Array<() => void> = [];
  #cacheHits = 0;
  #callMicros = 0;
  #windowMin = Infinity;
  #windowCalls = 0;
  #slowCalls = 0;
  readonly #lanes: HsmLanes | undefined;

  /** `library`: the module's path, for the native lanes (which find the loaded module again by it). */
  constructor(module: Pkcs11, sessions: SessionPool, options: CallSchedulerOptions, library?: string) {
    this.#module = module;
    this.#sessions = sessions;
    this.#asyncLanes = options.asyncLanes;
    this.#syncCallMaxMicros = options.syncCallMaxMicros;
    this.#lanes = library === undefined ? undefined : HsmLanes.create(library, sessions, Math.min(options.asyncLanes, MAX_NATIVE_LANES), (micros) => this.#observeMicros(micros));
  }

  /** LaneStats of the native lanes, or undefined without them (benchmarks). */
  laneStats(): LaneStats | undefined {
    return this.#lanes?.queued ? this.#lanes.stats() : undefined;
  }

  /** Stops the native lanes; call once no call is in flight. */
  close(): void {
    this.#lanes?.close();
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
  crypt(fn: LaneFn, key: Buffer, mechanism: pkcs11js.Mechanism, input: Buffer, output: Buffer): Promise<Buffer> {
    const lanes = this.#lanes;
    // Calls that queue go to the lane, and so does any call while the lane has work: this thread calling the
    // module at the same time would only contend with it for the module's locks. A slow HSM still sends every
    // SLOW_PROBE_CALLS-th call there: the lane times the HSM alone, so a fast token misjudged once is seen again.
    if (lanes?.queued && (this.#pending >= LANE_MIN_PENDING || lanes.inFlight > 0) && (this.#fast() || ++this.#slowCalls % SLOW_PROBE_CALLS === 0)) {
      const onLane = laneMechanism(mechanism);
      if (onLane) return this.#onLane(lanes, fn, key, onLane, input, output);
    }
    return this.#direct(fn, key, mechanism, input, output);
  }

  #fast(): boolean {
    return this.#callMicros < this.#syncCallMaxMicros;
  }

  /** Synchronously on this thread, or *Async on the libuv pool (no lane, or a slow HSM). */
  async #direct(fn: LaneFn, key: Buffer, mechanism: pkcs11js.Mechanism, input: Buffer, output: Buffer): Promise<Buffer> {
    const module = this.#module;
    const init = (session: Buffer) => {
      if (fn === 'C_Encrypt') module.C_EncryptInit(session, mechanism, key);
      else if (fn === 'C_Decrypt') module.C_DecryptInit(session, mechanism, key);
      else module.C_SignInit(session, mechanism, key);
    };
    if (this.#fast() && (this.#pending <= 1 || this.#asyncInFlight >= this.#asyncLanes)) {
      // A share of the module gate (module-gate.ts) from before the yield to the call, waited for while object
      // management holds the module: going *Async then instead (a first version did) took every session and kept
      // later calls *Async long after (c64 ran 56 % *Async: 0.4× raw).
      const gate = this.#sessions.gate;
      const wait = gate.share();
      if (wait) await wait;
      let done: { value: Buffer } | undefined;
      try {
        await this.#yieldIfHogging();
        const started = performance.now();
        const lanes = this.#lanes;
        const direct = lanes && laneMechanism(mechanism);
        done = this.#sessions.tryUseSync((session) => {
          if (direct) return lanes.callSync(fn, session, key, direct, input, output);
          init(session);
          return fn === 'C_Encrypt' ? module.C_Encrypt(session, input, output) : fn === 'C_Decrypt' ? module.C_Decrypt(session, input, output) : module.C_Sign(session, input, output);
        });
        if (done) this.#observe(started);
      } finally {
        gate.release();
      }
      if (done) return done.value;
    }
    this.#asyncInFlight++;
    try {
      return await this.#sessions.use(async (session) => {
        init(session);
        const started = performance.now();
        // input and output stay referenced by this closure until the call settles.
        const result = await (fn === 'C_Encrypt'
          ? module.C_EncryptAsync(session, input, output)
          : fn === 'C_Decrypt'
            ? module.C_DecryptAsync(session, input, output)
            : module.C_SignAsync(session, input, output));
        // An async call also pays the thread hop: count half, so a fast HSM is not mistaken for a slow one.
        this.#observe(started, 0.5);
        return result;
      }, { shared: true });
    } finally {
      this.#asyncInFlight--;
    }
  }

  /** On a lane; a lost session or login is recovered and the call run once more (as SessionPool.use does). */
  async #onLane(lanes: HsmLanes, fn: LaneFn, key: Buffer, mechanism: NonNullable<ReturnType<typeof laneMechanism>>, input: Buffer, output: Buffer): Promise<Buffer> {
    const generation = this.#sessions.generation;
    try {
      return await lanes.run(fn, key, mechanism, input, output);
    } catch (err) {
      if (!this.#sessions.recoveredSince(generation, err)) throw err;
      return lanes.run(fn, key, mechanism, input, output, true);
    }
  }

  /** One timed call (µs). */
  #observe(started: number, weight = 1): void {
    this.#observeMicros((performance.now() - started) * 1000 * weight);
  }

  /**
   * The HSM's call time is the fastest of each CALL_TIME_WINDOW calls: a call preempted on a loaded machine takes
   * milliseconds (a moving average of every call read SoftHSM as a network HSM after one such call, and the *Async
   * path it then took, timed with its event-loop latency, kept it there); a slow HSM is slow on every call.
   */
  #observeMicros(micros: number): void {
    if (micros < this.#windowMin) this.#windowMin = micros;
    if (++this.#windowCalls === CALL_TIME_WINDOW) {
      this.#callMicros = this.#windowMin;
      this.#windowMin = Infinity;
      this.#windowCalls = 0;
    }
  }

  /**
   * Synchronous HSM calls (and cache hits) chained through promises never let the event loop turn: a caller
   * looping over them would starve timers and I/O for as long as it runs. A loop turn gets one slice of SLICE_MS;
   * callers that find it spent queue up (FIFO) and are resumed at the next turn, while that turn's slice lasts.
   * (Resuming them all at once, as before, let 64 waiting callers run 64 more calls in one turn: a 5 ms stall.)
   */
  #yieldIfHogging(): Promise<void> | undefined {
    const now = performance.now();
    if (this.#sliceStart < 0) {
      this.#sliceStart = now;
      this.#scheduleTurn();
      return undefined;
    }
    if (now - this.#sliceStart < SLICE_MS) return undefined;
    return new Promise<void>((resolve) => this.#waiters.push(resolve)); // a turn is scheduled while a slice runs
  }

  #scheduleTurn(): void {
    if (this.#turnScheduled) return;
    this.#turnScheduled = true;
    setImmediate(this.#turn);
  }

  /** A loop turn: the slice ends; waiters, if any, get the next one. */
  readonly #turn = (): void => {
    this.#turnScheduled = false;
    this.#sliceStart = -1;
    if (this.#waiters.length === 0) return;
    this.#sliceStart = performance.now();
    this.#scheduleTurn();
    this.#resumeWhileSliceLasts();
  };

  /** Resumes the oldest waiter; the next one after its call has run (a microtask later), while the slice lasts. */
  readonly #resumeWhileSliceLasts = (): void => {
    this.#waiters.shift()?.();
    if (this.#waiters.length > 0 && performance.now() - this.#sliceStart < SLICE_MS) queueMicrotask(this.#resumeWhileSliceLasts);
  };
}
