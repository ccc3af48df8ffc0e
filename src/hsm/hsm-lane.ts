// HSM lanes (native/pkcs11-lane.cc): a native thread per lane runs queued Init + C_Encrypt/C_Decrypt/C_Sign calls
// back to back while this thread only prepares them, and results come back many per event-loop turn. Why: SoftHSM
// spends ~21 µs a call (half in the kernel) and serialises concurrent threads on its own mutexes, so calls from
// this thread and libuv threads at once mostly waited for each other. A lane leases one session from the pool
// while it has work (calls on one lane run one after another, so they may share it), gives it back when idle, and
// retires a session a call found dead. Each call holds a share of the module gate (module-gate.ts) from submit to
// result, so object management never runs while the lane is inside the module. Queued calls go to it by default
// (HsmLanes.queued); HCE_HSM_LANE=queue-off keeps only the lane's direct synchronous calls, and without the addon (or
// with HCE_HSM_LANE=0) the scheduler keeps its synchronous and *Async paths.
import { createRequire } from 'node:module';
import pkcs11js from 'pkcs11js';
import { ckrName, leavesSessionUnusable } from './ckr.js';
import type { SessionPool } from './session-pool.js';

/**
 * [calls run, times the thread slept, CPU seconds of the thread, seconds it spent in the module's calls, times it
 * found its queue empty (ran dry), lanes that have run a call].
 */
export type LaneStats = [number, number, number, number, number, number];
/** One native lane's counters: LaneStats without the last. */
type NativeLaneStats = [number, number, number, number, number];

/**
 * Calls taken by the first lane before a second gets any. Below it one lane beats two on SoftHSM (measured, 2
 * vCPUs, raw loop interleaved: c8 over two lanes 0.95× / 0.78× raw wrap / unwrap against 1.17× / 0.91× on one,
 * each lane ran dry ~90 times per 1k calls and a call's CPU rose from 27 to 41 µs on the module's mutexes);
 * above it the second lane pays (c64: 1.45× / 1.27× against 1.16× / 1.09×).
 */
const LANE_SPILL_LOAD = 16;

interface NativeLane {
  submit(id: number, fn: number, session: Buffer, key: Buffer, mechanism: number, paramKind: number, iv: Buffer | undefined, aad: Buffer | undefined, input: Buffer, output: Buffer): void;
  close(): void;
  /** The same call synchronously on this thread: the output length, or -1 (then lastError()). */
  call(fn: number, session: Buffer, key: Buffer, mechanism: number, paramKind: number, iv: Buffer | undefined, aad: Buffer | undefined, input: Buffer, output: Buffer): number;
  /** [CK_RV low, CK_RV high, 1 when the *Init call failed] of the last failed call(). */
  lastError(): [number, number, number];
  stats(): NativeLaneStats;
}

interface Addon {
  Lane: new (library: string, onResults: (count: number) => void, resultWords: Uint32Array) => NativeLane;
}

const ADDON_PATH = '../../native/build/Release/hsm_pkcs11.node'; // from dist/hsm/ to the package root

function loadAddon(): Addon | null {
  try {
    return createRequire(import.meta.url)(ADDON_PATH) as Addon;
  } catch {
    return null; // not built here: the scheduler's synchronous and *Async paths do the same work
  }
}

const addon = loadAddon();

export type LaneFn = 'C_Encrypt' | 'C_Decrypt' | 'C_Sign';
const FN_CODES: Record<LaneFn, number> = { C_Encrypt: 0, C_Decrypt: 1, C_Sign: 2 };
const INIT_OF: Record<LaneFn, string> = { C_Encrypt: 'C_EncryptInit', C_Decrypt: 'C_DecryptInit', C_Sign: 'C_SignInit' };
const RESULT_WORDS = 5;
/** Results the native side hands over per callback (more arrive in further callbacks of the same turn). */
const RESULTS_PER_DELIVERY = 256;
const PARAM_NONE = 0;
const PARAM_BYTES = 1;
const PARAM_GCM = 2;
/** The lane always asks for 128-bit GCM tags (the only length the engine uses, templates.ts). */
const LANE_GCM_TAG_BITS = 128;

