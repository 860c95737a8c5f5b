/**
 * Reading a container's cgroup: processes, OOM kills, stats. Paths follow the cgroupfs layout
 * the runtimes use for cgroupsPath "/berth/<id>".
 */
import { readFile, writeFile } from 'node:fs/promises';

const V1 = '/sys/fs/cgroup';

/** The cgroupsPath berth gives the runtime for a container. */
export const cgroupsPathFor = (id: string): string => `/berth/${id}`;

async function read(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

function kv(text: string | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of (text ?? '').split('\n')) {
    const [k, v] = l.trim().split(/\s+/);
    if (k && v !== undefined && /^-?\d+$/.test(v)) out[k] = Number(v);
  }
  return out;
}

/**
 * Prime the kernel's cgroup-attach lock for a runtime call that is about to move a process into
 * a cgroup v1 hierarchy (`crun create`/`exec` write the new pid to `cgroup.procs`).
 *
 * Every write to a v1 `cgroup.procs` takes the global threadgroup rwsem for writing, and a writer
 * that finds it idle first waits for a whole RCU grace period (8–20 ms on the test VM: that is most
 * of `crun create`'s time). A writer that comes while another writer holds it, or within about one
 * grace period after the last one left, does not wait (rcu_sync stays "passed" meanwhile). This
 * writes berthd's own pid to the cgroup.procs of the `pids` (else `memory`) cgroup it is already in
 * (moving a process to its own cgroup changes nothing). The container service calls it in a loop
 * while a start or exec is on its way to the runtime (LocalContainers.warmAttach): the first write
 * waits out the grace period while berthd mounts the rootfs and conmon starts, and the runtime's
 * own attach then finds the lock warm. Not needed on cgroup v2, where crun creates the process
 * straight into its cgroup (clone3 CLONE_INTO_CGROUP, a reader of that lock). Never throws; a
 * failed write only means the runtime waits as before.
 */
export async function primeCgroupAttach(): Promise<void> {
  try {
    // looked up once (this runs every few ms during a start); again after a failed write
    ownProcs ??= ownV1Procs();
    const file = await ownProcs;
    if (file) await writeFile(file, String(process.pid));
  } catch {
    ownProcs = undefined;
    /* not fatal: the runtime's attach just waits for the grace period itself */
  }
}

/** The `cgroup.procs` of berthd's own cgroup in the pids (else memory) v1 hierarchy. */
let ownProcs: Promise<string | undefined> | undefined;

async function ownV1Procs(): Promise<string | undefined> {
  const own = await readFile('/proc/self/cgroup', 'utf8');
  // a v1 hierarchy that every hybrid/v1 host mounts; berthd's own place in it
  const line = own.split('\n').find((l) => l.split(':')[1] === 'pids') ?? own.split('\n').find((l) => l.split(':')[1] === 'memory');
  if (!line) return undefined;
  const [, ctrl, path] = line.split(':') as [string, string, string];
  return `${V1}/${ctrl}${path === '/' ? '' : path}/cgroup.procs`;
}

/** Pids in the container's cgroup. */
export async function cgroupPids(id: string, version: 1 | 2): Promise<number[]> {
  const p = version === 2 ? `${V1}/berth/${id}/cgroup.procs` : `${V1}/pids/berth/${id}/cgroup.procs`;
  const alt = `${V1}/memory/berth/${id}/cgroup.procs`;
  const t = (await read(p)) ?? (await read(alt)) ?? '';
  return t.split('\n').filter(Boolean).map(Number);
}

/** True when the kernel OOM-killed something in the container's cgroup. */
export async function oomKilled(id: string, version: 1 | 2): Promise<boolean> {
  if (version === 2) {
    const ev = kv(await read(`${V1}/berth/${id}/memory.events`));
    return (ev['oom_kill'] ?? 0) > 0;
  }
  const ctl = kv(await read(`${V1}/memory/berth/${id}/memory.oom_control`));
  return (ctl['oom_kill'] ?? 0) > 0;
}

/** Raw numbers for Docker's stats object. */
export interface CgroupSample {
  cpuTotal: number;
  cpuKernel: number;
  cpuUser: number;
  percpu: number[];
  memUsage: number;
  memLimit: number;
  memStats: Record<string, number>;
  pids: number;
  pidsLimit: number;
  blkio: Array<{ major: number; minor: number; op: string; value: number }>;
}

