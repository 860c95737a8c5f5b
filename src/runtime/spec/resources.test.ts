import { test } from 'node:test';
import assert from 'node:assert/strict';

import { isKind } from '../../base/errors.js';
import { parseCpuset, resourcesFromHostConfig, validateHostConfig } from './resources.js';
import type { HostLimits } from './types.js';

const host: HostLimits = { nofileHard: 20000, cgroupVersion: 1, ncpu: 2, cpusetCpus: '0-1', cpusetMems: '0' };
const MiB = 1024 * 1024;

function rejects(hc: Record<string, unknown>, msg: string | RegExp, update = false): void {
  assert.throws(() => validateHostConfig(hc, host, update), (e: unknown) => {
    assert.ok(isKind(e, 'invalid-argument'), 'kind');
    if (typeof msg === 'string') assert.equal((e as Error).message, msg);
    else assert.match((e as Error).message, msg);
    return true;
  });
}

test('memory validation uses Docker wording', () => {
  rejects({ Memory: 4 * MiB }, 'Minimum memory limit allowed is 6MB');
  rejects({ Memory: 64 * MiB, MemorySwap: 32 * MiB }, 'Minimum memoryswap limit should be larger than memory limit, see usage');
  rejects({ MemorySwap: 64 * MiB }, 'You should always set the Memory limit when using Memoryswap limit, see usage');
  validateHostConfig({ MemorySwap: 64 * MiB }, host, true);
  rejects({ MemorySwappiness: 101 }, 'Invalid value: 101, valid memory swappiness range is 0-100');
  rejects({ MemoryReservation: MiB }, 'Minimum memory reservation allowed is 6MB');
  rejects({ Memory: 16 * MiB, MemoryReservation: 32 * MiB }, 'Minimum memory limit can not be less than memory reservation limit, see usage');
  validateHostConfig({ Memory: 6 * MiB, MemorySwap: -1, MemorySwappiness: -1 }, host);
});

test('cpu validation uses Docker wording', () => {
  rejects({ NanoCpus: 3e9 }, 'Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available');
  rejects({ NanoCpus: 1e9, CpuPeriod: 50000 }, 'Conflicting options: Nano CPUs and CPU Period cannot both be set');
  rejects({ NanoCpus: 1e9, CpuQuota: 50000 }, 'Conflicting options: Nano CPUs and CPU Quota cannot both be set');
  rejects({ CpuPeriod: 500 }, 'CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  rejects({ CpuQuota: 999 }, 'CPU cfs quota can not be less than 1ms (i.e. 1000)');
  rejects({ CpuShares: -1 }, 'shares: invalid argument');
  rejects({ CpusetCpus: '0-3' }, 'Requested CPUs are not available - requested 0-3, available: 0-1');
  rejects({ CpusetCpus: 'x' }, /^Invalid value x for cpuset cpus/);
  rejects({ CpusetMems: '1' }, /Requested memory nodes are not available/);
  validateHostConfig({ NanoCpus: 2e9, CpusetCpus: '0,1', CpusetMems: '0' }, host);
});

test('other settings', () => {
  rejects({ Ulimits: [{ Name: 'nofile', Soft: 10, Hard: 5 }] }, /soft limit must be less than or equal to hard limit/);
  rejects({ Ulimits: [{ Name: 'nofiles', Soft: 1, Hard: 1 }] }, 'invalid ulimit type: nofiles');
  rejects({ ShmSize: -1 }, 'SHM size can not be less than 0');
  rejects({ OomScoreAdj: 1001 }, 'Invalid value 1001, range for oom score adj is [-1000, 1000]');
  rejects({ IpcMode: 'weird' }, 'invalid IPC mode: weird');
  rejects({ PidMode: 'weird' }, 'invalid PID mode: weird');
  rejects({ BlkioWeight: 5 }, 'Range of blkio weight is from 10 to 1000');
  validateHostConfig({ IpcMode: 'container:abc', PidMode: 'host', IpcMode2: 1 }, host);
});

test('cpuset parsing', () => {
  assert.deepEqual(parseCpuset('0-2,4'), [0, 1, 2, 4]);
  assert.deepEqual(parseCpuset(''), []);
  assert.throws(() => parseCpuset('3-1'));
  assert.throws(() => parseCpuset('a'));
});

test('NanoCpus → quota/period; Docker swap default is 2x memory', () => {
  const r = resourcesFromHostConfig({ NanoCpus: 1.5e9, Memory: 64 * MiB, CpuShares: 512, PidsLimit: 100, CpusetCpus: '0' }, host);
  assert.deepEqual(r.cpu, { shares: 512, period: 100000, quota: 150000, cpus: '0' });
  assert.deepEqual(r.memory, { limit: 64 * MiB, swap: 128 * MiB });
  assert.deepEqual(r.pids, { limit: 100 });
});

test('swap -1 unlimited, explicit swap, no swap accounting', () => {
  assert.equal(resourcesFromHostConfig({ Memory: 64 * MiB, MemorySwap: -1 }, host).memory?.swap, -1);
  assert.equal(resourcesFromHostConfig({ Memory: 64 * MiB, MemorySwap: 100 * MiB }, host).memory?.swap, 100 * MiB);
  assert.equal(resourcesFromHostConfig({ Memory: 64 * MiB }, { ...host, swapAccounting: false }).memory?.swap, undefined);
});

test('unset fields stay absent (update semantics); pids <= 0 means unlimited', () => {
  assert.deepEqual(resourcesFromHostConfig({}, host), {});
  assert.deepEqual(resourcesFromHostConfig({ PidsLimit: 0 }, host), { pids: { limit: -1 } });
  assert.deepEqual(resourcesFromHostConfig({ CpuQuota: 20000, CpuPeriod: 50000 }, host).cpu, { period: 50000, quota: 20000 });
});

test('swappiness and OOM-kill disable only on cgroup v1', () => {
  assert.deepEqual(resourcesFromHostConfig({ MemorySwappiness: 10, OomKillDisable: true }, host).memory, { swappiness: 10, disableOOMKiller: true });
  assert.equal(resourcesFromHostConfig({ MemorySwappiness: 10, OomKillDisable: true }, { ...host, cgroupVersion: 2 }).memory, undefined);
});
