import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { isKind } from '../../base/errors.js';
import { buildExecProcess, buildRuntimeSpec, mergeEnv, rlimitsFromHostConfig } from './build-spec.js';
import { allCapabilities, DEFAULT_CAPABILITIES } from './capabilities.js';
import { convertDockerSeccomp, defaultSeccompProfile } from './seccomp.js';
import { parseSecurityOpt } from './security-opt.js';
import type { SpecInput } from './types.js';

let rootfs: string;
before(async () => {
  rootfs = await mkdtemp(path.join(tmpdir(), 'berth-spec-'));
  await mkdir(path.join(rootfs, 'etc'));
  await writeFile(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nweb:x:33:33::/var/www:/bin/sh\n');
  await writeFile(path.join(rootfs, 'etc/group'), 'root:x:0:\nweb:x:33:\n');
});
after(async () => rm(rootfs, { recursive: true, force: true }));

const ID = 'a'.repeat(64);
function input(config: Record<string, unknown> = {}, hostConfig: Record<string, unknown> = {}, extra: Partial<SpecInput> = {}): SpecInput {
  return {
    id: ID, config: { Cmd: ['sh'], ...config }, hostConfig, rootfs, mounts: [], cgroupsPath: `/berth/${ID}`,
    hostLimits: { nofileHard: 20000, cgroupVersion: 1, ncpu: 2 }, runtime: 'runc', ...extra,
  };
}

test('basic container: namespaces, process, env, mounts, masked paths', async () => {
  const s = await buildRuntimeSpec(input({ Entrypoint: ['/bin/entry'], Cmd: ['a', 'b'], Env: ['FOO=1', 'PATH=/x'], Hostname: 'h1', WorkingDir: '/w', User: 'web' }));
  assert.deepEqual(s.process.args, ['/bin/entry', 'a', 'b']);
  assert.deepEqual(s.process.env, ['PATH=/x', 'HOSTNAME=h1', 'FOO=1', 'HOME=/var/www']);
  assert.equal(s.process.cwd, '/w');
  assert.deepEqual(s.process.user, { uid: 33, gid: 33 });
  assert.equal(s.process.terminal, false);
  assert.equal(s.hostname, 'h1');
  assert.deepEqual(s.linux.namespaces.map((n) => n.type).sort(), ['ipc', 'mount', 'network', 'pid', 'uts']);
  assert.deepEqual(s.process.capabilities.bounding, DEFAULT_CAPABILITIES);
  assert.equal(s.root.readonly, false);
  assert.equal(s.root.path, rootfs);
  const dests = s.mounts.map((m) => m.destination);
  for (const d of ['/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup', '/dev/mqueue', '/dev/shm']) assert.ok(dests.includes(d), d);
  const shm = s.mounts.find((m) => m.destination === '/dev/shm')!;
  assert.ok(shm.options.includes(`size=${64 * 1024 * 1024}`));
  assert.ok(s.mounts.find((m) => m.destination === '/sys')!.options.includes('ro'));
  assert.ok(s.linux.maskedPaths!.includes('/proc/kcore'));
  assert.ok(s.linux.readonlyPaths!.includes('/proc/sys'));
  assert.ok(s.linux.seccomp, 'default seccomp');
  assert.equal(s.process.noNewPrivileges, false);
  assert.equal(s.process.oomScoreAdj, undefined);
  assert.equal(s.linux.sysctl?.['net.ipv4.ip_unprivileged_port_start'], '0');
  assert.deepEqual(s.linux.resources.devices?.[0], { allow: false, access: 'rwm' });
  JSON.parse(JSON.stringify(s));
});

test('tty adds TERM and console size; default hostname is the short id', async () => {
  const s = await buildRuntimeSpec(input({ Tty: true }, { ConsoleSize: [40, 120] }));
  assert.ok(s.process.env.includes('TERM=xterm'));
  assert.equal(s.process.terminal, true);
  assert.deepEqual(s.process.consoleSize, { height: 40, width: 120 });
  assert.equal(s.hostname, ID.slice(0, 12));
});

test('no command and relative workdir are rejected', async () => {
  await assert.rejects(buildRuntimeSpec(input({ Cmd: [] })), (e: unknown) => isKind(e, 'invalid-argument') && /No command specified/.test((e as Error).message));
  await assert.rejects(buildRuntimeSpec(input({ WorkingDir: 'rel' })), /needs to be an absolute path/);
  await assert.rejects(buildRuntimeSpec(input({ User: 'ghost' })), /unable to find user ghost: no matching entries in passwd file/);
  await assert.rejects(buildRuntimeSpec(input({}, { Memory: 1024 })), /Minimum memory limit allowed is 6MB/);
});

test('network modes: host, joined netns, user namespace', async () => {
  const host = await buildRuntimeSpec(input({}, { NetworkMode: 'host' }));
  assert.ok(!host.linux.namespaces.some((n) => n.type === 'network'));
  assert.equal(host.linux.sysctl, undefined);
  const joined = await buildRuntimeSpec(input({}, {}, { netnsPath: '/run/netns/x' }));
  assert.deepEqual(joined.linux.namespaces.find((n) => n.type === 'network'), { type: 'network', path: '/run/netns/x' });
  const map = [{ containerID: 0, hostID: 100000, size: 65536 }];
  const us = await buildRuntimeSpec(input({}, {}, { userns: { uidMap: map, gidMap: map }, netnsPath: '/run/netns/x' }));
  assert.ok(us.linux.namespaces.some((n) => n.type === 'user'));
  assert.deepEqual(us.linux.uidMappings, map);
  assert.equal(us.mounts.find((m) => m.destination === '/sys')!.type, 'bind');
  const ush = await buildRuntimeSpec(input({}, { UsernsMode: 'host' }, { userns: { uidMap: map, gidMap: map } }));
  assert.ok(!ush.linux.namespaces.some((n) => n.type === 'user'));
});

test('pid/ipc/uts host and container modes; cgroupns on v2', async () => {
  const s = await buildRuntimeSpec(input({}, { PidMode: 'host', IpcMode: 'host', UTSMode: 'host' }));
  const types = s.linux.namespaces.map((n) => n.type);
  assert.ok(!types.includes('pid') && !types.includes('ipc') && !types.includes('uts'));
  assert.equal(s.hostname, undefined);
  assert.equal(s.mounts.find((m) => m.destination === '/dev/shm')!.source, '/dev/shm');
  const c = await buildRuntimeSpec(input({}, { IpcMode: 'container:abc' }, { namespacePaths: { ipc: '/proc/9/ns/ipc' } }));
  assert.deepEqual(c.linux.namespaces.find((n) => n.type === 'ipc'), { type: 'ipc', path: '/proc/9/ns/ipc' });
  await assert.rejects(buildRuntimeSpec(input({}, { PidMode: 'container:abc' })), /no namespace path/);
  const v2 = await buildRuntimeSpec(input({}, {}, { hostLimits: { nofileHard: 20000, cgroupVersion: 2, ncpu: 2 } }));
  assert.ok(v2.linux.namespaces.some((n) => n.type === 'cgroup'));
});

test('privileged: all caps, host devices, no masks, no seccomp, rw sys', async () => {
  const s = await buildRuntimeSpec(input({}, { Privileged: true, CapDrop: ['ALL'] }));
  assert.deepEqual(s.process.capabilities.effective, allCapabilities());
  assert.equal(s.linux.maskedPaths, undefined);
  assert.equal(s.linux.readonlyPaths, undefined);
  assert.equal(s.linux.seccomp, undefined);
  assert.deepEqual(s.linux.resources.devices, [{ allow: true, access: 'rwm' }]);
  assert.ok(s.linux.devices.some((d) => d.path === '/dev/null' && d.major === 1 && d.minor === 3));
  assert.ok(!s.linux.devices.some((d) => d.path.startsWith('/dev/pts/')));
  assert.ok(s.mounts.find((m) => m.destination === '/sys')!.options.includes('rw'));
});

test('cap add/drop reach the process', async () => {
  const s = await buildRuntimeSpec(input({}, { CapAdd: ['NET_ADMIN'], CapDrop: ['CAP_CHOWN'] }));
  assert.ok(s.process.capabilities.permitted.includes('CAP_NET_ADMIN'));
  assert.ok(!s.process.capabilities.permitted.includes('CAP_CHOWN'));
  const none = await buildRuntimeSpec(input({}, { CapDrop: ['all'] }));
  assert.deepEqual(none.process.capabilities.effective, []);
});

test('mounts: readonly rootfs, tmpfs map, user binds override defaults, etc files, init, shm', async () => {
  const s = await buildRuntimeSpec(input({ Cmd: ['app'] }, { ReadonlyRootfs: true, Tmpfs: { '/run': 'rw,size=64m' }, Init: true, ShmSize: 1048576 }, {
    mounts: [
      { destination: '/data/sub', source: '/h/sub', type: 'bind', readOnly: false },
      { destination: '/data', source: '/h/data', type: 'volume', readOnly: true },
      { destination: '/etc/hosts', source: '/h/myhosts', type: 'bind', readOnly: true },
    ],
    etcFiles: { hosts: '/st/hosts', resolvConf: '/st/resolv.conf', hostname: '/st/hostname' },
    initPath: '/usr/bin/tini-static',
  }));
  assert.equal(s.root.readonly, true);
  assert.deepEqual(s.process.args, ['/sbin/docker-init', '--', 'app']);
  const by = (d: string) => s.mounts.filter((m) => m.destination === d);
  assert.equal(by('/etc/hosts').length, 1);
  assert.equal(by('/etc/hosts')[0]!.source, '/h/myhosts');
  assert.deepEqual(by('/etc/resolv.conf')[0]!.options, ['rbind', 'rprivate', 'ro']);
  assert.deepEqual(by('/sbin/docker-init')[0]!.source, '/usr/bin/tini-static');
  assert.ok(by('/run')[0]!.options.includes('size=64m'));
  assert.ok(by('/dev/shm')[0]!.options.includes('size=1048576'));
  const order = s.mounts.map((m) => m.destination);
  assert.ok(order.indexOf('/data') < order.indexOf('/data/sub'), 'parents first');
  assert.ok(order.indexOf('/dev') < order.indexOf('/dev/pts'));
  await assert.rejects(buildRuntimeSpec(input({}, { Init: true })), (e: unknown) => isKind(e, 'failed-precondition'));
  const bound = await buildRuntimeSpec(input({}, {}, { shmPath: '/run/berth/shm/x' }));
  assert.equal(bound.mounts.find((m) => m.destination === '/dev/shm')!.type, 'bind');
  const mountedShm = await buildRuntimeSpec(input({}, {}, { mounts: [{ destination: '/dev/shm', source: '/h/shm', type: 'bind', readOnly: false }] }));
  assert.equal(mountedShm.mounts.filter((m) => m.destination === '/dev/shm').length, 1);
  assert.equal(mountedShm.mounts.find((m) => m.destination === '/dev/shm')!.source, '/h/shm');
});

test('rlimits: ulimits mapped, NOFILE clamped to host hard limit, default NOFILE', () => {
  const host = { nofileHard: 20000, cgroupVersion: 1 as const, ncpu: 2 };
  assert.deepEqual(rlimitsFromHostConfig({}, host), [{ type: 'RLIMIT_NOFILE', hard: 20000, soft: 20000 }]);
  assert.deepEqual(rlimitsFromHostConfig({ Ulimits: [{ Name: 'nofile', Soft: 1024, Hard: 1048576 }, { Name: 'nproc', Soft: 10, Hard: 20 }] }, host), [
    { type: 'RLIMIT_NOFILE', hard: 20000, soft: 1024 },
    { type: 'RLIMIT_NPROC', hard: 20, soft: 10 },
  ]);
  assert.deepEqual(rlimitsFromHostConfig({ Ulimits: [{ Name: 'nofile', Soft: 65536, Hard: 65536 }] }, host), [{ type: 'RLIMIT_NOFILE', hard: 20000, soft: 20000 }]);
  assert.deepEqual(rlimitsFromHostConfig({}, { ...host, nofileHard: 4096 }), [{ type: 'RLIMIT_NOFILE', hard: 4096, soft: 4096 }]);
});

test('oomScoreAdj: positive kept, negative never written', async () => {
  assert.equal((await buildRuntimeSpec(input({}, { OomScoreAdj: 500 }))).process.oomScoreAdj, 500);
  assert.equal((await buildRuntimeSpec(input({}, { OomScoreAdj: -500 }))).process.oomScoreAdj, undefined);
});

test('devices and resources land in linux', async () => {
  const s = await buildRuntimeSpec(input({}, {
    Devices: [{ PathOnHost: '/dev/null', PathInContainer: '/dev/mynull', CgroupPermissions: 'rw' }],
    DeviceCgroupRules: ['c 42:* rmw'], Memory: 64 * 1024 * 1024, NanoCpus: 5e8, PidsLimit: 50,
  }));
  assert.ok(s.linux.devices.some((d) => d.path === '/dev/mynull' && d.major === 1 && d.minor === 3));
  assert.ok(s.linux.resources.devices!.some((r) => r.major === 1 && r.minor === 3 && r.access === 'rw'));
  assert.ok(s.linux.resources.devices!.some((r) => r.major === 42 && r.minor === undefined));
  assert.equal(s.linux.resources.cpu?.quota, 50000);
  assert.equal(s.linux.resources.memory?.limit, 64 * 1024 * 1024);
  assert.equal(s.linux.resources.pids?.limit, 50);
  await assert.rejects(buildRuntimeSpec(input({}, { Devices: [{ PathOnHost: '/dev/nope' }] })), (e: unknown) => isKind(e, 'invalid-argument'));
});

test('sysctls: namespaced ones allowed, host-namespace ones rejected', async () => {
  const s = await buildRuntimeSpec(input({}, { Sysctls: { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '100' } }));
  assert.equal(s.linux.sysctl?.['net.ipv4.ip_forward'], '1');
  await assert.rejects(buildRuntimeSpec(input({}, { NetworkMode: 'host', Sysctls: { 'net.ipv4.ip_forward': '1' } })), /not allowed in the host network namespace/);
  await assert.rejects(buildRuntimeSpec(input({}, { Sysctls: { 'vm.swappiness': '1' } })), /is not whitelisted/);
});

test('security opts: no-new-privileges forms, seccomp unconfined, systempaths', async () => {
  for (const o of ['no-new-privileges', 'no-new-privileges:true', 'no-new-privileges=true']) {
    assert.equal((await buildRuntimeSpec(input({}, { SecurityOpt: [o] }))).process.noNewPrivileges, true, o);
  }
  assert.equal((await buildRuntimeSpec(input({}, { SecurityOpt: ['no-new-privileges=false'] }))).process.noNewPrivileges, false);
  assert.equal((await buildRuntimeSpec(input({}, { SecurityOpt: ['seccomp=unconfined'] }))).linux.seccomp, undefined);
  assert.equal((await buildRuntimeSpec(input({}, { SecurityOpt: ['systempaths=unconfined'] }))).linux.maskedPaths, undefined);
  assert.equal((await buildRuntimeSpec(input({}, {}, { runtime: 'runsc' }))).linux.seccomp, undefined);
  assert.throws(() => parseSecurityOpt(['bogus=1']), /invalid --security-opt 2: "bogus=1"/);
  assert.throws(() => parseSecurityOpt(['bogus']), /invalid --security-opt 1: "bogus"/);
  assert.throws(() => parseSecurityOpt(['no-new-privileges=maybe']), /invalid --security-opt/);
  await assert.rejects(buildRuntimeSpec(input({}, { SecurityOpt: ['seccomp=/nonexistent/profile.json'] })), /opening seccomp profile/);
});

test('default seccomp profile: allow by default, EPERM denylist lifted by capabilities', () => {
  const p = defaultSeccompProfile(DEFAULT_CAPABILITIES);
  assert.equal(p.defaultAction, 'SCMP_ACT_ALLOW');
  if (process.arch === 'x64') assert.deepEqual(p.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  const denied = p.syscalls!.filter((s) => !s.args && s.errnoRet === 1).flatMap((s) => s.names);
  for (const n of ['kexec_load', 'init_module', 'finit_module', 'delete_module', 'open_by_handle_at', 'bpf', 'perf_event_open',
    'ptrace', 'mount', 'umount2', 'reboot', 'swapon', 'swapoff', 'acct', 'settimeofday', 'clock_settime', 'keyctl', 'add_key',
    'request_key', 'userfaultfd', 'unshare', 'setns']) assert.ok(denied.includes(n), n);
  assert.ok(p.syscalls!.some((s) => s.names.includes('clone3') && s.errnoRet === 38));
  assert.ok(p.syscalls!.some((s) => s.names.includes('clone') && s.args?.[0]?.value === 0x10000000));
  const admin = defaultSeccompProfile([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN', 'CAP_SYS_PTRACE']);
  const adminDenied = admin.syscalls!.flatMap((s) => s.names);
  assert.ok(!adminDenied.includes('mount') && !adminDenied.includes('ptrace') && !adminDenied.includes('clone'));
  assert.ok(adminDenied.includes('keyctl') && adminDenied.includes('kexec_load'));
});

test('Docker-format seccomp profile conversion', async () => {
  const docker = {
    defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 1,
    archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] },
      { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] }],
    syscalls: [
      { names: ['read', 'write'], action: 'SCMP_ACT_ALLOW' },
      { names: ['mount'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
      { names: ['chown'], action: 'SCMP_ACT_ALLOW', excludes: { caps: ['CAP_CHOWN'] } },
      { names: ['arch_prctl'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64'] } },
      { names: ['newer'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '99.0' } },
      { name: 'personality', action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 8, valueTwo: 0, op: 'SCMP_CMP_EQ' }] },
    ],
  };
  const o = convertDockerSeccomp(JSON.stringify(docker), DEFAULT_CAPABILITIES);
  assert.equal(o.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(o.defaultErrnoRet, 1);
  const names = o.syscalls!.flatMap((s) => s.names);
  assert.ok(names.includes('read') && names.includes('personality'));
  assert.ok(!names.includes('mount'), 'includes.caps not held');
  assert.ok(!names.includes('chown'), 'excludes.caps held');
  assert.ok(!names.includes('newer'), 'minKernel');
  assert.deepEqual(o.syscalls!.find((s) => s.names[0] === 'personality')!.args, [{ index: 0, value: 8, op: 'SCMP_CMP_EQ' }]);
  if (process.arch === 'x64') {
    assert.deepEqual(o.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
    assert.ok(names.includes('arch_prctl'));
  }
  assert.ok(convertDockerSeccomp(docker, ['CAP_SYS_ADMIN']).syscalls!.some((s) => s.names.includes('mount')));
  assert.throws(() => convertDockerSeccomp('{not json', []), /Decoding seccomp profile failed/);
  assert.throws(() => convertDockerSeccomp({ ...docker, architectures: ['SCMP_ARCH_X86_64'] }, []), /use either 'architectures' or 'archMap'/);
  // Inline JSON in SecurityOpt (what the docker CLI sends) and a profile file path both work.
  const inline = await buildRuntimeSpec(input({}, { SecurityOpt: [`seccomp=${JSON.stringify(docker)}`] }));
  assert.equal(inline.linux.seccomp?.defaultAction, 'SCMP_ACT_ERRNO');
  const file = path.join(rootfs, 'profile.json');
  await writeFile(file, JSON.stringify(docker));
  const fromFile = await buildRuntimeSpec(input({}, { SecurityOpt: [`seccomp=${file}`] }));
  assert.equal(fromFile.linux.seccomp?.defaultErrnoRet, 1);
});

test('exec process: env merge, TERM, user/cwd override, privileged caps', async () => {
  const base = input({ Env: ['A=1', 'B=2'], User: 'web', WorkingDir: '/srv', Hostname: 'hx' }, { CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'] });
  const p = await buildExecProcess({ base, cmd: ['ls', '-l'], env: ['B=3', 'C=4'], tty: true, consoleSize: [24, 80] });
  assert.deepEqual(p.args, ['ls', '-l']);
  assert.deepEqual(p.env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=hx', 'TERM=xterm', 'A=1', 'B=3', 'C=4', 'HOME=/var/www']);
  assert.deepEqual(p.user, { uid: 33, gid: 33 });
  assert.equal(p.cwd, '/srv');
  assert.deepEqual(p.capabilities.effective, []);
  assert.equal(p.noNewPrivileges, true);
  assert.deepEqual(p.consoleSize, { height: 24, width: 80 });
  const q = await buildExecProcess({ base, cmd: ['id'], user: '0:0', workingDir: '/', tty: false, privileged: true });
  assert.deepEqual(q.user, { uid: 0, gid: 0 });
  assert.equal(q.cwd, '/');
  assert.deepEqual(q.capabilities.bounding, allCapabilities());
  assert.ok(!q.env.includes('TERM=xterm'));
  await assert.rejects(buildExecProcess({ base, cmd: [], tty: false }), /No command specified/);
});

test('mergeEnv replaces by key and removes bare keys', () => {
  assert.deepEqual(mergeEnv(['A=1', 'B=2'], ['B=x', 'C=3', 'A']), ['B=x', 'C=3']);
});
