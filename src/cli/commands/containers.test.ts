import { test } from 'node:test';
import assert from 'node:assert/strict';

import { displayPorts } from './containers.js';

test('displayPorts folds ranges the way docker ps does', () => {
  const t = (PrivatePort: number, PublicPort?: number, IP?: string, Type = 'tcp') => ({ PrivatePort, Type, ...(PublicPort ? { PublicPort } : {}), ...(IP ? { IP } : {}) });
  assert.equal(displayPorts([]), '');
  assert.equal(displayPorts([t(80, 8080, '0.0.0.0')]), '0.0.0.0:8080->80/tcp');
  // same number on both sides: one range
  assert.equal(displayPorts([t(9001, 9001, '127.0.0.1', 'udp'), t(9000, 9000, '127.0.0.1', 'udp')]), '127.0.0.1:9000-9001->9000-9001/udp');
  // different numbers: one entry per port, after the folded ones
  assert.equal(displayPorts([t(80, 8000, '0.0.0.0'), t(81, 8001, '0.0.0.0'), t(82, 8002, '0.0.0.0'), t(443)]), '443/tcp, 0.0.0.0:8000->80/tcp, 0.0.0.0:8001->81/tcp, 0.0.0.0:8002->82/tcp');
  // exposed only: ranges per protocol, gaps split them
  assert.equal(displayPorts([t(7000), t(7001), t(7002), t(7004), t(53, undefined, undefined, 'udp')]), '7000-7002/tcp, 53/udp, 7004/tcp'); // docker's order: closed runs first
  assert.equal(displayPorts([t(80), t(80)]), '80/tcp');
});
