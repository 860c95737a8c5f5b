/**
 * Seccomp.
 *
 * Our default profile is a DENYLIST, not Docker's allowlist: defaultAction SCMP_ACT_ALLOW and the
 * dangerous syscalls return EPERM (errnoRet 1). Reasons: it is short enough to audit, it never
 * breaks a workload that uses a new harmless syscall, and the dangerous set is what Docker's
 * allowlist withholds from a default container anyway (kernel modules, kexec, keyrings, bpf,
 * perf, ptrace, mount API, namespaces, clock/time, swap, reboot, accounting, raw I/O ...).
 * Syscalls whose capability the container holds are not denied (as Docker's `includes.caps`).
 * `clone` is filtered on its namespace flags (arg 0 & CLONE_NEW*), and `clone3`, whose flags live
 * in memory seccomp cannot read, returns ENOSYS so libc falls back to `clone` (Docker does the same).
 * Weakness of the design: a syscall added to a future kernel is allowed until listed here.
 *
 * Also converts Docker-format profile files (names/includes/excludes/archMap) to the OCI shape.
 */
import { release } from 'node:os';

import { invalidArgument } from '../../base/errors.js';
import type { OciSeccomp, OciSeccompSyscall } from './types.js';

const EPERM = 1;
const ENOSYS = 38;

/** seccomp architectures of this host: native first, then the compat ones. */
export function nativeArchitectures(arch: string = process.arch): string[] {
  switch (arch) {
    case 'x64': return ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];
    case 'arm64': return ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'];
    case 'ia32': return ['SCMP_ARCH_X86'];
    case 'arm': return ['SCMP_ARCH_ARM'];
    case 'ppc64': return ['SCMP_ARCH_PPC64LE'];
    case 's390x': return ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390'];
    case 'riscv64': return ['SCMP_ARCH_RISCV64'];
    default: return [];
  }
}

/** Denied syscalls grouped by the capability that lifts the denial ('' = always denied). */
const DENY_GROUPS: ReadonlyArray<{ caps: readonly string[]; names: readonly string[] }> = [
  // Kernel keyrings are not namespaced; Docker denies them to every container.
  { caps: [], names: ['add_key', 'keyctl', 'request_key'] },
  // Obsolete or useless in a container.
  { caps: [], names: ['create_module', 'get_kernel_syms', 'query_module', 'nfsservctl', 'uselib', 'ustat', 'sysfs', '_sysctl', 'vm86', 'vm86old'] },
  { caps: ['CAP_SYS_MODULE'], names: ['init_module', 'finit_module', 'delete_module'] },
  { caps: ['CAP_SYS_BOOT'], names: ['reboot', 'kexec_load', 'kexec_file_load'] },
  { caps: ['CAP_SYS_ADMIN'], names: [
    'mount', 'umount', 'umount2', 'pivot_root', 'swapon', 'swapoff', 'unshare', 'setns', 'quotactl',
    'lookup_dcookie', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'open_tree', 'move_mount', 'mount_setattr',
    'fanotify_init', 'name_to_handle_at',
  ] },
  { caps: ['CAP_DAC_READ_SEARCH'], names: ['open_by_handle_at'] },
  { caps: ['CAP_SYS_PTRACE'], names: ['ptrace', 'process_vm_readv', 'process_vm_writev', 'kcmp', 'userfaultfd', 'pidfd_getfd'] },
  { caps: ['CAP_SYS_TIME'], names: ['settimeofday', 'stime', 'clock_settime', 'clock_adjtime', 'adjtimex'] },
  { caps: ['CAP_SYS_PACCT'], names: ['acct'] },
  { caps: ['CAP_SYS_RAWIO'], names: ['iopl', 'ioperm'] },
  { caps: ['CAP_SYSLOG'], names: ['syslog'] },
  { caps: ['CAP_SYS_NICE'], names: ['move_pages'] },
  { caps: ['CAP_SYS_ADMIN', 'CAP_BPF'], names: ['bpf'] },
  { caps: ['CAP_SYS_ADMIN', 'CAP_PERFMON'], names: ['perf_event_open'] },
];

/** CLONE_NEW{NS,CGROUP,UTS,IPC,USER,PID,NET}: Docker's mask 0x7E020000, one bit per rule. */
const CLONE_NS_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];

/**
 * Our default profile (OCI shape) for a container holding `caps` (default: Docker's default set,
 * i.e. the most restrictive variant).
 */
export function defaultSeccompProfile(caps: readonly string[] = []): OciSeccomp {
  const names: string[] = [];
  for (const g of DENY_GROUPS) {
    if (g.caps.length > 0 && g.caps.some((c) => caps.includes(c))) continue;
    names.push(...g.names);
  }
  const syscalls: OciSeccompSyscall[] = [{ names, action: 'SCMP_ACT_ERRNO', errnoRet: EPERM }];
  if (!caps.includes('CAP_SYS_ADMIN')) {
    syscalls.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });
    for (const bit of CLONE_NS_FLAGS) {
      syscalls.push({
        names: ['clone'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM,
        args: [{ index: process.arch === 's390x' ? 1 : 0, value: bit, valueTwo: bit, op: 'SCMP_CMP_MASKED_EQ' }],
      });
    }
  }
  return { defaultAction: 'SCMP_ACT_ALLOW', architectures: nativeArchitectures(), syscalls };
}

