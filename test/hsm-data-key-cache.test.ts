// The unwrapped-DEK cache on its own: expiry without lookups, bounds, and every DEK zeroed as it leaves.
import t from 'tap';
import { DataKeyCache, heldOnce } from '../dist/hsm/data-key-cache.js';

const dek = (byte: number) => Buffer.alloc(32, byte);
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const isZero = (b: Buffer) => b.every((x) => x === 0);

t.test('expired entries are purged and zeroed without a lookup', async (t) => {
  const dropped: Buffer[] = [];
  const cache = new DataKeyCache({ maxAgeMs: 5, maxEntries: 10, maxBytes: 1 << 20 }, (d) => dropped.push(d));
  cache.set('a', 'key-1', dek(1));
  cache.set('b', 'key-2', dek(2));
  t.equal(cache.size, 2);
  await wait(40);
  t.equal(cache.size, 0, 'purged by the timer, not by get()');
  t.equal(dropped.length, 2);
  t.ok(dropped.every(isZero), 'both DEKs zeroed');
  t.equal(cache.get('a'), undefined);
});

t.test('eviction by count and by bytes zeroes the evicted DEK', async (t) => {
  const dropped: Buffer[] = [];
  const byCount = new DataKeyCache({ maxAgeMs: 60_000, maxEntries: 2, maxBytes: 1 << 20 }, (d) => dropped.push(d));
  byCount.set('a', 'k', dek(1));
  byCount.set('b', 'k', dek(2));
  byCount.set('c', 'k', dek(3));
  t.equal(byCount.size, 2);
  t.equal(byCount.get('a'), undefined, 'least recently used went first');
  t.same(byCount.get('c'), dek(3));
  t.equal(dropped.length, 1);
  t.ok(isZero(dropped[0]!));
  byCount.clear();

  dropped.length = 0;
  // 32-byte DEK + 32-byte key = 64 bytes an entry: 130 bytes hold two.
  const bySize = new DataKeyCache({ maxAgeMs: 60_000, maxEntries: 100, maxBytes: 130 }, (d) => dropped.push(d));
  bySize.set('a', 'k', dek(1));
  bySize.set('b', 'k', dek(2));
  bySize.set('c', 'k', dek(3));
  t.equal(bySize.size, 2);
  t.equal(dropped.length, 1);
  t.ok(isZero(dropped[0]!));
  bySize.set('d', 'k', Buffer.alloc(200, 7));
  t.equal(bySize.get('d'), undefined, 'an entry larger than maxBytes is not kept');
  bySize.clear();
});

t.test('dropKey zeroes every entry of one root key at once; replacing an entry zeroes the old DEK', async (t) => {
  const dropped: Buffer[] = [];
  const cache = new DataKeyCache({ maxAgeMs: 60_000, maxEntries: 100, maxBytes: 1 << 20 }, (d) => dropped.push(d));
  for (let i = 0; i < 5; i++) cache.set(`x${i}`, 'key-x', dek(10 + i));
  cache.set('y', 'key-y', dek(20));
  cache.dropKey('key-x');
  t.equal(cache.size, 1);
  t.equal(dropped.length, 5);
  t.ok(dropped.every(isZero));
  t.same(cache.get('y'), dek(20), 'other keys untouched');
  cache.set('y', 'key-y', dek(21));
  t.equal(dropped.length, 6);
  t.ok(isZero(dropped[5]!));
  t.same(cache.get('y'), dek(21));
  cache.clear();
  t.equal(dropped.length, 7);
});

t.test('get returns a copy the caller may zero', async (t) => {
  const cache = new DataKeyCache({ maxAgeMs: 60_000, maxEntries: 10, maxBytes: 1 << 20 });
  cache.set('a', 'k', dek(5));
  cache.get('a')!.fill(0);
  t.same(cache.get('a'), dek(5));
  cache.clear();
});

t.test('a held key is the cached bytes in place, live until the entry leaves the cache (then zeroed)', async (t) => {
  const cache = new DataKeyCache({ maxAgeMs: 30, maxEntries: 2, maxBytes: 1 << 20 });
  t.equal(cache.hold('a'), undefined, 'nothing to hold');
  cache.set('a', 'key-a', dek(1));
  cache.set('b', 'key-b', dek(2));
  const a = cache.hold('a')!;
  const b = cache.hold('b')!;
  t.ok(a.live() && b.live());
  t.same(Buffer.from(a.key), dek(1));
  a.release();
  t.ok(a.live(), 'releasing a cached key leaves it to the cache');
  cache.dropKey('key-a');
  t.notOk(a.live(), 'dropped with its root key');
  t.ok(isZero(Buffer.from(a.key)), 'and zeroed');
  cache.set('c', 'key-c', dek(3));
  cache.set('d', 'key-d', dek(4));
  t.notOk(b.live(), 'evicted by count');
  const c = cache.hold('c')!;
  await wait(80);
  t.notOk(c.live(), 'expired');
  t.ok(isZero(Buffer.from(c.key)));
  cache.set('e', 'key-e', dek(5));
  const e = cache.hold('e')!;
  cache.set('e', 'key-e', dek(6));
  t.notOk(e.live(), 'replaced');
  const f = cache.hold('e')!;
  cache.clear();
  t.notOk(f.live(), 'cleared (engine close)');
});

t.test('a key held once (cache off) is zeroed on release', async (t) => {
  const key = dek(9);
  const held = heldOnce(key);
  t.ok(held.live());
  held.release();
  t.notOk(held.live());
  t.ok(isZero(key));
});

t.test('cache keys: 32 bytes whatever the aad; blob and aad bytes cannot trade places', async (t) => {
  const blob = Buffer.alloc(68, 1);
  const aad = Buffer.alloc(64 * 1024, 2);
  t.equal(Buffer.byteLength(DataKeyCache.keyOf(blob, aad), 'latin1'), 32);
  t.equal(DataKeyCache.keyOf(blob, aad).length, 32);
  const a = DataKeyCache.keyOf(Buffer.from([1, 2, 3]), Buffer.from([4]));
  const b = DataKeyCache.keyOf(Buffer.from([1, 2]), Buffer.from([3, 4]));
  t.not(a, b);
  t.equal(DataKeyCache.keyOf(Buffer.from([1, 2, 3]), Buffer.from([4])), a, 'same input, same key');
});
