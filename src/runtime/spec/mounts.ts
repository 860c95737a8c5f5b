/**
 * Mounts: Docker's default filesystem set (/proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, /sys,
 * /sys/fs/cgroup), masked and read-only paths, tmpfs option merging and user mount conversion.
 */
import path from 'node:path';

import { invalidArgument } from '../../base/errors.js';
import type { OciMount, ResolvedMount } from './types.js';
import { parseMemory } from './units.js';

/** Paths masked (bound to /dev/null or an empty ro tmpfs by the runtime), as Docker. */
export const DEFAULT_MASKED_PATHS: readonly string[] = Object.freeze([
  '/proc/asound', '/proc/acpi', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats',
  '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
  '/sys/devices/virtual/powercap',
]);

/** Paths remounted read-only, as Docker. */
export const DEFAULT_READONLY_PATHS: readonly string[] = Object.freeze([
  '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger',
]);

/** Docker's default /dev/shm size (64 MiB). */
export const DEFAULT_SHM_SIZE = 64 * 1024 * 1024;

/** Options that toggle a flag: later ones win over their opposite. */
const FLAG_PAIRS: ReadonlyArray<readonly [string, string]> = [
  ['ro', 'rw'], ['exec', 'noexec'], ['suid', 'nosuid'], ['dev', 'nodev'], ['atime', 'noatime'],
  ['diratime', 'nodiratime'], ['relatime', 'norelatime'], ['strictatime', 'nostrictatime'],
  ['sync', 'async'], ['mand', 'nomand'],
];
const PROPAGATIONS = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];

/**
 * Merges tmpfs options left to right (like moby's MergeTmpfsOptions): a later flag replaces its
 * opposite, a later key=value replaces the same key, a later propagation replaces the earlier.
 */
export function mergeTmpfsOptions(options: readonly string[]): string[] {
  const out: string[] = [];
  for (const raw of options) {
    const o = raw.trim();
    if (!o) continue;
    const eq = o.indexOf('=');
    let same: (x: string) => boolean;
    if (eq > 0) {
      const key = o.slice(0, eq + 1);
      same = (x) => x.startsWith(key);
    } else if (PROPAGATIONS.includes(o)) {
      same = (x) => PROPAGATIONS.includes(x);
    } else {
      const pair = FLAG_PAIRS.find((p) => p.includes(o));
      same = pair ? (x) => pair.includes(x) : (x) => x === o;
    }
    const i = out.findIndex(same);
    if (i >= 0) out.splice(i, 1);
    out.push(o);
  }
  return out;
}

/** Validates tmpfs option values Docker checks (size must parse). */
function checkTmpfsOptions(dest: string, opts: readonly string[]): void {
  for (const o of opts) {
    if (o.startsWith('size=')) {
      const v = o.slice(5);
      if (!/%$/.test(v)) {
        try {
          parseMemory(v);
        } catch (err) {
          throw invalidArgument(`invalid tmpfs option ["size" "${v}"] for ${dest}`, { cause: err });
        }
      }
    } else if (o.startsWith('mode=') && !/^[0-7]{1,4}$/.test(o.slice(5))) {
      throw invalidArgument(`invalid tmpfs option ["mode" "${o.slice(5)}"] for ${dest}`);
    }
  }
}

/** One HostConfig.Tmpfs entry (`{"/run":"rw,size=64m"}`) as an OCI tmpfs mount. */
export function tmpfsMount(destination: string, data: string): OciMount {
  if (!destination.startsWith('/')) throw invalidArgument(`invalid mount path: '${destination}' mount path must be absolute`);
  const extra = data ? data.split(',') : [];
  checkTmpfsOptions(destination, extra);
  return {
    destination: path.normalize(destination),
    type: 'tmpfs',
    source: 'tmpfs',
    options: mergeTmpfsOptions(['noexec', 'nosuid', 'nodev', 'rprivate', ...extra]),
  };
}

/** A resolved user mount as an OCI mount (binds/volumes: rbind + ro/rw + propagation). */
export function userMount(m: ResolvedMount): OciMount {
  if (!m.destination.startsWith('/')) throw invalidArgument(`invalid mount path: '${m.destination}' mount path must be absolute`);
  if (m.type === 'tmpfs') {
    const t = tmpfsMount(m.destination, (m.options ?? []).join(','));
    if (m.readOnly) t.options = mergeTmpfsOptions([...t.options, 'ro']);
    return t;
  }
  const prop = m.propagation || 'rprivate';
  if (!PROPAGATIONS.includes(prop)) throw invalidArgument(`invalid propagation mode: ${prop}`);
  return {
    destination: path.normalize(m.destination),
    type: 'bind',
    source: m.source,
    options: ['rbind', m.readOnly ? 'ro' : 'rw', prop, ...(m.options ?? [])],
  };
}

/** Options for the default mounts; `shmSize` in bytes. */
export interface DefaultMountOptions {
  shmSize: number;
  shmPath?: string;
  ipcMode: string;
  /** Bind /sys from the host instead of mounting a fresh sysfs (userns without an owned netns). */
  bindSys: boolean;
  privileged: boolean;
  readonlyRootfs: boolean;
}

/** Docker's default mounts (moby oci/defaults.go), adjusted for IPC mode, shm and privilege. */
export function defaultMounts(o: DefaultMountOptions): OciMount[] {
  const rwSys = o.privileged && !o.readonlyRootfs;
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    o.bindSys
      ? { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', rwSys ? 'rw' : 'ro'] }
      : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', rwSys ? 'rw' : 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: [rwSys ? 'rw' : 'ro', 'nosuid', 'noexec', 'nodev'] },
  ];
  if (o.ipcMode === 'host') {
    mounts.push(
      { destination: '/dev/mqueue', type: 'bind', source: '/dev/mqueue', options: ['rbind', 'nosuid', 'noexec', 'nodev'] },
      { destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['rbind', 'nosuid', 'noexec', 'nodev'] },
    );
    return mounts;
  }
  mounts.push({ destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] });
  if (o.ipcMode === 'none') return mounts;
  if (o.shmPath) {
    mounts.push({ destination: '/dev/shm', type: 'bind', source: o.shmPath, options: ['rbind', 'rprivate', 'nosuid', 'noexec', 'nodev'] });
  } else {
    mounts.push({
      destination: '/dev/shm', type: 'tmpfs', source: 'shm',
      options: ['nosuid', 'noexec', 'nodev', 'mode=1777', `size=${o.shmSize > 0 ? o.shmSize : DEFAULT_SHM_SIZE}`],
    });
  }
  return mounts;
}

/** Number of path components, used to mount parents before children (as Docker sorts mounts). */
export function mountDepth(p: string): number {
  return path.normalize(p).split('/').filter(Boolean).length;
}
