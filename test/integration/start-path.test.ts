/**
 * The container start path of issue 7: crun from a read-only bind (no self-copy), on a hybrid cgroup
 * host through one persistent mount namespace, `run --rm` answering before its physical cleanup,
 * exec output ending when conmon has exited, and what the daemon leaves on the host.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rm } from 'node:fs/promises';

import { startDaemon, cleanup, importBusybox, requireRoot, requireBuilt, requireBinary, firstSkip, waitFor, runCommand, parseMountInfo, mountsUnder, type TestDaemon } from './harness.js';

const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), requireBinary('crun'));
let h: TestDaemon;

before(async () => {
  if (skip) return;
  h = await startDaemon();
  await importBusybox(h);
});

after(async () => {
  if (h) await cleanup(h);
});

const mounts = (): string[] => mountsUnder(parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')), h.dataRoot);
const crunState = (): string[] => {
  const d = join(h.dataRoot, 'runtime', 'crun');
  return existsSync(d) ? readdirSync(d) : [];
};
const containerDirs = (): string[] => readdirSync(join(h.dataRoot, 'containers'));
const hybrid = existsSync('/sys/fs/cgroup/unified/cgroup.controllers') && readFileSync('/sys/fs/cgroup/unified/cgroup.controllers', 'utf8').trim() !== '';

test('crun runs from a read-only bind; on a hybrid host conmon enters one namespace that hides the cgroup2 controllers', { skip }, async () => {
  const ro = join(h.dataRoot, 'runtime', 'bin', 'crun');
  const m = parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')).find((e) => e.mountPoint === ro);
  assert.ok(m, 'crun is bind-mounted into the data root');
  const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === ro)!;
  assert.match(line.split(' ')[5]!, /^ro\b/, 'the bind is read-only');
  const info = await h.cliOk(['info', '--format', '{{json .Warnings}}']);
  if (!hybrid) return;
  assert.match(info, /mount namespace with the cgroup2 controllers hidden/);
  const ns = join(h.dataRoot, 'runtime', 'ns', 'mnt');
  const inside = await runCommand('nsenter', [`--mount=${ns}`, '--', 'cat', '/sys/fs/cgroup/unified/cgroup.controllers']);
  assert.equal(inside.code, 0, inside.stderr);
  assert.equal(inside.stdout.trim(), '', 'the controller list reads empty inside the namespace');
  assert.notEqual(readFileSync('/sys/fs/cgroup/unified/cgroup.controllers', 'utf8').trim(), '', 'and is untouched on the host');
  // a rootfs mounted after the namespace was made is visible inside it (the data root is shared)
  const id = (await h.cliOk(['run', '-d', '--network', 'none', 'busybox', 'sleep', '60'])).trim();
  const ls = await runCommand('nsenter', [`--mount=${ns}`, '--', 'ls', join(h.dataRoot, 'containers', id, 'rootfs', 'bin')]);
  assert.match(ls.stdout, /busybox/);
  const ex = await h.cliOk(['exec', id, 'cat', '/proc/self/cgroup']);
  assert.match(ex, new RegExp(`memory:/berth/${id}`), 'exec joins the container cgroups (v1 controllers)');
  await h.cliOk(['rm', '-f', id]);
});

test('warming the cgroup-attach lock leaves berthd where it was; containers and execs get their own cgroups; none writes no network record', { skip }, async () => {
  const pid = h.pid!;
  const own = (): string => readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  const before = own();
  const id = (await h.cliOk(['run', '-d', '--network', 'none', 'busybox', 'sleep', '60'])).trim();
  const ex = await h.cliOk(['exec', id, 'cat', '/proc/self/cgroup']);
  const ctr = readFileSync(`/proc/${Number((await h.cliOk(['inspect', '-f', '{{.State.Pid}}', id])).trim())}/cgroup`, 'utf8');
  for (const text of [ex, ctr]) {
    const line = text.split('\n').find((l) => l.split(':')[1] === 'pids' || l.startsWith('0::'))!;
    assert.ok(line.endsWith(`/berth/${id}`), `in the container's cgroup: ${line}`);
  }
  assert.equal(own(), before, "berthd's own cgroups are unchanged");
  assert.ok(!existsSync(join(h.dataRoot, 'networks', 'containers', `${id}.json`)), 'no network record for --network none');
  const r = await h.cli(['run', '--rm', '--network', 'none', 'busybox', 'true']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(own(), before);
  await h.cliOk(['rm', '-f', id]);
});

test('exec output is complete and exec returns although the host is slow to reap conmon', { skip }, async () => {
  const id = (await h.cliOk(['run', '-d', '--network', 'none', 'busybox', 'sleep', '60'])).trim();
  for (let i = 0; i < 3; i++) {
    const out = await h.cliOk(['exec', id, 'sh', '-c', 'seq 1 2000; echo end'], { timeoutMs: 20_000 });
    assert.ok(out.endsWith('1999\n2000\nend\n'), 'the last lines arrive');
  }
  await h.cliOk(['rm', '-f', id]);
});

test('run --rm: gone from the API at once; its mount, runtime record and directory follow', { skip }, async () => {
  const before = containerDirs().length;
  for (let i = 0; i < 3; i++) {
    const r = await h.cli(['run', '--rm', '--network', 'none', 'busybox', 'sh', '-c', 'echo out; exit 3']);
    assert.equal(r.code, 3);
    assert.equal(r.stdout, 'out\n');
  }
  assert.equal((await h.cliOk(['ps', '-aq'])).trim(), '');
  await waitFor(async () => containerDirs().length === before && crunState().length === 0 && !mounts().some((p) => p.includes('/containers/')), 10_000);
});

test('only --rm containers get a volatile upper layer (its unmount does not sync the host); others keep a durable one', { skip }, async () => {
  // super options (after the " - fstype source" separator) of the overlay mounted at the rootfs;
  // newer kernels show the option as fsync=volatile
  const superOpts = (id: string): string => {
    const line = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').find((l) => l.split(' ')[4] === join(h.dataRoot, 'containers', id, 'rootfs'));
    assert.ok(line, `rootfs of ${id.slice(0, 12)} mounted`);
    const post = line.split(' - ')[1]!.split(' ');
    return post[2] ?? '';
  };
  const rm = (await h.cliOk(['run', '-d', '--rm', '--network', 'none', 'busybox', 'sleep', '60'])).trim();
  const keep = (await h.cliOk(['run', '-d', '--network', 'none', 'busybox', 'sleep', '60'])).trim();
  try {
    assert.match(superOpts(rm), /(^|,)(fsync=)?volatile(,|$)/);
    assert.doesNotMatch(superOpts(keep), /(^|,)(fsync=)?volatile(,|$)/);
  } finally {
    await h.cli(['rm', '-f', rm, keep]);
  }
});

test('a runtime record left by a crash between a removal and its runtime delete is removed at the next start', { skip }, async () => {
  const id = (await h.cliOk(['run', '-d', '--network', 'none', 'busybox', 'sleep', '300'])).trim();
  const pid = Number((await h.cliOk(['inspect', '-f', '{{.State.Pid}}', id])).trim());
  await h.kill9();
  // what the removal leaves if the daemon dies right after dropping the record
  await rm(join(h.dataRoot, 'containers', id, 'container.json'));
  assert.ok(crunState().includes(id));
  await h.restart();
  await waitFor(async () => !crunState().includes(id) && !existsSync(join(h.dataRoot, 'containers', id)), 15_000);
  await waitFor(async () => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  }, 10_000);
  assert.ok(!mounts().some((p) => p.includes(id)), 'its rootfs is unmounted');
});

test('a stopped daemon with no containers leaves no mount under its data root', { skip }, async () => {
  assert.ok(mounts().length > 0, 'the daemon holds its mounts while running');
  await h.stop();
  assert.deepEqual(mounts(), []);
  await h.restart();
  assert.equal((await h.cli(['run', '--rm', '--network', 'none', 'busybox', 'true'])).code, 0);
});

test('a bind source mounted on the host after the daemon started is what a new container sees', { skip }, async () => {
  const dir = join(h.baseDir, 'late-mount');
  mkdirSync(dir, { recursive: true });
  const m = await runCommand('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
  assert.equal(m.code, 0, m.stderr);
  try {
    writeFileSync(join(dir, 'f'), 'on the tmpfs\n');
    const out = await h.cliOk(['run', '--rm', '--network', 'none', '-v', `${dir}:/x`, 'busybox', 'cat', '/x/f']);
    assert.equal(out, 'on the tmpfs\n');
  } finally {
    await runCommand('umount', [dir]);
  }
});
