import { test } from 'node:test';
import assert from 'node:assert/strict';

import { parseArgs, UsageError, type FlagSpec } from './args.js';

const run: FlagSpec[] = [
  { name: 'interactive', short: 'i', type: 'bool' },
  { name: 'tty', short: 't', type: 'bool' },
  { name: 'detach', short: 'd', type: 'bool' },
  { name: 'rm', type: 'bool' },
  { name: 'env', short: 'e', type: 'list' },
  { name: 'name', type: 'string' },
  { name: 'publish', short: 'p', type: 'list' },
  { name: 'stop-timeout', type: 'int' },
  { name: 'label', short: 'l', type: 'list' },
];

test('combined shorthands, attached values, long forms, repeated lists', () => {
  const p = parseArgs(['-it', '-e', 'A=B', '-eC=D', '-e=E=F', '--name=x', '-p8080:80', '--rm', 'busybox'], run, { stopAtPositional: true });
  assert.equal(p.flags['interactive'], true);
  assert.equal(p.flags['tty'], true);
  assert.deepEqual(p.flags['env'], ['A=B', 'C=D', 'E=F']);
  assert.equal(p.flags['name'], 'x');
  assert.deepEqual(p.flags['publish'], ['8080:80']);
  assert.equal(p.flags['rm'], true);
  assert.deepEqual(p.args, ['busybox']);
});

test('flags stop at the image name', () => {
  const p = parseArgs(['--name', 'web', 'busybox', 'ls', '-l', '--rm'], run, { stopAtPositional: true });
  assert.equal(p.flags['name'], 'web');
  assert.equal(p.flags['rm'], undefined);
  assert.deepEqual(p.args, ['busybox', 'ls', '-l', '--rm']);
});

test('without stopAtPositional flags may follow positionals; -- ends flags', () => {
  const p = parseArgs(['a', '-d', 'b', '--', '-i', 'c'], run);
  assert.equal(p.flags['detach'], true);
  assert.equal(p.flags['interactive'], undefined);
  assert.deepEqual(p.args, ['a', 'b', '-i', 'c']);
});

test('bool with explicit value, -dit cluster, int parsing', () => {
  const p = parseArgs(['--rm=false', '-dit', '--stop-timeout', '-1', 'img'], run, { stopAtPositional: true });
  assert.equal(p.flags['rm'], false);
  assert.equal(p.flags['detach'], true);
  assert.equal(p.flags['tty'], true);
  assert.equal(p.flags['stop-timeout'], -1);
});

test('errors: unknown flag, missing value, bad int', () => {
  assert.throws(() => parseArgs(['--nope'], run), (e: unknown) => e instanceof UsageError && e.message === 'unknown flag: --nope');
  assert.throws(() => parseArgs(['-x'], run), /unknown shorthand flag: 'x' in -x/);
  assert.throws(() => parseArgs(['--name'], run), /flag needs an argument: --name/);
  assert.throws(() => parseArgs(['--stop-timeout', 'abc'], run), /invalid argument "abc"/);
});

test('a lone dash is a positional', () => {
  const p = parseArgs(['-', 'x'], run);
  assert.deepEqual(p.args, ['-', 'x']);
});
