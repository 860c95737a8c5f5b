import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { isKind } from '../../base/errors.js';
import { resolveUser, secureJoin } from './user.js';

let root: string;
let bare: string;

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'berth-user-'));
  await mkdir(path.join(root, 'etc'));
  await writeFile(path.join(root, 'etc/passwd'), [
    'root:x:0:0:root:/root:/bin/sh',
    '# comment',
    'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
    'app:x:1000:1000:App:/home/app:/bin/sh',
    '',
  ].join('\n'));
  await writeFile(path.join(root, 'etc/group'), [
    'root:x:0:',
    'daemon:x:1:',
    'wheel:x:10:app,root',
    'audio:x:29:app',
    'app:x:1000:',
    'staff:x:50:',
  ].join('\n'));
  bare = await mkdtemp(path.join(tmpdir(), 'berth-user-bare-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(bare, { recursive: true, force: true });
});

test('empty user is root with root\'s supplementary groups', async () => {
  const u = await resolveUser(root, '');
  assert.deepEqual(u, { uid: 0, gid: 0, additionalGids: [10], home: '/root' });
});

test('name resolves uid, gid, home and supplementary groups', async () => {
  const u = await resolveUser(root, 'app');
  assert.deepEqual(u, { uid: 1000, gid: 1000, additionalGids: [10, 29], home: '/home/app' });
});

test('numeric uid found in passwd uses its gid', async () => {
  assert.equal((await resolveUser(root, '1')).gid, 1);
});

test('uid:gid and name:group; explicit group drops supplementary groups', async () => {
  assert.deepEqual(await resolveUser(root, '1000:50'), { uid: 1000, gid: 50, additionalGids: [], home: '/home/app' });
  assert.deepEqual(await resolveUser(root, 'app:staff'), { uid: 1000, gid: 50, additionalGids: [], home: '/home/app' });
  assert.deepEqual(await resolveUser(root, '4242:4343'), { uid: 4242, gid: 4343, additionalGids: [], home: '/' });
});

test('numeric ids work with no passwd file', async () => {
  assert.deepEqual(await resolveUser(bare, '123:456'), { uid: 123, gid: 456, additionalGids: [], home: '/' });
  assert.deepEqual(await resolveUser(bare, '123'), { uid: 123, gid: 0, additionalGids: [], home: '/' });
  assert.deepEqual(await resolveUser(bare, ''), { uid: 0, gid: 0, additionalGids: [], home: '/' });
});

test('unknown names are invalid-argument with runc wording', async () => {
  await assert.rejects(resolveUser(root, 'nobody2'), (e: unknown) =>
    isKind(e, 'invalid-argument') && (e as Error).message === 'unable to find user nobody2: no matching entries in passwd file');
  await assert.rejects(resolveUser(root, 'app:nogroup'), /unable to find group nogroup: no matching entries in group file/);
  await assert.rejects(resolveUser(bare, 'app'), /unable to find user app/);
  await assert.rejects(resolveUser(root, '99999999999'), /uids and gids must be in range/);
});

test('GroupAdd appends names and gids', async () => {
  const u = await resolveUser(root, 'daemon', ['staff', '777']);
  assert.deepEqual(u.additionalGids, [50, 777]);
});

test('symlinks cannot escape the rootfs', async () => {
  const evil = await mkdtemp(path.join(tmpdir(), 'berth-user-evil-'));
  try {
    await mkdir(path.join(evil, 'etc'));
    // An absolute link is resolved against the rootfs, not the host.
    await symlink('/work/../etc/shadow-passwd', path.join(evil, 'etc/passwd'));
    assert.equal(await secureJoin(evil, '/etc/passwd'), path.join(evil, 'etc/shadow-passwd'));
    await symlink('/etc/loop', path.join(evil, 'etc/loop'));
    await assert.rejects(secureJoin(evil, '/etc/loop'), /too many symlinks/);
    await symlink('../../../../../../tmp', path.join(evil, 'up'));
    assert.equal(await secureJoin(evil, '/up/x'), path.join(evil, 'tmp/x'));
    // The host's /etc/passwd has a root entry named root; inside evil it must not be readable.
    await assert.rejects(resolveUser(evil, 'root'), /unable to find user root/);
  } finally {
    await rm(evil, { recursive: true, force: true });
  }
});
