import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { unionLstat } from './layer-view.js';

const isRoot = process.getuid?.() === 0;

test('unionLstat sees a layer stack as overlayfs would: topmost wins, whiteouts, opaque dirs and non-directories hide lower layers', { skip: !isRoot && 'needs root (whiteouts are device nodes)' }, async () => {
  const tmp = await mkdtemp(join(tmpdir(), 'berth-view-'));
  try {
    const [l0, l1, l2] = [join(tmp, '0'), join(tmp, '1'), join(tmp, '2')];
    for (const l of [l0, l1, l2]) await mkdir(l);
    // lowest layer
    await mkdir(join(l0, 'etc'));
    await writeFile(join(l0, 'etc/passwd'), 'root');
    await writeFile(join(l0, 'etc/old'), 'x');
    await mkdir(join(l0, 'opt/deep'), { recursive: true });
    await writeFile(join(l0, 'opt/deep/f'), 'f');
    await mkdir(join(l0, 'var/lib'), { recursive: true });
    await mkdir(join(l0, 'srv/a'), { recursive: true });
    // middle layer: opt is opaque, etc/old is whited out, var is replaced by a file
    await mkdir(join(l1, 'opt'));
    await writeFile(join(l1, 'opt/new'), 'n');
    await mkdir(join(l1, 'etc'));
    execFileSync('mknod', [join(l1, 'etc/old'), 'c', '0', '0']);
    await writeFile(join(l1, 'var'), 'file now');
    // top layer: etc/passwd replaced, srv is a symlink
    await mkdir(join(l2, 'etc'));
    await writeFile(join(l2, 'etc/passwd'), 'root2');
    await symlink('/elsewhere', join(l2, 'srv'));
    const layers = [
      { dir: l0, opaque: new Set<string>() },
      { dir: l1, opaque: new Set(['opt']) },
      { dir: l2, opaque: new Set<string>() },
    ];
    assert.equal((await unionLstat(layers, '/etc/passwd'))?.size, 5);
    assert.ok((await unionLstat(layers, '/etc'))?.isDirectory());
    assert.equal(await unionLstat(layers, '/etc/old'), undefined);
    assert.ok(await unionLstat(layers, '/opt/new'));
    assert.equal(await unionLstat(layers, '/opt/deep'), undefined);
    assert.equal(await unionLstat(layers, '/opt/deep/f'), undefined);
    assert.ok((await unionLstat(layers, '/var'))?.isFile());
    assert.equal(await unionLstat(layers, '/var/lib'), undefined);
    assert.ok((await unionLstat(layers, '/srv'))?.isSymbolicLink());
    assert.equal(await unionLstat(layers, '/srv/a'), undefined);
    assert.equal(await unionLstat(layers, '/missing'), undefined);
    assert.ok((await unionLstat(layers, '/'))?.isDirectory());
    // an opaque root hides everything below it
    const rootOpaque = [layers[0]!, { dir: l1, opaque: new Set(['']) }];
    assert.equal(await unionLstat(rootOpaque, '/etc/passwd'), undefined);
    assert.ok(await unionLstat(rootOpaque, '/opt/new'));
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});
