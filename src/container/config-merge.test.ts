import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeConfig, mergeEnv, normaliseSignal, validateRestartPolicy, normaliseHostConfig } from './config-merge.js';

const img = { config: { Cmd: ['sh'], Env: ['PATH=/bin', 'A=1'], WorkingDir: '/w' } };

test('user Cmd replaces image Cmd; env merges by key', () => {
  const c = mergeConfig({ Cmd: ['echo', 'hi'], Env: ['A=2'] }, img, 'busybox', 'a'.repeat(64));
  assert.deepEqual(c['Cmd'], ['echo', 'hi']);
  assert.deepEqual(c['Env'], ['PATH=/bin', 'A=2']);
  assert.equal(c['WorkingDir'], '/w');
  assert.equal(c['Hostname'], 'aaaaaaaaaaaa');
});

test('entrypoint override drops image Cmd', () => {
  const c = mergeConfig({ Entrypoint: ['cat'] }, img, 'busybox', 'b'.repeat(64));
  assert.deepEqual(c['Entrypoint'], ['cat']);
  assert.equal(c['Cmd'], null);
});

test('no command is an error', () => {
  assert.throws(() => mergeConfig({}, { config: {} }, 'x', 'c'.repeat(64)), /no command specified/);
});

test('env merge keeps order of first appearance', () => {
  assert.deepEqual(mergeEnv(['A=1', 'B=2'], ['B=3', 'C=4']), ['A=1', 'B=3', 'C=4']);
});

test('signals normalise and reject junk', () => {
  assert.equal(normaliseSignal('SIGKILL'), 'KILL');
  assert.equal(normaliseSignal('hup'), 'HUP');
  assert.equal(normaliseSignal('9'), '9');
  assert.equal(normaliseSignal(undefined), 'TERM');
  assert.throws(() => normaliseSignal('NOPE'), /invalid signal/);
});

test('restart policy validation', () => {
  assert.throws(() => validateRestartPolicy(normaliseHostConfig({ RestartPolicy: { Name: 'sometimes' } })), /invalid restart policy/);
  assert.throws(() => validateRestartPolicy(normaliseHostConfig({ AutoRemove: true, RestartPolicy: { Name: 'always' } })), /AutoRemove/);
  validateRestartPolicy(normaliseHostConfig({ RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 } }));
});
