import assert from 'node:assert/strict';
import { test } from 'node:test';

import { checkPsFilterKeys, portFilterMatches, portsFromConfig } from './list-filters.js';

test('ps filter keys: unknown keys are Docker errors', () => {
  checkPsFilterKeys({ label: ['a'], publish: ['80'], 'is-task': ['false'] });
  assert.throws(() => checkPsFilterKeys({ bogus: ['1'] }), /invalid filter 'bogus'/);
});

test('publish and expose filters: port, proto and ranges', () => {
  const ports = [{ PrivatePort: 80, PublicPort: 18080, Type: 'tcp' }, { PrivatePort: 9000, Type: 'tcp' }, { PrivatePort: 53, PublicPort: 5353, Type: 'udp' }];
  assert.ok(portFilterMatches('18080', ports, 'publish'));
  assert.ok(!portFilterMatches('80', ports, 'publish'));
  assert.ok(portFilterMatches('80', ports, 'expose'));
  assert.ok(portFilterMatches('9000/tcp', ports, 'expose'));
  assert.ok(!portFilterMatches('9000/udp', ports, 'expose'));
  assert.ok(!portFilterMatches('9000', ports, 'publish'));
  assert.ok(portFilterMatches('5000-6000/udp', ports, 'publish'));
  assert.ok(!portFilterMatches('5000-6000/tcp', ports, 'publish'));
  assert.throws(() => portFilterMatches('http', ports, 'publish'), /invalid filter 'publish=http'/);
  assert.throws(() => portFilterMatches('90-80', ports, 'expose'), /invalid filter/);
});

test('ports from config: exposed and bound', () => {
  assert.deepEqual(portsFromConfig({ ExposedPorts: { '9000/tcp': {}, '80/tcp': {} } }, { PortBindings: { '80/tcp': [{ HostIp: '', HostPort: '18080' }] } }), [
    { PrivatePort: 9000, Type: 'tcp' },
    { PrivatePort: 80, PublicPort: 18080, Type: 'tcp' },
  ]);
});
