import { test } from 'node:test';
import assert from 'node:assert/strict';

import { familiarString, parseNormalizedNamed, parseReference, referenceString, familiarize } from './reference.js';

test('normalises short names to docker.io/library', () => {
  const r = parseNormalizedNamed('busybox');
  assert.equal(referenceString(r), 'docker.io/library/busybox:latest');
  assert.equal(familiarString(r), 'busybox:latest');
});

test('user repos, hosts with ports, localhost', () => {
  assert.equal(referenceString(parseReference('user/app:1')), 'docker.io/user/app:1');
  assert.equal(familiarString(parseReference('docker.io/user/app:1')), 'user/app:1');
  const r = parseReference('localhost:5000/foo:1');
  assert.deepEqual(r, { domain: 'localhost:5000', path: 'foo', tag: '1' });
  assert.equal(familiarString(r), 'localhost:5000/foo:1');
  assert.equal(parseReference('localhost/foo').domain, 'localhost');
  assert.equal(parseReference('quay.io/a/b/c').path, 'a/b/c');
  assert.equal(referenceString(parseReference('index.docker.io/library/busybox')), 'docker.io/library/busybox');
  assert.equal(familiarize('docker.io/library/alpine:3'), 'alpine:3');
});

test('digests', () => {
  const d = `sha256:${'a'.repeat(64)}`;
  const r = parseNormalizedNamed(`busybox@${d}`);
  assert.equal(r.tag, undefined);
  assert.equal(r.digest, d);
  assert.equal(familiarString(r), `busybox@${d}`);
  assert.throws(() => parseReference('busybox@sha256:short'), /invalid reference format/);
});

test('rejects invalid references', () => {
  assert.throws(() => parseReference('Busybox'), /must be lowercase/);
  assert.throws(() => parseReference(''), /invalid reference format/);
  assert.throws(() => parseReference('a:b:c'), /invalid reference format/);
  assert.throws(() => parseReference('foo/-bar'), /invalid reference format/);
  assert.throws(() => parseReference('busybox:'), /invalid reference format/);
});