/** Sample the container's cgroup (v1 or v2). */
export async function sampleCgroup(id: string, version: 1 | 2, hostMem: number): Promise<CgroupSample> {
  const USER_HZ_NS = 1e7; // 100 ticks/s
  if (version === 2) {
    const base = `${V1}/berth/${id}`;
    const cpu = kv(await read(`${base}/cpu.stat`));
    const memCur = Number((await read(`${base}/memory.current`))?.trim() ?? 0);
    const memMaxS = (await read(`${base}/memory.max`))?.trim() ?? 'max';
    const pidsCur = Number((await read(`${base}/pids.current`))?.trim() ?? 0);
    const pidsMaxS = (await read(`${base}/pids.max`))?.trim() ?? 'max';
    return {
      cpuTotal: (cpu['usage_usec'] ?? 0) * 1000,
      cpuKernel: (cpu['system_usec'] ?? 0) * 1000,
      cpuUser: (cpu['user_usec'] ?? 0) * 1000,
      percpu: [],
      memUsage: memCur,
      memLimit: memMaxS === 'max' ? hostMem : Number(memMaxS),
      memStats: kv(await read(`${base}/memory.stat`)),
      pids: pidsCur,
      pidsLimit: pidsMaxS === 'max' ? 0 : Number(pidsMaxS),
      blkio: [],
    };
  }
  const cpuacct = `${V1}/cpuacct/berth/${id}`;
  const mem = `${V1}/memory/berth/${id}`;
  const pids = `${V1}/pids/berth/${id}`;
  const st = kv(await read(`${cpuacct}/cpuacct.stat`));
  const limit = Number((await read(`${mem}/memory.limit_in_bytes`))?.trim() ?? 0);
  const pidsMaxS = (await read(`${pids}/pids.max`))?.trim() ?? 'max';
  const blk: CgroupSample['blkio'] = [];
  for (const l of ((await read(`${V1}/blkio/berth/${id}/blkio.throttle.io_service_bytes`)) ?? '').split('\n')) {
    const m = /^(\d+):(\d+) (\w+) (\d+)$/.exec(l.trim());
    if (m) blk.push({ major: Number(m[1]), minor: Number(m[2]), op: m[3]!, value: Number(m[4]) });
  }
  return {
    cpuTotal: Number((await read(`${cpuacct}/cpuacct.usage`))?.trim() ?? 0),
    cpuKernel: (st['system'] ?? 0) * USER_HZ_NS,
    cpuUser: (st['user'] ?? 0) * USER_HZ_NS,
    percpu: ((await read(`${cpuacct}/cpuacct.usage_percpu`)) ?? '').trim().split(/\s+/).filter(Boolean).map(Number),
    memUsage: Number((await read(`${mem}/memory.usage_in_bytes`))?.trim() ?? 0),
    memLimit: limit > 0 && limit < 2 ** 62 ? Math.min(limit, hostMem) : hostMem,
    memStats: kv(await read(`${mem}/memory.stat`)),
    pids: Number((await read(`${pids}/pids.current`))?.trim() ?? 0),
    pidsLimit: pidsMaxS === 'max' ? 0 : Number(pidsMaxS),
    blkio: blk,
  };
}

/** Total host CPU time in nanoseconds (/proc/stat), as Docker's system_cpu_usage. */
export async function systemCpuUsage(): Promise<number> {
  const t = (await read('/proc/stat')) ?? '';
  const line = t.split('\n').find((l) => l.startsWith('cpu '));
  if (!line) return 0;
  const ticks = line.trim().split(/\s+/).slice(1, 8).map(Number).reduce((a, b) => a + b, 0);
  return ticks * 1e7;
}

/** Network counters of a process's namespace (/proc/<pid>/net/dev). */
export async function netStats(pid: number): Promise<Record<string, Record<string, number>>> {
  const t = (await read(`/proc/${pid}/net/dev`)) ?? '';
  const out: Record<string, Record<string, number>> = {};
  for (const l of t.split('\n').slice(2)) {
    const m = /^\s*([^:]+):\s*(.*)$/.exec(l);
    if (!m || m[1] === 'lo') continue;
    const f = m[2]!.trim().split(/\s+/).map(Number);
    out[m[1]!] = {
      rx_bytes: f[0] ?? 0, rx_packets: f[1] ?? 0, rx_errors: f[2] ?? 0, rx_dropped: f[3] ?? 0,
      tx_bytes: f[8] ?? 0, tx_packets: f[9] ?? 0, tx_errors: f[10] ?? 0, tx_dropped: f[11] ?? 0,
    };
  }
  return out;
}
