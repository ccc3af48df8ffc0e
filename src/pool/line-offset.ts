// Where a view starts relative to a 64-byte cache line, from the native erasure addon (JS cannot see addresses).
// Used to place bulk shared memory on cache-line boundaries; without the addon the answer is unknown.
import { createRequire } from 'node:module';

const ADDON_PATH = '../../native/build/Release/hsm_erasure.node'; // from dist/pool/ to the package root

type LineOffsetFn = (view: Uint8Array) => number;
let fn: LineOffsetFn | null | undefined;

/** Bytes past the last 64-byte boundary at which `view` starts; undefined without the native addon. */
export function lineOffset(view: Uint8Array): number | undefined {
  if (fn === undefined) {
    try {
      const addon = createRequire(import.meta.url)(ADDON_PATH) as { lineOffset?: LineOffsetFn };
      fn = typeof addon.lineOffset === 'function' ? addon.lineOffset.bind(addon) : null;
    } catch {
      fn = null; // erasure/native.ts reports a missing addon once; nothing to add here
    }
  }
  return fn ? fn(view) : undefined;
}
