import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, readlink, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';

import { extractInto, writeEntries } from './extract-into.js';
import { makeTar, withTmp } from './test-helpers.js';

const isRoot = process.getuid?.() === 0;

const sha = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');

test('extractInto reports each file with the sha256 of its content as written (large files in many chunks too)', async () => {
  await withTmp(async (tmp) => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 77);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7919) & 0xff;
    const tar = await makeTar([
      { name: 'a.txt', content: 'hello' },
      { name: 'sub/', type: 'directory' },
      { name: 'sub/big', content: big },
      { name: 'a.txt', content: 'replaced' },
    ]);
    // deliver the tar in small pieces, as a socket would
    const pieces: Buffer[] = [];
    for (let o = 0; o < tar.length; o += 7000) pieces.push(tar.subarray(o, o + 7000));
    const seen = new Map<string, { sha256: string; ino: number }>();
    await extractInto(tmp, '/', Readable.from(pieces), { onFileDigest: (p, sha256, ino) => seen.set(p, { sha256, ino }) });
    assert.deepEqual(await readFile(join(tmp, 'sub/big')), big);
    assert.equal(seen.get(join(tmp, 'sub/big'))?.sha256, sha(big));
    assert.equal(seen.get(join(tmp, 'sub/big'))?.ino, (await lstat(join(tmp, 'sub/big'))).ino);
    // the later entry replaced the first: its digest is the one kept
    assert.equal(await readFile(join(tmp, 'a.txt'), 'utf8'), 'replaced');
    assert.equal(seen.get(join(tmp, 'a.txt'))?.sha256, sha('replaced'));
  });
});

test('writeEntries copies host files with the planned owner, mode and times, and never writes through a symlink', { skip: !isRoot && 'needs root' }, async () => {
  await withTmp(async (tmp) => {
    const src = join(tmp, 'src.bin');
    await writeFile(src, 'payload', { mode: 0o600 });
    const dest = join(tmp, 'layer');
    await mkdir(dest);
    const t = new Date(1_600_000_000_000);
    await writeEntries(dest, [
      { header: { name: 'opt/', type: 'directory', mode: 0o750, uid: 7, gid: 8, mtime: t } },
      { header: { name: 'opt/app/data', type: 'file', mode: 0o640, uid: 1000, gid: 1001, size: 7, mtime: t }, copyFrom: src },
      { header: { name: 'opt/link', type: 'symlink', linkname: '/etc', mode: 0o777, uid: 0, gid: 0, mtime: t } },
    ]);
    const f = await lstat(join(dest, 'opt/app/data'));
    assert.equal(await readFile(join(dest, 'opt/app/data'), 'utf8'), 'payload');
    assert.equal(f.mode & 0o7777, 0o640);
    assert.equal(f.uid, 1000);
    assert.equal(f.gid, 1001);
    assert.equal(f.mtimeMs, t.getTime());
    const d = await lstat(join(dest, 'opt'));
    assert.equal(d.mode & 0o7777, 0o750);
    assert.equal(d.uid, 7);
    assert.equal(d.mtimeMs, t.getTime());
    assert.equal(await readlink(join(dest, 'opt/link')), '/etc');
    // the source is untouched
    assert.equal((await lstat(src)).mode & 0o7777, 0o600);
    // an entry under a symlink is refused instead of landing outside the tree
    const outside = join(tmp, 'outside');
    await mkdir(outside);
    await symlink(outside, join(dest, 'esc'));
    await assert.rejects(writeEntries(dest, [{ header: { name: 'esc/x', type: 'file', mode: 0o644, size: 7 }, copyFrom: src }]), /symlink/);
    await assert.rejects(lstat(join(outside, 'x')));
  });
});
