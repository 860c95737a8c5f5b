/**
 * Turning `berth run/create` flags into the `POST /containers/create` body (Config + HostConfig +
 * NetworkingConfig), the way the docker CLI does (cli/command/container/opts.go). Pure: no I/O
 * except reading --env-file files through the injected reader.
 */
import { flagBool, flagGiven, flagInt, flagList, flagStr, UsageError, type FlagSpec, type ParsedArgs } from './args.js';
import { parseBytes } from './format.js';

/** Flags shared by run and create. */
export const containerFlags: FlagSpec[] = [
  { name: 'interactive', short: 'i', type: 'bool' },
  { name: 'tty', short: 't', type: 'bool' },
  { name: 'env', short: 'e', type: 'list' },
  { name: 'env-file', type: 'list' },
  { name: 'workdir', short: 'w', type: 'string' },
  { name: 'user', short: 'u', type: 'string' },
  { name: 'name', type: 'string' },
  { name: 'hostname', short: 'h', type: 'string' },
  { name: 'domainname', type: 'string' },
  { name: 'entrypoint', type: 'string' },
  { name: 'label', short: 'l', type: 'list' },
  { name: 'init', type: 'bool' },
  { name: 'stop-signal', type: 'string' },
  { name: 'stop-timeout', type: 'int' },
  { name: 'runtime', type: 'string' },
  { name: 'memory', short: 'm', type: 'string' },
  { name: 'memory-swap', type: 'string' },
  { name: 'memory-reservation', type: 'string' },
  { name: 'cpus', type: 'string' },
  { name: 'cpu-shares', short: 'c', type: 'int' },
  { name: 'cpu-period', type: 'int' },
  { name: 'cpu-quota', type: 'int' },
  { name: 'cpuset-cpus', type: 'string' },
  { name: 'cpuset-mems', type: 'string' },
  { name: 'pids-limit', type: 'int' },
  { name: 'ulimit', type: 'list' },
  { name: 'shm-size', type: 'string' },
  { name: 'tmpfs', type: 'list' },
  { name: 'cap-add', type: 'list' },
  { name: 'cap-drop', type: 'list' },
  { name: 'privileged', type: 'bool' },
  { name: 'read-only', type: 'bool' },
  { name: 'security-opt', type: 'list' },
  { name: 'device', type: 'list' },
  { name: 'volume', short: 'v', type: 'list' },
  { name: 'mount', type: 'list' },
  { name: 'volumes-from', type: 'list' },
  { name: 'network', type: 'string', aliases: ['net'] },
  { name: 'network-alias', type: 'list', aliases: ['net-alias'] },
  { name: 'ip', type: 'string' },
  { name: 'mac-address', type: 'string' },
  { name: 'restart', type: 'string' },
  { name: 'health-cmd', type: 'string' },
  { name: 'health-interval', type: 'string' },
  { name: 'health-timeout', type: 'string' },
  { name: 'health-retries', type: 'int' },
  { name: 'health-start-period', type: 'string' },
  { name: 'health-start-interval', type: 'string' },
  { name: 'no-healthcheck', type: 'bool' },
  { name: 'log-driver', type: 'string' },
  { name: 'log-opt', type: 'list' },
  { name: 'userns', type: 'string' },
  { name: 'pid', type: 'string' },
  { name: 'ipc', type: 'string' },
  { name: 'uts', type: 'string' },
  { name: 'cgroupns', type: 'string' },
  { name: 'group-add', type: 'list' },
  { name: 'sysctl', type: 'list' },
  { name: 'oom-kill-disable', type: 'bool' },
  { name: 'publish', short: 'p', type: 'list' },
  { name: 'publish-all', short: 'P', type: 'bool' },
  { name: 'expose', type: 'list' },
  { name: 'add-host', type: 'list' },
  { name: 'dns', type: 'list' },
  { name: 'dns-search', type: 'list' },
  { name: 'dns-option', type: 'list', aliases: ['dns-opt'] },
  { name: 'link', type: 'list' },
  { name: 'platform', type: 'string' },
  { name: 'pull', type: 'string' },
  { name: 'quiet', short: 'q', type: 'bool' },
  { name: 'attach', short: 'a', type: 'list' },
  { name: 'detach-keys', type: 'string' },
  { name: 'help', type: 'bool' },
];

/** Extra flags of `run` only. */
export const runOnlyFlags: FlagSpec[] = [
  { name: 'detach', short: 'd', type: 'bool' },
  { name: 'rm', type: 'bool' },
  { name: 'sig-proxy', type: 'bool' },
];

