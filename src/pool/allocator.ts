// One-time nudge of glibc malloc's dynamic thresholds, process-wide.
//
// node:crypto's update() allocates a fresh output Buffer on every call, so bulk AES-GCM churns through its
// output size in garbage until V8 collects it (tens of MiB between collections). With glibc's default
// thresholds (mmap 128 KiB, trim 128 KiB) the heap top is returned to the kernel after each collection and
// every page faults again on reuse (~1.2 µs per 4 KiB here: as much time as the encryption itself). glibc
// raises both thresholds by itself the first time a large mmap-ed block is freed (mmap threshold := its size,
// trim threshold := twice that, up to 32 MiB); we trigger that once, deterministically, by making node
// malloc and free a 31 MiB temporary (hashing a latin1 string decodes it into a malloc-ed buffer that is
// freed when the call returns). Cost: ~25 ms once per process. Measured on the bench machine: page faults of
// a 256 MiB one-shot encrypt drop from ~90k to the 65.5k the output itself needs.
// Set HSM_CRYPTO_ENGINE_MALLOC_TUNING=0 to skip it (or set MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_).
import { createHash } from 'node:crypto';

const TEMPORARY_BYTES = 31 * 1024 * 1024; // below glibc's DEFAULT_MMAP_THRESHOLD_MAX (32 MiB on 64-bit)
let done = false;

export function tuneAllocatorOnce(): void {
  if (done) return;
  done = true;
  if (process.platform !== 'linux' || process.env.HSM_CRYPTO_ENGINE_MALLOC_TUNING === '0') return;
  createHash('sha256').update('\0'.repeat(TEMPORARY_BYTES), 'latin1').digest();
}
