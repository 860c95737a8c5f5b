import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { primeCgroupAttach } from './cgroups.js';

test('primeCgroupAttach leaves the process in the cgroups it was in and never throws', async () => {
  const before = readFileSync('/proc/self/cgroup', 'utf8');
  await primeCgroupAttach();
  await Promise.all([primeCgroupAttach(), primeCgroupAttach()]);
  assert.equal(readFileSync('/proc/self/cgroup', 'utf8'), before);
  const pidsLine = before.split('\n').find((l) => l.split(':')[1] === 'pids');
  if (pidsLine && process.getuid?.() === 0) {
    // the write it does is a real one: berthd's own pid is listed in the cgroup it wrote to
    const path = pidsLine.split(':')[2]!;
    const procs = readFileSync(`/sys/fs/cgroup/pids${path === '/' ? '' : path}/cgroup.procs`, 'utf8').split('\n');
    assert.ok(procs.includes(String(process.pid)));
  }
});
