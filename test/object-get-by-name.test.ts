// A get's first look (discover.ts): with `shards` it lists only parityShards + 1 nodes and opens shards by name.
// Each case is checked against the same get without `shards` (every node listed, as before): the same bytes or the
// same error class, never another generation. Real folders (FsShardStore); faults from helpers/fault-store.ts.
import t from 'tap';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FsShardStore, StoreError, type ListOptions, type ShardReader } from '../dist/index.js';
import { pseudoRandom } from './helpers/aead-fixture.js';
import { FaultStore, type FaultRule } from './helpers/fault-store.js';
import { memoryObjects } from './helpers/memory-keys.js';
import { collect, generationsOn, objectFolder, shardDirs } from './helpers/shards.js';

const { keys, keyId, objects } = await memoryObjects(t, 'by-name');
const SEG = 1024;
const K = 4;
const M = 2;
const shards = { dataShards: K, parityShards: M };

/** The real store with nodes down (every list and open fails) and a log of the lists and opens asked. */
class LoggingStore extends FaultStore {
  listed: number[] = [];
  opened: Array<{ node: number; key: string }> = [];
  constructor(inner: FsShardStore, down: number[] = [], rules: FaultRule[] = []) {
    super(inner, [...rules, ...down.flatMap((node): FaultRule[] => [
      { on: 'lists', after: 0, mode: 'fail', node }, { on: 'reads', after: 0, mode: 'fail', node },
    ])]);
  }
  override list(node: number, options: ListOptions): Promise<string[]> {
    this.listed.push(node);
    return super.list(node, options);
  }
  override openReader(node: number, key: string): Promise<ShardReader | null> {
    this.opened.push({ node, key });
    return super.openReader(node, key);
  }
}

const put = (store: FsShardStore, id: string, data: Uint8Array, k = K, m = M, key = keyId) =>
  objects.putObject(id, data, { keyId: key, dataShards: k, parityShards: m, store, segmentBytes: SEG });
/** The outcome of a get: its bytes (as hex of a prefix and the length) or its error's class. */
async function outcome(store: FaultStore | FsShardStore, id: string, hint: boolean): Promise<string> {
  try {
    const bytes = await collect(objects.getObject(id, { store, ...(hint ? { shards } : {}) }));
    return `bytes:${bytes.length}:${bytes.subarray(0, 16).toString('hex')}`;
  } catch (err) {
    return `error:${(err as Error).constructor.name}`;
  }
}
const bytesOf = (data: Buffer) => `bytes:${data.length}:${data.subarray(0, 16).toString('hex')}`;

/** Generation folders of an object, copied aside and put back (a put removes the older ones: this keeps them). */
function saveGeneration(dirs: string[], id: string, gen: string): () => void {
  const saved = mkdtempSync(join(dirs[0]!, '..', 'saved-'));
  dirs.forEach((dir, node) => {
    const from = join(objectFolder(dir, id), `-${gen}`);
    if (existsSync(from)) cpSync(from, join(saved, String(node)), { recursive: true });
  });
  return () => dirs.forEach((dir, node) => {
    if (existsSync(join(saved, String(node)))) cpSync(join(saved, String(node)), join(objectFolder(dir, id), `-${gen}`), { recursive: true });
  });
}
const newest = (dirs: string[], id: string) => [...new Set(dirs.flatMap((d) => generationsOn(d, id)))].sort().at(-1)!;
const shardFile = (dirs: string[], id: string, gen: string, j: number) => join(objectFolder(dirs[j % dirs.length]!, id), `-${gen}`, String(j));

