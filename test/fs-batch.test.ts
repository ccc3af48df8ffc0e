// FsShardStore's batched folder reads and opens (native/fs-batch.cc) against the same calls through node:fs:
// identical results for every file size around the read-ahead, folders of every kind of entry, and errors.
import t from 'tap';
import { closeSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  append, createFile, removeFile, listFolder, listFolderIfAny, nativeFsBatch, publishFile, readHead, syncFolderNow, viaNodeFs, writeDurably, type Head,
} from '../dist/object/fs-batch.js';

t.ok(nativeFsBatch || process.env.HSM_FS_NATIVE === '0', 'the addon is built (HSM_FS_NATIVE=0 turns it off)');

const root = mkdtempSync(join(tmpdir(), 'hce-fsb-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const AHEAD = 4096;
const sizes = [0, 1, AHEAD - 1, AHEAD, AHEAD + 1, 3 * AHEAD + 7];
for (const n of sizes) writeFileSync(join(root, `f${n}`), Buffer.alloc(n, n % 251));
mkdirSync(join(root, 'sub'));
symlinkSync(join(root, 'f1'), join(root, 'link')); // neither file nor folder to a listing

/** What a head says, with an open descriptor read back and closed. */
function describe(h: Head) {
  if ('bytes' in h) return { whole: h.bytes.toString('hex') };
  const b = Buffer.alloc(h.size);
  readSync(h.fd, b, 0, h.size, 0);
  closeSync(h.fd);
  return { size: h.size, bytes: b.toString('hex') };
}

const batched = { listFolder, readHead, createFile, append, writeDurably, publishFile, syncFolderNow, removeFile };
for (const [name, calls] of [['batched', batched], ['node:fs', viaNodeFs]] as const) {
  t.test(`${name}: heads and listings`, async (t) => {
    for (const n of sizes) {
      const h = describe(await calls.readHead(join(root, `f${n}`), AHEAD));
      if (n <= AHEAD) t.same(h, { whole: Buffer.alloc(n, n % 251).toString('hex') }, `${n} B comes whole`);
      else t.same(h, { size: n, bytes: Buffer.alloc(n, n % 251).toString('hex') }, `${n} B comes open`);
    }
    t.same((await calls.listFolder(root)).sort(), [...sizes.map((n) => `f${n}`), 'sub/'].sort());
    t.same(await calls.listFolder(join(root, 'sub')), []);
    t.same((await calls.listFolder(root, 'f4')).sort(), ['f4095', 'f4096', 'f4097'], 'filtered by name prefix');
    t.same(await calls.listFolder(root, 'su'), ['sub/']);
    t.same(await calls.listFolder(root, 'nothing'), []);
    await t.rejects(calls.readHead(join(root, 'missing'), AHEAD), { code: 'ENOENT' });
    await t.rejects(calls.listFolder(join(root, 'missing')), { code: 'ENOENT' });
    await t.rejects(calls.listFolder(join(root, 'f1')), { code: 'ENOTDIR' });
  });

  t.test(`${name}: create, write durably, publish into new folders, sync`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hce-fsb-w-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const temp = join(dir, '.tmp-1');
    const fd = await calls.createFile(temp);
    await t.rejects(calls.createFile(temp), { code: 'EEXIST' }, 'never over an existing file');
    await calls.append(fd, [Buffer.from('a')]);
    await calls.writeDurably(fd, [Buffer.from('b'), Buffer.alloc(0), Buffer.from('c')]); // parts in order, empty ones too
    await calls.writeDurably(fd, [new Uint8Array(new SharedArrayBuffer(6)).fill(100).subarray(1, 5)]); // a stripe buffer's kind of view
    await calls.writeDurably(fd, []);
    t.equal(await calls.publishFile(fd, temp, join(dir, 'a', 'b', 'c', 'x')), 3, 'three folders made');
    t.equal(readFileSync(join(dir, 'a', 'b', 'c', 'x'), 'utf8'), 'abcdddd');
    t.notOk(existsSync(temp));
    const fd2 = await calls.createFile(temp);
    t.equal(await calls.publishFile(fd2, temp, join(dir, 'a', 'b', 'y')), 0, 'no folder made');
    await t.rejects(calls.publishFile(-1, temp, join(dir, 'a', 'z')), { code: 'ENOENT' }, 'the temp file is gone');
    await calls.syncFolderNow(join(dir, 'a'));
    await t.rejects(calls.syncFolderNow(join(dir, 'missing')), { code: 'ENOENT' });
    await t.rejects(calls.createFile(join(dir, 'missing', 'f')), { code: 'ENOENT' });
    // remove: the emptied folders go up to the root given, a folder still holding something stays.
    await calls.removeFile(join(dir, 'a', 'b', 'c', 'x'), dir);
    t.notOk(existsSync(join(dir, 'a', 'b', 'c')), 'emptied folder pruned');
    t.ok(existsSync(join(dir, 'a', 'b', 'y')), 'a folder holding a file stays');
    await calls.removeFile(join(dir, 'a', 'b', 'y'), dir);
    t.notOk(existsSync(join(dir, 'a')), 'pruned up to the root');
    t.ok(existsSync(dir), 'the root stays');
    await calls.removeFile(join(dir, 'never'), dir); // missing: no error
    mkdirSync(join(dir, 'd'));
    await t.rejects(calls.removeFile(join(dir, 'd'), dir), 'a folder is not removed as a file');
  });
}

t.test('a missing folder lists as null, without an error; other failures still reject', async (t) => {
  t.same(await listFolderIfAny(join(root, 'missing')), null);
  t.same(await listFolderIfAny(join(root, 'f1')), null, 'a file on the way: ENOTDIR');
  t.same((await listFolderIfAny(root, 'su'))!, ['sub/']);
  await t.rejects(listFolderIfAny(join(root, 'x'.repeat(300))), 'ENAMETOOLONG: not a missing folder');
});

for (const [name, calls] of [['batched', batched], ['node:fs', viaNodeFs]] as const) {
  t.test(`${name}: an append of more parts than one writev takes, and of large parts, comes out whole and in order`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hce-fsb-v-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const temp = join(dir, '.tmp-v');
    const fd = await calls.createFile(temp);
    const parts = Array.from({ length: 2500 }, (_, i) => Buffer.alloc(1 + (i % 7), i % 251)); // IOV_MAX is 1024
    const large = randomBytes(3 * 1024 * 1024);
    await calls.append(fd, parts);
    await calls.writeDurably(fd, [large, Buffer.from('end')]);
    await calls.publishFile(fd, temp, join(dir, 'v'));
    t.ok(readFileSync(join(dir, 'v')).equals(Buffer.concat([...parts, large, Buffer.from('end')])));
  });
}

t.test('reads of different sizes in one turn: each read gets its own read-ahead', async (t) => {
  const asked = [1, AHEAD, 1, 7, AHEAD, 7];
  const heads = await Promise.all(asked.map((n) => readHead(join(root, `f${AHEAD - 1}`), n).then(describe)));
  for (const [i, n] of asked.entries()) t.same(heads[i], describe(await viaNodeFs.readHead(join(root, `f${AHEAD - 1}`), n)), `read-ahead ${n}`);
});

t.test('many calls in one turn: every one answered, each with its own result', async (t) => {
  const calls = Array.from({ length: 300 }, (_, i) => (i % 3 === 0
    ? listFolder(join(root, i % 2 ? 'sub' : 'missing')).then((x) => x.length, (e) => e.code)
    : readHead(join(root, `f${sizes[i % sizes.length]}`), AHEAD).then(describe)));
  const results = await Promise.all(calls);
  for (const [i, r] of results.entries()) {
    if (i % 3 === 0) t.equal(r, i % 2 ? 0 : 'ENOENT');
    else t.same(r, describe(await viaNodeFs.readHead(join(root, `f${sizes[i % sizes.length]}`), AHEAD)));
  }
});
