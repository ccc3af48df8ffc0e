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

/** Bytes of a memory page on the platforms we run on (first-touch faults happen per page). */
export const PAGE_BYTES = 4096;

/**
 * Maps freshly allocated (all-zero) memory in now by writing a zero to each page. First touch costs ~1.2 µs
 * per 4 KiB page here; doing it on a thread that would otherwise idle keeps it off the thread that encrypts.
 * Only for fresh memory that nothing else writes yet.
 */
export function prefault(view: Uint8Array): void {
  for (let i = 0; i < view.length; i += PAGE_BYTES) view[i] = 0;
}
