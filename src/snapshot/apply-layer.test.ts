import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, readlink, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';

import { applyLayer } from './apply-layer.js';
import { run } from './sys-ops.js';
import { makeTar, withTmp } from './test-helpers.js';

const isRoot = process.getuid?.() === 0;

test('applies files, dirs, symlinks, hardlinks, modes, owners, mtimes; diffId = sha256 of the tar', { skip: !isRoot && 'needs root' }, async () => {
  await withTmp(async (tmp) => {
    const tar = await makeTar([
      { name: 'bin/', type: 'directory', mode: 0o750, mtime: new Date(1_500_000_000_000) },
      { name: 'bin/app', type: 'file', content: 'binary', mode: 0o4755, uid: 1000, gid: 1001 },
      { name: 'bin/app2', type: 'link', linkname: 'bin/app' },
      { name: 'bin/sh', type: 'symlink', linkname: '/bin/app' },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'run/fifo', type: 'fifo', mode: 0o600 },
      { name: '/etc/abs', type: 'file', content: 'abs' },
    ]);
    const dest = join(tmp, 'layer');
    const r = await applyLayer(Readable.from([tar]), dest);
    assert.equal(r.diffId, `sha256:${createHash('sha256').update(tar).digest('hex')}`);
    assert.equal(r.size, 'binary'.length + 'abs'.length);
    const app = await stat(join(dest, 'bin/app'));
    assert.equal(app.mode & 0o7777, 0o4755);
    assert.equal(app.uid, 1000);
    assert.equal(app.gid, 1001);
    assert.equal(app.mtime.getTime(), 1_600_000_000_000);
    assert.equal(app.nlink, 2);
    assert.equal((await stat(join(dest, 'bin/app2'))).ino, app.ino);
    assert.equal(await readlink(join(dest, 'bin/sh')), '/bin/app');
    const binDir = await stat(join(dest, 'bin'));
    assert.equal(binDir.mode & 0o777, 0o750);
    assert.equal(binDir.mtime.getTime(), 1_500_000_000_000);
    const dev = await lstat(join(dest, 'dev/null'));
    assert.ok(dev.isCharacterDevice());
    assert.equal(dev.rdev, (1 << 8) | 3);
    assert.ok((await lstat(join(dest, 'run/fifo'))).isFIFO());
    assert.equal(await readFile(join(dest, 'etc/abs'), 'utf8'), 'abs');
  });
});

test('gzip layers are detected and give the same diffId', async () => {
  await withTmp(async (tmp) => {
    const tar = await makeTar([{ name: 'a.txt', content: 'hello' }]);
    const plain = await applyLayer(Readable.from([tar]), join(tmp, 'p'));
    const gz = await applyLayer(Readable.from([gzipSync(tar)]), join(tmp, 'g'));
    assert.equal(gz.diffId, plain.diffId);
    assert.equal(await readFile(join(tmp, 'g', 'a.txt'), 'utf8'), 'hello');
  });
});

test('rejects .. entries and leaves nothing behind', async () => {
  await withTmp(async (tmp) => {
    const tar = await makeTar([{ name: 'ok', content: 'x' }, { name: '../escape', content: 'bad' }]);
    const dest = join(tmp, 'layer');
    await assert.rejects(applyLayer(Readable.from([tar]), dest), /contains "\.\."/);
    await assert.rejects(stat(dest));
    await assert.rejects(stat(join(tmp, 'escape')));
  });
});

test('rejects writing through a symlink parent', async () => {
  await withTmp(async (tmp) => {
    const outside = join(tmp, 'outside');
    await mkdir(outside);
    const tar = await makeTar([
      { name: 'link', type: 'symlink', linkname: outside },
      { name: 'link/pwned', content: 'bad' },
    ]);
    const dest = join(tmp, 'layer');
    await assert.rejects(applyLayer(Readable.from([tar]), dest), /symlink/);
    assert.deepEqual(await readdir(outside), []);
    await assert.rejects(stat(dest));
    // relative variant
    const tar2 = await makeTar([
      { name: 'l2', type: 'symlink', linkname: '../outside' },
      { name: 'l2/pwned', content: 'bad' },
    ]);
    await assert.rejects(applyLayer(Readable.from([tar2]), dest), /symlink/);
    assert.deepEqual(await readdir(outside), []);
  });
});

