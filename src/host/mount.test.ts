import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, writeFile, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { isMounted, mountOverlay, unmount } from './mount.js';

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
