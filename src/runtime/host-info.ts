/**
 * What this host can do: cgroup layout, runtimes on PATH, limits that cannot be raised.
 * Read once at daemon start; `berth info` shows it.
 */
import { readFileSync, existsSync, statfsSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { execFileSync } from 'node:child_process';

/** The cgroup layout of the host. */
export type CgroupMode = 'v1' | 'hybrid' | 'v2';

export interface HostInfo {
  cgroupMode: CgroupMode;
  /** 1 when controllers live in the v1 hierarchy (v1 and hybrid), else 2. */
  cgroupVersion: 1 | 2;
  /** Hard RLIMIT_NOFILE of the daemon: containers cannot get more. */
  nofileHard: number;
  ncpu: number;
  memTotal: number;
  kernelVersion: string;
  /** Absolute paths of the binaries found. */
  binaries: Record<string, string | undefined>;
}

const CGROUP2_MAGIC = 0x63677270;

/** Detect the cgroup mode from the mounts under /sys/fs/cgroup. */
export function detectCgroupMode(): CgroupMode {
  try {
    const st = statfsSync('/sys/fs/cgroup');
    if (Number(st.type) === CGROUP2_MAGIC) return 'v2';
  } catch {
    /* fall through */
  }
  if (existsSync('/sys/fs/cgroup/unified/cgroup.controllers')) {
    const ctl = readFileSync('/sys/fs/cgroup/unified/cgroup.controllers', 'utf8').trim();
    return ctl.length > 0 ? 'hybrid' : 'v1';
  }
  return 'v1';
}

/** First executable named `name` on PATH (plus the sbin dirs), or undefined. */
export function which(name: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(':'), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  for (const d of dirs) {
    if (!d) continue;
    const p = `${d}/${name}`;
    try {
      if (existsSync(p)) return p;
    } catch {
      /* ignore */
    }
  }
  return undefined;
}

function nofileHard(): number {
  try {
    const out = execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim();
    if (out === 'unlimited') return 1 << 20;
    const n = Number(out);
    return Number.isFinite(n) && n > 0 ? n : 1024;
  } catch {
    return 1024;
  }
}

/** Probe the host. */
export function probeHost(): HostInfo {
  const cgroupMode = detectCgroupMode();
  const binaries: Record<string, string | undefined> = {};
  for (const b of ['crun', 'runc', 'runsc', 'conmon', 'socat', 'tini-static', 'mount', 'umount', 'unshare', 'nsenter', 'ps', 'setfattr', 'getfattr', 'mknod']) {
    binaries[b] = which(b);
  }
  return {
    cgroupMode,
    cgroupVersion: cgroupMode === 'v2' ? 2 : 1,
    nofileHard: nofileHard(),
    ncpu: cpus().length,
    memTotal: totalmem(),
    kernelVersion: release(),
    binaries,
  };
}