/** What the create call needs. */
export interface CreateRequest {
  name: string | undefined;
  platform: string | undefined;
  image: string;
  body: Record<string, unknown>;
}

/** Environment for building a request. */
export interface BuildEnv {
  /** Read a file (for --env-file). */
  readFile(path: string): string;
  /** Lookup of host variables for `-e NAME` without a value. */
  getenv(name: string): string | undefined;
  /** Terminal size [rows, cols] when -t, if known. */
  consoleSize?: [number, number] | undefined;
  /** True for `run -d`. */
  detach?: boolean;
  autoRemove?: boolean;
}

/** Parse a Go duration ("1m30s", "500ms", "10s"; a bare number means seconds) into nanoseconds. */
export function parseDurationNs(s: string): number {
  if (/^\d+$/.test(s)) return Number(s) * 1e9;
  const unit: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  let total = 0;
  let rest = s.trim();
  if (!rest) throw new UsageError(`time: invalid duration "${s}"`);
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/.exec(rest);
    if (!m) throw new UsageError(`time: invalid duration "${s}"`);
    total += Number(m[1]) * unit[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return Math.round(total);
}

/** Parse `-p [ip:][hostPort:]containerPort[/proto]` into exposed port keys and bindings. */
export function parsePublish(spec: string): { port: string; binding: { HostIp: string; HostPort: string } }[] {
  let proto = 'tcp';
  let s = spec;
  const slash = s.lastIndexOf('/');
  if (slash >= 0) {
    proto = s.slice(slash + 1) || 'tcp';
    s = s.slice(0, slash);
  }
  let ip = '';
  // [v6]:host:container
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(s);
  if (v6) {
    ip = v6[1]!;
    s = v6[2]!;
  }
  const parts = s.split(':');
  let hostPort = '';
  let containerPort: string;
  if (parts.length === 1) containerPort = parts[0]!;
  else if (parts.length === 2) {
    hostPort = parts[0]!;
    containerPort = parts[1]!;
  } else if (parts.length === 3 && !v6) {
    ip = parts[0]!;
    hostPort = parts[1]!;
    containerPort = parts[2]!;
  } else throw new UsageError(`invalid publish opts format (should be name=value but no '=' sign found): ${spec}`);
  const range = (r: string): number[] => {
    if (!r) return [];
    const m = /^(\d+)(?:-(\d+))?$/.exec(r);
    if (!m) throw new UsageError(`invalid containerPort: ${r}`);
    const a = Number(m[1]);
    const b = m[2] ? Number(m[2]) : a;
    if (b < a || a < 0 || b > 65535) throw new UsageError(`invalid port range: ${r}`);
    return Array.from({ length: b - a + 1 }, (_x, i) => a + i);
  };
  const cps = range(containerPort);
  if (!cps.length) throw new UsageError(`no port specified: ${spec}<empty>`);
  const hps = range(hostPort);
  if (hps.length && hps.length !== cps.length) {
    // a host range for one container port: the daemon picks a free port from the range (as
    // go-connections' ParsePortSpec); two ranges of different sizes are refused
    if (cps.length !== 1) throw new UsageError(`invalid ranges specified for container and host Ports: ${containerPort} and ${hostPort}`);
    return cps.map((p) => ({ port: `${p}/${proto}`, binding: { HostIp: ip, HostPort: hostPort } }));
  }
  return cps.map((p, i) => ({
    port: `${p}/${proto}`,
    binding: { HostIp: ip, HostPort: hps.length ? String(hps.length === 1 ? hps[0] : hps[i]) : '' },
  }));
}

/** "k=v" flag values → a map ("k" alone maps to ""). */
export function keyValues(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of list) {
    const i = l.indexOf('=');
    if (i < 0) out[l] = '';
    else out[l.slice(0, i)] = l.slice(i + 1);
  }
  return out;
}

