import { test } from 'node:test';
import assert from 'node:assert/strict';

import { allocateIp, formatCidr, formatIp, overlaps, parseCidr, parseIp, pickSubnet, routesToCidrs } from './ipam.js';

test('parse and format round-trip; malformed input is rejected', () => {
  assert.equal(formatIp(parseIp('10.213.4.7')!), '10.213.4.7');
  assert.equal(parseIp('256.1.1.1'), undefined);
  assert.equal(formatCidr(parseCidr('10.1.2.3/24')), '10.1.2.0/24');
  assert.throws(() => parseCidr('10.1.2.0'), /invalid CIDR/);
  assert.throws(() => parseCidr('10.1.2.0/33'), /invalid CIDR/);
  assert.throws(() => parseCidr('x/24'), /invalid CIDR/);
});

test('overlap', () => {
  assert.ok(overlaps(parseCidr('10.0.0.0/8'), parseCidr('10.213.1.0/24')));
  assert.ok(!overlaps(parseCidr('10.213.1.0/24'), parseCidr('10.213.2.0/24')));
});

test('pickSubnet avoids host routes', () => {
  const taken = routesToCidrs([{ dst: 'default' }, { dst: '172.17.0.0/16' }, { dst: '172.18.5.1' }]);
  assert.equal(formatCidr(pickSubnet(taken)), '172.19.0.0/16');
});

test('allocateIp skips network, gateway, used and respects range', () => {
  const s = parseCidr('10.213.9.0/24');
  const gw = parseIp('10.213.9.1')!;
  assert.equal(formatIp(allocateIp(s, new Set([gw]))), '10.213.9.2');
  assert.equal(formatIp(allocateIp(s, new Set([gw]), parseCidr('10.213.9.128/25'))), '10.213.9.128');
  const tiny = parseCidr('10.213.9.0/30');
  assert.throws(() => allocateIp(tiny, new Set([parseIp('10.213.9.1')!, parseIp('10.213.9.2')!])), /no available/);
});