/** A call as the lane takes it, or undefined for a mechanism parameter it does not pass (then: another path). */
interface LaneMechanism {
  type: number;
  kind: number;
  iv: Buffer | undefined;
  aad: Buffer | undefined;
}

export function laneMechanism(mechanism: pkcs11js.Mechanism): LaneMechanism | undefined {
  const parameter = mechanism.parameter as unknown;
  if (parameter === undefined || parameter === null) return { type: mechanism.mechanism, kind: PARAM_NONE, iv: undefined, aad: undefined };
  if (Buffer.isBuffer(parameter)) return { type: mechanism.mechanism, kind: PARAM_BYTES, iv: parameter, aad: undefined };
  const gcm = parameter as Partial<pkcs11js.GcmParams> & { type?: number };
  if (gcm.type === pkcs11js.CK_PARAMS_AES_GCM_v240 && Buffer.isBuffer(gcm.iv) && gcm.ivBits === gcm.iv.length * 8 && gcm.tagBits === LANE_GCM_TAG_BITS) {
    return { type: mechanism.mechanism, kind: PARAM_GCM, iv: gcm.iv, aad: Buffer.isBuffer(gcm.aad) ? gcm.aad : Buffer.alloc(0) };
  }
  return undefined;
}

/** The error pkcs11js raises for a CK_RV (same class and fields), so ckr.ts maps it like any other. */
function laneError(fn: LaneFn, rvLow: number, rvHigh: number, initFailed: boolean): Error {
  const exact = (BigInt(rvHigh) << 32n) | BigInt(rvLow);
  return new pkcs11js.Pkcs11Error(`${ckrName(exact)}:${exact}`, rvHigh * 0x1_0000_0000 + rvLow, initFailed ? INIT_OF[fn] : fn);
}

interface Lease {
  session: Buffer;
  inFlight: number;
  healthy: boolean;
  retired: boolean;
}

/**
 * One call's place while the native thread has it: preallocated and reused, its index the id the native side
 * echoes. Why not a Map of per-call entries: a Map that is inserted into and deleted from on every call rehashes
 * into new tables, and an old table already promoted to the old generation keeps pointing at the entries it held
 * (the scavenger takes old-to-young pointers as roots without knowing the table is dead). Every call then survived
 * to be promoted with its promise, closures and buffers: ~1.5 MB surviving each scavenge at c64 (3–6 ms pauses)
 * against 0.26 MB without the lane. A slot is cleared when its result arrives.
 */
class Slot {
  fn: LaneFn = 'C_Encrypt';
  lease: Lease | undefined = undefined;
  // Kept referenced until the result: the native thread reads and writes these.
  input: Buffer | undefined = undefined;
  iv: Buffer | undefined = undefined;
  aad: Buffer | undefined = undefined;
  output: Buffer | undefined = undefined;
  resolve: ((value: Buffer) => void) | undefined = undefined;
  reject: ((err: Error) => void) | undefined = undefined;

  clear(): void {
    this.lease = this.input = this.iv = this.aad = this.output = this.resolve = this.reject = undefined;
  }
}

/** One native lane and the session it holds. */
class Lane {
  readonly #native: NativeLane;
  readonly #sessions: SessionPool;
  readonly #slots: Slot[] = [];
  /** Indexes of free slots (numbers only: nothing for the GC to trace). */
  readonly #free: number[] = [];
  #inFlight = 0;
  /** Calls given to this lane and not settled (counted from run(), before the lease and the gate). */
  #load = 0;
  readonly #onCallMicros: (micros: number) => void;
  #current: Lease | undefined;
  #leasing: Promise<Lease> | undefined;
  #idleCheck = false;