t.test('a healthy get lists nodes 0..m and opens k shards; without the hint every node', async (t) => {
  const { store } = shardDirs(K + M);
  const data = pseudoRandom(K * SEG * 3 + 11, 1);
  await put(store, 'healthy', data);
  const s = new LoggingStore(store);
  t.equal(await outcome(s, 'healthy', true), bytesOf(data));
  t.same(s.listed.sort(), [0, 1, 2], 'm+1 lists');
  t.same(s.opened.map((o) => o.node).sort(), [0, 1, 2, 3], 'k opens, data shards, none twice');
  const full = new LoggingStore(store);
  t.equal(await outcome(full, 'healthy', false), bytesOf(data));
  t.same(full.listed.sort(), [0, 1, 2, 3, 4, 5], 'without shards: every node');
  // More nodes than shards, and a 3-node store (fewer nodes than k+m: every node listed, as before).
  const wide = shardDirs(9);
  await put(wide.store, 'wide', data);
  const w = new LoggingStore(wide.store);
  t.equal(await outcome(w, 'wide', true), bytesOf(data));
  t.same(w.listed.sort(), [0, 1, 2], '9 nodes: still m+1 lists');
  const narrow = shardDirs(3);
  await put(narrow.store, 'narrow', data);
  const n = new LoggingStore(narrow.store);
  t.equal(await outcome(n, 'narrow', true), bytesOf(data));
  t.same(n.listed.sort(), [0, 1, 2], '3 nodes: all of them');
});

t.test('the listed nodes lost: the get still reads from the others, listing no more', async (t) => {
  const { dirs, store } = shardDirs(K + M);
  const data = pseudoRandom(K * SEG * 2 + 5, 2);
  await put(store, 'lost', data);
  for (const down of [[0], [0, 1], [1, 2], [2]]) {
    const s = new LoggingStore(store, down);
    t.equal(await outcome(s, 'lost', true), bytesOf(data), `nodes ${down} down: reads`);
    t.same(s.listed.sort(), [0, 1, 2], `nodes ${down} down: only nodes 0..2 listed`);
  }
  // m+1 listed nodes down: no generation can have k shards left; the full listing decides (and says the same).
  const s = new LoggingStore(store, [0, 1, 2]);
  t.equal(await outcome(s, 'lost', true), await outcome(new LoggingStore(store, [0, 1, 2]), 'lost', false));
  t.match(await outcome(s, 'lost', true), /^error:ErasureError$/);
  // Their shards gone rather than their nodes down: the same.
  const gen = newest(dirs, 'lost');
  rmSync(shardFile(dirs, 'lost', gen, 0));
  rmSync(shardFile(dirs, 'lost', gen, 1));
  const gone = new LoggingStore(store);
  t.equal(await outcome(gone, 'lost', true), bytesOf(data), 'shards 0 and 1 removed: reads');
  t.same(gone.listed.sort(), [0, 1, 2], 'from node 2 listing shard 2');
});

t.test('a newer generation only on unlisted nodes, with < k shards: the older one reads, as before', async (t) => {
  const { dirs, store } = shardDirs(K + M);
  const old = pseudoRandom(K * SEG + 1, 3);
  const fresh = pseudoRandom(K * SEG + 2, 4);
  await put(store, 'cut', old);
  const restore = saveGeneration(dirs, 'cut', newest(dirs, 'cut'));
  await put(store, 'cut', fresh);
  const gen = newest(dirs, 'cut');
  restore();
  for (const j of [0, 1, 2]) rmSync(shardFile(dirs, 'cut', gen, j)); // a put cut short: shards 3, 4, 5 only
  t.equal(await outcome(store, 'cut', false), bytesOf(old), 'the full listing reads the older one');
  const s = new LoggingStore(store);
  t.equal(await outcome(s, 'cut', true), bytesOf(old), 'so does the first look');
  t.same(s.listed.sort(), [0, 1, 2], 'without listing the others');
});

