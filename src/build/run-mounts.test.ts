import { test } from 'node:test';
import assert from 'node:assert/strict';

import { CacheMountRegistry, mountCacheKey, parseRunMount, parseRunNetwork } from './run-mounts.js';

test('parseRunMount: defaults per type', () => {
  const b = parseRunMount('target=/src', 3);
  assert.equal(b.type, 'bind');
  assert.equal(b.readonly, true);
  assert.equal(b.source, '/');
  const c = parseRunMount('type=cache,target=/root/.cache/', 3);
  assert.deepEqual([c.type, c.target, c.id, c.readonly, c.sharing], ['cache', '/root/.cache', '/root/.cache', false, 'shared']);
  const s = parseRunMount('type=secret,id=tok', 3);
  assert.deepEqual([s.target, s.id, s.required, s.readonly], ['/run/secrets/tok', 'tok', false, true]);
  const s2 = parseRunMount('type=secret,target=/etc/key', 3);
  assert.equal(s2.id, 'key');
  const t = parseRunMount('type=tmpfs,dst=/t,size=1048576', 3);
  assert.deepEqual([t.type, t.target, t.size], ['tmpfs', '/t', 1048576]);
});

test('parseRunMount: options', () => {
  const m = parseRunMount('type=bind,from=build,source=/out,target=/in,rw', 1);
  assert.deepEqual([m.from, m.source, m.readonly], ['build', '/out', false]);
  const c = parseRunMount('type=cache,id=x,target=/c,sharing=locked,mode=0700,uid=10,gid=20,ro=true', 1);
  assert.deepEqual([c.id, c.sharing, c.mode, c.uid, c.gid, c.readonly], ['x', 'locked', 0o700, 10, 20, true]);
  assert.equal(parseRunMount('type=secret,id=a,required', 1).required, true);
  assert.equal(parseRunMount('type=secret,id=a,required=false', 1).required, false);
  assert.equal(parseRunMount('"target=/a,b"', 1).target, '/a,b');
  assert.equal(parseRunMount('target=rel/dir', 1).target, '/rel/dir');
});

test('parseRunMount: bad input names the line', () => {
  assert.throws(() => parseRunMount('type=cache', 7), /line 7: mount target is required/);
  assert.throws(() => parseRunMount('type=weird,target=/x', 7), /line 7: unsupported mount type "weird"/);
  assert.throws(() => parseRunMount('type=cache,target=/x,sharing=maybe', 7), /unsupported sharing value "maybe"/);
  assert.throws(() => parseRunMount('type=cache,target=/x,color=red', 7), /unexpected key 'color'/);
  assert.throws(() => parseRunMount('type=cache,target=/x,mode=999', 7), /invalid mode 999/);
  assert.throws(() => parseRunMount('type=bind,target=/', 7), /mount target cannot be \//);
  assert.throws(() => parseRunMount('type=ssh', 7), /type=ssh is not supported/);
});

test('parseRunNetwork', () => {
  assert.equal(parseRunNetwork('none', 1), 'none');
  assert.equal(parseRunNetwork('host', 1), 'host');
  assert.equal(parseRunNetwork('default', 1), 'default');
  assert.throws(() => parseRunNetwork('bridge', 4), /line 4: unsupported network mode "bridge"/);
});

test('mountCacheKey changes with the mount spec', () => {
  const a = mountCacheKey([parseRunMount('type=cache,target=/c', 1)]);
  assert.equal(a, mountCacheKey([parseRunMount('type=cache,target=/c/', 1)]));
  assert.notEqual(a, mountCacheKey([parseRunMount('type=cache,target=/d', 1)]));
  assert.notEqual(a, mountCacheKey([parseRunMount('type=cache,target=/c,sharing=locked', 1)]));
});

test('CacheMountRegistry: locked mounts take turns, private sees a cache in use', async () => {
  const r = new CacheMountRegistry();
  const first = await r.acquire('x', 'locked');
  let secondIn = false;
  const second = r.acquire('x', 'locked').then((h) => {
    secondIn = true;
    return h;
  });
  await new Promise((res) => setImmediate(res));
  assert.equal(secondIn, false);
  const priv = await r.acquire('x', 'private');
  assert.equal(priv.inUse, true);
  priv.release();
  first.release();
  (await second).release();
  assert.equal(secondIn, true);
  assert.equal(r.busy, false);
  const alone = await r.acquire('y', 'private');
  assert.equal(alone.inUse, false);
  alone.release();
});
