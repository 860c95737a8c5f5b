/**
 * Types of the OCI runtime spec (the subset berth writes) and of the spec builder's input.
 * Field names follow opencontainers/runtime-spec config.md / config-linux.md exactly, because the
 * objects are serialised verbatim into the bundle's config.json.
 */

/** A user mount already resolved to a host path by container/ (binds, named volumes, tmpfs). */
export interface ResolvedMount {
  destination: string;
  source: string;
  type: 'bind' | 'tmpfs' | 'volume';
  readOnly: boolean;
  /** Extra mount options, e.g. tmpfs `size=64m`, `mode=1777`. */
  options?: string[];
  /** private | rprivate | shared | rshared | slave | rslave (binds only; default rprivate). */
  propagation?: string;
}

/** Facts about the host that change how limits are expressed. */
export interface HostLimits {
  /** Hard RLIMIT_NOFILE of the daemon; the container cannot be given more (no CAP_SYS_RESOURCE). */
  nofileHard: number;
  cgroupVersion: 1 | 2;
  ncpu: number;
  /** False when the kernel has no swap accounting (memory.memsw.*); swap limits are then dropped. */
  swapAccounting?: boolean;
  /** Available CPUs/mems for cpuset validation, e.g. "0-3"; unchecked when absent. */
  cpusetCpus?: string;
  cpusetMems?: string;
}

/** One uid/gid mapping of a user namespace. */
export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/** Everything the builder needs to produce a container's config.json. */
export interface SpecInput {
  id: string;
  /** Docker container Config merged with the image config. */
  config: Record<string, unknown>;
  /** Docker HostConfig. */
  hostConfig: Record<string, unknown>;
  /** Absolute path of the mounted container rootfs. */
  rootfs: string;
  /** User mounts already resolved to host paths. */
  mounts: ResolvedMount[];
  /** Host files bind-mounted at /etc/hosts, /etc/resolv.conf, /etc/hostname. */
  etcFiles?: { hosts?: string; resolvConf?: string; hostname?: string };
  /** When set, this host dir is bound at /dev/shm instead of a fresh tmpfs. */
  shmPath?: string;
  /** Cgroup path, e.g. "/berth/<id>". */
  cgroupsPath: string;
  /** Network namespace to join; absent means a new (empty) netns. */
  netnsPath?: string;
  /** Namespaces to join for `container:<id>` IPC/PID/UTS modes (paths like /proc/<pid>/ns/ipc). */
  namespacePaths?: { ipc?: string; pid?: string; uts?: string };
  /** Host path of tini-static, bound at /sbin/docker-init when HostConfig.Init. */
  initPath?: string;
  /** User-namespace maps; a user namespace is created when given (unless UsernsMode is "host"). */
  userns?: { uidMap: IdMapping[]; gidMap: IdMapping[] };
  hostLimits: HostLimits;
  runtime: 'crun' | 'runc' | 'runsc';
}

/** OCI `process.user`. */
export interface OciUser {
  uid: number;
  gid: number;
  umask?: number;
  additionalGids?: number[];
}

/** OCI `process.capabilities`. */
export interface OciCapabilities {
  bounding: string[];
  effective: string[];
  permitted: string[];
  inheritable?: string[];
  ambient?: string[];
}

/** OCI `process.rlimits[]` entry. */
export interface OciRlimit {
  type: string;
  hard: number;
  soft: number;
}

/** OCI `process` (also the process.json of `runc exec --process`). */
export interface OciProcess {
  terminal: boolean;
  consoleSize?: { height: number; width: number };
  user: OciUser;
  args: string[];
  env: string[];
  cwd: string;
  capabilities: OciCapabilities;
  rlimits: OciRlimit[];
  noNewPrivileges: boolean;
  oomScoreAdj?: number;
  apparmorProfile?: string;
}

/** OCI `mounts[]` entry. */
export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options: string[];
}

/** OCI `linux.devices[]` entry. */
export interface OciDevice {
  path: string;
  type: 'c' | 'b' | 'p' | 'u';
  major: number;
  minor: number;
  fileMode?: number;
  uid?: number;
  gid?: number;
}

/** OCI `linux.resources.devices[]` entry (device cgroup rule). */
export interface OciDeviceCgroup {
  allow: boolean;
  type?: 'a' | 'c' | 'b';
  major?: number;
  minor?: number;
  access?: string;
}

/** OCI `linux.resources`. */
export interface OciLinuxResources {
  devices?: OciDeviceCgroup[];
  memory?: {
    limit?: number;
    reservation?: number;
    swap?: number;
    swappiness?: number;
    disableOOMKiller?: boolean;
  };
  cpu?: {
    shares?: number;
    quota?: number;
    period?: number;
    realtimeRuntime?: number;
    realtimePeriod?: number;
    cpus?: string;
    mems?: string;
  };
  pids?: { limit: number };
  blockIO?: { weight?: number };
}

/** OCI `linux.namespaces[]` entry. */
export interface OciNamespace {
  type: 'pid' | 'network' | 'mount' | 'ipc' | 'uts' | 'user' | 'cgroup';
  path?: string;
}

/** OCI `linux.seccomp.syscalls[].args[]` entry. */
export interface OciSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

/** OCI `linux.seccomp.syscalls[]` entry. */
export interface OciSeccompSyscall {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: OciSeccompArg[];
}

/** OCI `linux.seccomp`. */
export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: OciSeccompSyscall[];
}

/** OCI `linux`. */
export interface OciLinux {
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
  sysctl?: Record<string, string>;
  resources: OciLinuxResources;
  cgroupsPath: string;
  namespaces: OciNamespace[];
  devices: OciDevice[];
  seccomp?: OciSeccomp;
  rootfsPropagation?: string;
  maskedPaths?: string[];
  readonlyPaths?: string[];
}

/** The whole config.json object. */
export interface OciSpec {
  ociVersion: string;
  root: { path: string; readonly: boolean };
  process: OciProcess;
  hostname?: string;
  domainname?: string;
  mounts: OciMount[];
  linux: OciLinux;
  annotations?: Record<string, string>;
}