/** Parse a `--mount type=bind,source=/a,target=/b,readonly` spec into a Mount object. */
export function parseMount(spec: string): Record<string, unknown> {
  const m: Record<string, unknown> = { Type: 'volume' };
  for (const field of spec.split(',')) {
    const i = field.indexOf('=');
    const k = (i < 0 ? field : field.slice(0, i)).trim().toLowerCase();
    const v = i < 0 ? undefined : field.slice(i + 1);
    switch (k) {
      case 'type': m['Type'] = v; break;
      case 'source': case 'src': m['Source'] = v; break;
      case 'target': case 'destination': case 'dst': m['Target'] = v; break;
      case 'readonly': case 'ro': m['ReadOnly'] = v === undefined || v === 'true' || v === '1'; break;
      case 'bind-propagation': m['BindOptions'] = { Propagation: v }; break;
      case 'volume-nocopy': m['VolumeOptions'] = { ...(m['VolumeOptions'] as object), NoCopy: v === undefined || v === 'true' }; break;
      case 'tmpfs-size': m['TmpfsOptions'] = { ...(m['TmpfsOptions'] as object), SizeBytes: parseBytes(v ?? '0') }; break;
      case 'tmpfs-mode': m['TmpfsOptions'] = { ...(m['TmpfsOptions'] as object), Mode: parseInt(v ?? '0', 8) }; break;
      case 'consistency': break;
      default: throw new UsageError(`invalid argument "${spec}" for "--mount" flag: unexpected key '${k}' in '${field}'`);
    }
  }
  if (!m['Target']) throw new UsageError(`invalid argument "${spec}" for "--mount" flag: target is required`);
  return m;
}

/** Parse `--env-file` contents: KEY=VAL lines, `#` comments, bare KEY taken from the host env. */
export function parseEnvFile(text: string, getenv: (n: string) => string | undefined): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/^\s+/, '');
    if (!line || line.startsWith('#')) continue;
    if (line.includes('=')) out.push(line);
    else {
      const v = getenv(line.trim());
      if (v !== undefined) out.push(`${line.trim()}=${v}`);
    }
  }
  return out;
}

