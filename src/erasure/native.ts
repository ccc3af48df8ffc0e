// Loads the native GF kernels (native/build/Release/hsm_erasure.node) and holds the kernel choice.
// Without the addon the codec runs on the TypeScript reference; that is announced once on stderr, not thrown.
import { createRequire } from 'node:module';

/** Native kernels in preference order, then the pure-TypeScript path. */
export const KERNEL_NAMES = ['gfni', 'avx2', 'ssse3', 'scalar', 'reference'] as const;
export type KernelName = (typeof KERNEL_NAMES)[number];

export interface NativeBinding {
  readonly kernels: readonly string[];
  readonly bestKernel: string;
  readonly defaultKernel: string;
  readonly requestedKernel: string;
  readonly coefTableBytes: number;
  expandTables(matrix: Uint8Array, rows: number, k: number): Uint8Array;
  mul(
    kernel: string,
    tables: Uint8Array,
    rows: number,
    k: number,
    inputs: readonly Uint8Array[],
    outputs: readonly Uint8Array[],
    len: number,
  ): void;
  /**
   * mul over column ranges of itemBytes on the addon's own threads (at most maxParallel at once). Without a
   * callback this thread works too and the call returns when done; with one it returns at once.
   */
  mulParallel?(
    kernel: string,
    tables: Uint8Array,
    rows: number,
    k: number,
    inputs: readonly Uint8Array[],
    outputs: readonly Uint8Array[],
    len: number,
    maxParallel: number,
    itemBytes: number,
    callback: ((error: Error | null) => void) | undefined,
  ): void;
  /**
   * The arguments of a multiply checked once, for mulPrepared: the handle keeps the tables and shards referenced
   * (views of SharedArrayBuffers: their memory never moves).
   */
  prepareMul?(kernel: string, tables: Uint8Array, rows: number, k: number, inputs: readonly Uint8Array[], outputs: readonly Uint8Array[], len: number): PreparedMul;
  /** The prepared multiply on the addon's threads, this thread helping; returns when done. */
  mulPrepared?(handle: PreparedMul, maxParallel: number, itemBytes: number): void;
  /** Bytes past the last 64-byte boundary at which `view` starts. */
  lineOffset?(view: Uint8Array): number;
  /** Counters of the addon's native pool since it started (zeros before the first mulParallel). */
  poolStats?(): NativePoolStats;
}

/** An opaque handle from prepareMul. */
export type PreparedMul = { readonly __preparedMul: unique symbol };

export interface NativePoolStats {
  threads: number;
  /** mulParallel calls the calling thread worked on, shared with the pool threads. */
  helped: number;
  /** Column ranges computed by helping callers, and by pool threads. */
  callerItems: number;
  poolItems: number;
  /** Sleeping pool threads woken for a job; helping callers that slept waiting for a pool thread's last ranges. */
  wakes: number;
  blocked: number;
}

const ADDON_PATH = '../../native/build/Release/hsm_erasure.node'; // from dist/erasure/ to the package root

function load(): NativeBinding | null {
  try {
    return createRequire(import.meta.url)(ADDON_PATH) as NativeBinding;
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    process.stderr.write(`hsm-crypto-engine: native erasure kernels unavailable (${why}); using the TypeScript reference codec\n`);
    return null;
  }
}

export const native: NativeBinding | null = load();

function initialKernel(): KernelName {
  const requested = native ? native.requestedKernel : (process.env.HSM_EC_KERNEL ?? '');
  if (requested === 'reference') return 'reference';
  if (requested !== '' && requested !== 'auto' && !(native?.kernels.includes(requested) ?? false)) {
    process.stderr.write(
      `hsm-crypto-engine: HSM_EC_KERNEL=${requested} is not available here (available: ${availableKernels().join(', ')}); using auto\n`,
    );
  }
  return native ? (native.defaultKernel as KernelName) : 'reference';
}

/** Kernels this machine can run, best first; 'reference' (TypeScript) is always last. */
export function availableKernels(): KernelName[] {
  return [...((native?.kernels ?? []) as KernelName[]), 'reference'];
}

/** The best kernel for this CPU (what 'auto' means). */
export function bestKernel(): KernelName {
  return native ? (native.bestKernel as KernelName) : 'reference';
}

let currentKernel: KernelName = initialKernel();

/** The kernel used by codecs created without a `kernel` option (in this thread). */
export function getKernel(): KernelName {
  return currentKernel;
}

/** Forces a kernel for codecs without their own `kernel` option, in this thread; 'auto' = the best one. */
export function setKernel(kernel: KernelName | 'auto'): void {
  currentKernel = resolveKernel(kernel, 'kernel');
}

export function resolveKernel(kernel: unknown, name: string): KernelName {
  if (kernel === 'auto') return bestKernel();
  if (typeof kernel !== 'string') throw new TypeError(`${name} must be a string`);
  if (!(KERNEL_NAMES as readonly string[]).includes(kernel))
    throw new RangeError(`${name} must be one of auto, ${KERNEL_NAMES.join(', ')} (got ${kernel})`);
  if (!availableKernels().includes(kernel as KernelName))
    throw new RangeError(`${name} '${kernel}' is not available on this machine (available: ${availableKernels().join(', ')})`);
  return kernel as KernelName;
}
