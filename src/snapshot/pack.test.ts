import { test } from 'node:test';
import assert from 'node:assert/strict';
import { link, lstat, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { applyLayer } from './apply-layer.js';
import { changes } from './changes.js';
import { packLayerFromUpper, packPath, packTree } from './pack.js';
import { mknod, setXattr, run } from './sys-ops.js';
import { listTar, withTmp } from './test-helpers.js';

const isRoot = process.getuid?.() === 0;

async function collect(r: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

test('packTree is deterministic, keeps hardlinks and symlinks, and round-trips', async () => {
  await withTmp(async (tmp) => {
    const src = join(tmp, 'src');
    await mkdir(join(src, 'b/c'), { recursive: true });
    await writeFile(join(src, 'b/c/file'), 'data');
    await link(join(src, 'b/c/file'), join(src, 'b/hard'));
    await symlink('c/file', join(src, 'b/sym'));
    await writeFile(join(src, 'a'), 'A');
    const t1 = await collect(packTree(src));
    const t2 = await collect(packTree(src));
    assert.deepEqual(t1, t2);
    const entries = await listTar(t1);
    assert.deepEqual(entries.map((e) => e.name), ['a', 'b', 'b/c', 'b/c/file', 'b/hard', 'b/sym']);
    assert.equal(entries[4]!.type, 'link');
    assert.equal(entries[4]!.linkname, 'b/c/file');
    assert.equal(entries[5]!.linkname, 'c/file');
    const out = join(tmp, 'out');
    await applyLayer((await import('node:stream')).Readable.from([t1]), out);
    assert.equal(await readFile(join(out, 'b/hard'), 'utf8'), 'data');
    assert.equal((await lstat(join(out, 'b/hard'))).ino, (await lstat(join(out, 'b/c/file'))).ino);
  });
});

test('packLayerFromUpper converts overlay whiteouts and opaque dirs', { skip: !isRoot && 'needs root' }, async () => {
  await withTmp(async (tmp) => {
    const upper = join(tmp, 'upper');
    await mkdir(join(upper, 'etc'), { recursive: true });
    await mkdir(join(upper, 'opq'));
    await writeFile(join(upper, 'opq/new'), 'n');
    await setXattr(join(upper, 'opq'), 'trusted.overlay.opaque', Buffer.from('y'));
    await setXattr(join(upper, 'etc'), 'user.kept', Buffer.from('v'));
    await mknod(join(upper, 'etc/removed'), 'c', 0, 0, 0);
    await writeFile(join(upper, 'etc/added'), 'a');
    const tar = await collect(packLayerFromUpper(upper));
    const entries = await listTar(tar);
    assert.deepEqual(entries.map((e) => e.name), ['etc', 'etc/added', 'etc/.wh.removed', 'opq', 'opq/.wh..wh..opq', 'opq/new']);
    assert.equal(entries[0]!.pax?.['SCHILY.xattr.user.kept'], 'v');
    assert.ok(!entries[3]!.pax, 'trusted.overlay.opaque is not exported as a PAX xattr');
    // and back: the layer applies to the same overlay form
    const back = join(tmp, 'back');
    await applyLayer((await import('node:stream')).Readable.from([tar]), back);
    assert.equal((await lstat(join(back, 'etc/removed'))).rdev, 0);
    assert.equal((await run('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', join(back, 'opq')])).toString(), 'y');
  });
});

test('changes: added, modified, deleted, opaque', { skip: !isRoot && 'needs root' }, async () => {
  await withTmp(async (tmp) => {
    const lower = join(tmp, 'lower');
    await mkdir(join(lower, 'etc'), { recursive: true });
    await writeFile(join(lower, 'etc/passwd'), 'root');
    await writeFile(join(lower, 'etc/gone'), 'g');
    await mkdir(join(lower, 'var/lib'), { recursive: true });
    await writeFile(join(lower, 'var/lib/old'), 'o');
    const upper = join(tmp, 'upper');
    await mkdir(join(upper, 'etc'), { recursive: true });
    await writeFile(join(upper, 'etc/passwd'), 'root2');
    await writeFile(join(upper, 'etc/new'), 'n');
    await mknod(join(upper, 'etc/gone'), 'c', 0, 0, 0);
    await mkdir(join(upper, 'var/lib'), { recursive: true });
    await setXattr(join(upper, 'var/lib'), 'trusted.overlay.opaque', Buffer.from('y'));
    await writeFile(join(upper, 'var/lib/fresh'), 'f');
    await mkdir(join(upper, 'tmp'));
    const c = await changes(upper, [lower]);
    assert.deepEqual(c, [
      { Path: '/etc', Kind: 0 },
      { Path: '/etc/gone', Kind: 2 },
      { Path: '/etc/new', Kind: 1 },
      { Path: '/etc/passwd', Kind: 0 },
      { Path: '/tmp', Kind: 1 },
      { Path: '/var', Kind: 0 },
      { Path: '/var/lib', Kind: 0 },
      { Path: '/var/lib/fresh', Kind: 1 },
      { Path: '/var/lib/old', Kind: 2 },
    ]);
  });
});

test('packPath names the entry by its base name and keeps a final symlink', async () => {
  await withTmp(async (root) => {
    await mkdir(join(root, 'etc/conf.d'), { recursive: true });
    await writeFile(join(root, 'etc/conf.d/x'), 'x');
    await symlink('/etc/conf.d', join(root, 'link'));
    const d = await listTar(await packPath(root, '/etc/conf.d'));
    assert.deepEqual(d.map((e) => e.name), ['conf.d', 'conf.d/x']);
    const l = await listTar(await packPath(root, '/link'));
    assert.deepEqual(l.map((e) => [e.name, e.type]), [['link', 'symlink']]);
    const f = await listTar(await packPath(root, '/link/'));
    assert.deepEqual(f.map((e) => e.name), ['link', 'link/x']);
    await assert.rejects(packPath(root, '/nope'), /Could not find the file \/nope in container/);
  });
});