/** Build the create request from parsed run/create flags; `p.args[0]` is the image. */
export function buildCreateRequest(p: ParsedArgs, env: BuildEnv): CreateRequest {
  const [image, ...cmd] = p.args;
  if (!image) throw new UsageError('requires at least 1 argument');
  const detach = env.detach ?? false;
  const interactive = flagBool(p, 'interactive');
  const tty = flagBool(p, 'tty');
  const envList: string[] = [];
  for (const f of flagList(p, 'env-file')) envList.push(...parseEnvFile(env.readFile(f), env.getenv));
  for (const e of flagList(p, 'env')) {
    if (e.includes('=')) envList.push(e);
    else {
      const v = env.getenv(e);
      if (v !== undefined) envList.push(`${e}=${v}`);
    }
  }
  const attach = flagList(p, 'attach').map((s) => s.toLowerCase());
  const config: Record<string, unknown> = {
    Hostname: flagStr(p, 'hostname') ?? '',
    Domainname: flagStr(p, 'domainname') ?? '',
    User: flagStr(p, 'user') ?? '',
    AttachStdin: !detach && (attach.length ? attach.includes('stdin') : interactive),
    AttachStdout: !detach && (attach.length ? attach.includes('stdout') : true),
    AttachStderr: !detach && (attach.length ? attach.includes('stderr') : true),
    Tty: tty,
    OpenStdin: interactive,
    StdinOnce: interactive && !detach,
    Env: envList,
    Cmd: cmd.length ? cmd : null,
    Image: image,
    Volumes: {} as Record<string, object>,
    WorkingDir: flagStr(p, 'workdir') ?? '',
    Entrypoint: null as string[] | null,
    Labels: keyValues(flagList(p, 'label')),
  };
  const ep = flagStr(p, 'entrypoint');
  if (ep !== undefined) config['Entrypoint'] = [ep];
  if (flagGiven(p, 'stop-signal')) config['StopSignal'] = flagStr(p, 'stop-signal');
  if (flagGiven(p, 'stop-timeout')) config['StopTimeout'] = flagInt(p, 'stop-timeout');
  if (flagGiven(p, 'mac-address')) config['MacAddress'] = flagStr(p, 'mac-address');

  // healthcheck
  if (flagBool(p, 'no-healthcheck')) {
    if (flagGiven(p, 'health-cmd')) throw new UsageError('--no-healthcheck conflicts with --health-* options');
    config['Healthcheck'] = { Test: ['NONE'] };
  } else {
    const hc: Record<string, unknown> = {};
    const hcmd = flagStr(p, 'health-cmd');
    if (hcmd !== undefined) hc['Test'] = ['CMD-SHELL', hcmd];
    const dur = (flag: string, key: string): void => {
      const v = flagStr(p, flag);
      if (v !== undefined) {
        const ns = parseDurationNs(v);
        if (ns < 0) throw new UsageError(`--${flag} cannot be negative`);
        hc[key] = ns;
      }
    };
    dur('health-interval', 'Interval');
    dur('health-timeout', 'Timeout');
    dur('health-start-period', 'StartPeriod');
    dur('health-start-interval', 'StartInterval');
    if (flagGiven(p, 'health-retries')) hc['Retries'] = flagInt(p, 'health-retries');
    if (Object.keys(hc).length) config['Healthcheck'] = hc;
  }

  // ports
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const e of flagList(p, 'expose')) {
    // a range exposes every port in it, as docker's --expose 7000-7002
    const [port = '', proto = 'tcp'] = e.split('/');
    const m = /^(\d+)(?:-(\d+))?$/.exec(port);
    const lo = Number(m?.[1]);
    const hi = m?.[2] ? Number(m[2]) : lo;
    if (!m || hi < lo || hi > 65535) throw new UsageError(`invalid range format for --expose: ${e}`);
    for (let n = lo; n <= hi; n++) exposed[`${n}/${proto}`] = {};
  }
  for (const spec of flagList(p, 'publish')) {
    for (const { port, binding } of parsePublish(spec)) {
      exposed[port] = {};
      (bindings[port] ??= []).push(binding);
    }
  }
  if (Object.keys(exposed).length) config['ExposedPorts'] = exposed;

  // volumes
  const binds: string[] = [];
  const volumes = config['Volumes'] as Record<string, object>;
  for (const v of flagList(p, 'volume')) {
    if (!v.includes(':')) volumes[v] = {};
    else binds.push(v);
  }

  const host: Record<string, unknown> = {
    Binds: binds.length ? binds : null,
    NetworkMode: flagStr(p, 'network') ?? 'default',
    PortBindings: bindings,
    AutoRemove: env.autoRemove ?? false,
    VolumesFrom: flagList(p, 'volumes-from').length ? flagList(p, 'volumes-from') : null,
    CapAdd: flagList(p, 'cap-add').length ? flagList(p, 'cap-add') : null,
    CapDrop: flagList(p, 'cap-drop').length ? flagList(p, 'cap-drop') : null,
    Dns: flagList(p, 'dns'),
    DnsOptions: flagList(p, 'dns-option'),
    DnsSearch: flagList(p, 'dns-search'),
    ExtraHosts: flagList(p, 'add-host').length ? flagList(p, 'add-host').map((h) => h.replace(/^([^:=]+)=/, '$1:')) : null,
    Privileged: flagBool(p, 'privileged'),
    PublishAllPorts: flagBool(p, 'publish-all'),
    ReadonlyRootfs: flagBool(p, 'read-only'),
    SecurityOpt: flagList(p, 'security-opt').length ? flagList(p, 'security-opt') : null,
    LogConfig: { Type: flagStr(p, 'log-driver') ?? '', Config: keyValues(flagList(p, 'log-opt')) },
    RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
    Mounts: flagList(p, 'mount').map(parseMount),
    Links: flagList(p, 'link').length ? flagList(p, 'link') : null,
    GroupAdd: flagList(p, 'group-add').length ? flagList(p, 'group-add') : null,
  };
  if ((host['Mounts'] as unknown[]).length === 0) delete host['Mounts'];
  if (flagGiven(p, 'init')) host['Init'] = flagBool(p, 'init');
  if (flagGiven(p, 'runtime')) host['Runtime'] = flagStr(p, 'runtime');
  if (flagGiven(p, 'userns')) host['UsernsMode'] = flagStr(p, 'userns');
  if (flagGiven(p, 'pid')) host['PidMode'] = flagStr(p, 'pid');
  if (flagGiven(p, 'ipc')) host['IpcMode'] = flagStr(p, 'ipc');
  if (flagGiven(p, 'uts')) host['UTSMode'] = flagStr(p, 'uts');
  if (flagGiven(p, 'cgroupns')) host['CgroupnsMode'] = flagStr(p, 'cgroupns');
  if (flagGiven(p, 'sysctl')) host['Sysctls'] = keyValues(flagList(p, 'sysctl'));
  if (flagGiven(p, 'shm-size')) host['ShmSize'] = parseBytes(flagStr(p, 'shm-size')!);
  const tmpfs = flagList(p, 'tmpfs');
  if (tmpfs.length) {
    const t: Record<string, string> = {};
    for (const x of tmpfs) {
      const i = x.indexOf(':');
      if (i < 0) t[x] = '';
      else t[x.slice(0, i)] = x.slice(i + 1);
    }
    host['Tmpfs'] = t;
  }
  const restart = flagStr(p, 'restart');
  if (restart) {
    const [name, max] = restart.split(':');
    if (!/^(no|always|on-failure|unless-stopped)$/.test(name!)) throw new UsageError(`invalid restart policy: unknown policy '${name}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'`);
    if (max !== undefined && name !== 'on-failure') throw new UsageError(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
    host['RestartPolicy'] = { Name: name, MaximumRetryCount: max ? Number(max) : 0 };
    if (env.autoRemove && name !== 'no') throw new UsageError('Conflicting options: --restart and --rm');
  }
  // resources (top level of HostConfig)
  if (flagGiven(p, 'memory')) host['Memory'] = parseBytes(flagStr(p, 'memory')!);
  if (flagGiven(p, 'memory-swap')) {
    const ms = flagStr(p, 'memory-swap')!;
    host['MemorySwap'] = ms === '-1' ? -1 : parseBytes(ms);
  }
  if (flagGiven(p, 'memory-reservation')) host['MemoryReservation'] = parseBytes(flagStr(p, 'memory-reservation')!);
  if (flagGiven(p, 'cpus')) {
    const c = Number(flagStr(p, 'cpus'));
    if (!Number.isFinite(c) || c < 0) throw new UsageError(`invalid argument "${flagStr(p, 'cpus')}" for "--cpus" flag: failed to parse ${flagStr(p, 'cpus')} as a rational number`);
    host['NanoCpus'] = Math.round(c * 1e9);
  }
  if (flagGiven(p, 'cpu-shares')) host['CpuShares'] = flagInt(p, 'cpu-shares');
  if (flagGiven(p, 'cpu-period')) host['CpuPeriod'] = flagInt(p, 'cpu-period');
  if (flagGiven(p, 'cpu-quota')) host['CpuQuota'] = flagInt(p, 'cpu-quota');
  if (flagGiven(p, 'cpuset-cpus')) host['CpusetCpus'] = flagStr(p, 'cpuset-cpus');
  if (flagGiven(p, 'cpuset-mems')) host['CpusetMems'] = flagStr(p, 'cpuset-mems');
  if (flagGiven(p, 'pids-limit')) host['PidsLimit'] = flagInt(p, 'pids-limit');
  if (flagGiven(p, 'oom-kill-disable')) host['OomKillDisable'] = flagBool(p, 'oom-kill-disable');
  const ulimits = flagList(p, 'ulimit').map(parseUlimit);
  if (ulimits.length) host['Ulimits'] = ulimits;
  const devices = flagList(p, 'device').map((d) => {
    const parts = d.split(':');
    const perms = parts.length > 1 && /^[rwm]+$/.test(parts[parts.length - 1]!) ? parts.pop()! : 'rwm';
    return { PathOnHost: parts[0], PathInContainer: parts[1] ?? parts[0], CgroupPermissions: perms };
  });
  if (devices.length) host['Devices'] = devices;
  if (tty && env.consoleSize) host['ConsoleSize'] = env.consoleSize;

  const net = flagStr(p, 'network') ?? 'default';
  const endpoint: Record<string, unknown> = {};
  if (flagList(p, 'network-alias').length) endpoint['Aliases'] = flagList(p, 'network-alias');
  if (flagGiven(p, 'ip')) endpoint['IPAMConfig'] = { IPv4Address: flagStr(p, 'ip') };
  const body = { ...config, HostConfig: host, NetworkingConfig: { EndpointsConfig: { [net]: endpoint } } };
  return { name: flagStr(p, 'name'), platform: flagStr(p, 'platform'), image, body };
}

/** `--ulimit nofile=1024:2048` → `{Name, Soft, Hard}`. */
export function parseUlimit(s: string): { Name: string; Soft: number; Hard: number } {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(s);
  if (!m) throw new UsageError(`invalid argument "${s}" for "--ulimit" flag: invalid ulimit argument: ${s}`);
  const soft = Number(m[2]);
  const hard = m[3] !== undefined ? Number(m[3]) : soft;
  if (soft > hard && hard !== -1) throw new UsageError(`invalid argument "${s}" for "--ulimit" flag: ulimit soft limit must be less than or equal to hard limit: ${soft} > ${hard}`);
  return { Name: m[1]!, Soft: soft, Hard: hard };
}
