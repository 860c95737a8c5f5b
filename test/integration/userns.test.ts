/**
 * User namespaces: berthd --userns-remap default maps container root to a subordinate range;
 * --userns=host opts a container out.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync } from 'node:fs';
import { startDaemon, cleanup, importBusybox, requireRoot, requireBuilt, requireBinary, firstSkip, type TestDaemon } from './harness.js';

const skip = firstSkip(requireBuilt(), requireRoot(), requireBinary('conmon'), requireBinary('runc'));
let h: TestDaemon;

before(async () => {
  if (skip) return;
  h = await startDaemon({ args: ['--userns-remap', 'default'] });
  // the remapped root must be able to reach the data root (as with /var/lib/berth, mode 0711)
  chmodSync(h.baseDir, 0o711);
  await importBusybox(h);
});

after(async () => {
  if (h) await cleanup(h);
});

test('container root is a remapped host uid; files still look root-owned; writes work', { skip }, async () => {
  const out = await h.cliOk(['run', '--rm', 'busybox', 'sh', '-c', 'cat /proc/self/uid_map; id -u; stat -c %u /bin/busybox; touch /new && echo wrote']);
  const [map, uid, owner, wrote] = out.trim().split('\n');
  const [inside, outside] = map!.trim().split(/\s+/).map(Number);
  assert.equal(inside, 0);
  assert.ok(outside! >= 100000, `mapped to ${outside}`);
  assert.equal(uid, '0');
  assert.equal(owner, '0');
  assert.equal(wrote, 'wrote');
});

test('--userns host opts out of the remap', { skip }, async () => {
  const out = await h.cliOk(['run', '--rm', '--userns', 'host', 'busybox', 'cat', '/proc/self/uid_map']);
  assert.match(out, /^\s*0\s+0\s+4294967295\s*$/);
  const bad = await h.cli(['run', '--rm', '--userns', 'bogus', 'busybox', 'true']);
  assert.equal(bad.code, 125);
  assert.match(bad.stderr, /invalid USER mode/);
});
