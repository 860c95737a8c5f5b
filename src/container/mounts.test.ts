import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseBind, collectMounts, parseMountEntry } from './mounts.js';

test('binds: host path, named volume, ro', () => {
  assert.deepEqual(
    { ...parseBind('/tmp:/data:ro') },
    { Type: 'bind', Source: '/tmp', Destination: '/data', Mode: 'ro', RW: false, Propagation: 'rprivate' },
  );
  const v = parseBind('mydata:/var/lib/x');
  assert.equal(v.Type, 'volume');
  assert.equal(v.Name, 'mydata');
  assert.throws(() => parseBind('/a'), /invalid volume specification/);
  assert.throws(() => parseBind('/a:rel'), /must be absolute/);
  assert.throws(() => parseBind('/a:/b:bogus'), /invalid mode/);
});

test('image volumes become anonymous unless a bind covers them', () => {
  const ms = collectMounts({ Volumes: { '/data': {}, '/other': {} } }, { Binds: ['/tmp:/data'] });
  const d = ms.find((m) => m.Destination === '/data')!;
  assert.equal(d.Type, 'bind');
  assert.equal(ms.find((m) => m.Destination === '/other')!.needsAnonymous, true);
});

test('duplicate destinations are refused', () => {
  assert.throws(() => collectMounts({}, { Binds: ['/a:/x', '/b:/x'] }), /Duplicate mount point/);
});

test('mount entries: tmpfs options and unknown types', () => {
  const t = parseMountEntry({ Type: 'tmpfs', Target: '/run', TmpfsOptions: { SizeBytes: 1048576, Mode: 0o1777 } });
  assert.deepEqual(t.Options, ['size=1048576', 'mode=1777']);
  assert.throws(() => parseMountEntry({ Type: 'nfs', Target: '/x' }), /mount type unknown/);
});
