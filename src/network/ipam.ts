/**
 * IPv4 address management: CIDR parsing, overlap checks, subnet choice that avoids the host's
 * routes, and address allocation inside a subnet. Pure functions; no I/O.
 */
import { invalidArgument } from '../base/errors.js';

/** A parsed IPv4 CIDR: network address as a 32-bit unsigned number and a prefix length. */
export interface Cidr {
  base: number;
  prefix: number;
}

/** Parse a dotted-quad IPv4 address into a 32-bit unsigned number; undefined when malformed. */
export function parseIp(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s.trim());
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

/** Format a 32-bit number as a dotted quad. */
export function formatIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Parse "a.b.c.d/n"; throws invalid-argument with Docker-like wording when malformed. */
export function parseCidr(s: string): Cidr {
  const i = s.indexOf('/');
  const ip = i < 0 ? undefined : parseIp(s.slice(0, i));
  const p = i < 0 ? NaN : Number(s.slice(i + 1));
  if (ip === undefined || !Number.isInteger(p) || p < 0 || p > 32 || !/^\d+$/.test(s.slice(i + 1))) {
    throw invalidArgument(`invalid CIDR address: ${s}`);
  }
  return { base: (ip & mask(p)) >>> 0, prefix: p };
}

/** Format a CIDR. */
export function formatCidr(c: Cidr): string {
  return `${formatIp(c.base)}/${c.prefix}`;
}

/** Number of addresses in a CIDR. */
export function size(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

/** True when the address lies inside the CIDR. */
export function contains(c: Cidr, ip: number): boolean {
  return ((ip & mask(c.prefix)) >>> 0) === c.base;
}

/** True when two CIDRs share any address. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  const p = Math.min(a.prefix, b.prefix);
  return ((a.base & mask(p)) >>> 0) === ((b.base & mask(p)) >>> 0);
}

/** The candidate pools for automatic subnets, Docker's order: 172.17-31/16, then 192.168.x/20 and 10.x/24. */
export function* candidateSubnets(): Generator<Cidr> {
  for (let b = 17; b <= 31; b++) yield parseCidr(`172.${b}.0.0/16`);
  for (let c = 0; c < 256; c += 16) yield parseCidr(`192.168.${c}.0/20`);
  for (let b = 0; b < 256; b++) for (let c = 0; c < 256; c++) yield parseCidr(`10.${b}.${c}.0/24`);
}

/** The first candidate that overlaps none of `taken`; throws when the pools are exhausted. */
export function pickSubnet(taken: Cidr[], candidates: Iterable<Cidr> = candidateSubnets()): Cidr {
  for (const c of candidates) if (!taken.some((t) => overlaps(t, c))) return c;
  throw invalidArgument('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
}

/**
 * Pick a free host address in `subnet` (optionally limited to `range`), skipping the network and
 * broadcast addresses, the gateway and every address in `used`.
 */
export function allocateIp(subnet: Cidr, used: Set<number>, range?: Cidr): number {
  const r = range ?? subnet;
  const first = Math.max(r.base, subnet.base + 1);
  const last = Math.min(r.base + size(r) - 1, subnet.base + size(subnet) - 2);
  for (let ip = first; ip <= last; ip++) if (!used.has(ip)) return ip;
  throw invalidArgument(`no available IPv4 addresses on this network's address pools: ${formatCidr(subnet)}`);
}

/** Host routes as reported by `ip -j route`: the destinations that are CIDRs (default excluded). */
export function routesToCidrs(routes: Array<{ dst?: string }>): Cidr[] {
  const out: Cidr[] = [];
  for (const r of routes) {
    if (!r.dst || r.dst === 'default') continue;
    const dst = r.dst.includes('/') ? r.dst : `${r.dst}/32`;
    try {
      out.push(parseCidr(dst));
    } catch {
      // not IPv4
    }
  }
  return out;
}
