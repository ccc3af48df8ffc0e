// The native AES-256-GCM path (OpenSSL through the addon, and intel-ipsec-mb where built and the CPU has VAES)
// against node:crypto, kernel by kernel: same bytes, in place, GMAC, bad tags leave nothing behind, bad arguments
// are typed errors. (Known answers: aead-vectors.test.ts.)
import t from 'tap';
import { createCipheriv, randomBytes } from 'node:crypto';
import { nativeGcm } from '../dist/aead/native-gcm.js';
import { nodeCryptoSealInto } from '../dist/index.js';
import { hmacSha256 } from '../dist/aead/key-schedule.js';

if (!nativeGcm) {
  if (process.env.HSM_GCM_NATIVE === '0') {
    t.test('native GCM', { skip: 'HSM_GCM_NATIVE=0: the native path is switched off, node:crypto is used' }, async () => {});
  } else {
    // The addon is built by `npm install` / softhsm/prepare.sh; a missing one here is a broken build, not a pass.
    t.fail('native GCM addon (native/build/Release/hsm_gcm.node) did not load; set HSM_GCM_NATIVE=0 to test without it');
  }
} else {
  const gcm = nativeGcm;
  const kernels = gcm.kernels ?? ['openssl'];
  const initial = gcm.kernel?.();

  t.test('kernels: OpenSSL always; the default is the fastest available; a switch is refused for an absent one', async (t) => {
    t.ok(kernels.includes('openssl'));
    t.equal(initial, process.env.HSM_GCM_KERNEL === 'openssl' ? 'openssl' : kernels.includes('ipsec-mb') ? 'ipsec-mb' : 'openssl');
    for (const k of ['openssl', 'ipsec-mb'] as const) {
      t.equal(gcm.setKernel!(k), kernels.includes(k), `setKernel(${k})`);
      if (kernels.includes(k)) t.equal(gcm.kernel!(), k);
    }
    t.throws(() => gcm.setKernel!('aes-ni' as 'openssl'), TypeError);
    gcm.setKernel!(initial!);
  });

  for (const kernel of kernels)
  t.test(`${kernel}: seal/open equal node:crypto for many sizes, out of place and in place`, async (t) => {
    gcm.setKernel?.(kernel);
    t.teardown(() => void gcm.setKernel?.(initial!));
    for (const n of [0, 1, 15, 16, 17, 4095, 65536, 65537, 262144 + 3, 1 << 20]) {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const aad = randomBytes(n % 37);
      const msg = randomBytes(n);
      const expected = new Uint8Array(n + 16);
      nodeCryptoSealInto(key, nonce, msg, expected, aad);
      const dst = new Uint8Array(n + 16);
      gcm.seal(key, nonce, aad, msg, dst);
      t.ok(Buffer.from(dst).equals(Buffer.from(expected)), `seal ${n}`);
      const inPlace = new Uint8Array(new SharedArrayBuffer(n + 16));
      inPlace.set(msg);
      gcm.seal(key, nonce, aad, inPlace.subarray(0, n), inPlace);
      t.ok(Buffer.from(inPlace).equals(Buffer.from(expected)), `seal in place (shared memory) ${n}`);
      t.ok(gcm.open(key, nonce, aad, inPlace, inPlace.subarray(0, n)) && Buffer.from(inPlace.subarray(0, n)).equals(msg), `open in place ${n}`);
      if (n > 0) {
        const bad = Buffer.from(expected);
        bad[n >> 1] ^= 1;
        const out = new Uint8Array(n).fill(0xee);
        t.notOk(gcm.open(key, nonce, aad, bad, out), `tampered ${n} refused`);
        t.ok(out.every((b) => b === 0), 'no plaintext left behind');
      }
    }
  });

  for (const kernel of kernels)
  t.test(`${kernel}: gmac equals GCM with the data as AAD`, async (t) => {
    gcm.setKernel?.(kernel);
    t.teardown(() => void gcm.setKernel?.(initial!));
    for (const n of [0, 1, 15, 16, 100, 4097, 262160]) {
      const key = randomBytes(32);
      const nonce = randomBytes(12);
      const data = randomBytes(n);
      const c = createCipheriv('aes-256-gcm', key, nonce);
      c.setAAD(data);
      c.final();
      const tag = new Uint8Array(16);
      gcm.gmac(key, nonce, data, tag);
      t.ok(Buffer.from(tag).equals(c.getAuthTag()), `gmac ${n}`);
    }
  });

  t.test('bad arguments are TypeError/RangeError, never a crash', async (t) => {
    const k = new Uint8Array(32);
    const iv = new Uint8Array(12);
    const e = new Uint8Array(0);
    t.throws(() => gcm.seal('key' as any, iv, e, e, new Uint8Array(16)), TypeError);
    t.throws(() => gcm.seal(new Uint8Array(16), iv, e, e, new Uint8Array(16)), RangeError);
    t.throws(() => gcm.seal(k, new Uint8Array(8), e, e, new Uint8Array(16)), RangeError);
    t.throws(() => gcm.seal(k, iv, e, new Uint8Array(4), new Uint8Array(16)), RangeError);
    const buf = new Uint8Array(64);
    t.throws(() => gcm.seal(k, iv, e, buf.subarray(0, 16), buf.subarray(8, 40)), RangeError, 'partial overlap');
    t.throws(() => gcm.open(k, iv, e, new Uint8Array(8), new Uint8Array(0)), RangeError);
    t.throws(() => gcm.gmac(k, iv, e, new Uint8Array(8)), RangeError);
    t.throws(() => (gcm.seal as any)(), TypeError);
  });

  // RFC 4231 test cases 1–3 (keys ≤ the 64-byte block: the native path's domain), split into parts anywhere.
  t.test('hmacSha256: RFC 4231 known answers, any split into parts; bad arguments are typed errors', async (t) => {
    const cases: [Buffer, Buffer, string][] = [
      [Buffer.alloc(20, 0x0b), Buffer.from('Hi There'), 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
      [Buffer.from('Jefe'), Buffer.from('what do ya want for nothing?'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
      [Buffer.alloc(20, 0xaa), Buffer.alloc(50, 0xdd), '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe'],
    ];
    for (const [key, data, hex] of cases) {
      for (const cuts of [[], [0], [3], [1, 5], [data.length]]) {
        const parts: Uint8Array[] = [];
        let at = 0;
        for (const c of cuts) (parts.push(data.subarray(at, c)), (at = c));
        parts.push(data.subarray(at));
        const out = Buffer.alloc(32);
        gcm.hmacSha256!(key, parts, out);
        t.equal(out.toString('hex'), hex, `${hex.slice(0, 8)} cut at ${cuts.join(',') || 'none'}`);
        t.equal(hmacSha256(key, parts).toString('hex'), hex);
      }
    }
    t.throws(() => gcm.hmacSha256!(Buffer.alloc(65), [], Buffer.alloc(32)), RangeError, 'key over 64 bytes');
    t.throws(() => gcm.hmacSha256!(Buffer.alloc(32), [], Buffer.alloc(31)), RangeError, 'short out');
    t.throws(() => gcm.hmacSha256!(Buffer.alloc(32), Array(9).fill(Buffer.alloc(1)), Buffer.alloc(32)), RangeError, 'nine parts');
    t.throws(() => gcm.hmacSha256!(Buffer.alloc(32), ['x' as unknown as Uint8Array], Buffer.alloc(32)), TypeError, 'a string part');
  });
}
