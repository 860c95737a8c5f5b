import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { OciRuntime } from './oci-runtime.js';

test('hasState: crun/runc state is one directory per container under --root', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'berth-oci-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, 'abc'));
  for (const name of ['crun', 'runc']) {
    const eq = new OciRuntime({ name, path: '/bin/false', globalArgs: [`--root=${root}`] });
    assert.equal(await eq.hasState('abc'), true);
    assert.equal(await eq.hasState('def'), false);
    const sep = new OciRuntime({ name, path: '/bin/false', globalArgs: ['--root', root] });
    assert.equal(await sep.hasState('def'), false);
  }
});

test('hasState: unsure means true (other runtimes, no --root, odd ids)', async () => {
  assert.equal(await new OciRuntime({ name: 'runsc', path: '/bin/false', globalArgs: ['--root=/nonexistent'] }).hasState('x'), true);
  assert.equal(await new OciRuntime({ name: 'crun', path: '/bin/false', globalArgs: [] }).hasState('x'), true);
  assert.equal(await new OciRuntime({ name: 'crun', path: '/bin/false', globalArgs: ['--root=/nonexistent'] }).hasState('../x'), true);
});
