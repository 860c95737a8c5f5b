/**
 * HostConfig resource fields → OCI linux.resources, and Docker's validation of them (wording from
 * moby daemon/daemon_unix.go verifyPlatformContainerResources / verifyPlatformContainerSettings).
 */
import { invalidArgument } from '../../base/errors.js';
import { num, objArr, optNum, str, strMap } from './fields.js';
import type { HostLimits, OciLinuxResources } from './types.js';
import { validateUlimit } from './units.js';

/** Docker's minimum memory limit (6 MiB). */
export const MIN_MEMORY = 6 * 1024 * 1024;
/** CFS period used when NanoCpus is set (100 ms). */
export const DEFAULT_CPU_PERIOD = 100000;

/** Parses a cpuset list ("0-2,4") into a sorted set of numbers; throws on junk. */
export function parseCpuset(s: string): number[] {
  const out = new Set<number>();
  if (s.trim() === '') return [];
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) throw invalidArgument(`invalid format: ${s}`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a || b - a > 65536) throw invalidArgument(`invalid format: ${s}`);
    for (let i = a; i <= b; i++) out.add(i);
  }
  return [...out].sort((x, y) => x - y);
}

function checkCpuset(value: string, available: string | undefined, what: 'cpus' | 'mems'): void {
  if (value === '') return;
  let req: number[];
  try {
    req = parseCpuset(value);
  } catch (err) {
    throw invalidArgument(`Invalid value ${value} for cpuset ${what}: invalid format: ${value}`, { cause: err });
  }
  if (available === undefined) return;
  const avail = new Set(parseCpuset(available));
  if (req.some((n) => !avail.has(n))) {
    throw invalidArgument(what === 'cpus'
      ? `Requested CPUs are not available - requested ${value}, available: ${available}`
      : `Requested memory nodes are not available - requested ${value}, available: ${available}`);
  }
}

/**
 * Validates HostConfig resources and settings; throws invalidArgument with Docker's wording.
 * `update` relaxes the checks that only apply to create (as Docker's update does).
 */
export function validateHostConfig(hc: Record<string, unknown>, hostLimits: HostLimits, update = false): void {
  const memory = num(hc, 'Memory');
  const swap = num(hc, 'MemorySwap');
  const reservation = num(hc, 'MemoryReservation');
  if (memory < 0) throw invalidArgument('Minimum memory limit allowed is 6MB');
  if (memory !== 0 && memory < MIN_MEMORY) throw invalidArgument('Minimum memory limit allowed is 6MB');
  if (memory > 0 && swap > 0 && swap < memory) {
    throw invalidArgument('Minimum memoryswap limit should be larger than memory limit, see usage');
  }
  if (memory === 0 && swap > 0 && !update) {
    throw invalidArgument('You should always set the Memory limit when using Memoryswap limit, see usage');
  }
  const swappiness = optNum(hc, 'MemorySwappiness');
  if (swappiness !== undefined && swappiness !== -1 && (swappiness < 0 || swappiness > 100)) {
    throw invalidArgument(`Invalid value: ${swappiness}, valid memory swappiness range is 0-100`);
  }
  if (reservation > 0 && reservation < MIN_MEMORY) throw invalidArgument('Minimum memory reservation allowed is 6MB');
  if (memory > 0 && reservation > 0 && memory < reservation) {
    throw invalidArgument('Minimum memory limit can not be less than memory reservation limit, see usage');
  }

  const nano = num(hc, 'NanoCpus');
  const period = num(hc, 'CpuPeriod');
  const quota = num(hc, 'CpuQuota');
  if (nano > 0 && period > 0) throw invalidArgument('Conflicting options: Nano CPUs and CPU Period cannot both be set');
  if (nano > 0 && quota > 0) throw invalidArgument('Conflicting options: Nano CPUs and CPU Quota cannot both be set');
  if (nano < 0 || nano > hostLimits.ncpu * 1e9) {
    throw invalidArgument(`Range of CPUs is from 0.01 to ${hostLimits.ncpu}.00, as there are only ${hostLimits.ncpu} CPUs available`);
  }
  if (num(hc, 'CpuShares') < 0) throw invalidArgument('shares: invalid argument');
  if (period !== 0 && (period < 1000 || period > 1000000)) {
    throw invalidArgument('CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)');
  }
  if (quota > 0 && quota < 1000) throw invalidArgument('CPU cfs quota can not be less than 1ms (i.e. 1000)');
  checkCpuset(str(hc, 'CpusetCpus'), hostLimits.cpusetCpus, 'cpus');
  checkCpuset(str(hc, 'CpusetMems'), hostLimits.cpusetMems, 'mems');

  const blkio = num(hc, 'BlkioWeight');
  if (blkio > 0 && (blkio < 10 || blkio > 1000)) throw invalidArgument('Range of blkio weight is from 10 to 1000');

  if (num(hc, 'ShmSize') < 0) throw invalidArgument('SHM size can not be less than 0');
  const oom = num(hc, 'OomScoreAdj');
  if (oom < -1000 || oom > 1000) throw invalidArgument(`Invalid value ${oom}, range for oom score adj is [-1000, 1000]`);

  for (const u of objArr(hc, 'Ulimits')) {
    validateUlimit({ Name: str(u, 'Name'), Soft: num(u, 'Soft'), Hard: num(u, 'Hard') });
  }

  if (update) return;
  const ipc = str(hc, 'IpcMode');
  if (ipc !== '' && !['private', 'shareable', 'host', 'none'].includes(ipc) && !/^container:.+/.test(ipc)) {
    throw invalidArgument(`invalid IPC mode: ${ipc}`);
  }
  const pid = str(hc, 'PidMode');
  if (pid !== '' && pid !== 'host' && !/^container:.+/.test(pid)) throw invalidArgument(`invalid PID mode: ${pid}`);
  const uts = str(hc, 'UTSMode');
  if (uts !== '' && uts !== 'host') throw invalidArgument(`invalid UTS mode: ${uts}`);
  const cgns = str(hc, 'CgroupnsMode');
  if (cgns !== '' && cgns !== 'host' && cgns !== 'private') throw invalidArgument(`invalid cgroup namespace mode: ${cgns}`);
  const userns = str(hc, 'UsernsMode');
  if (userns !== '' && userns !== 'host') throw invalidArgument(`invalid USER mode: ${userns}`);
  for (const dest of Object.keys(strMap(hc, 'Tmpfs'))) {
    if (!dest.startsWith('/')) throw invalidArgument(`invalid mount config for type "tmpfs": invalid mount path: '${dest}' mount path must be absolute`);
  }
}

