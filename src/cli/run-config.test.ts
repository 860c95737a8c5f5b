import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parseArgs } from './args.js';
import { buildCreateRequest, containerFlags, parseDurationNs, parseMount, parsePublish, parseUlimit, runOnlyFlags } from './run-config.js';

const specs = [...containerFlags, ...runOnlyFlags];
const env = { readFile: (p: string) => (p === 'f.env' ? '# c\nX=1\n\nHOMEVAR\n' : ''), getenv: (n: string) => (n === 'HOMEVAR' ? '/root' : n === 'FOO' ? 'bar' : undefined) };

function build(argv: string[], extra: { detach?: boolean; autoRemove?: boolean; consoleSize?: [number, number] } = {}): Record<string, unknown> {
  return buildCreateRequest(parseArgs(argv, specs, { stopAtPositional: true }), { ...env, ...extra }).body;
}

test('-it --rm: stdin/tty/attach fields and AutoRemove, ConsoleSize', () => {
  const b = build(['-it', '--rm', 'busybox', 'sh'], { autoRemove: true, consoleSize: [40, 100] });
  assert.equal(b['Tty'], true);
  assert.equal(b['OpenStdin'], true);
  assert.equal(b['StdinOnce'], true);
  assert.equal(b['AttachStdin'], true);
  assert.deepEqual(b['Cmd'], ['sh']);
  const h = b['HostConfig'] as Record<string, unknown>;
  assert.equal(h['AutoRemove'], true);
  assert.deepEqual(h['ConsoleSize'], [40, 100]);
  assert.deepEqual(b['NetworkingConfig'], { EndpointsConfig: { default: {} } });
});

test('env, env-file, labels, entrypoint, volumes, resources', () => {
  const b = build(['--env-file', 'f.env', '-e', 'FOO', '-e', 'A=B', '-l', 'k=v', '--entrypoint', '', '-v', '/data', '-v', '/tmp:/x:ro',
    '-m', '64m', '--cpus', '1.5', '--pids-limit', '10', '--ulimit', 'nofile=100:200', '--tmpfs', '/run:size=1m', '--cap-add', 'NET_ADMIN',
    '--device', '/dev/fuse', '--init', '--read-only', '--privileged', '--stop-timeout', '3', '--mount', 'type=bind,source=/a,target=/b,readonly',
    '--network', 'mynet', '--add-host', 'h=1.2.3.4', '--dns', '8.8.8.8', '--no-healthcheck', 'img']);
  assert.deepEqual(b['Env'], ['X=1', 'HOMEVAR=/root', 'FOO=bar', 'A=B']);
  assert.deepEqual(b['Labels'], { k: 'v' });
  assert.deepEqual(b['Entrypoint'], ['']);
  assert.deepEqual(b['Volumes'], { '/data': {} });
  assert.equal(b['Cmd'], null);
  assert.equal(b['StopTimeout'], 3);
  assert.deepEqual(b['Healthcheck'], { Test: ['NONE'] });
  const h = b['HostConfig'] as Record<string, unknown>;
  assert.deepEqual(h['Binds'], ['/tmp:/x:ro']);
  assert.equal(h['Memory'], 64 * 1024 * 1024);
  assert.equal(h['NanoCpus'], 1.5e9);
  assert.equal(h['PidsLimit'], 10);
  assert.deepEqual(h['Ulimits'], [{ Name: 'nofile', Soft: 100, Hard: 200 }]);
  assert.deepEqual(h['Tmpfs'], { '/run': 'size=1m' });
  assert.deepEqual(h['CapAdd'], ['NET_ADMIN']);
  assert.deepEqual(h['Devices'], [{ PathOnHost: '/dev/fuse', PathInContainer: '/dev/fuse', CgroupPermissions: 'rwm' }]);
  assert.equal(h['Init'], true);
  assert.equal(h['ReadonlyRootfs'], true);
  assert.equal(h['Privileged'], true);
  assert.deepEqual(h['Mounts'], [{ Type: 'bind', Source: '/a', Target: '/b', ReadOnly: true }]);
  assert.equal(h['NetworkMode'], 'mynet');
  assert.deepEqual(h['ExtraHosts'], ['h:1.2.3.4']);
  assert.deepEqual(h['Dns'], ['8.8.8.8']);
  assert.deepEqual(b['NetworkingConfig'], { EndpointsConfig: { mynet: {} } });
});

