/**
 * Devices: Docker's default device-cgroup allowlist, `--device` parsing, host device lookup
 * (stat → type/major/minor) and `--device-cgroup-rule` parsing.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

import { EngineError, invalidArgument } from '../../base/errors.js';
import type { OciDevice, OciDeviceCgroup } from './types.js';

/** A HostConfig.Devices entry. */
export interface DeviceMapping {
  PathOnHost: string;
  PathInContainer: string;
  CgroupPermissions: string;
}

const rule = (type: 'c' | 'b', major: number | undefined, minor: number | undefined, access: string): OciDeviceCgroup => {
  const r: OciDeviceCgroup = { allow: true, type, access };
  if (major !== undefined) r.major = major;
  if (minor !== undefined) r.minor = minor;
  return r;
};

/**
 * Docker's default device cgroup rules: deny everything, then allow mknod of any device and
 * rwm on null, zero, full, random, urandom, tty, console, ptmx and the pts slaves.
 */
export function defaultDeviceRules(): OciDeviceCgroup[] {
  return [
    { allow: false, access: 'rwm' },
    rule('c', undefined, undefined, 'm'),
    rule('b', undefined, undefined, 'm'),
    rule('c', 1, 3, 'rwm'), // /dev/null
    rule('c', 1, 5, 'rwm'), // /dev/zero
    rule('c', 1, 7, 'rwm'), // /dev/full
    rule('c', 1, 8, 'rwm'), // /dev/random
    rule('c', 1, 9, 'rwm'), // /dev/urandom
    rule('c', 5, 0, 'rwm'), // /dev/tty
    rule('c', 5, 1, 'rwm'), // /dev/console
    rule('c', 5, 2, 'rwm'), // /dev/ptmx
    rule('c', 136, undefined, 'rwm'), // /dev/pts/*
  ];
}

function validPerms(p: string): boolean {
  return p.length > 0 && p.length <= 3 && [...p].every((c) => 'rwm'.includes(c)) && new Set(p).size === p.length;
}

/** Parses the CLI form `/dev/x[:/dev/y][:rwm]` into a HostConfig.Devices entry. */
export function parseDeviceSpec(s: string): DeviceMapping {
  const parts = s.split(':');
  let perms = 'rwm';
  let src = parts[0] ?? '';
  let dst = '';
  if (parts.length === 3) {
    dst = parts[1]!;
    perms = parts[2]!;
  } else if (parts.length === 2) {
    if (validPerms(parts[1]!)) perms = parts[1]!;
    else dst = parts[1]!;
  } else if (parts.length !== 1) {
    throw invalidArgument(`invalid device specification: ${s}`);
  }
  if (!validPerms(perms)) throw invalidArgument(`invalid device mode: ${perms}`);
  if (!src.startsWith('/')) throw invalidArgument(`invalid device path: ${src}`);
  if (dst === '') dst = src;
  if (!dst.startsWith('/')) throw invalidArgument(`${dst} is not an absolute path`);
  src = path.normalize(src);
  return { PathOnHost: src, PathInContainer: path.normalize(dst), CgroupPermissions: perms };
}

/** Parses `--device-cgroup-rule` text such as "c 1:3 rwm" or "a *:* rwm". */
export function parseDeviceCgroupRule(s: string): OciDeviceCgroup {
  const m = /^([acb]) (\d+|\*):(\d+|\*) ([rwm]{1,3})$/.exec(s.trim());
  if (!m || !validPerms(m[4]!)) throw invalidArgument(`invalid device cgroup rule format: '${s}'`);
  const r: OciDeviceCgroup = { allow: true, type: m[1] as 'a' | 'c' | 'b', access: m[4]! };
  if (m[2] !== '*') r.major = Number(m[2]);
  if (m[3] !== '*') r.minor = Number(m[3]);
  return r;
}

/** Linux dev_t decoding (glibc gnu_dev_major/minor). */
function majorMinor(rdev: bigint): { major: number; minor: number } {
  const major = Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn & 0xffffffffn));
  const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn & 0xffffffffn));
  return { major, minor };
}

/** Stats a host path; a char/block/fifo device becomes an OciDevice at `containerPath`, else undefined. */
export async function deviceFromPath(hostPath: string, containerPath: string): Promise<OciDevice | undefined> {
  const st = await stat(hostPath, { bigint: true });
  let type: OciDevice['type'];
  if (st.isCharacterDevice()) type = 'c';
  else if (st.isBlockDevice()) type = 'b';
  else if (st.isFIFO()) type = 'p';
  else return undefined;
  const { major, minor } = majorMinor(st.rdev);
  return {
    path: containerPath, type, major, minor,
    fileMode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid),
  };
}

/**
 * Resolves HostConfig.Devices to OCI devices plus their cgroup allow rules. A directory adds every
 * device below it (as Docker does). A missing path throws invalidArgument with Docker's wording.
 */
export async function resolveDevices(mappings: readonly DeviceMapping[]): Promise<{ devices: OciDevice[]; rules: OciDeviceCgroup[] }> {
  const devices: OciDevice[] = [];
  const rules: OciDeviceCgroup[] = [];
  for (const m of mappings) {
    const perms = m.CgroupPermissions || 'rwm';
    if (!validPerms(perms)) throw invalidArgument(`invalid device mode: ${perms}`);
    const dst = m.PathInContainer || m.PathOnHost;
    let found: Array<OciDevice | undefined>;
    try {
      const st = await stat(m.PathOnHost);
      if (st.isDirectory()) {
        found = [];
        for (const f of await walk(m.PathOnHost)) {
          found.push(await deviceFromPath(f, path.join(dst, path.relative(m.PathOnHost, f))).catch(() => undefined));
        }
      } else {
        found = [await deviceFromPath(m.PathOnHost, dst)];
        if (!found[0]) throw invalidArgument(`error gathering device information while adding custom device "${m.PathOnHost}": not a device node`);
      }
    } catch (err) {
      if (err instanceof EngineError) throw err;
      const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : String((err as Error).message);
      throw invalidArgument(`error gathering device information while adding custom device "${m.PathOnHost}": ${reason}`, { cause: err });
    }
    for (const d of found) {
      if (!d || d.type === 'p') continue;
      devices.push(d);
      rules.push({ allow: true, type: d.type as 'c' | 'b', major: d.major, minor: d.minor, access: perms });
    }
  }
  return { devices, rules };
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else if (e.isCharacterDevice() || e.isBlockDevice()) out.push(p);
  }
  return out;
}

/** Directories and files under /dev that are never copied into a privileged container (as runc). */
const SKIP_HOST_DEV = new Set(['pts', 'shm', 'fd', 'mqueue', '.lxc', '.lxd-mounts', '.udev', 'console']);

/** Every char/block device of the host's /dev (what a privileged container gets). */
export async function hostDevices(devDir = '/dev'): Promise<OciDevice[]> {
  const out: OciDevice[] = [];
  const visit = async (dir: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (dir === devDir && SKIP_HOST_DEV.has(e.name)) continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) await visit(p);
      else if (e.isCharacterDevice() || e.isBlockDevice()) {
        const d = await deviceFromPath(p, path.join('/dev', path.relative(devDir, p))).catch(() => undefined);
        if (d) out.push(d);
      }
    }
  };
  await visit(devDir);
  return out;
}