/** The Go/Docker arch names that match this host in a profile's includes/excludes.arches. */
function hostArchNames(): string[] {
  switch (process.arch) {
    case 'x64': return ['amd64', 'x86_64'];
    case 'arm64': return ['arm64', 'aarch64'];
    case 'ia32': return ['386', 'x86'];
    default: return [process.arch];
  }
}

function kernelAtLeast(min: string, current: string = release()): boolean {
  const parse = (s: string): number[] => (/^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(s) ?? []).slice(1).map((x) => Number(x ?? 0));
  const a = parse(current);
  const b = parse(min);
  if (b.length === 0) throw invalidArgument(`invalid kernel version in seccomp profile: ${min}`);
  for (let i = 0; i < 3; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d > 0;
  }
  return true;
}

type Filter = { caps?: string[]; arches?: string[]; minKernel?: string };

/**
 * Converts a Docker-format seccomp profile (JSON text or object) to the OCI shape for a container
 * with capabilities `caps` (moby profiles/seccomp setupSeccomp semantics).
 */
export function convertDockerSeccomp(profile: string | Record<string, unknown>, caps: readonly string[]): OciSeccomp {
  let p: Record<string, unknown>;
  if (typeof profile === 'string') {
    try {
      p = JSON.parse(profile) as Record<string, unknown>;
    } catch (err) {
      throw invalidArgument(`Decoding seccomp profile failed: ${(err as Error).message}`, { cause: err });
    }
  } else {
    p = profile;
  }
  if (!p || typeof p !== 'object' || Array.isArray(p)) throw invalidArgument('Decoding seccomp profile failed: not an object');
  const defaultAction = typeof p['defaultAction'] === 'string' ? p['defaultAction'] : '';
  if (!defaultAction) throw invalidArgument('seccomp profile has no defaultAction');
  const out: OciSeccomp = { defaultAction };
  if (typeof p['defaultErrnoRet'] === 'number') out.defaultErrnoRet = p['defaultErrnoRet'];
  const archs = Array.isArray(p['architectures']) ? (p['architectures'] as string[]) : [];
  const archMap = Array.isArray(p['archMap']) ? (p['archMap'] as Array<{ architecture?: string; subArchitectures?: string[] }>) : [];
  if (archs.length > 0 && archMap.length > 0) {
    throw invalidArgument("both 'architectures' and 'archMap' are specified in the seccomp profile, use either 'architectures' or 'archMap'");
  }
  if (archs.length > 0) out.architectures = [...archs];
  else if (archMap.length > 0) {
    const native = nativeArchitectures()[0];
    const m = archMap.find((a) => a.architecture === native);
    if (m) out.architectures = [m.architecture!, ...(m.subArchitectures ?? [])];
  }
  if (Array.isArray(p['flags'])) out.flags = [...(p['flags'] as string[])];
  if (typeof p['listenerPath'] === 'string' && p['listenerPath']) out.listenerPath = p['listenerPath'];
  if (typeof p['listenerMetadata'] === 'string' && p['listenerMetadata']) out.listenerMetadata = p['listenerMetadata'];

  const myArches = hostArchNames();
  const syscalls: OciSeccompSyscall[] = [];
  for (const raw of Array.isArray(p['syscalls']) ? (p['syscalls'] as Array<Record<string, unknown>>) : []) {
    const name = typeof raw['name'] === 'string' ? raw['name'] : '';
    const names = Array.isArray(raw['names']) ? (raw['names'] as string[]) : [];
    if (name && names.length > 0) {
      throw invalidArgument("'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'");
    }
    const inc = (raw['includes'] ?? {}) as Filter;
    const exc = (raw['excludes'] ?? {}) as Filter;
    if (inc.arches?.length && !inc.arches.some((a) => myArches.includes(a))) continue;
    if (exc.arches?.some((a) => myArches.includes(a))) continue;
    if (inc.caps?.length && !inc.caps.every((c) => caps.includes(c))) continue;
    if (exc.caps?.some((c) => caps.includes(c))) continue;
    if (inc.minKernel && !kernelAtLeast(inc.minKernel)) continue;
    if (typeof raw['action'] !== 'string') throw invalidArgument(`seccomp profile syscall ${name || names.join(',')} has no action`);
    const s: OciSeccompSyscall = { names: name ? [name] : [...names], action: raw['action'] };
    if (typeof raw['errnoRet'] === 'number') s.errnoRet = raw['errnoRet'];
    if (Array.isArray(raw['args']) && raw['args'].length > 0) {
      s.args = (raw['args'] as Array<Record<string, unknown>>).map((a) => {
        const arg = { index: Number(a['index'] ?? 0), value: Number(a['value'] ?? 0), op: String(a['op'] ?? '') };
        return typeof a['valueTwo'] === 'number' && a['valueTwo'] !== 0 ? { ...arg, valueTwo: a['valueTwo'] } : arg;
      });
    }
    if (s.names.length > 0) syscalls.push(s);
  }
  out.syscalls = syscalls;
  return out;
}
