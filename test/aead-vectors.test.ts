// Known answers for the per-segment AES-256-GCM primitive (Wycheproof + GCM spec, vendored under
// test/vectors/), the key schedule against node's hkdfSync, the nonce layout and the canonical context.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import {
  canonicalContext,
  deriveObjectKeys,
  gcmOpenInto,
  gcmSealInto,
  nodeCryptoOpenInto,
  nodeCryptoSealInto,
  segmentNonce,
  UPDATE_CHUNK_BYTES,
  encodeHeaderCore,
} from '../dist/index.js';
import { referenceContext } from './helpers/reference-format.js';
import { nativeGcm } from '../dist/aead/native-gcm.js';

type Seal = (key: Uint8Array, nonce: Uint8Array, src: Uint8Array, dst: Uint8Array, aad?: Uint8Array) => void;
type Open = (key: Uint8Array, nonce: Uint8Array, src: Uint8Array, dst: Uint8Array, aad?: Uint8Array) => boolean;
// Every implementation the engine may run: node:crypto, each kernel of the addon (OpenSSL; intel-ipsec-mb where built
// and the CPU has VAES), and the primitive as the engine calls it.
const native = nativeGcm;
const nativeKernels = native ? (native.kernels ?? ['openssl']) : [];
const inKernel = <T>(kernel: string, run: () => T): T => {
  const before = native!.kernel?.();
  native!.setKernel?.(kernel as 'openssl');
  try {
    return run();
  } finally {
    if (before) native!.setKernel!(before);
  }
};
const IMPLEMENTATIONS: [string, Seal, Open][] = [
  ['node:crypto', nodeCryptoSealInto, nodeCryptoOpenInto],
  ...nativeKernels.map((kernel): [string, Seal, Open] => [
    `native ${kernel}`,
    (k, n, s, d, a = new Uint8Array(0)) => inKernel(kernel, () => native!.seal(k, n, a, s, d)),
    (k, n, s, d, a = new Uint8Array(0)) => inKernel(kernel, () => native!.open(k, n, a, s, d)),
  ]),
  ['gcmSealInto / gcmOpenInto', gcmSealInto, gcmOpenInto],
];

interface Vector {
  name: string;
  key: string;
  iv: string;
  aad: string;
  msg: string;
  ct: string;
  tag: string;
  valid: boolean;
}

const hex = (s: string) => Buffer.from(s, 'hex');
const wycheproof = JSON.parse(readFileSync(new URL('./vectors/wycheproof-aes256gcm-iv96.json', import.meta.url), 'utf8'));
const nist = JSON.parse(readFileSync(new URL('./vectors/nist-gcm-aes256.json', import.meta.url), 'utf8'));
const vectors: Vector[] = [
  ...wycheproof.testGroup.tests.map((v: any) => ({ ...v, name: `wycheproof tcId ${v.tcId} ${v.comment}`, valid: v.result === 'valid' })),
  ...nist.tests.map((v: any) => ({ ...v, valid: true })),
];

/** `bytes` copied to byte offset `offset` of a larger buffer (unaligned views). */
function at(bytes: Uint8Array, offset: number): Uint8Array {
  const big = new Uint8Array(bytes.length + offset + 3).fill(0xa5);
  big.set(bytes, offset);
  return big.subarray(offset, offset + bytes.length);
}

t.test('vector files are what README says', async (t) => {
  t.equal(wycheproof.testGroup.keySize, 256);
  t.equal(wycheproof.testGroup.ivSize, 96);
  t.equal(wycheproof.testGroup.tagSize, 128);
  t.equal(wycheproof.testGroup.tests.length, 66);
  t.equal(nist.tests.length, 4);
});

for (const [name, gcmSealInto, gcmOpenInto] of IMPLEMENTATIONS)
t.test(`AES-256-GCM known answers through ${name} at offsets 0..7`, async (t) => {
  let checked = 0;
  for (const v of vectors) {
    const key = hex(v.key);
    const iv = hex(v.iv);
    const aad = hex(v.aad);
    const msg = hex(v.msg);
    const sealed = Buffer.concat([hex(v.ct), hex(v.tag)]);
    for (let offset = 0; offset < 8; offset++) {
      const out = at(new Uint8Array(msg.length), offset);
      const ok = gcmOpenInto(at(key, offset), at(iv, offset), at(sealed, offset), out, at(aad, offset));
      if (ok !== v.valid) t.fail(`${v.name} @${offset}: open returned ${ok}`);
      if (v.valid) {
        if (!Buffer.from(out).equals(msg)) t.fail(`${v.name} @${offset}: plaintext`);
        const dst = at(new Uint8Array(sealed.length), offset);
        gcmSealInto(at(key, offset), at(iv, offset), at(msg, offset), dst, at(aad, offset));
        if (!Buffer.from(dst).equals(sealed)) t.fail(`${v.name} @${offset}: ciphertext ‖ tag`);
      } else if (out.some((b) => b !== 0)) {
        t.fail(`${v.name} @${offset}: plaintext left in dst after a failed tag`);
      }
      checked++;
    }
  }
  t.equal(checked, vectors.length * 8, `${vectors.length} vectors × 8 offsets`);
});

