/**
 * The composition root: builds every service from its configuration, in dependency order,
 * reconciles state at start, and shuts down cleanly. The wiring is explicit — no side-effect imports.
 */
import { mkdir, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { hostname, arch } from 'node:os';
import { readFileSync } from 'node:fs';
import type { CommitOptions, Engine, Json, SystemService, Filters, SystemEvent } from './services.js';
import { EventBus } from './event-bus.js';
import { probeHost, type HostInfo } from '../runtime/host-info.js';
import type { RuntimeConfig } from '../runtime/oci-runtime.js';
import { setupCrun } from '../runtime/crun-setup.js';
import { LocalContainers } from '../container/container-service.js';
import { LocalVolumes } from '../container/volumes.js';
import { resolveRemap } from '../container/userns.js';
import { invalidArgument } from '../base/errors.js';
import { LocalImageService, type RegistrySettings } from '../image/index.js';
import { dirSize } from '../host/dir-size.js';
import * as snapshot from '../snapshot/index.js';
import * as spec from '../runtime/spec/index.js';
import type { Archiver, SpecBuilder } from '../container/deps.js';
import { ClassicBuilder } from '../build/index.js';
import { NetworkManager } from '../network/index.js';

/** berthd's version. */
export const BERTH_VERSION = '0.1.0';
/** Docker Engine version we present ourselves as compatible with. */
export const API_VERSION = '1.51';
export const MIN_API_VERSION = '1.24';

/** Daemon configuration (flags and daemon.json). */
export interface EngineConfig {
  root: string;
  /** crun, runc or runsc; default: crun when installed, else runc. */
  defaultRuntime?: string;
  /** Daemon-wide user-namespace remap: "default" or a user with /etc/subuid and /etc/subgid ranges. */
  usernsRemap?: string;
  /** Default bridge interface name (berthd --bridge); "none" disables the default bridge. */
  bridge?: string;
  /** Default bridge address with prefix (berthd --bip). */
  bip?: string;
  /** daemon.json `insecure-registries`: plain HTTP for these `host[:port]`. */
  insecureRegistries?: string[];
  /** daemon.json `registry-mirrors`: tried first for docker.io images. */
  registryMirrors?: string[];
  /** daemon.json `max-concurrent-downloads`/`-uploads`, `registry-chunk-size`, `registry-stall-timeout` (issue 3). */
  registryTuning?: Pick<RegistrySettings, 'maxConcurrentDownloads' | 'maxConcurrentUploads' | 'pushChunkSize' | 'stallTimeoutMs'>;
  log: (msg: string) => void;
}

/** The running engine plus what the daemon needs to shut it down. */
export interface RunningEngine extends Engine {
  host: HostInfo;
  runtimes: Map<string, RuntimeConfig>;
  defaultRuntime: string;
  close(): Promise<void>;
}

/**
 * Work out how to call each installed runtime on this host. crun's setup (src/runtime/crun-setup.ts)
 * makes host mounts under the data root; `release` undoes them at shutdown.
 */
export async function configureRuntimes(root: string, host: HostInfo, log: (msg: string) => void = () => undefined): Promise<{ runtimes: Map<string, RuntimeConfig>; release(): Promise<void> }> {
  const out = new Map<string, RuntimeConfig>();
  const rtDir = join(root, 'runtime');
  await mkdir(rtDir, { recursive: true });
  let release = async (): Promise<void> => undefined;
  if (host.binaries['crun']) {
    const c = await setupCrun(root, host, log);
    out.set('crun', c.config);
    release = c.release;
  }
  if (host.binaries['runc']) out.set('runc', { name: 'runc', path: host.binaries['runc'], globalArgs: [`--root=${join(rtDir, 'runc')}`] });
  if (host.binaries['runsc']) {
    out.set('runsc', {
      name: 'runsc',
      path: host.binaries['runsc'],
      globalArgs: [`--root=${join(rtDir, 'runsc')}`, '--network=none', ...(host.cgroupMode === 'v2' ? [] : ['--ignore-cgroups'])],
      note: 'gVisor user-space kernel',
    });
  }
  return { runtimes: out, release };
}

/** Build and start the engine. */
export async function createEngine(cfg: EngineConfig): Promise<RunningEngine> {
  const root = cfg.root;
  await mkdir(root, { recursive: true, mode: 0o711 });
  const host = probeHost();
  if (!host.binaries['conmon']) throw invalidArgument('conmon is not installed (apt-get install conmon)');
  const { runtimes, release: releaseRuntimes } = await configureRuntimes(root, host, cfg.log);
  if (runtimes.size === 0) throw invalidArgument('no OCI runtime found (install crun or runc)');
  const defaultRuntime = cfg.defaultRuntime ?? (runtimes.has('crun') ? 'crun' : 'runc');
  if (!runtimes.has(defaultRuntime)) throw invalidArgument(`default runtime ${defaultRuntime} is not installed`);
  const bus = new EventBus();
  const images = new LocalImageService({ root, registry: { ...(cfg.insecureRegistries ? { insecureRegistries: cfg.insecureRegistries } : {}), ...(cfg.registryMirrors ? { registryMirrors: cfg.registryMirrors } : {}), ...cfg.registryTuning }, onEvent: (action: string, id: string, attrs: Record<string, string>) => bus.publish('image', action, id, attrs) });
  await images.init();
  const volumes = new LocalVolumes(root, bus.publish);
  await volumes.init();
  const archiver: Archiver = {
    changes: (upper, lowers) => snapshot.changes(upper, lowers),
    packTree: (dir) => snapshot.packTree(dir),
    statInRoot: (r, p) => snapshot.statInRoot(r, p),
    packPath: (r, p) => snapshot.packPath(r, p),
    extractInto: (r, d, t, o) => snapshot.extractInto(r, d, t, o),
  };
  const specBuilder: SpecBuilder = {
    buildRuntimeSpec: (i) => spec.buildRuntimeSpec(i as unknown as spec.SpecInput) as unknown as Promise<Json>,
    buildExecProcess: (i) => spec.buildExecProcess(i as unknown as spec.ExecProcessInput) as unknown as Promise<Json>,
    resourcesFromHostConfig: (hc, hl) => spec.resourcesFromHostConfig(hc, hl as unknown as spec.HostLimits) as unknown as Json,
    validateHostConfig: (hc, hl) => spec.validateHostConfig(hc, hl as unknown as spec.HostLimits),
  };
  const remap = cfg.usernsRemap ? await resolveRemap(cfg.usernsRemap) : undefined;
  // remapped container roots must be able to traverse to their rootfs, as with Docker's 0711 data root
  if (remap) await chmod(root, 0o711);
  const networks = new NetworkManager({ root, publish: bus.publish, log: cfg.log, ...(cfg.bridge ? { bridge: cfg.bridge } : {}), ...(cfg.bip ? { bip: cfg.bip } : {}) });
  await networks.init();
  const containers = new LocalContainers({
    ...(remap ? { remap } : {}),
    networks,
    root,
    host,
    runtimes,
    defaultRuntime,
    images,
    archiver,
    spec: specBuilder,
    volumes,
    publish: bus.publish,
    log: cfg.log,
  });
  images.setUsageChecker((id: string) => containers.usersOfImage(id));
  volumes.usersOf = (name) => containers.usersOfVolume(name);
  networks.lookupContainer = async (ref: string) => {
    const v = await containers.inspect(ref);
    const st = v['State'] as Json;
    return { id: String(v['Id']), name: String(v['Name']), running: Boolean(st['Running']), hostConfig: v['HostConfig'] as Json, config: v['Config'] as Json };
  };
  await containers.init();

  const system: SystemService = {
    version: () => versionInfo(host),
    info: async () => ({ ...(await infoOf(root, host, runtimes, defaultRuntime, containers, images)), ...(remap ? { SecurityOptions: ['name=seccomp,profile=builtin', 'name=userns', 'name=cgroupns'], UsernsRemap: `${remap.user} (uid ${remap.uid.hostID}+${remap.uid.size}, gid ${remap.gid.hostID}+${remap.gid.size})` } : {}) }),
    df: async () => {
      const ctrs = await containers.list({ all: true, size: true, filters: {} });
      const perImage = new Map<string, number>();
      for (const c of ctrs) perImage.set(String(c['ImageID']), (perImage.get(String(c['ImageID'])) ?? 0) + 1);
      const { LayersSize, Images } = images.diskUsage((id) => perImage.get(id) ?? 0);
      const vols = (await volumes.list({})).Volumes;
      return {
        LayersSize,
        Images,
        Containers: ctrs,
        Volumes: await Promise.all(vols.map(async (v) => ({ ...v, UsageData: { Size: await dirSize(String(v['Mountpoint'])), RefCount: volumes.usersOf(String(v['Name'])).length } }))),
        BuildCache: [],
      };
    },
    events: (o: { since?: number; until?: number; filters: Filters; signal: AbortSignal }): AsyncIterable<SystemEvent> => bus.events(o),
  };

  const engine: RunningEngine = {
    containers,
    images,
    volumes,
    system,
    networks,
    host,
    runtimes,
    defaultRuntime,
    async commit(o: CommitOptions): Promise<{ Id: string }> {
      const src = containers.commitSource(o.container);
      if (o.pause !== false && src.running) {
        await containers.pause(src.id).catch(() => undefined);
      }
      try {
        const id = await images.commitFromUpper({
          upperDir: src.upperDir,
          parentId: src.image,
          containerConfig: { ...src.config, ...(o.config ?? {}) },
          containerId: src.id,
          comment: o.comment ?? '',
          author: o.author ?? '',
          changes: o.changes ?? [],
          ...(o.repo ? { repo: o.repo } : {}),
          ...(o.tag ? { tag: o.tag } : {}),
        });
        bus.publish('container', 'commit', src.id, { comment: o.comment ?? '', imageID: id });
        return { Id: id };
      } finally {
        if (o.pause !== false && src.running) await containers.unpause(src.id).catch(() => undefined);
      }
    },
    build: new ClassicBuilder({ root, images, containers }),
    async close() {
      await containers.close();
      await networks.close();
      await releaseRuntimes();
    },
  };
  return engine;
}

function versionInfo(host: HostInfo): Json {
  const details = {
    ApiVersion: API_VERSION,
    Arch: goArch(),
    BuildTime: '2026-11-25T00:00:00.000000000+00:00',
    Experimental: 'false',
    GitCommit: 'berth',
    GoVersion: `node${process.versions.node}`,
    KernelVersion: host.kernelVersion,
    MinAPIVersion: MIN_API_VERSION,
    Os: 'linux',
  };
  return {
    Platform: { Name: 'berth' },
    Components: [{ Name: 'Engine', Version: BERTH_VERSION, Details: details }],
    Version: BERTH_VERSION,
    ApiVersion: API_VERSION,
    MinAPIVersion: MIN_API_VERSION,
    GitCommit: 'berth',
    GoVersion: `node${process.versions.node}`,
    Os: 'linux',
    Arch: goArch(),
    KernelVersion: host.kernelVersion,
    BuildTime: details.BuildTime,
  };
}

function goArch(): string {
  const a = arch();
  return a === 'x64' ? 'amd64' : a === 'ia32' ? '386' : a;
}

function osName(): string {
  try {
    const t = readFileSync('/etc/os-release', 'utf8');
    const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(t);
    return m ? m[1]! : 'Linux';
  } catch {
    return 'Linux';
  }
}

async function infoOf(
  root: string,
  host: HostInfo,
  runtimes: Map<string, RuntimeConfig>,
  defaultRuntime: string,
  containers: LocalContainers,
  images: LocalImageService,
): Promise<Json> {
  const c = containers.counts();
  const imgs = await images.list({ all: false, filters: {} });
  const rts: Json = {};
  for (const [name, r] of runtimes) rts[name] = { path: r.verbPath ?? r.path, ...(r.note ? { status: { note: r.note } } : {}) };
  const dflt = runtimes.get(defaultRuntime)!;
  const warnings: string[] = [];
  if (host.cgroupMode === 'hybrid') {
    warnings.push(`cgroups: hybrid v1/v2 layout; default runtime ${defaultRuntime}${dflt.note ? ` (${dflt.note})` : ''}`);
  }
  const idFile = join(root, 'engine-id');
  let id = '';
  try {
    id = readFileSync(idFile, 'utf8').trim();
  } catch {
    id = crypto.randomUUID();
    await writeFile(idFile, id).catch(() => undefined);
  }
  return {
    ID: id,
    Containers: c.total,
    ContainersRunning: c.running,
    ContainersPaused: c.paused,
    ContainersStopped: c.stopped,
    Images: new Set(imgs.map((i) => i['Id'])).size,
    Driver: 'overlay2',
    DriverStatus: [['Backing Filesystem', 'extfs'], ['Supports d_type', 'true']],
    Plugins: { Volume: ['local'], Network: ['host', 'null'], Authorization: null, Log: ['json-file'] },
    MemoryLimit: true,
    SwapLimit: true,
    KernelMemory: false,
    CpuCfsPeriod: true,
    CpuCfsQuota: true,
    CPUShares: true,
    CPUSet: true,
    PidsLimit: true,
    IPv4Forwarding: true,
    BridgeNfIptables: false,
    BridgeNfIp6tables: false,
    Debug: false,
    NFd: 0,
    OomKillDisable: false,
    NGoroutines: 0,
    SystemTime: new Date().toISOString(),
    LoggingDriver: 'json-file',
    CgroupDriver: 'cgroupfs',
    CgroupVersion: String(host.cgroupVersion),
    NEventsListener: 0,
    KernelVersion: host.kernelVersion,
    OperatingSystem: osName(),
    OSVersion: '',
    OSType: 'linux',
    Architecture: arch() === 'x64' ? 'x86_64' : arch(),
    IndexServerAddress: 'https://index.docker.io/v1/',
    RegistryConfig: { AllowNondistributableArtifactsCIDRs: null, AllowNondistributableArtifactsHostnames: null, InsecureRegistryCIDRs: ['127.0.0.0/8'], IndexConfigs: {}, Mirrors: [] },
    NCPU: host.ncpu,
    MemTotal: host.memTotal,
    GenericResources: null,
    DockerRootDir: root,
    HttpProxy: '',
    HttpsProxy: '',
    NoProxy: '',
    Name: hostname(),
    Labels: [],
    ExperimentalBuild: false,
    ServerVersion: BERTH_VERSION,
    Runtimes: rts,
    DefaultRuntime: defaultRuntime,
    Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
    LiveRestoreEnabled: true,
    Isolation: '',
    InitBinary: host.binaries['tini-static'] ? 'tini-static' : '',
    ContainerdCommit: { ID: '' },
    RuncCommit: { ID: '' },
    InitCommit: { ID: '' },
    SecurityOptions: ['name=seccomp,profile=builtin', 'name=cgroupns'],
    CDISpecDirs: [],
    Warnings: warnings,
    BerthHost: { CgroupMode: host.cgroupMode, RuntimeChoice: `${defaultRuntime}${dflt.note ? ` (${dflt.note})` : ''}`, NofileHardLimit: host.nofileHard },
  };
}
