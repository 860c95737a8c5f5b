import { test } from 'node:test';
import assert from 'node:assert/strict';

import { mergeRanges } from './port-ranges.js';
import type { PortMapping } from './netavark.js';

const m = (container_port: number, host_port: number, protocol: 'tcp' | 'udp' = 'tcp', host_ip = ''): PortMapping => ({ host_ip, container_port, host_port, range: 1, protocol });

test('mergeRanges folds consecutive mappings into netavark ranges', () => {
  assert.deepEqual(mergeRanges([m(82, 8002), m(80, 8000), m(81, 8001)]), [{ ...m(80, 8000), range: 3 }]);
  // a gap on either side, another address or protocol starts a new mapping
  assert.deepEqual(mergeRanges([m(80, 8000), m(81, 8005), m(82, 8006), m(83, 8007, 'udp'), m(84, 8008, 'tcp', '127.0.0.1')]), [
    { ...m(80, 8000) },
    { ...m(81, 8005), range: 2 },
    { ...m(84, 8008, 'tcp', '127.0.0.1') },
    { ...m(83, 8007, 'udp') },
  ]);
  const input = [m(1, 2)];
  mergeRanges([...input, m(2, 3)]);
  assert.equal(input[0]!.range, 1, 'the input is not modified');
});
