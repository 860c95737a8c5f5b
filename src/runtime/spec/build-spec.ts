/**
 * buildRuntimeSpec: a container's Docker Config + HostConfig → OCI runtime-spec config.json, and
 * buildExecProcess: an exec's settings → the process.json of `runc exec --process`.
 * Mirrors moby daemon/oci_linux.go where Docker's behaviour is observable by clients.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';

import { failedPrecondition, invalidArgument } from '../../base/errors.js';
import { DEFAULT_CAPABILITIES, allCapabilities, tweakCapabilities } from './capabilities.js';
import { defaultDeviceRules, hostDevices, parseDeviceCgroupRule, resolveDevices, type DeviceMapping } from './devices.js';
import { bool, num, objArr, str, strArr, strMap } from './fields.js';
import {
  DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, defaultMounts, mountDepth, tmpfsMount, userMount,
} from './mounts.js';
import { resourcesFromHostConfig, validateHostConfig } from './resources.js';
import { convertDockerSeccomp, defaultSeccompProfile } from './seccomp.js';
import { parseSecurityOpt, type SecurityOptions } from './security-opt.js';
import type {
  HostLimits, OciMount, OciNamespace, OciProcess, OciRlimit, OciSeccomp, OciSpec, SpecInput,
} from './types.js';
import { ULIMIT_NAMES } from './units.js';
import { resolveUser } from './user.js';

/** OCI runtime-spec version written into config.json (runc 1.1 and crun 1.8 both accept it). */
export const OCI_VERSION = '1.0.2';
/** Docker's default PATH. */
export const DEFAULT_PATH_ENV = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Where the init binary (tini) is bound inside the container, as Docker. */
export const INIT_PATH_IN_CONTAINER = '/sbin/docker-init';
/** RLIMIT_NOFILE given to containers when the user sets none (then clamped to the host hard limit). */
export const DEFAULT_NOFILE = 1048576;
/** Stand-in for RLIM_INFINITY (2^64-1 cannot be written by JSON.stringify); effectively unlimited. */
export const RLIM_UNLIMITED = Number.MAX_SAFE_INTEGER;

const IPC_SYSCTLS = new Set([
  'kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax',
  'kernel.shmmni', 'kernel.shm_rmid_forced',
]);

/** Replaces defaults by key with overrides (`K=V`); a bare `K` removes the key (Docker semantics). */
export function mergeEnv(defaults: readonly string[], overrides: readonly string[]): string[] {
  const out = [...defaults];
  const keyOf = (kv: string): string => (kv.includes('=') ? kv.slice(0, kv.indexOf('=')) : kv);
  for (const kv of overrides) {
    const k = keyOf(kv);
    const i = out.findIndex((e) => keyOf(e) === k);
    if (!kv.includes('=')) {
      if (i >= 0) out.splice(i, 1);
      continue;
    }
    if (i >= 0) out[i] = kv;
    else out.push(kv);
  }
  return out;
}

/** Rlimits from HostConfig.Ulimits plus a default RLIMIT_NOFILE; NOFILE is clamped to the host hard limit. */
export function rlimitsFromHostConfig(hc: Record<string, unknown>, hostLimits: HostLimits): OciRlimit[] {
  const out: OciRlimit[] = [];
  const toLimit = (v: number): number => (v < 0 ? RLIM_UNLIMITED : v);
  for (const u of objArr(hc, 'Ulimits')) {
    const name = str(u, 'Name');
    const type = ULIMIT_NAMES[name];
    if (!type) throw invalidArgument(`invalid ulimit type: ${name}`);
    let soft = toLimit(num(u, 'Soft'));
    let hard = toLimit(num(u, 'Hard'));
    if (type === 'RLIMIT_NOFILE') {
      hard = Math.min(hard, hostLimits.nofileHard);
      soft = Math.min(soft, hard);
    }
    const i = out.findIndex((r) => r.type === type);
    if (i >= 0) out.splice(i, 1);
    out.push({ type, hard, soft });
  }
  if (!out.some((r) => r.type === 'RLIMIT_NOFILE')) {
    const n = Math.min(DEFAULT_NOFILE, hostLimits.nofileHard);
    out.push({ type: 'RLIMIT_NOFILE', hard: n, soft: n });
  }
  return out;
}

interface ProcessOptions {
  args: string[];
  env: string[];
  user: string;
  cwd: string;
  tty: boolean;
  consoleSize: [number, number] | undefined;
  caps: string[];
  noNewPrivileges: boolean;
}

