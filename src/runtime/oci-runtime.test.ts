import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
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

test('berthd-run verbs use verbPath, falling back to path', async () => {
  const d = await mkdtemp(join(tmpdir(), 'berth-rt-'));
  try {
    // a stand-in runtime that answers `state` with its own name, so the test sees which ran
    const fake = async (name: string): Promise<string> => {
      const p = join(d, name);
      await writeFile(p, `#!/bin/sh\nprintf '{"status":"running","pid":%s}' ${name === 'plain' ? 1 : 2}\n`);
      await chmod(p, 0o755);
      return p;
    };
    const plain = await fake('plain');
    const wrapper = await fake('wrapper');
    const direct = new OciRuntime({ name: 'crun', path: wrapper, verbPath: plain, globalArgs: [] });
    assert.deepEqual(await direct.state('x'), { status: 'running', pid: 1 });
    const wrapped = new OciRuntime({ name: 'crun', path: wrapper, globalArgs: [] });
    assert.deepEqual(await wrapped.state('x'), { status: 'running', pid: 2 });
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});