/**
 * Maps HostConfig resource fields to OCI linux.resources (no device rules). Only fields that are
 * set appear, so the result doubles as the body of `runc update --resources`.
 * Memory swap follows Docker: -1 unlimited, 0 with a memory limit = 2 × memory.
 */
export function resourcesFromHostConfig(hc: Record<string, unknown>, hostLimits: HostLimits): OciLinuxResources {
  const r: OciLinuxResources = {};
  const memory = num(hc, 'Memory');
  const swapField = num(hc, 'MemorySwap');
  const mem: NonNullable<OciLinuxResources['memory']> = {};
  if (memory > 0) mem.limit = memory;
  const reservation = num(hc, 'MemoryReservation');
  if (reservation > 0) mem.reservation = reservation;
  if (hostLimits.swapAccounting !== false) {
    if (swapField === -1) mem.swap = -1;
    else if (swapField > 0) mem.swap = swapField;
    else if (memory > 0) mem.swap = memory * 2;
  }
  const swappiness = optNum(hc, 'MemorySwappiness');
  if (swappiness !== undefined && swappiness >= 0 && hostLimits.cgroupVersion === 1) mem.swappiness = swappiness;
  if (hc['OomKillDisable'] === true && hostLimits.cgroupVersion === 1) mem.disableOOMKiller = true;
  if (Object.keys(mem).length > 0) r.memory = mem;

  const cpu: NonNullable<OciLinuxResources['cpu']> = {};
  const shares = num(hc, 'CpuShares');
  if (shares > 0) cpu.shares = Math.min(Math.max(shares, 2), 262144);
  const nano = num(hc, 'NanoCpus');
  if (nano > 0) {
    cpu.period = DEFAULT_CPU_PERIOD;
    cpu.quota = Math.floor((nano * DEFAULT_CPU_PERIOD) / 1e9);
  }
  const period = num(hc, 'CpuPeriod');
  if (period !== 0) cpu.period = period;
  const quota = num(hc, 'CpuQuota');
  if (quota !== 0) cpu.quota = quota;
  const rtp = num(hc, 'CpuRealtimePeriod');
  if (rtp !== 0) cpu.realtimePeriod = rtp;
  const rtr = num(hc, 'CpuRealtimeRuntime');
  if (rtr !== 0) cpu.realtimeRuntime = rtr;
  const cpus = str(hc, 'CpusetCpus');
  if (cpus) cpu.cpus = cpus;
  const mems = str(hc, 'CpusetMems');
  if (mems) cpu.mems = mems;
  if (Object.keys(cpu).length > 0) r.cpu = cpu;

  const pids = optNum(hc, 'PidsLimit');
  if (pids !== undefined) r.pids = { limit: pids > 0 ? pids : -1 };

  const blkio = num(hc, 'BlkioWeight');
  if (blkio > 0) r.blockIO = { weight: blkio };
  return r;
}