t.test('chunked update() equals one-shot node:crypto across chunk boundaries', async (t) => {
  const key = randomBytes(32);
  const iv = randomBytes(12);
  for (const n of [0, 1, 15, 16, 17, UPDATE_CHUNK_BYTES - 1, UPDATE_CHUNK_BYTES, UPDATE_CHUNK_BYTES + 1, 3 * UPDATE_CHUNK_BYTES + 7]) {
    const msg = randomBytes(n);
    const c = createCipheriv('aes-256-gcm', key, iv);
    const expected = Buffer.concat([c.update(msg), c.final(), c.getAuthTag()]);
    const dst = new Uint8Array(n + 16);
    gcmSealInto(key, iv, msg, dst);
    t.ok(Buffer.from(dst).equals(expected), `seal ${n}`);
    const back = new Uint8Array(n);
    t.ok(gcmOpenInto(key, iv, dst, back) && Buffer.from(back).equals(msg), `open ${n}`);
  }
});

t.test('key schedule is RFC 5869 HKDF-SHA256 with the documented labels', async (t) => {
  for (let i = 0; i < 20; i++) {
    const dek = randomBytes(32);
    const salt = randomBytes(32);
    const core = encodeHeaderCore(1 << 16, salt, randomBytes(7));
    const ctx = canonicalContext({ bucket: 'b', n: String(i) });
    const { payloadKey, commitment } = deriveObjectKeys(dek, salt, core, ctx);
    const info = (label: string) => Buffer.concat([Buffer.from(label), core, ctx]);
    t.same(Buffer.from(payloadKey), Buffer.from(hkdfSync('sha256', dek, salt, info('hce/aead/v1 payload key'), 32)));
    t.same(Buffer.from(commitment), Buffer.from(hkdfSync('sha256', dek, salt, info('hce/aead/v1 key commitment'), 32)));
    t.notSame(Buffer.from(payloadKey), Buffer.from(commitment));
  }
});

t.test('nonce = prefix ‖ u32be(index) ‖ last flag', async (t) => {
  const prefix = hex('01020304050607');
  t.equal(Buffer.from(segmentNonce(prefix, 0, false)).toString('hex'), '010203040506070000000000');
  t.equal(Buffer.from(segmentNonce(prefix, 0, true)).toString('hex'), '010203040506070000000001');
  t.equal(Buffer.from(segmentNonce(prefix, 0x0a0b0c0d, false)).toString('hex'), '010203040506070a0b0c0d00');
  t.equal(Buffer.from(segmentNonce(prefix, 0xffffffff, true)).toString('hex'), '01020304050607ffffffff01');
  t.throws(() => segmentNonce(prefix, 2 ** 32, true), RangeError);
  t.throws(() => segmentNonce(prefix, -1, true), RangeError);
});

t.test('canonical context', async (t) => {
  t.equal(Buffer.from(canonicalContext({})).toString('hex'), '00000000');
  t.equal(Buffer.from(canonicalContext(undefined)).toString('hex'), '00000000');
  t.equal(Buffer.from(canonicalContext({ a: 'b' })).toString('hex'), '00000001' + '00000001' + '61' + '00000001' + '62');
  const samples: Record<string, string>[] = [
    { bucket: 'b', object: 'o' },
    { object: 'o', bucket: 'b' },
    { 'é': 'x', e: 'y', 'z': '', '': 'empty key', '😀': '☃' },
    { a: 'bc' },
    { ab: 'c' },
  ];
  for (const s of samples) t.same(Buffer.from(canonicalContext(s)), referenceContext(s), JSON.stringify(s));
  t.same(Buffer.from(canonicalContext(samples[0])), Buffer.from(canonicalContext(samples[1])), 'key order does not matter');
  t.notSame(Buffer.from(canonicalContext(samples[3])), Buffer.from(canonicalContext(samples[4])), 'length-prefixed: no ambiguity');
  t.throws(() => canonicalContext({ a: 1 as unknown as string }), new TypeError('options.context.a must be a string'));
  t.throws(() => canonicalContext(null as unknown as Record<string, string>), TypeError);
  t.throws(() => canonicalContext(['x'] as unknown as Record<string, string>), TypeError);
  t.throws(() => canonicalContext({ a: 'x\ud800' }), TypeError, 'lone surrogate');
  t.throws(() => canonicalContext({ a: 'x'.repeat(70_000) }), RangeError);
});