async function makeProcess(base: SpecInput, o: ProcessOptions): Promise<OciProcess> {
  if (o.args.length === 0 || o.args[0] === '') throw invalidArgument('No command specified');
  const cwd = o.cwd || '/';
  if (!cwd.startsWith('/')) throw invalidArgument(`the working directory '${cwd}' is invalid, it needs to be an absolute path`);
  const hc = base.hostConfig;
  const u = await resolveUser(base.rootfs, o.user, strArr(hc, 'GroupAdd'));
  const env = [...o.env];
  if (!env.some((e) => e.startsWith('HOME='))) env.push(`HOME=${u.home}`);
  const p: OciProcess = {
    terminal: o.tty,
    user: u.additionalGids.length > 0 ? { uid: u.uid, gid: u.gid, additionalGids: u.additionalGids } : { uid: u.uid, gid: u.gid },
    args: o.args,
    env,
    cwd: path.posix.normalize(cwd),
    capabilities: { bounding: [...o.caps], effective: [...o.caps], permitted: [...o.caps] },
    rlimits: rlimitsFromHostConfig(hc, base.hostLimits),
    noNewPrivileges: o.noNewPrivileges,
  };
  if (o.tty && o.consoleSize && o.consoleSize[0] > 0 && o.consoleSize[1] > 0) {
    p.consoleSize = { height: o.consoleSize[0], width: o.consoleSize[1] };
  }
  // A negative adjustment needs CAP_SYS_RESOURCE, which the daemon lacks (host-notes): never lower it.
  const oom = num(hc, 'OomScoreAdj');
  if (oom > 0) p.oomScoreAdj = oom;
  return p;
}

function consoleSizeOf(hc: Record<string, unknown>): [number, number] | undefined {
  const v = hc['ConsoleSize'];
  if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'number' && typeof v[1] === 'number') return [v[0], v[1]];
  return undefined;
}

function containerEnv(config: Record<string, unknown>, tty: boolean): string[] {
  const defaults = [`PATH=${DEFAULT_PATH_ENV}`, `HOSTNAME=${str(config, 'Hostname')}`];
  if (tty) defaults.push('TERM=xterm');
  return mergeEnv(defaults, strArr(config, 'Env'));
}

function containerCaps(hc: Record<string, unknown>): string[] {
  return tweakCapabilities(DEFAULT_CAPABILITIES, strArr(hc, 'CapAdd'), strArr(hc, 'CapDrop'), bool(hc, 'Privileged'));
}

function namespaces(input: SpecInput): OciNamespace[] {
  const hc = input.hostConfig;
  const ns: OciNamespace[] = [{ type: 'mount' }];
  const join = (type: OciNamespace['type'], mode: string, p: string | undefined): void => {
    if (mode === 'host') return;
    if (mode.startsWith('container:')) {
      if (!p) throw failedPrecondition(`cannot join ${type} namespace of ${mode.slice(10)}: no namespace path`);
      ns.push({ type, path: p });
      return;
    }
    ns.push({ type });
  };
  join('pid', str(hc, 'PidMode'), input.namespacePaths?.pid);
  join('ipc', str(hc, 'IpcMode'), input.namespacePaths?.ipc);
  if (input.namespacePaths?.uts) ns.push({ type: 'uts', path: input.namespacePaths.uts });
  else join('uts', str(hc, 'UTSMode'), undefined);
  if (str(hc, 'NetworkMode') !== 'host') ns.push(input.netnsPath ? { type: 'network', path: input.netnsPath } : { type: 'network' });
  if (input.userns && str(hc, 'UsernsMode') !== 'host') ns.push({ type: 'user' });
  const cgns = str(hc, 'CgroupnsMode') || (input.hostLimits.cgroupVersion === 2 ? 'private' : 'host');
  if (cgns === 'private') ns.push({ type: 'cgroup' });
  return ns;
}

function sysctls(input: SpecInput, ns: OciNamespace[]): Record<string, string> | undefined {
  const user = strMap(input.hostConfig, 'Sysctls');
  const has = (t: OciNamespace['type']): boolean => ns.some((n) => n.type === t);
  for (const k of Object.keys(user)) {
    if (k.startsWith('net.')) {
      if (!has('network')) throw invalidArgument(`sysctl '${k}' is not allowed in the host network namespace`);
    } else if (IPC_SYSCTLS.has(k) || k.startsWith('fs.mqueue.')) {
      if (!has('ipc')) throw invalidArgument(`sysctl '${k}' is not allowed in the host IPC namespace`);
    } else if (k === 'kernel.domainname' || k === 'kernel.hostname') {
      if (!has('uts')) throw invalidArgument(`sysctl '${k}' is not allowed in the host UTS namespace`);
    } else {
      throw invalidArgument(`sysctl '${k}' is not whitelisted`);
    }
  }
  const out: Record<string, string> = {};
  // Docker (20.10+) lets unprivileged processes bind low ports and ping inside a private netns.
  // A joined netns (netnsPath) belongs to the host's user namespace: a user-namespaced container
  // cannot write its sysctls, so the defaults are only set when it may.
  if (has('network') && input.runtime !== 'runsc' && !(has('user') && input.netnsPath)) {
    out['net.ipv4.ip_unprivileged_port_start'] = '0';
    if (!has('user')) out['net.ipv4.ping_group_range'] = '0 2147483647';
  }
  Object.assign(out, user);
  return Object.keys(out).length > 0 ? out : undefined;
}

