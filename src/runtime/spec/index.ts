/**
 * OCI runtime spec builder: Docker container configuration → config.json (isolation, limits,
 * security). Pure except for reading /etc/passwd and /etc/group inside the rootfs, stat of
 * `--device` paths / host /dev for privileged containers and `seccomp=<path>` profile files.
 */
export type {
  ResolvedMount, HostLimits, IdMapping, SpecInput, OciSpec, OciProcess, OciUser, OciCapabilities, OciRlimit,
  OciMount, OciDevice, OciDeviceCgroup, OciLinuxResources, OciNamespace, OciSeccomp, OciSeccompSyscall,
  OciSeccompArg, OciLinux,
} from './types.js';
export {
  buildRuntimeSpec, buildExecProcess, mergeEnv, rlimitsFromHostConfig, OCI_VERSION, DEFAULT_PATH_ENV,
  INIT_PATH_IN_CONTAINER, DEFAULT_NOFILE, RLIM_UNLIMITED, type ExecProcessInput,
} from './build-spec.js';
export { resourcesFromHostConfig, validateHostConfig, parseCpuset, MIN_MEMORY, DEFAULT_CPU_PERIOD } from './resources.js';
export { parseMemory, parseCpus, parseUlimit, validateUlimit, ULIMIT_NAMES, type Ulimit } from './units.js';
export {
  DEFAULT_CAPABILITIES, KNOWN_CAPABILITIES, allCapabilities, normalizeCapability, tweakCapabilities,
} from './capabilities.js';
export { defaultSeccompProfile, convertDockerSeccomp, nativeArchitectures } from './seccomp.js';
export { parseSecurityOpt, type SecurityOptions } from './security-opt.js';
export {
  parseDeviceSpec, parseDeviceCgroupRule, defaultDeviceRules, resolveDevices, deviceFromPath, hostDevices,
  type DeviceMapping,
} from './devices.js';
export { DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, DEFAULT_SHM_SIZE, mergeTmpfsOptions, tmpfsMount, userMount } from './mounts.js';
export { resolveUser, secureJoin, type ExecUser } from './user.js';
