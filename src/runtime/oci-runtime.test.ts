import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, writeFile, chmod, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { OciRuntime } from './oci-runtime.js';

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