async function seccompFor(opts: SecurityOptions, input: SpecInput, caps: string[]): Promise<OciSeccomp | undefined> {
  if (bool(input.hostConfig, 'Privileged') || opts.seccomp === 'unconfined') return undefined;
  // gVisor is its own syscall sandbox and ignores linux.seccomp: leave it out for runsc.
  if (input.runtime === 'runsc') return undefined;
  if (opts.seccomp === 'default') return defaultSeccompProfile(caps);
  if ('json' in opts.seccomp) return convertDockerSeccomp(opts.seccomp.json, caps);
  let text: string;
  try {
    text = await readFile(opts.seccomp.path, 'utf8');
  } catch (err) {
    throw invalidArgument(`opening seccomp profile (${opts.seccomp.path}) failed: ${(err as Error).message}`, { cause: err });
  }
  return convertDockerSeccomp(text, caps);
}

function buildMounts(input: SpecInput, ns: OciNamespace[]): { mounts: OciMount[]; rootfsPropagation?: string } {
  const hc = input.hostConfig;
  const privileged = bool(hc, 'Privileged');
  const readonlyRootfs = bool(hc, 'ReadonlyRootfs');
  const hasUser = ns.some((n) => n.type === 'user');
  const ownNetns = ns.some((n) => n.type === 'network' && !n.path);
  const defaults = defaultMounts({
    shmSize: num(hc, 'ShmSize'),
    ...(input.shmPath ? { shmPath: input.shmPath } : {}),
    ipcMode: str(hc, 'IpcMode'),
    bindSys: hasUser && !ownNetns,
    privileged,
    readonlyRootfs,
  });

  const extra: OciMount[] = [];
  const etc = input.etcFiles ?? {};
  const etcOpts = ['rbind', 'rprivate', readonlyRootfs ? 'ro' : 'rw'];
  if (etc.resolvConf) extra.push({ destination: '/etc/resolv.conf', type: 'bind', source: etc.resolvConf, options: [...etcOpts] });
  if (etc.hostname) extra.push({ destination: '/etc/hostname', type: 'bind', source: etc.hostname, options: [...etcOpts] });
  if (etc.hosts) extra.push({ destination: '/etc/hosts', type: 'bind', source: etc.hosts, options: [...etcOpts] });
  if (bool(hc, 'Init')) {
    if (!input.initPath) throw failedPrecondition('init binary (docker-init) is not available on this host');
    extra.push({ destination: INIT_PATH_IN_CONTAINER, type: 'bind', source: input.initPath, options: ['rbind', 'rprivate', 'ro'] });
  }

  const user: OciMount[] = [];
  for (const [dest, data] of Object.entries(strMap(hc, 'Tmpfs'))) user.push(tmpfsMount(dest, data));
  let rootfsPropagation: string | undefined;
  for (const m of input.mounts) {
    const om = userMount(m);
    user.push(om);
    const prop = m.propagation ?? '';
    if (prop === 'shared' || prop === 'rshared') rootfsPropagation = 'shared';
    else if ((prop === 'slave' || prop === 'rslave') && rootfsPropagation !== 'shared') rootfsPropagation = 'rslave';
  }
  const seen = new Set<string>();
  for (const m of user) {
    if (seen.has(m.destination)) throw invalidArgument(`Duplicate mount point: ${m.destination}`);
    seen.add(m.destination);
  }
  user.sort((a, b) => mountDepth(a.destination) - mountDepth(b.destination));
  const mounts = [...defaults, ...extra].filter((m) => !seen.has(m.destination));
  mounts.push(...user);
  return rootfsPropagation ? { mounts, rootfsPropagation } : { mounts };
}

