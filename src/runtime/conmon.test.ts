import { test } from 'node:test';
import assert from 'node:assert/strict';
import { conmonArgs, parseSyncMessage, firstJsonObject } from './conmon.js';

const base = {
  conmonPath: '/usr/bin/conmon',
  runtime: { name: 'runc', path: '/usr/sbin/runc', globalArgs: ['--root=/r'] },
  id: 'c1', cuuid: 'c1', name: 'web', bundle: '/b', pidFile: '/b/pid', conmonPidFile: '/b/conmon.pid',
  logPath: '/b/ctr.log', exitDir: '/x', socketDir: '/s', conmonLog: '/b/conmon.log', runtimeLog: '/b/rt.log',
  stdin: false, tty: false,
};

test('conmon argv carries runtime args and k8s-file log', () => {
  const a = conmonArgs(base);
  assert.ok(a.includes('k8s-file:/b/ctr.log'));
  const i = a.indexOf('--runtime-arg');
  assert.equal(a[i + 1], '--root=/r');
  assert.ok(!a.includes('-i') && !a.includes('-t'));
});

test('conmon argv for exec with tty and stdin', () => {
  const a = conmonArgs({ ...base, cuuid: 'e1', stdin: true, tty: true, execProcessSpec: '/e/process.json' });
  assert.ok(a.includes('-i') && a.includes('-t') && a.includes('-e'));
  assert.equal(a[a.indexOf('--exec-process-spec') + 1], '/e/process.json');
  assert.equal(a[a.indexOf('-u') + 1], 'e1');
});

test('conmon argv leaves stdin open only when asked (Docker StdinOnce: false)', () => {
  assert.ok(conmonArgs({ ...base, stdin: true, leaveStdinOpen: true }).includes('--leave-stdin-open'));
  assert.ok(!conmonArgs({ ...base, stdin: true }).includes('--leave-stdin-open'));
  assert.ok(!conmonArgs({ ...base, stdin: false, leaveStdinOpen: true }).includes('--leave-stdin-open'));
});

test('sync messages parse, failures carry message', () => {
  assert.deepEqual(parseSyncMessage('{"data": 1234}'), { data: 1234 });
  assert.deepEqual(parseSyncMessage('{"data": -1, "message": "boom"}'), { data: -1, message: 'boom' });
  assert.throws(() => parseSyncMessage('{"x":1}'));
});

test('the first sync message is taken whole, even when a second follows without a newline', () => {
  assert.equal(firstJsonObject('{"data": 12}{"data": 0}'), '{"data": 12}');
  assert.equal(firstJsonObject('{"data": -1, "message": "a } brace \\" quote"}\n{"data":1}'), '{"data": -1, "message": "a } brace \\" quote"}');
  assert.equal(firstJsonObject('{"data": 1'), undefined);
});

test('a wrapper runtime (nsenter): its own arguments come before the runtime global args', () => {
  const a = conmonArgs({ ...base, runtime: { name: 'crun', path: '/usr/bin/nsenter', wrapArgs: ['--mount=/ns', '--', '/c/crun'], verbPath: '/c/crun', globalArgs: ['--root=/r'] } });
  assert.equal(a[a.indexOf('-r') + 1], '/usr/bin/nsenter');
  const rargs = a.flatMap((x, i) => (a[i - 1] === '--runtime-arg' ? [x] : []));
  assert.deepEqual(rargs.slice(0, 4), ['--mount=/ns', '--', '/c/crun', '--root=/r']);
});
