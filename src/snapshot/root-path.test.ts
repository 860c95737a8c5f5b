import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';

import { extractInto } from './extract-into.js';
import { GoMode, resolveInRoot, statInRoot } from './root-path.js';
import { makeTar } from './test-helpers.js';

async function withTmp(fn: (root: string, tmp: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-root-'));
  await mkdir(join(dir, 'rootfs'));
  try {
    await fn(join(dir, 'rootfs'), dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('resolveInRoot keeps absolute and climbing symlinks inside the root', async () => {
  await withTmp(async (root) => {
    await mkdir(join(root, 'etc'), { recursive: true });
    await symlink('/etc', join(root, 'abs'));
    await symlink('../../../../etc', join(root, 'climb'));
    await symlink('/', join(root, 'slash'));
    await symlink('loop2', join(root, 'loop1'));
    await symlink('loop1', join(root, 'loop2'));
    assert.equal(await resolveInRoot(root, '/abs/passwd'), join(root, 'etc/passwd'));
    assert.equal(await resolveInRoot(root, 'climb/x'), join(root, 'etc/x'));
    assert.equal(await resolveInRoot(root, '/../../..'), root);
    assert.equal(await resolveInRoot(root, '/slash/slash/etc'), join(root, 'etc'));
    assert.equal(await resolveInRoot(root, '/abs', { followFinal: false }), join(root, 'abs'));
    assert.equal(await resolveInRoot(root, '/missing/../etc'), join(root, 'etc'));
    await assert.rejects(resolveInRoot(root, '/loop1'), /too many levels/);
  });
});

test('statInRoot returns the Docker path-stat shape', async () => {
  await withTmp(async (root) => {
    await mkdir(join(root, 'etc'), { recursive: true, mode: 0o755 });
    await writeFile(join(root, 'etc/hosts'), '127.0.0.1 localhost\n', { mode: 0o644 });
    await symlink('hosts', join(root, 'etc/h'));
    const d = await statInRoot(root, '/etc/');
    assert.equal(d.name, 'etc');
    assert.equal(d.mode, GoMode.dir + 0o755);
    const f = await statInRoot(root, '/etc/hosts');
    assert.equal(f.size, 20);
    assert.equal(f.mode, 0o644);
    assert.equal(f.linkTarget, '');
    const l = await statInRoot(root, '/etc/h');
    assert.equal(l.mode, GoMode.symlink + 0o777);
    assert.equal(l.linkTarget, '/etc/hosts');
    assert.match(l.mtime, /^\d{4}-\d\d-\d\dT/);
    await assert.rejects(statInRoot(root, '/nope'), /Could not find the file \/nope in container/);
  });
});

test('extractInto follows container symlinks but never leaves the root', async () => {
  await withTmp(async (root, tmp) => {
    const outside = join(tmp, 'outside');
    await mkdir(outside);
    await mkdir(join(root, 'data'), { recursive: true });
    await symlink('/', join(root, 'data/up'));            // absolute: means the container root
    await symlink(outside, join(root, 'data/host'));       // host path: means root + that path
    await symlink('../../../../..', join(root, 'data/dots'));
    const tar = await makeTar([
      { name: 'up/a.txt', content: 'a' },
      { name: 'host/b.txt', content: 'b' },
      { name: 'dots/c.txt', content: 'c' },
      { name: 'new/dir/d.txt', content: 'd' },
    ]);
    await extractInto(root, '/data', Readable.from([tar]));
    assert.deepEqual(await readdir(outside), []);
    assert.equal(await readFile(join(root, 'a.txt'), 'utf8'), 'a');
    assert.equal(await readFile(join(root, outside, 'b.txt'), 'utf8'), 'b');
    assert.equal(await readFile(join(root, 'c.txt'), 'utf8'), 'c');
    assert.equal(await readFile(join(root, 'data/new/dir/d.txt'), 'utf8'), 'd');
  });
});

test('extractInto replaces a final symlink instead of writing through it, and rejects ..', async () => {
  await withTmp(async (root, tmp) => {
    await mkdir(join(root, 'data'), { recursive: true });
    await writeFile(join(tmp, 'victim'), 'safe');
    await symlink(join(tmp, 'victim'), join(root, 'data/f'));
    await extractInto(root, '/data', Readable.from([await makeTar([{ name: 'f', content: 'new' }])]));
    assert.equal(await readFile(join(tmp, 'victim'), 'utf8'), 'safe');
    assert.ok((await lstat(join(root, 'data/f'))).isFile());
    await assert.rejects(extractInto(root, '/data', Readable.from([await makeTar([{ name: '../../x', content: 'x' }])])), /contains/);
    await assert.rejects(lstat(join(tmp, 'x')));
    await assert.rejects(
      extractInto(root, '/data', Readable.from([await makeTar([{ name: 'h', type: 'link', linkname: '../../victim' }])])),
      /contains/,
    );
  });
});

test('extractInto honours noOverwriteDirNonDir and checks the destination', async () => {
  await withTmp(async (root) => {
    await mkdir(join(root, 'data/sub'), { recursive: true });
    await writeFile(join(root, 'data/file'), 'f');
    const fileOverDir = await makeTar([{ name: 'sub', content: 'x' }]);
    await assert.rejects(extractInto(root, '/data', Readable.from([fileOverDir]), { noOverwriteDirNonDir: true }), /cannot overwrite directory/);
    const dirOverFile = await makeTar([{ name: 'file', type: 'directory' }]);
    await assert.rejects(extractInto(root, '/data', Readable.from([dirOverFile]), { noOverwriteDirNonDir: true }), /cannot overwrite non-directory/);
    await extractInto(root, '/data', Readable.from([fileOverDir]));
    assert.equal(await readFile(join(root, 'data/sub'), 'utf8'), 'x');
    await assert.rejects(extractInto(root, '/nope', Readable.from([fileOverDir])), /Could not find the file/);
    await assert.rejects(extractInto(root, '/data/file', Readable.from([fileOverDir])), /not a directory/);
  });
});
