/**
 * Type checks of Docker request bodies, the way moby's Go JSON decoder does them: unknown fields
 * are ignored, `null` is always accepted (it decodes to the zero value), field names match
 * case-insensitively, and a value of the wrong JSON type (or an integer out of its Go range) is
 * rejected with Go's wording, e.g.
 * `json: cannot unmarshal string into Go struct field CreateRequest.HostConfig.Memory of type int64`.
 * Only the shape is checked here; meaning (minimum memory, valid signals…) is the engine's.
 */
import { invalidArgument } from '../base/errors.js';

/** One field's expected shape. */
export type FieldType =
  | 'int64'
  | 'uint16'
  | 'uint64'
  | 'bool'
  | 'string'
  /** Go `[]string`. */
  | 'strings'
  /** Docker's StrSlice: a string or a list of strings. */
  | 'strslice'
  /** Go `map[string]string`. */
  | 'strmap'
  /** Any JSON object (contents not checked). */
  | 'object'
  /** Anything (e.g. docker-py sends `User` as a number). */
  | 'any'
  | { readonly struct: Schema }
  | { readonly array: FieldType; readonly goType?: string }
  | { readonly map: FieldType; readonly goType?: string };

/** A Go struct: its name (for messages) and its known fields. */
export interface Schema {
  readonly name: string;
  readonly fields: Readonly<Record<string, FieldType>>;
}

const INT64_LIMIT = 2 ** 63;

function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'boolean') return 'bool';
  return typeof v; // string, number, object
}

function goType(t: FieldType): string {
  if (typeof t === 'string') {
    switch (t) {
      case 'strings':
        return '[]string';
      case 'strslice':
        return 'strslice.StrSlice';
      case 'strmap':
        return 'map[string]string';
      case 'object':
        return 'map[string]interface {}';
      case 'any':
        return 'interface {}';
      default:
        return t;
    }
  }
  if ('struct' in t) return t.struct.name;
  if ('array' in t) return t.goType ?? `[]${goType(t.array)}`;
  return t.goType ?? `map[string]${goType(t.map)}`;
}

function fail(value: unknown, path: string, type: FieldType | string, withValue = false): never {
  const kind = jsonKind(value);
  const what = withValue ? `${kind} ${String(value)}` : kind;
  const typeName = typeof type === 'string' && !SCALARS.has(type) ? type : goType(type as FieldType);
  throw invalidArgument(`json: cannot unmarshal ${what} into Go struct field ${path} of type ${typeName}`);
}

/** Field types named by a keyword (anything else passed to fail() is a literal Go type name). */
const SCALARS = new Set<string>(['int64', 'uint16', 'uint64', 'bool', 'string', 'strings', 'strslice', 'strmap', 'object', 'any']);

function checkValue(value: unknown, t: FieldType, path: string): void {
  if (value === null || value === undefined || t === 'any') return;
  if (typeof t === 'string') {
    switch (t) {
      case 'int64':
      case 'uint16':
      case 'uint64': {
        if (typeof value !== 'number') fail(value, path, t);
        const lo = t === 'int64' ? -INT64_LIMIT : 0;
        const hi = t === 'int64' ? INT64_LIMIT : t === 'uint16' ? 65536 : 2 * INT64_LIMIT;
        if (!Number.isInteger(value) || value < lo || value >= hi) fail(value, path, t, true);
        return;
      }
      case 'bool':
        if (typeof value !== 'boolean') fail(value, path, t);
        return;
      case 'string':
        if (typeof value !== 'string') fail(value, path, t);
        return;
      case 'strings':
        if (!Array.isArray(value)) fail(value, path, t);
        value.forEach((x) => {
          if (x !== null && typeof x !== 'string') fail(x, path, 'string');
        });
        return;
      case 'strslice':
        if (typeof value === 'string') return;
        if (!Array.isArray(value)) fail(value, path, '[]string');
        value.forEach((x) => {
          if (x !== null && typeof x !== 'string') fail(x, path, 'string');
        });
        return;
      case 'strmap':
        if (typeof value !== 'object' || Array.isArray(value)) fail(value, path, t);
        for (const x of Object.values(value as Record<string, unknown>)) {
          if (x !== null && typeof x !== 'string') fail(x, path, 'string');
        }
        return;
      case 'object':
        if (typeof value !== 'object' || Array.isArray(value)) fail(value, path, t);
        return;
    }
  }
  if ('struct' in t) {
    if (typeof value !== 'object' || Array.isArray(value)) fail(value, path, t);
    checkStruct(value as Record<string, unknown>, t.struct, path);
    return;
  }
  if ('array' in t) {
    if (!Array.isArray(value)) fail(value, path, t);
    for (const x of value) checkValue(x, t.array, path);
    return;
  }
  if (typeof value !== 'object' || Array.isArray(value)) fail(value, path, t);
  for (const x of Object.values(value as Record<string, unknown>)) checkValue(x, t.map, path);
}

