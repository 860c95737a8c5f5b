import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findSubIdRange, nextFreeStart } from './userns.js';

test('subordinate id ranges are found by user', () => {
  const t = 'alice:100000:65536\nberthremap:165536:65536\n';
  assert.deepEqual(findSubIdRange(t, 'berthremap'), { hostID: 165536, size: 65536 });
  assert.equal(findSubIdRange(t, 'bob'), undefined);
  assert.equal(findSubIdRange('junk\n:1:2\n', 'junk'), undefined);
});

test('a new range starts after the existing ones', () => {
  assert.equal(nextFreeStart(''), 100000);
  assert.equal(nextFreeStart('alice:100000:65536\n'), 196608);
});
