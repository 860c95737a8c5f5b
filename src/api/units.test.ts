import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { EngineError, internal, notFound, notModified } from '../base/errors.js';
import { fixedNano, TimestampPrefixer } from './compat/containers.js';
import { decodeAuthHeader, joinRef } from './compat/images.js';
import { DetachMatcher, parseDetachKeys } from './detach-keys.js';
import { errorReply, STATUS_BY_KIND, statusForKind, streamErrorLine } from './errors.js';
import { parseBool, parseFilters, Query } from './query.js';
import { compareVersions, splitVersion } from './version.js';

describe('errors table', () => {
  it('maps every kind per house-style §3', () => {
    assert.equal(statusForKind('invalid-argument'), 400);
    assert.equal(statusForKind('unauthenticated'), 401);
    assert.equal(statusForKind('permission-denied'), 403);
    assert.equal(statusForKind('not-found'), 404);
    assert.equal(statusForKind('already-exists'), 409);
    assert.equal(statusForKind('conflict'), 409);
    assert.equal(statusForKind('failed-precondition'), 409);
    assert.equal(statusForKind('not-modified'), 304);
    assert.equal(statusForKind('not-implemented'), 501);
    assert.equal(statusForKind('unavailable'), 503);
    assert.equal(statusForKind('internal'), 500);
    assert.equal(Object.keys(STATUS_BY_KIND).length, 14);
  });
  it('keeps engine messages, hides foreign ones, logs internals, not cancellations', () => {
    assert.deepEqual(errorReply(notFound('No such image: x')), { status: 404, kind: 'not-found', message: 'No such image: x' });
    const foreign = errorReply(new TypeError('x is undefined'));
    assert.equal(foreign.message, 'internal server error');
    assert.match(foreign.log!, /TypeError: x is undefined/);
    const wrapped = errorReply(internal('runtime failed', { cause: new Error('root cause') }));
    assert.equal(wrapped.message, 'runtime failed');
    assert.match(wrapped.log!, /caused by: Error: root cause/);
    const abort = new Error('aborted');
    abort.name = 'AbortError';
    assert.equal(errorReply(abort).log, undefined);
    assert.equal(errorReply(notModified()).status, 304);
    assert.equal(errorReply(notModified()).message, '');
    assert.deepEqual(JSON.parse(streamErrorLine(new EngineError('not-found', 'gone'))), { errorDetail: { message: 'gone' }, error: 'gone' });
  });
});

describe('query parsing', () => {
  it('parses Docker booleans', () => {
    for (const t of ['1', 'true', 'True', 'TRUE', 'yes']) assert.equal(parseBool(t), true, t);
    for (const f of ['0', 'false', 'False', '', 'no', 'none']) assert.equal(parseBool(f), false, f);
    const q = Query.parse('a=1&b=False&c=');
    assert.equal(q.bool('a'), true);
    assert.equal(q.bool('b', true), false);
    assert.equal(q.bool('c', true), true, 'empty takes the default');
    assert.equal(q.bool('missing', true), true);
  });
  it('normalises both filter shapes', () => {
    assert.deepEqual(parseFilters('{"label":{"a=b":true,"c":true},"dangling":{"true":true}}'), { label: ['a=b', 'c'], dangling: ['true'] });
    assert.deepEqual(parseFilters('{"label":["a=b"],"dangling":["false"]}'), { label: ['a=b'], dangling: ['false'] });
    assert.deepEqual(parseFilters(''), {});
    assert.deepEqual(parseFilters(undefined), {});
    assert.throws(() => parseFilters('{bad'), (e: unknown) => e instanceof EngineError && e.kind === 'invalid-argument');
    assert.throws(() => parseFilters('[1]'), /invalid filter/);
  });
  it('parses ints and timestamps strictly', () => {
    const q = Query.parse('t=3&bad=x&since=1700000000.123456789&iso=2024-01-01T00:00:00Z');
    assert.equal(q.int('t'), 3);
    assert.throws(() => q.int('bad'), /not an integer/);
    assert.equal(q.time('since'), 1700000000.123456789);
    assert.equal(q.time('iso'), 1704067200);
  });
});