  constructor(library: string, sessions: SessionPool, onCallMicros: (micros: number) => void) {
    this.#sessions = sessions;
    this.#onCallMicros = onCallMicros;
    const words = new Uint32Array(RESULT_WORDS * RESULTS_PER_DELIVERY);
    this.#native = new addon!.Lane(library, (count) => this.#results(words, count * RESULT_WORDS), words);
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get load(): number {
    return this.#load;
  }

  stats(): NativeLaneStats {
    return this.#native.stats();
  }

  /** Synchronously on this thread, on a session the caller holds. */
  callSync(fn: LaneFn, session: Buffer, key: Buffer, mechanism: LaneMechanism, input: Buffer, output: Buffer): Buffer {
    const length = this.#native.call(FN_CODES[fn], session, key, mechanism.type, mechanism.kind, mechanism.iv, mechanism.aad, input, output);
    if (length >= 0) return output.subarray(0, length);
    const [rvLow, rvHigh, initFailed] = this.#native.lastError();
    throw laneError(fn, rvLow, rvHigh, initFailed === 1);
  }

  /**
   * The session first, then a share of the module's gate (so a call holding the module never waits for the
   * lane's session); the share is given back with the call's result.
   */
  async run(fn: LaneFn, key: Buffer, mechanism: LaneMechanism, input: Buffer, output: Buffer, live: boolean): Promise<Buffer> {
    this.#load++;
    try {
      return await this.#run(fn, key, mechanism, input, output, live);
    } finally {
      this.#load--;
    }
  }

  async #run(fn: LaneFn, key: Buffer, mechanism: LaneMechanism, input: Buffer, output: Buffer, live: boolean): Promise<Buffer> {
    const gate = this.#sessions.gate;
    for (;;) {
      const lease = this.#current ?? (await (this.#leasing ??= this.#lease(live)));
      const wait = gate.share();
      if (wait) await wait;
      if (lease.retired) {
        gate.release(); // given back (idle, or found dead) while this call waited: lease again
        continue;
      }
      if (live && !this.#sessions.alive(lease.session)) {
        // A retry after a lost session must not run on the lane's current one unchecked: it may be dead too. Checked
        // under the share: whatever lost the sessions (another handle's C_CloseAllSessions, injected through the
        // gate in the fault tests) may have run while this call waited for it.
        gate.release();
        lease.healthy = false;
        this.#retire(lease);
        if (lease.inFlight === 0) this.#sessions.unlease(lease.session, false);
        continue;
      }
      return new Promise<Buffer>((resolve, reject) => {
        const id = this.#free.pop() ?? this.#slots.push(new Slot()) - 1;
        try {
          this.#native.submit(id, FN_CODES[fn], lease.session, key, mechanism.type, mechanism.kind, mechanism.iv, mechanism.aad, input, output);
        } catch (err) {
          this.#free.push(id);
          gate.release();
          throw err;
        }
        const slot = this.#slots[id]!;
        slot.fn = fn;
        slot.lease = lease;
        slot.input = input;
        slot.iv = mechanism.iv;
        slot.aad = mechanism.aad;
        slot.output = output;
        slot.resolve = resolve;
        slot.reject = reject;
        lease.inFlight++;
        this.#inFlight++;
      });
    }
  }

  async #lease(live: boolean): Promise<Lease> {
    try {
      const lease: Lease = { session: await this.#sessions.lease(live), inFlight: 0, healthy: true, retired: false };
      this.#current = lease;
      return lease;
    } finally {
      this.#leasing = undefined;
    }
  }

  #results(words: Uint32Array, end: number): void {
    // The fastest call of the delivery stands for the HSM's call time: a call preempted on a loaded machine takes
    // milliseconds and must not make a local token look like a network HSM; a slow HSM is slow on every call.
    let nanos = Infinity;
    for (let at = 0; at < end; at += RESULT_WORDS) {
      const id = words[at]!;
      const slot = this.#slots[id];
      const lease = slot?.lease;
      if (!lease) continue;
      const { fn } = slot;
      const output = slot.output!;
      const resolve = slot.resolve!;
      const reject = slot.reject!;
      slot.clear();
      this.#free.push(id);
      this.#inFlight--;
      this.#sessions.gate.release();
      nanos = Math.min(nanos, words[at + 4]!);
      lease.inFlight--;
      const rvLow = words[at + 1]!;
      const rvHigh = words[at + 2]!;
      if (rvLow === 0 && rvHigh === 0) {
        resolve(output.subarray(0, words[at + 3]!));
      } else {
        const err = laneError(fn, rvLow, rvHigh, words[at + 3] === 1);
        if (leavesSessionUnusable(err)) {
          lease.healthy = false;
          this.#retire(lease);
        }
        reject(err);
      }
      if (lease.retired && lease.inFlight === 0) this.#sessions.unlease(lease.session, lease.healthy);
    }
    if (nanos !== Infinity) this.#onCallMicros(nanos / 1000);
    if (this.#inFlight === 0 && this.#current && !this.#idleCheck) {
      // Give the session back once the lane stays idle for a turn of the event loop (callers usually submit the
      // next call from the continuations of these results).
      this.#idleCheck = true;
      setImmediate(() => {
        this.#idleCheck = false;
        if (this.#inFlight === 0 && this.#current) this.#release();
      });
    }
  }