t.test('a generation partly on the listed nodes', async (t) => {
  const { dirs, store } = shardDirs(K + M);
  const old = pseudoRandom(K * SEG * 2 + 3, 5);
  const fresh = pseudoRandom(K * SEG * 2 + 4, 6);
  await put(store, 'part', old);
  const restore = saveGeneration(dirs, 'part', newest(dirs, 'part'));
  await put(store, 'part', fresh);
  const gen = newest(dirs, 'part');
  restore();
  const saveNew = saveGeneration(dirs, 'part', gen);
  // Shards 0 and 1 gone: 2 (listed) and 3, 4, 5 (opened by name) make k.
  for (const j of [0, 1]) rmSync(shardFile(dirs, 'part', gen, j));
  let s = new LoggingStore(store);
  t.equal(await outcome(s, 'part', true), bytesOf(fresh), 'the newer one reads from shards 2..5');
  t.same(s.listed.sort(), [0, 1, 2], 'listing nodes 0..2 only');
  t.equal(await outcome(store, 'part', false), bytesOf(fresh), 'as the full listing says');
  // Shards 0, 1 and 3 gone: 3 of k left; the full listing decides: the older one.
  rmSync(shardFile(dirs, 'part', gen, 3));
  s = new LoggingStore(store);
  t.equal(await outcome(s, 'part', true), bytesOf(old), 'the older one reads');
  t.same(s.listed.sort(), [0, 1, 2, 3, 4, 5], 'after listing the other nodes');
  t.equal(await outcome(store, 'part', false), bytesOf(old), 'as the full listing says');
  // A corrupt header on a listed node and one on an unlisted node: k good ones still.
  saveNew();
  for (const j of [1, 4]) {
    const file = shardFile(dirs, 'part', gen, j);
    const bytes = readFileSync(file);
    bytes[20] ^= 1;
    writeFileSync(file, bytes);
  }
  t.equal(await outcome(new LoggingStore(store), 'part', true), bytesOf(fresh), 'two bad headers: the newer one reads');
  t.equal(await outcome(store, 'part', false), bytesOf(fresh));
});

t.test('rewrap records that reached only some nodes', async (t) => {
  for (const [label, failOn] of [['only the unlisted nodes', [0, 1, 2]], ['only the listed nodes', [3, 4, 5]], ['nodes 1 and 4', [0, 2, 3, 5]]] as const) {
    const { dirs, store } = shardDirs(K + M);
    const root = keys.createKey(`rw-${failOn.join('')}`);
    const data = pseudoRandom(K * SEG + 9, 7);
    await put(store, 'rw', data, K, M, root);
    keys.rotate(root);
    const faulty = new FaultStore(store, failOn.map((node) => ({ on: 'commit', after: 0, mode: 'fail', node })));
    await t.rejects(objects.rewrapObject('rw', { store: faulty }), StoreError, `${label}: the rewrap is cut short`);
    const gen = newest(dirs, 'rw');
    const records = dirs.map((d) => readdirSync(join(objectFolder(d, 'rw'), `-${gen}`)).some((n) => n.startsWith('w')));
    t.same(records, dirs.map((_, node) => !failOn.includes(node as never)), `${label}: the record is there`);
    t.equal(await outcome(new LoggingStore(store), 'rw', true), bytesOf(data), `${label}: reads while version 1 opens`);
    keys.retire(root, 1); // only the new record opens the DEK now
    const s = new LoggingStore(store);
    t.equal(await outcome(s, 'rw', true), bytesOf(data), `${label}: reads under version 2 alone`);
    t.equal(await outcome(store, 'rw', false), bytesOf(data), `${label}: as the full listing does`);
    const needsRest = failOn.includes(0) && failOn.includes(1) && failOn.includes(2);
    t.equal(s.listed.length, needsRest ? 6 : 3, `${label}: ${needsRest ? 'the record was found by listing the rest' : 'a listed node had it'}`);
  }
});

