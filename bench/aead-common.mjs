// Shared pieces of the AEAD benchmark: key providers and sources/sinks.
import { createCipheriv, createDecipheriv, randomBytes, randomFillSync } from 'node:crypto';
import { Readable, Writable } from 'node:stream';

/** `bytes` of CSPRNG output, made 1 MiB at a time (a bench's plaintext). */
export function randomPlaintext(bytes) {
  const out = Buffer.allocUnsafe(bytes);
  for (let at = 0; at < bytes; at += 1 << 20) randomBytes(Math.min(1 << 20, bytes - at)).copy(out, at);
  return out;
}

/** A provider that costs nothing: isolates the AEAD work in throughput rows. */
export function instantKeys() {
  const dek = randomBytes(32);
  const wrapped = Buffer.alloc(84, 0xab);
  return {
    async generateDataKey() { return { plaintext: Buffer.from(dek), wrapped: Buffer.from(wrapped) }; },
    async unwrap() { return Buffer.from(dek); },
    async rewrap(w) { return Buffer.from(w); },
  };
}

// CSPRNG output buffered 4 KiB at a time (one randomFillSync costs ~2-3 µs whatever the size); handed-out
// bytes are zeroed in the buffer. An HSM draws DEKs from its own generator; this keeps the stand-in cheap.
let pool = new Uint8Array(0);
let used = 0;
function random(n) {
  if (used + n > pool.length) { pool = randomFillSync(new Uint8Array(4096)); used = 0; }
  const out = Buffer.from(pool.subarray(used, used + n));
  pool.fill(0, used, used + n);
  used += n;
  return out;
}

/**
 * In-memory stand-in for the HSM (same scheme as test/helpers/memory-keys.ts): AES-256-GCM key wrap with the
 * aad bound, 84-byte wrapped DEKs. `cached: true` adds an unwrapped-DEK cache keyed by the wrapped bytes, as
 * the engine's dataKeyCache does.
 */
export function memoryKeys({ cached = false } = {}) {
  const root = randomBytes(32);
  const cache = new Map();
  const head = Buffer.from([1, 18, ...Buffer.from('bench-root-key-001'), 0, 0, 0, 1]); // 24 bytes
  const wrap = (dek, aad) => {
    const iv = random(12);
    const c = createCipheriv('aes-256-gcm', root, iv);
    c.setAAD(head);
    c.setAAD(aad);
    return Buffer.concat([head, iv, c.update(dek), c.final(), c.getAuthTag()]);
  };
  const unwrap = (w, aad) => {
    const d = createDecipheriv('aes-256-gcm', root, w.subarray(24, 36));
    d.setAAD(w.subarray(0, 24));
    d.setAAD(aad);
    d.setAuthTag(w.subarray(68, 84));
    return Buffer.concat([d.update(w.subarray(36, 68)), d.final()]);
  };
  return {
    async generateDataKey(_id, { aad }) { const plaintext = random(32); return { plaintext, wrapped: wrap(plaintext, aad) }; },
    async unwrap(w, { aad }) {
      if (!cached) return unwrap(Buffer.from(w), aad);
      const key = Buffer.from(w).toString('latin1') + Buffer.from(aad).toString('latin1');
      let dek = cache.get(key);
      if (!dek) cache.set(key, (dek = unwrap(Buffer.from(w), aad)));
      return Buffer.from(dek);
    },
    async rewrap(w, { aad }) { return wrap(unwrap(Buffer.from(w), aad), aad); },
  };
}

/** 1 MiB views of `buf` (no copies): the stream rows push the same memory as the one-shot rows use. */
export function chunksOf(buf, chunk = 1 << 20) {
  let at = 0;
  return new Readable({
    read() {
      if (at >= buf.length) return void this.push(null);
      this.push(buf.subarray(at, Math.min(at + chunk, buf.length)));
      at += chunk;
    },
  });
}

/** A Readable of `total` bytes made of one reused block (memory stays flat whatever `total`). */
export function repeatedSource(total, block) {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= total) return void this.push(null);
      const n = Math.min(block.length, total - sent);
      sent += n;
      this.push(block.subarray(0, n));
    },
  });
}

export function discard(onChunk) {
  return new Writable({ write(chunk, _e, cb) { onChunk?.(chunk); cb(); } });
}