function checkStruct(obj: Record<string, unknown>, schema: Schema, path: string): void {
  const byLower = new Map<string, [string, FieldType]>();
  for (const [k, t] of Object.entries(schema.fields)) byLower.set(k.toLowerCase(), [k, t]);
  for (const [key, value] of Object.entries(obj)) {
    // Go matches the exact name first, then case-insensitively; unknown fields are ignored.
    const exact = Object.prototype.hasOwnProperty.call(schema.fields, key) ? ([key, schema.fields[key]!] as [string, FieldType]) : undefined;
    const hit = exact ?? byLower.get(key.toLowerCase());
    if (!hit) continue;
    checkValue(value, hit[1], `${path}.${hit[0]}`);
  }
}

/**
 * Check a decoded JSON body against a schema. A non-object body is rejected like Go's decoder
 * does; `null`/absent is accepted (callers decide whether an empty body is allowed).
 */
export function checkBodyTypes(body: unknown, schema: Schema): void {
  if (body === null || body === undefined) return;
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw invalidArgument(`json: cannot unmarshal ${jsonKind(body)} into Go value of type ${schema.name}`);
  }
  checkStruct(body as Record<string, unknown>, schema, schema.name);
}

const s = (name: string, fields: Record<string, FieldType>): { struct: Schema } => ({ struct: { name, fields } });

const healthcheck = s('container.HealthConfig', {
  Test: 'strslice',
  Interval: 'int64',
  Timeout: 'int64',
  StartPeriod: 'int64',
  StartInterval: 'int64',
  Retries: 'int64',
});

/** container.Config fields (API v1.51). */
const configFields: Record<string, FieldType> = {
  Hostname: 'string',
  Domainname: 'string',
  User: 'any', // docker-py sends an int uid
  AttachStdin: 'bool',
  AttachStdout: 'bool',
  AttachStderr: 'bool',
  ExposedPorts: 'object',
  Tty: 'bool',
  OpenStdin: 'bool',
  StdinOnce: 'bool',
  Env: 'strings',
  Cmd: 'strslice',
  Healthcheck: healthcheck,
  ArgsEscaped: 'bool',
  Image: 'string',
  Volumes: 'object',
  WorkingDir: 'string',
  Entrypoint: 'strslice',
  NetworkDisabled: 'bool',
  MacAddress: 'string',
  OnBuild: 'strings',
  Labels: 'strmap',
  StopSignal: 'string',
  StopTimeout: 'int64',
  Shell: 'strslice',
};

const weightDevice = { array: s('blkiodev.WeightDevice', { Path: 'string', Weight: 'uint16' }) } as const;
const throttleDevice = { array: s('blkiodev.ThrottleDevice', { Path: 'string', Rate: 'uint64' }) } as const;

/** container.Resources fields (create's HostConfig and the update body). */
const resourceFields: Record<string, FieldType> = {
  CpuShares: 'int64',
  Memory: 'int64',
  NanoCpus: 'int64',
  CgroupParent: 'string',
  BlkioWeight: 'uint16',
  BlkioWeightDevice: weightDevice,
  BlkioDeviceReadBps: throttleDevice,
  BlkioDeviceWriteBps: throttleDevice,
  BlkioDeviceReadIOps: throttleDevice,
  BlkioDeviceWriteIOps: throttleDevice,
  CpuPeriod: 'int64',
  CpuQuota: 'int64',
  CpuRealtimePeriod: 'int64',
  CpuRealtimeRuntime: 'int64',
  CpusetCpus: 'string',
  CpusetMems: 'string',
  Devices: { array: s('container.DeviceMapping', { PathOnHost: 'string', PathInContainer: 'string', CgroupPermissions: 'string' }) },
  DeviceCgroupRules: 'strings',
  DeviceRequests: { array: 'object' },
  KernelMemory: 'int64',
  KernelMemoryTCP: 'int64',
  MemoryReservation: 'int64',
  MemorySwap: 'int64',
  MemorySwappiness: 'int64',
  OomKillDisable: 'bool',
  PidsLimit: 'int64',
  Ulimits: { array: s('container.Ulimit', { Name: 'string', Hard: 'int64', Soft: 'int64' }) },
  CpuCount: 'int64',
  CpuPercent: 'int64',
  IOMaximumIOps: 'uint64',
  IOMaximumBandwidth: 'uint64',
};

const restartPolicy = s('container.RestartPolicy', { Name: 'string', MaximumRetryCount: 'int64' });

