import { test } from 'node:test';
import assert from 'node:assert/strict';

import { isKind } from '../../base/errors.js';
import { DEFAULT_CAPABILITIES, allCapabilities, normalizeCapability, tweakCapabilities } from './capabilities.js';

test('default set is Docker\'s 14 capabilities', () => {
  assert.equal(DEFAULT_CAPABILITIES.length, 14);
  assert.ok(DEFAULT_CAPABILITIES.includes('CAP_NET_BIND_SERVICE'));
  assert.ok(!DEFAULT_CAPABILITIES.includes('CAP_SYS_ADMIN'));
  assert.ok(!DEFAULT_CAPABILITIES.includes('CAP_NET_ADMIN'));
});

test('add/drop with and without CAP_ prefix, any case', () => {
  const caps = tweakCapabilities(DEFAULT_CAPABILITIES, ['net_admin', 'CAP_SYS_PTRACE'], ['chown', 'CAP_KILL'], false);
  assert.ok(caps.includes('CAP_NET_ADMIN'));
  assert.ok(caps.includes('CAP_SYS_PTRACE'));
  assert.ok(!caps.includes('CAP_CHOWN'));
  assert.ok(!caps.includes('CAP_KILL'));
  assert.equal(caps.length, 14);
});

test('ALL semantics', () => {
  assert.deepEqual(tweakCapabilities(DEFAULT_CAPABILITIES, [], ['ALL'], false), []);
  assert.deepEqual(tweakCapabilities(DEFAULT_CAPABILITIES, ['NET_RAW'], ['all'], false), ['CAP_NET_RAW']);
  const all = tweakCapabilities(DEFAULT_CAPABILITIES, ['ALL'], ['SYS_ADMIN'], false);
  assert.ok(!all.includes('CAP_SYS_ADMIN'));
  assert.equal(all.length, allCapabilities().length - 1);
});

test('privileged gets every capability the kernel knows', () => {
  const caps = tweakCapabilities(DEFAULT_CAPABILITIES, [], ['ALL'], true);
  assert.deepEqual(caps, allCapabilities());
  assert.ok(caps.includes('CAP_SYS_ADMIN'));
  assert.ok(caps.length > 30);
});

test('unknown capability is invalid-argument', () => {
  assert.throws(() => normalizeCapability('CAP_FLY'), (e: unknown) => isKind(e, 'invalid-argument') && /unknown capability: "CAP_FLY"/.test((e as Error).message));
  assert.throws(() => tweakCapabilities(DEFAULT_CAPABILITIES, ['fly'], [], false), /unknown capability/);
});
