import { test } from 'node:test';
import assert from 'node:assert/strict';

import { isKind } from '../../base/errors.js';
import { parseCpus, parseMemory, parseUlimit } from './units.js';

test('parseMemory: binary units, bytes and numbers', () => {
  assert.equal(parseMemory('32m'), 32 * 1024 * 1024);
  assert.equal(parseMemory('1g'), 1024 ** 3);
  assert.equal(parseMemory('1GiB'), 1024 ** 3);
  assert.equal(parseMemory('512k'), 512 * 1024);
  assert.equal(parseMemory('512KB'), 512 * 1024);
  assert.equal(parseMemory('1.5g'), 1.5 * 1024 ** 3);
  assert.equal(parseMemory('1024'), 1024);
  assert.equal(parseMemory('100b'), 100);
  assert.equal(parseMemory(4096), 4096);
  assert.equal(parseMemory('-1'), -1);
});

test('parseMemory: junk is invalid-argument with Docker wording', () => {
  for (const bad of ['abc', '12x', '-5', '', '1.2.3m', 'm', '10 mb extra']) {
    assert.throws(() => parseMemory(bad), (e: unknown) => isKind(e, 'invalid-argument') && /invalid size/.test((e as Error).message), bad);
  }
  assert.throws(() => parseMemory(-7), (e: unknown) => isKind(e, 'invalid-argument'));
  assert.throws(() => parseMemory(1.5), (e: unknown) => isKind(e, 'invalid-argument'));
});

test('parseCpus is exact', () => {
  assert.equal(parseCpus('1.5'), 1_500_000_000);
  assert.equal(parseCpus('2'), 2_000_000_000);
  assert.equal(parseCpus('0.01'), 10_000_000);
  assert.equal(parseCpus('.5'), 500_000_000);
  assert.equal(parseCpus('0.000000001'), 1);
  assert.equal(parseCpus('0.1000000000'), 100_000_000);
  assert.throws(() => parseCpus('0.0000000001'), /value is too precise/);
  assert.throws(() => parseCpus('abc'), /failed to parse abc as a rational number/);
  assert.throws(() => parseCpus(''), /rational number/);
});

test('parseUlimit', () => {
  assert.deepEqual(parseUlimit('nofile=1024:2048'), { Name: 'nofile', Soft: 1024, Hard: 2048 });
  assert.deepEqual(parseUlimit('nproc=50'), { Name: 'nproc', Soft: 50, Hard: 50 });
  assert.throws(() => parseUlimit('bogus=1'), /invalid ulimit type: bogus/);
  assert.throws(() => parseUlimit('nofile=2048:1024'), /soft limit must be less than or equal to hard limit: 2048 > 1024/);
  assert.throws(() => parseUlimit('nofile=x'), /invalid ulimit argument/);
});
