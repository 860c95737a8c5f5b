/**
 * Integration-ish: runs a bundle built by buildRuntimeSpec with real runc and a busybox rootfs.
 * Skips unless root, runc on PATH and a static /bin/busybox exist.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { buildRuntimeSpec } from './build-spec.js';
import type { SpecInput } from './types.js';

function which(bin: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

const runc = which('runc');
const skip = process.getuid?.() !== 0 ? 'needs root' : !runc ? 'runc not on PATH' : !existsSync('/bin/busybox') ? 'no /bin/busybox' : false;

async function run(script: string, hostConfig: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'berth-runc-'));
  const id = `berth-spec-test-${process.pid}-${Math.random().toString(16).slice(2, 8)}`;
  try {
    const rootfs = path.join(dir, 'rootfs');
    for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp']) await mkdir(path.join(rootfs, d), { recursive: true });
    await copyFile('/bin/busybox', path.join(rootfs, 'bin/busybox'));
    await writeFile(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    const input: SpecInput = {
      id, config: { Cmd: ['/bin/busybox', 'sh', '-c', script] }, hostConfig, rootfs, mounts: [],
      cgroupsPath: `/berth-spec-test/${id}`, hostLimits: { nofileHard: 20000, cgroupVersion: 1, ncpu: 2 }, runtime: 'runc',
    };
    const spec = await buildRuntimeSpec(input);
    await writeFile(path.join(dir, 'config.json'), JSON.stringify(spec));
    const r = spawnSync(runc!, ['run', '--bundle', dir, id], { encoding: 'utf8', timeout: 30000 });
    assert.equal(r.status, 0, `runc failed: ${r.stderr}`);
    return r.stdout;
  } finally {
    spawnSync(runc!, ['delete', '--force', id]);
    await rm(dir, { recursive: true, force: true });
  }
}

test('runc runs the spec: default caps, --cap-drop ALL, nofile clamp, masked paths', { skip }, async () => {
  const def = await run('grep CapEff /proc/self/status; ulimit -n; hostname', {});
  assert.match(def, /CapEff:\s+00000000a80425fb/);
  assert.match(def, /^20000$/m);
  const none = await run('grep CapEff /proc/self/status', { CapDrop: ['ALL'] });
  assert.match(none, /CapEff:\s+0000000000000000/);
  const masked = await run('busybox cat /proc/self/mountinfo', { Memory: 64 * 1024 * 1024 });
  assert.match(masked, / \/proc\/sys ro,/, 'read-only path');
  assert.match(masked, / \/proc\/timer_list /, 'masked path');
  assert.match(masked, / \/dev\/shm /);
  const priv = await run('busybox cat /proc/self/mountinfo; grep CapEff /proc/self/status', { Privileged: true });
  assert.doesNotMatch(priv, / \/proc\/sys ro,/);
  const bnd = /^CapBnd:\s*(\w+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1];
  assert.match(priv, new RegExp(`CapEff:\\s+${bnd}`));
});

test('runc runs the spec: default seccomp blocks unshare of a user namespace', { skip }, async () => {
  const out = await run('busybox unshare -U true 2>&1; echo rc=$?', {});
  assert.match(out, /rc=[1-9]/);
  const unconfined = await run('busybox unshare -U true 2>&1; echo rc=$?', { SecurityOpt: ['seccomp=unconfined'], CapAdd: ['SYS_ADMIN'] });
  assert.match(unconfined, /rc=0/);
});