const hostConfig = s('container.HostConfig', {
  ...resourceFields,
  Binds: 'strings',
  ContainerIDFile: 'string',
  LogConfig: s('container.LogConfig', { Type: 'string', Config: 'strmap' }),
  NetworkMode: 'string',
  PortBindings: { map: { array: s('nat.PortBinding', { HostIp: 'string', HostPort: 'string' }) }, goType: 'nat.PortMap' },
  RestartPolicy: restartPolicy,
  AutoRemove: 'bool',
  VolumeDriver: 'string',
  VolumesFrom: 'strings',
  ConsoleSize: { array: 'uint64', goType: '[2]uint' },
  Annotations: 'strmap',
  CapAdd: 'strslice',
  CapDrop: 'strslice',
  CgroupnsMode: 'string',
  Dns: 'strings',
  DnsOptions: 'strings',
  DnsSearch: 'strings',
  ExtraHosts: 'strings',
  GroupAdd: 'strings',
  IpcMode: 'string',
  Cgroup: 'string',
  Links: 'strings',
  OomScoreAdj: 'int64',
  PidMode: 'string',
  Privileged: 'bool',
  PublishAllPorts: 'bool',
  ReadonlyRootfs: 'bool',
  SecurityOpt: 'strings',
  StorageOpt: 'strmap',
  Tmpfs: 'strmap',
  UTSMode: 'string',
  UsernsMode: 'string',
  ShmSize: 'int64',
  Sysctls: 'strmap',
  Runtime: 'string',
  Isolation: 'string',
  Mounts: {
    array: s('mount.Mount', {
      Type: 'string',
      Source: 'string',
      Target: 'string',
      ReadOnly: 'bool',
      Consistency: 'string',
      BindOptions: 'object',
      VolumeOptions: 'object',
      TmpfsOptions: 'object',
    }),
  },
  MaskedPaths: 'strings',
  ReadonlyPaths: 'strings',
  Init: 'bool',
});

const endpointSettings = s('network.EndpointSettings', {
  IPAMConfig: s('network.EndpointIPAMConfig', { IPv4Address: 'string', IPv6Address: 'string', LinkLocalIPs: 'strings' }),
  Links: 'strings',
  Aliases: 'strings',
  MacAddress: 'string',
  DriverOpts: 'strmap',
  GwPriority: 'int64',
  NetworkID: 'string',
  EndpointID: 'string',
  Gateway: 'string',
  IPAddress: 'string',
  IPPrefixLen: 'int64',
  IPv6Gateway: 'string',
  GlobalIPv6Address: 'string',
  GlobalIPv6PrefixLen: 'int64',
  DNSNames: 'strings',
});

/** Body of `POST /containers/create`: Config, HostConfig and NetworkingConfig. */
export const CONTAINER_CREATE_BODY: Schema = {
  name: 'CreateRequest',
  fields: {
    ...configFields,
    HostConfig: hostConfig,
    NetworkingConfig: s('network.NetworkingConfig', { EndpointsConfig: { map: endpointSettings } }),
  },
};

/** Body of `POST /containers/{id}/update`: Resources and RestartPolicy. */
export const CONTAINER_UPDATE_BODY: Schema = {
  name: 'UpdateConfig',
  fields: { ...resourceFields, RestartPolicy: restartPolicy },
};

/** Body of `POST /containers/{id}/exec`. */
export const EXEC_CREATE_BODY: Schema = {
  name: 'ExecOptions',
  fields: {
    User: 'string',
    Privileged: 'bool',
    Tty: 'bool',
    ConsoleSize: { array: 'uint64', goType: '[2]uint' },
    AttachStdin: 'bool',
    AttachStderr: 'bool',
    AttachStdout: 'bool',
    Detach: 'bool',
    DetachKeys: 'string',
    Env: 'strings',
    WorkingDir: 'string',
    Cmd: 'strslice',
  },
};

/** Body of `POST /exec/{id}/start`. */
export const EXEC_START_BODY: Schema = {
  name: 'ExecStartOptions',
  fields: { Detach: 'bool', Tty: 'bool', ConsoleSize: { array: 'uint64', goType: '[2]uint' } },
};

/** Body of `POST /networks/create`. */
export const NETWORK_CREATE_BODY: Schema = {
  name: 'CreateRequest',
  fields: {
    Name: 'string',
    Driver: 'string',
    Scope: 'string',
    EnableIPv4: 'bool',
    EnableIPv6: 'bool',
    IPAM: s('network.IPAM', {
      Driver: 'string',
      Options: 'strmap',
      Config: { array: s('network.IPAMConfig', { Subnet: 'string', IPRange: 'string', Gateway: 'string', AuxiliaryAddresses: 'strmap' }) },
    }),
    Internal: 'bool',
    Attachable: 'bool',
    Ingress: 'bool',
    ConfigOnly: 'bool',
    ConfigFrom: s('network.ConfigReference', { Network: 'string' }),
    Options: 'strmap',
    Labels: 'strmap',
    CheckDuplicate: 'bool',
  },
};

/** Body of `POST /volumes/create`. */
export const VOLUME_CREATE_BODY: Schema = {
  name: 'CreateOptions',
  fields: { Name: 'string', Driver: 'string', DriverOpts: 'strmap', Labels: 'strmap', ClusterVolumeSpec: 'object' },
};
