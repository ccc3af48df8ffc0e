// A deliberately simple, independent reading of the README's "Sealed format", used as the oracle in tests: it parses the
// header field by field, derives keys with node's own hkdfSync, and opens each segment with a one-shot
// decipher. It shares no code with src/aead.
import { createDecipheriv, hkdfSync, timingSafeEqual } from 'node:crypto';

export function referenceOpen(sealed: Uint8Array, dek: Uint8Array, context: Uint8Array): Buffer {
  const s = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.length);
  if (s.subarray(0, 4).toString('latin1') !== 'HCEO' || (s[4] !== 1 && s[4] !== 2) || s[5] !== 1) throw new Error('bad magic/version/suite');
  const segmentBytes = s.readUInt32BE(6);
  const salt = s.subarray(10, 42);
  const prefix = s.subarray(42, 49);
  const commitment = s.subarray(49, 81);
  const wrappedLength = s[81];
  const headerLength = Math.ceil((82 + wrappedLength) / 8) * 8; // zero padding to a multiple of 8
  if (s.subarray(82 + wrappedLength, headerLength).some((b) => b !== 0)) throw new Error('padding');
  const core = s.subarray(0, 49);
  const info = (label: string) => Buffer.concat([Buffer.from(label), core, context]);
  const key = Buffer.from(hkdfSync('sha256', dek, salt, info('hce/aead/v1 payload key'), 32));
  const commit = Buffer.from(hkdfSync('sha256', dek, salt, info('hce/aead/v1 key commitment'), 32));
  if (!timingSafeEqual(commit, commitment)) throw new Error('commitment');
  const payload = s.subarray(headerLength);
  const parts: Buffer[] = [];
  let index = 0;
  for (let at = 0; at < payload.length || index === 0; index++) {
    const end = Math.min(at + segmentBytes + 16, payload.length);
    const last = end === payload.length;
    const nonce = Buffer.alloc(12);
    prefix.copy(nonce, 0);
    nonce.writeUInt32BE(index, 7);
    nonce[11] = last ? 1 : 0;
    const d = createDecipheriv('aes-256-gcm', key, nonce);
    d.setAuthTag(payload.subarray(end - 16, end));
    parts.push(d.update(payload.subarray(at, end - 16)), d.final());
    at = end;
    if (last) break;
  }
  return Buffer.concat(parts);
}

/** Reference canonical context: u32 count, then sorted (u32 len ‖ key ‖ u32 len ‖ value). */
export function referenceContext(context: Record<string, string>): Buffer {
  const entries = Object.entries(context).map(([k, v]) => [Buffer.from(k, 'utf8'), Buffer.from(v, 'utf8')] as const);
  entries.sort((a, b) => Buffer.compare(a[0], b[0]));
  const parts: Buffer[] = [];
  const n = Buffer.alloc(4);
  n.writeUInt32BE(entries.length);
  parts.push(n);
  for (const [k, v] of entries) {
    const kl = Buffer.alloc(4);
    kl.writeUInt32BE(k.length);
    const vl = Buffer.alloc(4);
    vl.writeUInt32BE(v.length);
    parts.push(kl, k, vl, v);
  }
  return Buffer.concat(parts);
}
