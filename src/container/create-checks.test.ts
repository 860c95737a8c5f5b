import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkCreateSettings } from './create-checks.js';

test('create checks: ports, stop signal, healthcheck, bind sources (moby wording)', () => {
  checkCreateSettings({ StopSignal: 'SIGUSR1', Healthcheck: { Interval: 1e9, Retries: 3 } }, { PortBindings: { '80/tcp': [{ HostPort: '' }, { HostPort: '8080' }], '53/udp': [{ HostPort: '5300-5310' }] }, Mounts: [{ Type: 'bind', Source: '/tmp', Target: '/x' }] });
  assert.throws(() => checkCreateSettings({}, { PortBindings: { '80/tcp': [{ HostPort: '99999' }] } }), /^EngineError: invalid port specification: "99999"$/);
  assert.throws(() => checkCreateSettings({}, { PortBindings: { '80/tcp': [{ HostPort: '-1' }] } }), /invalid port specification: "-1"/);
  assert.throws(() => checkCreateSettings({}, { PortBindings: { 'abc/tcp': [] } }), /invalid port specification: "abc"/);
  assert.throws(() => checkCreateSettings({ StopSignal: 'NOPE' }, {}), /Invalid signal: NOPE/);
  assert.throws(() => checkCreateSettings({ Healthcheck: { Interval: -5 } }, {}), /Interval in Healthcheck cannot be less than 1ms/);
  assert.throws(() => checkCreateSettings({ Healthcheck: { Retries: -1 } }, {}), /Retries in Healthcheck cannot be negative/);
  assert.throws(() => checkCreateSettings({}, { Mounts: [{ Type: 'bind', Source: '/nonexistent-berth', Target: '/x' }] }), /bind source path does not exist: \/nonexistent-berth/);
});