describe('versions', () => {
  it('compares numerically and splits prefixes', () => {
    assert.ok(compareVersions('1.9', '1.24') < 0);
    assert.ok(compareVersions('1.51', '1.51') === 0);
    assert.ok(compareVersions('2', '1.51') > 0);
    assert.deepEqual(splitVersion('/v1.50/containers/json'), { path: '/containers/json', version: '1.50' });
    assert.deepEqual(splitVersion('/containers/json'), { path: '/containers/json', version: '1.51' });
    assert.deepEqual(splitVersion('/v1.24'), { path: '/', version: '1.24' });
    assert.throws(() => splitVersion('/v1.52/x'), /too new/);
    assert.throws(() => splitVersion('/v1/x'), /too old/);
  });
});

describe('detach keys', () => {
  it('parses key specs like moby', () => {
    assert.deepEqual([...parseDetachKeys('ctrl-p,ctrl-q')], [16, 17]);
    assert.deepEqual([...parseDetachKeys('a,ctrl-@,ctrl-[,ctrl-_')], [97, 0, 27, 31]);
    assert.throws(() => parseDetachKeys('ctrl-1'), /Invalid detach keys/);
    assert.throws(() => parseDetachKeys('ab'), /Invalid detach keys/);
  });
  it('holds partial matches across chunks and releases them on mismatch', () => {
    const m = new DetachMatcher(parseDetachKeys('ctrl-p,ctrl-q'));
    assert.deepEqual(m.push(Buffer.from('ab\x10')), { data: Buffer.from('ab'), detached: false });
    assert.deepEqual(m.push(Buffer.from('x')), { data: Buffer.from('\x10x'), detached: false });
    assert.deepEqual(m.push(Buffer.from('\x10\x10')), { data: Buffer.from('\x10'), detached: false });
    assert.deepEqual(m.push(Buffer.from('\x11rest')), { data: Buffer.from(''), detached: true });
  });
});

describe('log timestamps', () => {
  it('pads RFC3339Nano to 9 digits', () => {
    assert.equal(fixedNano('2024-01-01T00:00:00Z'), '2024-01-01T00:00:00.000000000Z');
    assert.equal(fixedNano('2024-01-01T00:00:00.5Z'), '2024-01-01T00:00:00.500000000Z');
    assert.equal(fixedNano('2024-01-01T00:00:00.123456789+02:00'), '2024-01-01T00:00:00.123456789+02:00');
  });
  it('prefixes each line once, per stream, across chunk boundaries', () => {
    const p = new TimestampPrefixer();
    const t = '2024-01-01T00:00:00Z';
    const T = '2024-01-01T00:00:00.000000000Z ';
    assert.equal(p.apply({ stream: 'stdout', data: Buffer.from('a\nb'), time: t }).toString(), `${T}a\n${T}b`);
    assert.equal(p.apply({ stream: 'stderr', data: Buffer.from('e\n'), time: t }).toString(), `${T}e\n`);
    assert.equal(p.apply({ stream: 'stdout', data: Buffer.from('c\n'), time: t }).toString(), 'c\n');
  });
});

describe('image helpers', () => {
  it('joins tags and digests and decodes X-Registry-Auth', () => {
    assert.equal(joinRef('busybox', 'latest'), 'busybox:latest');
    assert.equal(joinRef('busybox', 'sha256:abc'), 'busybox@sha256:abc');
    assert.equal(joinRef('busybox', undefined), 'busybox');
    assert.equal(decodeAuthHeader('e30='), undefined);
    const enc = Buffer.from('{"username":"u","password":"p"}').toString('base64url');
    assert.deepEqual(decodeAuthHeader(enc), { username: 'u', password: 'p' });
  });
});