test('rejects hardlinks to outside the layer', async () => {
  await withTmp(async (tmp) => {
    const dest = join(tmp, 'layer');
    const t1 = await makeTar([{ name: 'h', type: 'link', linkname: '../../etc/passwd' }]);
    await assert.rejects(applyLayer(Readable.from([t1]), dest), /contains "\.\."/);
    const t2 = await makeTar([{ name: 'h', type: 'link', linkname: '/etc/passwd' }]);
    await assert.rejects(applyLayer(Readable.from([t2]), dest), /not (found|inside)/);
    const t3 = await makeTar([
      { name: 's', type: 'symlink', linkname: '/etc' },
      { name: 'h', type: 'link', linkname: 's/passwd' },
    ]);
    await assert.rejects(applyLayer(Readable.from([t3]), dest), /not inside/);
    await assert.rejects(stat(dest));
  });
});

test('a later entry replaces a symlink instead of following it', async () => {
  await withTmp(async (tmp) => {
    const victim = join(tmp, 'victim');
    await mkdir(victim);
    const tar = await makeTar([
      { name: 'f', type: 'symlink', linkname: join(victim, 'file') },
      { name: 'f', content: 'replaced' },
    ]);
    const dest = join(tmp, 'layer');
    await applyLayer(Readable.from([tar]), dest);
    assert.equal(await readFile(join(dest, 'f'), 'utf8'), 'replaced');
    assert.ok((await lstat(join(dest, 'f'))).isFile());
    assert.deepEqual(await readdir(victim), []);
  });
});

test('whiteouts become overlay whiteouts and opaque xattrs', { skip: !isRoot && 'needs root' }, async () => {
  await withTmp(async (tmp) => {
    const tar = await makeTar([
      { name: 'd/', type: 'directory' },
      { name: 'd/.wh..wh..opq', content: '' },
      { name: '.wh.gone', content: '' },
      { name: 'd/keep', content: 'k' },
    ]);
    const dest = join(tmp, 'layer');
    const r = await applyLayer(Readable.from([tar]), dest);
    assert.deepEqual(r.opaque, ['d']);
    const wh = await lstat(join(dest, 'gone'));
    assert.ok(wh.isCharacterDevice());
    assert.equal(wh.rdev, 0);
    await assert.rejects(lstat(join(dest, 'd', '.wh..wh..opq')));
    const v = (await run('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', join(dest, 'd')])).toString();
    assert.equal(v, 'y');
  });
});

test('PAX xattrs are applied, trusted.overlay ones are not', { skip: !isRoot && 'needs root' }, async () => {
  await withTmp(async (tmp) => {
    const tar = await makeTar([
      { name: 'f', content: 'x', pax: { 'SCHILY.xattr.user.note': 'hi', 'SCHILY.xattr.trusted.overlay.redirect': '/x' } },
    ]);
    const dest = join(tmp, 'layer');
    await applyLayer(Readable.from([tar]), dest);
    const dump = (await run('getfattr', ['-d', '-m', '-', join(dest, 'f')])).toString();
    assert.match(dump, /user\.note="hi"/);
    assert.doesNotMatch(dump, /trusted\.overlay/);
  });
});

test('corrupt input is rejected', async () => {
  await withTmp(async (tmp) => {
    const dest = join(tmp, 'layer');
    await assert.rejects(applyLayer(Readable.from([Buffer.from([0x1f, 0x8b, 1, 2, 3, 4])]), dest));
    await assert.rejects(stat(dest));
  });
});