  #retire(lease: Lease): void {
    lease.retired = true;
    if (this.#current === lease) this.#current = undefined;
  }

  #release(): void {
    const lease = this.#current!;
    this.#retire(lease);
    if (lease.inFlight === 0) this.#sessions.unlease(lease.session, lease.healthy);
  }

  /** Call only with nothing in flight (after the key service's gate closed). */
  close(): void {
    if (this.#current && this.#current.inFlight === 0) this.#release();
    this.#native.close();
  }
}

/** The lanes of one engine; undefined when the addon is missing or no lane is wanted. */
export class HsmLanes {
  readonly #lanes: Lane[];

  /**
   * Whether queued calls go to the lane threads (default; HCE_HSM_LANE=queue-off: no). It was opt-in until the module
   * gate closed its races with object management; it beat the synchronous and *Async paths in every cell of the
   * benchmark on a quiet machine (README "HSM lane"). Without it the lane only makes direct synchronous calls (no
   * thread is started).
   */
  readonly queued = process.env.HCE_HSM_LANE !== 'queue-off';

  private constructor(lanes: Lane[]) {
    this.#lanes = lanes;
  }

  static create(library: string, sessions: SessionPool, count: number, onCallMicros: (micros: number) => void): HsmLanes | undefined {
    if (!addon || count < 1 || process.env.HCE_HSM_LANE === '0') return undefined;
    try {
      return new HsmLanes(Array.from({ length: count }, () => new Lane(library, sessions, onCallMicros)));
    } catch {
      return undefined; // the module is not one dlopen can find again (a static build): the other paths work
    }
  }

  /** Calls submitted and not yet answered. */
  get inFlight(): number {
    let n = 0;
    for (const lane of this.#lanes) n += lane.inFlight;
    return n;
  }

  /** LaneStats summed over the lanes (benchmarks, tests). */
  stats(): LaneStats {
    const sum: LaneStats = [0, 0, 0, 0, 0, 0];
    for (const lane of this.#lanes) {
      const one = lane.stats();
      one.forEach((v, i) => (sum[i] += v));
      if (one[0] > 0) sum[5]++;
    }
    return sum;
  }

  /**
   * One Init + single-part call synchronously on this thread, through the addon (not pkcs11js's marshalling), on a
   * session the caller holds; failures thrown as pkcs11js would.
   */
  callSync(fn: LaneFn, session: Buffer, key: Buffer, mechanism: LaneMechanism, input: Buffer, output: Buffer): Buffer {
    return this.#lanes[0]!.callSync(fn, session, key, mechanism, input, output);
  }

  /**
   * One Init + single-part call on the first lane, or once it has LANE_SPILL_LOAD calls, on the least loaded one;
   * failures are thrown as pkcs11js would. `live`: lease a session checked to be alive (a retry after a lost
   * session).
   */
  run(fn: LaneFn, key: Buffer, mechanism: LaneMechanism, input: Buffer, output: Buffer, live = false): Promise<Buffer> {
    let lane = this.#lanes[0]!;
    if (lane.load >= LANE_SPILL_LOAD) for (let i = 1; i < this.#lanes.length; i++) if (this.#lanes[i]!.load < lane.load) lane = this.#lanes[i]!;
    return lane.run(fn, key, mechanism, input, output, live);
  }

  close(): void {
    for (const lane of this.#lanes) lane.close();
  }
}