test('detach clears attach flags; restart policy parsing and conflicts', () => {
  const b = build(['-d', '--restart', 'on-failure:3', 'img'], { detach: true });
  assert.equal(b['AttachStdout'], false);
  assert.deepEqual((b['HostConfig'] as Record<string, unknown>)['RestartPolicy'], { Name: 'on-failure', MaximumRetryCount: 3 });
  assert.throws(() => build(['--restart', 'sometimes', 'img']), /invalid restart policy/);
  assert.throws(() => build(['--rm', '--restart', 'always', 'img'], { autoRemove: true }), /Conflicting options/);
});

test('publish specs', () => {
  assert.deepEqual(parsePublish('8080:80'), [{ port: '80/tcp', binding: { HostIp: '', HostPort: '8080' } }]);
  assert.deepEqual(parsePublish('127.0.0.1:53:53/udp'), [{ port: '53/udp', binding: { HostIp: '127.0.0.1', HostPort: '53' } }]);
  assert.deepEqual(parsePublish('80'), [{ port: '80/tcp', binding: { HostIp: '', HostPort: '' } }]);
  assert.deepEqual(parsePublish('[::1]:80:80').map((x) => x.binding.HostIp), ['::1']);
  assert.deepEqual(parsePublish('8000-8002:80-82'), [80, 81, 82].map((p, i) => ({ port: `${p}/tcp`, binding: { HostIp: '', HostPort: String(8000 + i) } })));
  assert.deepEqual(parsePublish('127.0.0.1:9000-9001:9000-9001/udp').map((x) => [x.port, x.binding.HostIp, x.binding.HostPort]), [['9000/udp', '127.0.0.1', '9000'], ['9001/udp', '127.0.0.1', '9001']]);
  assert.deepEqual(parsePublish('8000-8010:80'), [{ port: '80/tcp', binding: { HostIp: '', HostPort: '8000-8010' } }]);
  assert.deepEqual(parsePublish('80-81').map((x) => x.binding.HostPort), ['', '']);
  assert.throws(() => parsePublish('8000-8001:80-82'), /^UsageError: invalid ranges specified for container and host Ports: 80-82 and 8000-8001$|invalid ranges specified for container and host Ports: 80-82 and 8000-8001/);
  assert.throws(() => parsePublish('8000:80-82'), /invalid ranges specified for container and host Ports: 80-82 and 8000/);
  const b = build(['--expose', '7000-7002', '--expose', '53/udp', '-p', '8000-8001:80-81', 'busybox']);
  assert.deepEqual(Object.keys(b['ExposedPorts'] as object).sort(), ['53/udp', '7000/tcp', '7001/tcp', '7002/tcp', '80/tcp', '81/tcp']);
  assert.deepEqual((b['HostConfig'] as Record<string, unknown>)['PortBindings'], { '80/tcp': [{ HostIp: '', HostPort: '8000' }], '81/tcp': [{ HostIp: '', HostPort: '8001' }] });
  assert.throws(() => build(['--expose', '7002-7000', 'busybox']), /invalid range format for --expose: 7002-7000/);
  assert.throws(() => parsePublish('a:b'));
});

test('durations, mounts, ulimits', () => {
  assert.equal(parseDurationNs('1m30s'), 90e9);
  assert.equal(parseDurationNs('500ms'), 5e8);
  assert.equal(parseDurationNs('10'), 10e9);
  assert.throws(() => parseDurationNs('abc'));
  assert.throws(() => parseMount('type=bind,source=/a'), /target is required/);
  assert.deepEqual(parseMount('type=tmpfs,dst=/t,tmpfs-size=1k'), { Type: 'tmpfs', Target: '/t', TmpfsOptions: { SizeBytes: 1024 } });
  assert.throws(() => parseUlimit('nofile=10:5'), /soft limit/);
});