t.test('a newest generation with more parity shards than the hint: the full listing decides', async (t) => {
  const { dirs, store } = shardDirs(K + M);
  const old = pseudoRandom(3000, 8);
  const fresh = pseudoRandom(3001, 9);
  await put(store, 'wider', old);
  const restore = saveGeneration(dirs, 'wider', newest(dirs, 'wider'));
  await put(store, 'wider', fresh, 3, 3);
  restore();
  const s = new LoggingStore(store);
  t.equal(await outcome(s, 'wider', true), bytesOf(fresh), 'the newer one (3+3) reads');
  t.same(s.listed.sort(), [0, 1, 2, 3, 4, 5], 'after every node was listed');
  t.equal(await outcome(store, 'wider', false), bytesOf(fresh));
});

t.test('bad hints are typed errors', async (t) => {
  const { store } = shardDirs(3);
  const get = async (s: unknown) => collect(objects.getObject('x', { store, shards: s as never }));
  await t.rejects(get(null), TypeError);
  await t.rejects(get({ dataShards: 4 }), TypeError);
  await t.rejects(get({ dataShards: 0, parityShards: 2 }), RangeError);
  await t.rejects(get({ dataShards: 4, parityShards: -1 }), RangeError);
  await t.rejects(get({ dataShards: 200, parityShards: 100 }), RangeError);
});

t.test('random damage: the first look chooses what the full listing chooses', async (t) => {
  // Three generations (3+2, 5+1, 4+2: every m ≤ 2), then per trial shards removed or flipped and nodes down.
  const { root, dirs, store } = shardDirs(K + M);
  const versions = [pseudoRandom(2 * SEG + 1, 10), pseudoRandom(5 * SEG + 2, 11), pseudoRandom(4 * SEG * 2 + 3, 12)];
  const restores: Array<() => void> = [];
  const geometries = [[3, 2], [5, 1], [4, 2]] as const;
  for (const [i, [k, m]] of geometries.entries()) {
    for (const r of restores) r();
    await put(store, 'rand', versions[i]!, k, m);
    restores.push(saveGeneration(dirs, 'rand', newest(dirs, 'rand')));
  }
  for (const r of restores) r();
  const gens = [...new Set(dirs.flatMap((d) => generationsOn(d, 'rand')))].sort();
  t.equal(gens.length, 3, 'three generations');
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const seen = new Map<string, number>();
  const TRIALS = 300;
  for (let trial = 0; trial < TRIALS; trial++) {
    const at = join(root, `trial-${trial}`);
    const trialDirs = dirs.map((_, node) => join(at, `node${node}`));
    dirs.forEach((d, node) => cpSync(d, trialDirs[node]!, { recursive: true }));
    const trialStore = new FsShardStore(trialDirs);
    // Each node its own loss rate, so that states with the listed nodes' shards gone are common.
    const loss = trialDirs.map(() => [0, 0.15, 0.6][Math.floor(random() * 3)]!);
    for (const [g, gen] of gens.entries()) {
      const [k, m] = geometries[g]!;
      for (let j = 0; j < k + m; j++) {
        const file = shardFile(trialDirs, 'rand', gen, j);
        const roll = random();
        if (roll < loss[j % trialDirs.length]!) rmSync(file);
        else if (roll > 0.93) {
          const bytes = readFileSync(file);
          bytes[Math.floor(random() * bytes.length)] ^= 1 << Math.floor(random() * 8);
          writeFileSync(file, bytes);
        }
      }
    }
    const down = Array.from({ length: K + M }, (_, node) => node).filter(() => random() < 0.12);
    const full = await outcome(new LoggingStore(trialStore, down), 'rand', false);
    const first = await outcome(new LoggingStore(trialStore, down), 'rand', true);
    if (first !== full) t.fail(`trial ${trial}: first look ${first}, full listing ${full} (down: ${down})`);
    seen.set(full, (seen.get(full) ?? 0) + 1);
    rmSync(at, { recursive: true, force: true });
  }
  t.pass(`${TRIALS} trials agree`);
  const outcomes = [...seen.keys()];
  t.ok(versions.every((v) => outcomes.includes(bytesOf(v))) && outcomes.some((o) => o.startsWith('error:')),
    `every version and an error among the outcomes: ${JSON.stringify([...seen])}`);
});