/** Builds the OCI config.json object for a container. Validates HostConfig first (Docker wording). */
export async function buildRuntimeSpec(input: SpecInput): Promise<OciSpec> {
  const { config, hostConfig: hc } = input;
  validateHostConfig(hc, input.hostLimits);
  const secOpts = parseSecurityOpt(strArr(hc, 'SecurityOpt'));
  const privileged = bool(hc, 'Privileged');
  const caps = containerCaps(hc);
  const tty = bool(config, 'Tty');

  let args = [...strArr(config, 'Entrypoint'), ...strArr(config, 'Cmd')];
  if (bool(hc, 'Init') && args.length > 0) args = [INIT_PATH_IN_CONTAINER, '--', ...args];
  const process = await makeProcess(input, {
    args, env: containerEnv(config, tty), user: str(config, 'User'), cwd: str(config, 'WorkingDir'),
    tty, consoleSize: consoleSizeOf(hc), caps, noNewPrivileges: secOpts.noNewPrivileges,
  });

  const ns = namespaces(input);
  const { mounts, rootfsPropagation } = buildMounts(input, ns);

  const resources = resourcesFromHostConfig(hc, input.hostLimits);
  // A new cgroup has no pids limit already; "-1" (unlimited, for `update`) is rejected by crun 1.8
  // on v1 hosts ("writing file `pids.max`: Invalid argument"), and the docker CLI always sends
  // PidsLimit: 0 on create (issue 4).
  if (resources.pids !== undefined && resources.pids.limit <= 0) delete resources.pids;
  const devMappings: DeviceMapping[] = objArr(hc, 'Devices').map((d) => ({
    PathOnHost: str(d, 'PathOnHost'), PathInContainer: str(d, 'PathInContainer'), CgroupPermissions: str(d, 'CgroupPermissions'),
  }));
  const custom = await resolveDevices(devMappings);
  let devices = custom.devices;
  if (privileged) {
    const host = await hostDevices();
    const taken = new Set(devices.map((d) => d.path));
    devices = [...devices, ...host.filter((d) => !taken.has(d.path))];
    resources.devices = [{ allow: true, access: 'rwm' }];
  } else {
    resources.devices = [
      ...defaultDeviceRules(),
      ...custom.rules,
      ...strArr(hc, 'DeviceCgroupRules').map(parseDeviceCgroupRule),
    ];
  }

  const spec: OciSpec = {
    ociVersion: OCI_VERSION,
    root: { path: input.rootfs, readonly: bool(hc, 'ReadonlyRootfs') },
    process,
    mounts,
    linux: {
      resources,
      cgroupsPath: input.cgroupsPath,
      namespaces: ns,
      devices,
    },
  };
  if (ns.some((n) => n.type === 'uts' && !n.path)) {
    spec.hostname = str(config, 'Hostname') || input.id.slice(0, 12);
    const domain = str(config, 'Domainname');
    if (domain) spec.domainname = domain;
  }
  if (ns.some((n) => n.type === 'user') && input.userns) {
    spec.linux.uidMappings = input.userns.uidMap.map((m) => ({ ...m }));
    spec.linux.gidMappings = input.userns.gidMap.map((m) => ({ ...m }));
  }
  const sc = sysctls(input, ns);
  if (sc) spec.linux.sysctl = sc;
  const seccomp = await seccompFor(secOpts, input, caps);
  if (seccomp) spec.linux.seccomp = seccomp;
  if (rootfsPropagation) spec.linux.rootfsPropagation = rootfsPropagation;
  if (!privileged && !secOpts.unmaskSystemPaths) {
    spec.linux.maskedPaths = [...DEFAULT_MASKED_PATHS];
    spec.linux.readonlyPaths = [...DEFAULT_READONLY_PATHS];
  }
  return spec;
}

/** Options of one exec. */
export interface ExecProcessInput {
  base: SpecInput;
  cmd: string[];
  env?: string[];
  user?: string;
  workingDir?: string;
  tty: boolean;
  privileged?: boolean;
  consoleSize?: [number, number];
}

/**
 * The process.json for `runc exec --process`: container env + exec env (TERM=xterm when tty),
 * user/cwd defaulting to the container's, the container's capabilities (all when privileged).
 */
export async function buildExecProcess(input: ExecProcessInput): Promise<OciProcess> {
  const { base } = input;
  const hc = base.hostConfig;
  const secOpts = parseSecurityOpt(strArr(hc, 'SecurityOpt'));
  const caps = input.privileged ? allCapabilities() : containerCaps(hc);
  const env = mergeEnv(containerEnv(base.config, input.tty), input.env ?? []);
  return makeProcess(base, {
    args: [...input.cmd],
    env,
    user: input.user || str(base.config, 'User'),
    cwd: input.workingDir || str(base.config, 'WorkingDir'),
    tty: input.tty,
    consoleSize: input.consoleSize,
    caps,
    noNewPrivileges: secOpts.noNewPrivileges,
  });
}
