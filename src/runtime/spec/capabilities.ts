/**
 * Linux capabilities: Docker's default set and the CapAdd/CapDrop/Privileged rules of moby's
 * caps.TweakCapabilities ("ALL" in CapAdd = everything minus CapDrop; "ALL" in CapDrop = only CapAdd).
 */
import { readFileSync } from 'node:fs';

import { invalidArgument } from '../../base/errors.js';

/** Every capability known to Linux, indexed by its number (CAP_CHOWN = 0 … CAP_CHECKPOINT_RESTORE = 40). */
export const KNOWN_CAPABILITIES: readonly string[] = Object.freeze([
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE',
  'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT',
  'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
  'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
  'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
]);

/** Docker's default capability set (moby oci/caps/defaults.go). */
export const DEFAULT_CAPABILITIES: string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

let cachedAll: string[] | undefined;

/**
 * Capabilities this daemon can hand out: the kernel's (/proc/sys/kernel/cap_last_cap) intersected
 * with our own bounding set (/proc/self/status CapBnd). A runtime cannot grant a capability outside
 * its bounding set ("unable to apply caps: operation not permitted"); on the project hosts
 * CAP_SYS_RESOURCE is missing (host-notes), so privileged containers get everything else.
 */
export function allCapabilities(): string[] {
  if (!cachedAll) {
    let last = KNOWN_CAPABILITIES.length - 1;
    try {
      const n = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
      if (Number.isInteger(n) && n > 0) last = Math.min(n, last);
    } catch { /* keep the full list */ }
    let bounding: bigint | undefined;
    try {
      const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
      if (m) bounding = BigInt(`0x${m[1]}`);
    } catch { /* not Linux: no filter */ }
    cachedAll = KNOWN_CAPABILITIES.slice(0, last + 1).filter((_, i) => bounding === undefined || ((bounding >> BigInt(i)) & 1n) === 1n);
  }
  return [...cachedAll];
}

/** "net_admin" / "CAP_NET_ADMIN" / "ALL" → canonical name; unknown → invalidArgument. */
export function normalizeCapability(c: string): string {
  const up = c.trim().toUpperCase();
  if (up === 'ALL') return 'ALL';
  const name = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!KNOWN_CAPABILITIES.includes(name)) throw invalidArgument(`unknown capability: "${c}"`);
  return name;
}

/** The effective capability list for CapAdd/CapDrop/Privileged, starting from `basics`. */
export function tweakCapabilities(
  basics: readonly string[],
  adds: readonly string[],
  drops: readonly string[],
  privileged: boolean,
): string[] {
  if (privileged) return allCapabilities();
  if (adds.length === 0 && drops.length === 0) return [...basics];
  const add = adds.map(normalizeCapability);
  const drop = drops.map(normalizeCapability);
  let caps: string[];
  if (add.includes('ALL')) {
    caps = allCapabilities().filter((c) => !drop.includes(c));
  } else if (drop.includes('ALL')) {
    caps = [...add];
  } else {
    caps = basics.filter((c) => !drop.includes(c));
    caps.push(...add);
  }
  return [...new Set(caps)];
}
