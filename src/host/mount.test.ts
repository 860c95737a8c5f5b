import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { isMounted, mountOverlay, parseMountTable, unmount } from './mount.js';

const root = process.getuid?.() === 0;

test('a volatile overlay can be mounted again on the same work dir', { skip: !root && 'needs root' }, async () => {
  const d = await mkdtemp(join(tmpdir(), 'berth-mount-'));
  try {
    for (const s of ['lower', 'upper', 'work', 'm']) await mkdir(join(d, s));
    await writeFile(join(d, 'lower', 'a'), 'A');
    const target = join(d, 'm');
    for (let i = 0; i < 2; i++) {
      // the kernel leaves work/work/incompat/volatile behind and refuses a second volatile mount
      // of the same work dir unless it is removed first
      await mountOverlay([join(d, 'lower')], join(d, 'upper'), join(d, 'work'), target, { volatile: true });
      assert.equal(await isMounted(target), true);
      await writeFile(join(target, `f${i}`), String(i));
      assert.equal(await readFile(join(target, 'a'), 'utf8'), 'A');
      await unmount(target);
      assert.equal(await isMounted(target), false);
    }
    assert.equal(await readFile(join(d, 'upper', 'f0'), 'utf8'), '0');
    assert.equal(await readFile(join(d, 'upper', 'f1'), 'utf8'), '1');
    assert.ok((await stat(join(d, 'work', 'work', 'incompat', 'volatile'))).isDirectory());
  } finally {
    await unmount(join(d, 'm')).catch(() => undefined);
    await rm(d, { recursive: true, force: true });
  }
});

test('parseMountTable: propagation flags, escapes, fs type after the separator', () => {
  const t = parseMountTable([
    '24 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
    '90 24 254:0 /tmp/r /tmp/r rw,relatime shared:5 - ext4 /dev/vda rw',
    '91 90 0:4 mnt:[4026532177] /tmp/r/runtime/ns/mnt rw master:5 - nsfs nsfs rw',
    '92 90 0:50 / /tmp/r/with\\040space rw shared:7 master:5 - overlay overlay rw',
  ].join('\n'));
  assert.deepEqual(t.map((m) => [m.id, m.parentId, m.mountPoint, m.fsType, m.shared, m.slave]), [
    [24, 1, '/', 'ext4', false, false],
    [90, 24, '/tmp/r', 'ext4', true, false],
    [91, 90, '/tmp/r/runtime/ns/mnt', 'nsfs', false, true],
    [92, 90, '/tmp/r/with space', 'overlay', true, true],
  ]);
  assert.equal(t[1]!.root, '/tmp/r');
});
