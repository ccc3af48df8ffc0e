// SharedArrayBuffer-backed byte arrays: what workers read and write in place.
// Callers' buffers are never handed to workers (they could be detached or raced); their bytes are copied in first.

/** A zero-filled Uint8Array over a fresh SharedArrayBuffer. */
export function allocShared(bytes: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(bytes));
}

/** A copy of `src` in shared memory (memcpy speed). */
export function copyToShared(src: Uint8Array): Uint8Array {
  const out = allocShared(src.byteLength);
  out.set(src);
  return out;
}

export function isShared(view: Uint8Array): boolean {
  return typeof SharedArrayBuffer !== 'undefined' && view.buffer instanceof SharedArrayBuffer;
}

