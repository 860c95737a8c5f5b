import { test } from 'node:test';
import assert from 'node:assert/strict';

import { isKind } from '../../base/errors.js';
import { defaultDeviceRules, deviceFromPath, parseDeviceCgroupRule, parseDeviceSpec, resolveDevices } from './devices.js';
import { mergeTmpfsOptions, tmpfsMount, userMount } from './mounts.js';

test('tmpfs options: defaults, user options win, merged', () => {
  const m = tmpfsMount('/run', 'rw,size=64m,exec');
  assert.equal(m.type, 'tmpfs');
  assert.deepEqual(m.options, ['nosuid', 'nodev', 'rprivate', 'rw', 'size=64m', 'exec']);
  assert.deepEqual(tmpfsMount('/x', '').options, ['noexec', 'nosuid', 'nodev', 'rprivate']);
  assert.deepEqual(mergeTmpfsOptions(['size=1m', 'mode=755', 'size=2m', 'ro', 'rw', 'shared']), ['mode=755', 'size=2m', 'rw', 'shared']);
  assert.throws(() => tmpfsMount('/x', 'size=lots'), (e: unknown) => isKind(e, 'invalid-argument'));
  assert.throws(() => tmpfsMount('/x', 'mode=999'), /invalid tmpfs option/);
  assert.throws(() => tmpfsMount('rel', ''), /must be absolute/);
});

test('bind mounts: rbind, ro/rw, propagation', () => {
  assert.deepEqual(userMount({ destination: '/data', source: '/host/d', type: 'bind', readOnly: true }),
    { destination: '/data', type: 'bind', source: '/host/d', options: ['rbind', 'ro', 'rprivate'] });
  assert.deepEqual(userMount({ destination: '/v', source: '/var/lib/v', type: 'volume', readOnly: false, propagation: 'rshared' }).options,
    ['rbind', 'rw', 'rshared']);
  assert.throws(() => userMount({ destination: '/v', source: '/s', type: 'bind', readOnly: false, propagation: 'bogus' }), /invalid propagation/);
  const t = userMount({ destination: '/t', source: '', type: 'tmpfs', readOnly: true, options: ['size=1m'] });
  assert.ok(t.options.includes('ro') && t.options.includes('size=1m'));
});

test('--device parsing', () => {
  assert.deepEqual(parseDeviceSpec('/dev/fuse'), { PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' });
  assert.deepEqual(parseDeviceSpec('/dev/sda:/dev/xvda'), { PathOnHost: '/dev/sda', PathInContainer: '/dev/xvda', CgroupPermissions: 'rwm' });
  assert.deepEqual(parseDeviceSpec('/dev/sda:r'), { PathOnHost: '/dev/sda', PathInContainer: '/dev/sda', CgroupPermissions: 'r' });
  assert.deepEqual(parseDeviceSpec('/dev/sda:/dev/xvda:rw'), { PathOnHost: '/dev/sda', PathInContainer: '/dev/xvda', CgroupPermissions: 'rw' });
  assert.throws(() => parseDeviceSpec('/dev/sda:/dev/xvda:rwx'), /invalid device mode/);
  assert.throws(() => parseDeviceSpec('sda'), /invalid device path/);
  assert.throws(() => parseDeviceSpec('/a:/b:r:x'), /invalid device specification/);
});

test('device cgroup rules', () => {
  assert.deepEqual(parseDeviceCgroupRule('c 1:3 rwm'), { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' });
  assert.deepEqual(parseDeviceCgroupRule('a *:* rwm'), { allow: true, type: 'a', access: 'rwm' });
  assert.throws(() => parseDeviceCgroupRule('x 1:3 rwm'), /invalid device cgroup rule/);
  const d = defaultDeviceRules();
  assert.deepEqual(d[0], { allow: false, access: 'rwm' });
  assert.ok(d.some((r) => r.major === 1 && r.minor === 3 && r.access === 'rwm'));
  assert.ok(d.some((r) => r.major === 136 && r.minor === undefined));
});

test('host device stat: /dev/null is c 1:3', async () => {
  const d = await deviceFromPath('/dev/null', '/dev/mynull');
  assert.deepEqual({ ...d, fileMode: undefined, uid: undefined, gid: undefined },
    { path: '/dev/mynull', type: 'c', major: 1, minor: 3, fileMode: undefined, uid: undefined, gid: undefined });
  const r = await resolveDevices([{ PathOnHost: '/dev/zero', PathInContainer: '/dev/z', CgroupPermissions: 'r' }]);
  assert.equal(r.devices[0]?.minor, 5);
  assert.deepEqual(r.rules, [{ allow: true, type: 'c', major: 1, minor: 5, access: 'r' }]);
});

test('missing device is invalid-argument', async () => {
  await assert.rejects(resolveDevices([{ PathOnHost: '/dev/does-not-exist', PathInContainer: '', CgroupPermissions: 'rwm' }]),
    (e: unknown) => isKind(e, 'invalid-argument') &&
      (e as Error).message === 'error gathering device information while adding custom device "/dev/does-not-exist": no such file or directory');
  await assert.rejects(resolveDevices([{ PathOnHost: '/etc/hostname', PathInContainer: '', CgroupPermissions: 'rwm' }]), /not a device node/);
});
