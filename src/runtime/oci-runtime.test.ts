import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

import { OciRuntime, processCommand } from './oci-runtime.js';

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

test('processCommand: wrapper, its arguments, the global args, then the verb', () => {
  assert.deepEqual(processCommand({ name: 'crun', path: '/usr/bin/nsenter', wrapArgs: ['--mount=/ns', '--', '/c/crun'], globalArgs: ['--root=/r'] }, ['exec', 'x']), {
    file: '/usr/bin/nsenter',
    args: ['--mount=/ns', '--', '/c/crun', '--root=/r', 'exec', 'x'],
  });
  assert.deepEqual(processCommand({ name: 'runc', path: '/usr/sbin/runc', globalArgs: [] }, ['exec']), { file: '/usr/sbin/runc', args: ['exec'] });
});

test('start of a crun container without a waiting process falls back to the binary', async () => {
  const d = await mkdtemp(join(tmpdir(), 'berth-rt-'));
  try {
    const bin = join(d, 'crun');
    await writeFile(bin, `#!/bin/sh\necho "$@" > ${join(d, 'called')}\n`);
    await chmod(bin, 0o755);
    await mkdir(join(d, 'state', 'abc'), { recursive: true });
    // a fifo nobody reads: the non-blocking open fails, so the runtime binary runs
    const fifo = join(d, 'state', 'abc', 'exec.fifo');
    assert.equal((await runCommand('mkfifo', [fifo])).code, 0);
    await new OciRuntime({ name: 'crun', path: bin, globalArgs: [`--root=${join(d, 'state')}`] }).start('abc');
    assert.match(await readFile(join(d, 'called'), 'utf8'), /start abc/);
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});

test('start of a crun container writes its exec fifo and unlinks it, as crun start does', async () => {
  const d = await mkdtemp(join(tmpdir(), 'berth-rt-'));
  try {
    await mkdir(join(d, 'abc'));
    const fifo = join(d, 'abc', 'exec.fifo');
    assert.equal((await runCommand('mkfifo', [fifo])).code, 0);
    // the waiting side, as a created container's init: reads one byte
    const reader = spawn('sh', ['-c', `head -c 1 ${fifo} | od -An -tx1`], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    reader.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const done = new Promise((r) => reader.once('exit', r));
    const rt = new OciRuntime({ name: 'crun', path: '/bin/false', globalArgs: [`--root=${d}`] });
    for (let i = 0; i < 100; i++) {
      try {
        await rt.start('abc');
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 20)); // the reader has not opened the fifo yet: /bin/false ran
      }
    }
    await done;
    assert.equal(out.trim(), '00');
    await assert.rejects(readFile(fifo), /ENOENT/);
  } finally {
    await rm(d, { recursive: true, force: true });
  }
});

function runCommand(cmd: string, args: string[]): Promise<{ code: number }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: 'ignore' });
    c.once('exit', (code) => resolve({ code: code ?? 1 }));
  });
}
