/**
 * The container lifecycle service: the state machine, persistence and supervision of containers.
 * Each verb runs refresh → guard → act → persist under the container's own lock. The runtime
 * (conmon + crun/runc/runsc) holds no state berth relies on beyond what is reconciled at start.
 */
import { mkdir, rm, readdir, readFile, writeFile, stat, cp, chown } from 'node:fs/promises';
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { join, basename, dirname, resolve } from 'node:path';
import { hostname as osHostname } from 'node:os';
import { spawn, execFile } from 'node:child_process';
import { PassThrough, Readable, type Writable } from 'node:stream';
import {
  conflict, EngineError, invalidArgument, internal, notFound, notModified, isKind, messageOf,
} from '../base/errors.js';
import { newId, randomName, NAME_RE, ID_RE } from '../base/ids.js';
import { KeyedMutex } from '../base/keyed-mutex.js';
import { readJsonIfExists, writeJsonAtomic } from '../host/atomic-fs.js';
import { dirSize } from '../host/dir-size.js';
import { mountOverlay, unmount, isMounted } from '../host/mount.js';
import { pidAlive, pidAliveAsync } from '../host/proc.js';
import type {
  AttachOptions, AttachSession, ContainerService, CreateContainerOptions, ExecCreateOptions, Filters,
  Json, LogsOptions, OutputChunk, WaitCondition,
} from '../engine/services.js';
import type { Publish } from '../engine/event-bus.js';
import type { HostInfo } from '../runtime/host-info.js';
import { OciRuntime, type RuntimeConfig, dockerStartMessage, processCommand, startFailureExitCode } from '../runtime/oci-runtime.js';
import { spawnConmon, conmonResize } from '../runtime/conmon.js';
import { readK8sLog } from '../runtime/k8s-log.js';
import type { Archiver, ImageProvider, ResolvedMount, SpecBuilder } from './deps.js';
import {
  canStart, createdState, setStatus, ZERO_TIME, type ContainerRecord, type MountPoint,
} from './types.js';
import { mergeConfig, normaliseHostConfig, normaliseSignal, validateRestartPolicy } from './config-merge.js';
import { collectMounts } from './mounts.js';
import { checkCreateSettings } from './create-checks.js';
import { checkPsFilterKeys, portFilterMatches, portsFromConfig, type ListedPort } from './list-filters.js';
import type { LocalVolumes } from './volumes.js';
import { shiftedLayer, type Remap } from './userns.js';
import { LogPump, readJsonLog, type RotateOptions } from './json-log.js';
import { cgroupPids, cgroupsPathFor, netStats, oomKilled, primeCgroupAttach, sampleCgroup, systemCpuUsage } from './cgroups.js';
import type { NetworkManager, AttachResult } from '../network/index.js';

/** Wiring of the container service. */
export interface ContainerServiceOptions {
  root: string;
  host: HostInfo;
  runtimes: Map<string, RuntimeConfig>;
  defaultRuntime: string;
  images: ImageProvider;
  archiver: Archiver;
  spec: SpecBuilder;
  volumes: LocalVolumes;
  publish: Publish;
  log: (msg: string) => void;
  /** Daemon-wide user-namespace remap (berthd --userns-remap). */
  remap?: Remap;
  /** Networks (issue 6): bridge/user networks get a namespace from here at start. */
  networks?: NetworkManager;
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  settled: boolean;
}
function deferred<T>(): Deferred<T> {
  let res!: (v: T) => void;
  const promise = new Promise<T>((r) => (res = r));
  const d: Deferred<T> = {
    promise,
    settled: false,
    resolve(v: T) {
      d.settled = true;
      res(v);
    },
  };
  return d;
}

interface Live {
  /** Resolves with the exit code when the current run ends. */
  exit: Deferred<number>;
  healthTimer?: NodeJS.Timeout;
  restartTimer?: NodeJS.Timeout;
  /** Stdin streams waiting for the container to start. */
  pendingStdin: Array<PassThrough>;
  startedAtMs: number;
  /** Copies conmon's spool into the json-file log while the container runs. */
  pump?: LogPump;
}

interface ExecRecord {
  ID: string;
  ContainerID: string;
  Running: boolean;
  ExitCode: number | null;
  Pid: number;
  OpenStdin: boolean;
  OpenStdout: boolean;
  OpenStderr: boolean;
  DetachKeys: string;
  Tty: boolean;
  Privileged: boolean;
  User: string;
  WorkingDir: string;
  Env: string[];
  Cmd: string[];
  ConsoleSize?: [number, number] | null;
  dir: string;
  exit: Deferred<number>;
  started: boolean;
}

/** The users of a container's rootfs mount outside a run (cp, archive, export, commit). */
interface RootfsLease {
  users: number;
  /** Mounted for these users (so the last one unmounts it). */
  ownMount: boolean;
  /** Settles once the rootfs is mounted. */
  ready: Promise<void>;
}

type Waiter = { cond: WaitCondition; resolve: (r: { StatusCode: number; Error: { Message: string } | null }) => void };

const isoNow = (): string => new Date().toISOString().replace('Z', '000000Z').replace(/(\.\d{9})\d*Z$/, '$1Z');

/** Docker's "Up 3 seconds" / "Exited (0) 2 minutes ago". */
export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return 'Less than a second';
  if (s === 1) return '1 second';
  if (s < 60) return `${s} seconds`;
  const m = Math.floor(s / 60);
  if (m === 1) return 'About a minute';
  if (m < 60) return `${m} minutes`;
  const h = Math.round(s / 3600);
  if (h === 1) return 'About an hour';
  if (h < 48) return `${h} hours`;
  if (h < 24 * 7 * 2) return `${Math.floor(h / 24)} days`;
  if (h < 24 * 30 * 2) return `${Math.floor(h / 24 / 7)} weeks`;
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24 / 30)} months`;
  return `${Math.floor(h / 24 / 365)} years`;
}

/** The container service. */
export class LocalContainers implements ContainerService {
  private readonly recs = new Map<string, ContainerRecord>();
  private readonly names = new Map<string, string>(); // "/name" → id
  private readonly live = new Map<string, Live>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly execs = new Map<string, ExecRecord>();
  private readonly lock = new KeyedMutex();
  private readonly rootfsLeases = new Map<string, RootfsLease>();
  private readonly rootfsUnmounting = new Map<string, Promise<void>>();
  private readonly cdir: string;
  private readonly exitDir: string;
  private readonly sockDir: string;
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private shuttingDown = false;
  /** Exit codes of removed containers, for `wait?condition=removed` racing `--rm`. */
  private readonly removedCodes = new Map<string, number>();
  /**
   * Containers the OCI runtime is known to hold no record of (never started since create, or
   * deleted successfully since their last run): start and remove skip their `delete --force`.
   * In memory only, so after a daemon restart every container gets the defensive delete again.
   */
  private readonly runtimeClean = new Set<string>();
  /** Whether overlay mounts take the `volatile` option here (cleared when the kernel refuses it). */
  private volatileOverlay = true;
  /** Starts and execs keeping the cgroup-attach lock warm, and the loop doing it (warmAttach). */
  private warmHolders = 0;
  private warmLoop: Promise<void> | undefined;
  /** Removals whose physical part (runtime delete, unmount, files) still runs; close() waits for them. */
  private readonly cleanups = new Set<Promise<void>>();

  constructor(private readonly o: ContainerServiceOptions) {
    this.cdir = join(o.root, 'containers');
    this.exitDir = join(o.root, 'exits');
    this.sockDir = join(o.root, 's');
  }

  // ---------------------------------------------------------------- bookkeeping

  private dir(id: string): string {
    return join(this.cdir, id);
  }

  private runtimeFor(rec: ContainerRecord): OciRuntime {
    const cfg = this.o.runtimes.get(rec.Runtime);
    if (!cfg) throw invalidArgument(`unknown or invalid runtime name: ${rec.Runtime}`);
    return new OciRuntime(cfg);
  }

  /**
   * Write the record atomically. `sync: false` skips the fsyncs for a state whose loss in a power
   * failure is harmless: every record of an auto-removed container (a power failure ends its run, and
   * a torn or missing record makes init() scrub its directory; an older record reconciles to the
   * same removal).
   */
  private async persist(rec: ContainerRecord, opts: { sync?: boolean } = {}): Promise<void> {
    await writeJsonAtomic(join(this.dir(rec.Id), 'container.json'), rec, opts);
  }

  /** `<runtime> delete --force`, remembering success so later steps need not repeat it. */
  private async runtimeDelete(rec: ContainerRecord): Promise<void> {
    await this.runtimeFor(rec).delete(rec.Id, true);
    this.runtimeClean.add(rec.Id);
  }

  /**
   * {@link runtimeDelete}, skipped when berth knows the runtime holds no record of the container
   * (runtimeClean) or the runtime's state directory shows none.
   */
  private async runtimeDeleteIfAny(rec: ContainerRecord): Promise<void> {
    if (this.runtimeClean.has(rec.Id) || !(await this.runtimeFor(rec).hasState(rec.Id))) return;
    await this.runtimeDelete(rec);
  }

  /** Resolve a container reference: full id, name (with or without "/"), unique id prefix. */
  private find(ref: string): ContainerRecord {
    const r = ref.trim();
    if (!r) throw notFound('No such container: ');
    const full = this.recs.get(r);
    if (full) return full;
    const byName = this.names.get(r.startsWith('/') ? r : `/${r}`);
    if (byName) return this.recs.get(byName)!;
    if (/^[0-9a-f]+$/.test(r)) {
      const hits = [...this.recs.keys()].filter((id) => id.startsWith(r));
      if (hits.length === 1) return this.recs.get(hits[0]!)!;
      if (hits.length > 1) throw invalidArgument(`multiple IDs found with provided prefix: ${r}`);
    }
    throw notFound(`No such container: ${ref}`);
  }

  /** Ids of containers whose image is imageId (for rmi). */
  usersOfImage(imageId: string): string | undefined {
    for (const r of this.recs.values()) if (r.Image === imageId) return r.Id;
    return undefined;
  }

  /** Ids of containers using a named volume. */
  usersOfVolume(name: string): string[] {
    const out: string[] = [];
    for (const r of this.recs.values()) if (r.MountPoints.some((m) => m.Type === 'volume' && m.Name === name)) out.push(r.Id);
    return out;
  }

  /** Counts for `info`. */
  counts(): { total: number; running: number; paused: number; stopped: number } {
    let running = 0;
    let paused = 0;
    for (const r of this.recs.values()) {
      if (r.State.Status === 'paused') paused++;
      else if (r.State.Running) running++;
    }
    return { total: this.recs.size, running, paused, stopped: this.recs.size - running - paused };
  }

  private attrs(rec: ContainerRecord, extra: Record<string, string> = {}): Record<string, string> {
    const labels = (rec.Config['Labels'] as Record<string, string> | null) ?? {};
    return { ...labels, image: String(rec.Config['Image'] ?? ''), name: rec.Name.slice(1), ...extra };
  }

  private emit(rec: ContainerRecord, action: string, extra: Record<string, string> = {}): void {
    this.o.publish('container', action, rec.Id, this.attrs(rec, extra));
  }

  /** Docker's volume `mount` (at start) / `unmount` (after exit) events, one per named volume. */
  private emitVolumes(rec: ContainerRecord, action: 'mount' | 'unmount'): void {
    for (const m of rec.MountPoints) {
      if (m.Type !== 'volume' || !m.Name) continue;
      const attrs: Record<string, string> = { container: rec.Id, driver: m.Driver || 'local' };
      if (action === 'mount') Object.assign(attrs, { destination: m.Destination, propagation: m.Propagation ?? '', 'read/write': String(m.RW) });
      this.o.publish('volume', action, m.Name, attrs);
    }
  }

  private jsonLogPath(rec: ContainerRecord): string {
    return join(this.dir(rec.Id), `${rec.Id}-json.log`);
  }

  private rotation(rec: ContainerRecord): RotateOptions {
    const cfg = ((rec.HostConfig['LogConfig'] as { Config?: Record<string, string> } | undefined)?.Config) ?? {};
    return {
      maxSize: cfg['max-size'] ? parseSize(cfg['max-size']) : 0,
      maxFile: cfg['max-file'] ? Math.max(1, Number(cfg['max-file'])) : 1,
    };
  }

  private pumpFor(rec: ContainerRecord): LogPump {
    const d = this.dir(rec.Id);
    return new LogPump(join(d, 'ctr.log'), this.jsonLogPath(rec), join(d, 'log-offset'), join(d, 'bundle'), this.rotation(rec), this.o.log);
  }

  // ---------------------------------------------------------------- startup / shutdown

  /** Load records, reconcile them with the runtime and conmon, start exit watching. */
  async init(): Promise<void> {
    await mkdir(this.cdir, { recursive: true });
    await mkdir(this.exitDir, { recursive: true });
    await mkdir(this.sockDir, { recursive: true });
    for (const id of await readdir(this.cdir)) {
      const rec = await readJsonIfExists<ContainerRecord>(join(this.dir(id), 'container.json')).catch(() => undefined);
      if (!rec || !ID_RE.test(id)) {
        // half-created (crash during create): nothing refers to it
        await this.scrubDir(id);
        continue;
      }
      this.recs.set(id, rec);
      this.names.set(rec.Name, id);
    }
    this.watcher = watch(this.exitDir, (_ev, file) => {
      if (file && this.recs.has(String(file))) void this.onExitFile(String(file));
    });
    this.watcher.on('error', () => undefined);
    this.poller = setInterval(() => void this.pollExits(), 2000);
    this.poller.unref();
    for (const rec of [...this.recs.values()]) await this.reconcile(rec);
    this.reapRuntimeOrphans();
  }

  private async scrubDir(id: string): Promise<void> {
    const d = this.dir(id);
    await unmount(join(d, 'rootfs')).catch(() => undefined);
    await rm(d, { recursive: true, force: true }).catch(() => undefined);
  }

  private alive(pid: number): boolean {
    return pidAlive(pid);
  }

  /** Bring one record in line with reality after a daemon start. */
  private async reconcile(rec: ContainerRecord): Promise<void> {
    const st = rec.State.Status;
    if (st === 'running' || st === 'paused' || st === 'restarting' || st === 'removing') {
      const exitFile = join(this.exitDir, rec.Id);
      if (existsSync(exitFile)) {
        this.live.set(rec.Id, { exit: deferred(), pendingStdin: [], startedAtMs: Date.parse(rec.State.StartedAt), pump: this.pumpFor(rec) });
        await this.onExitFile(rec.Id);
        return;
      }
      if (st !== 'restarting' && this.alive(rec.ConmonPid)) {
        const l: Live = { exit: deferred(), pendingStdin: [], startedAtMs: Date.parse(rec.State.StartedAt) };
        this.live.set(rec.Id, l);
        l.pump = this.pumpFor(rec);
        l.pump.start();
        this.startHealth(rec);
        return;
      }
      // conmon is gone without an exit file: the container died with it
      await this.finishRun(rec, st === 'restarting' ? rec.State.ExitCode : 255, st === 'restarting' ? '' : 'container monitor exited unexpectedly');
      return;
    }
    if (await isMounted(join(this.dir(rec.Id), 'rootfs'))) await unmount(join(this.dir(rec.Id), 'rootfs')).catch(() => undefined);
    await this.pumpFor(rec).drainOnce().catch(() => undefined);
    const pol = (rec.HostConfig['RestartPolicy'] as { Name: string }).Name;
    if ((pol === 'always' || (pol === 'unless-stopped' && !rec.ManuallyStopped)) && rec.State.Status === 'exited' && !rec.ManuallyStopped) {
      this.start(rec.Id).catch((e) => this.o.log(`restart of ${rec.Id.slice(0, 12)} on daemon start failed: ${messageOf(e)}`));
    }
  }

  /** Stop watching; containers keep running under conmon. */
  async close(): Promise<void> {
    this.shuttingDown = true;
    this.watcher?.close();
    if (this.poller) clearInterval(this.poller);
    for (const l of this.live.values()) {
      if (l.healthTimer) clearTimeout(l.healthTimer);
      if (l.restartTimer) clearTimeout(l.restartTimer);
    }
    await Promise.all([...this.cleanups]);
  }

  /**
   * Runtime records (crun/runc state directories) of containers berth has no record of: left by a
   * crash between a removal and its runtime delete (see remove()). Deleted in the background.
   */
  private reapRuntimeOrphans(): void {
    for (const cfg of this.o.runtimes.values()) {
      const rt = new OciRuntime(cfg);
      const p = rt.stateIds().then(async (ids) => {
        for (const id of ids) if (ID_RE.test(id) && !this.recs.has(id)) await rt.delete(id, true).catch((e) => this.o.log(`runtime delete ${id.slice(0, 12)}: ${messageOf(e)}`));
      });
      this.track(p);
    }
  }

  private track(p: Promise<void>): void {
    const q = p.catch((e) => this.o.log(`cleanup: ${messageOf(e)}`)).finally(() => this.cleanups.delete(q));
    this.cleanups.add(q);
  }

  private async pollExits(): Promise<void> {
    let files: string[];
    try {
      files = await readdir(this.exitDir);
    } catch {
      return;
    }
    for (const f of files) if (this.live.has(f)) void this.onExitFile(f);
  }

  // ---------------------------------------------------------------- create

  async create(opts: CreateContainerOptions): Promise<{ Id: string; Warnings: string[] }> {
    const body = opts.body;
    if (typeof body !== 'object' || body === null) throw invalidArgument('config cannot be empty in order to create a container');
    const imageRef = body['Image'];
    if (typeof imageRef !== 'string' || !imageRef) throw invalidArgument('config cannot be empty in order to create a container');
    let name = opts.name;
    if (name !== undefined && name !== '') {
      const bare = name.replace(/^\//, '');
      if (!NAME_RE.test(bare)) throw invalidArgument(`Invalid container name (${name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
      name = `/${bare}`;
    } else {
      do name = `/${randomName()}`;
      while (this.names.has(name));
    }
    const taken = this.names.get(name);
    if (taken) {
      throw conflict(`Conflict. The container name "${name}" is already in use by container "${taken}". You have to remove (or rename) that container to be able to reuse that name.`);
    }
    const img = await this.o.images.resolve(imageRef);
    const id = newId();
    const hc = normaliseHostConfig(body['HostConfig'] as Json | undefined);
    validateRestartPolicy(hc);
    const runtime = (hc['Runtime'] as string) || this.o.defaultRuntime;
    if (!this.o.runtimes.has(runtime)) throw invalidArgument(`unknown or invalid runtime name: ${runtime}`);
    hc['Runtime'] = runtime;
    const nm = String(hc['NetworkMode'] ?? 'default');
    if (!this.o.networks && !['default', 'bridge', 'none', 'host'].includes(nm) && !nm.startsWith('container:')) {
      throw notFound(`network ${nm} not found`);
    }
    if (nm.startsWith('container:')) validateContainerNetMode(body, hc);
    const usernsMode = String(hc['UsernsMode'] ?? '');
    if (usernsMode !== '' && usernsMode !== 'host') throw invalidArgument(`invalid USER mode: ${usernsMode}`);
    const remapped = this.o.remap && usernsMode !== 'host' && !hc['Privileged'] && String(hc['NetworkMode']) !== 'host';
    const hcForSpec = { ...hc };
    delete hcForSpec['UsernsMode'];
    this.o.spec.validateHostConfig(hcForSpec, this.hostLimits());
    checkCreateSettings(body, hc);
    const cfg = mergeConfig(body, img.config, imageRef, id);
    const argv = [...((cfg['Entrypoint'] as string[] | null) ?? []), ...((cfg['Cmd'] as string[] | null) ?? [])];
    const requests = collectMounts(cfg, hc);
    // reserve the name before any await that could interleave with another create
    this.names.set(name, id);
    const d = this.dir(id);
    try {
      await mkdir(d, { recursive: true });
      await Promise.all(['upper', 'work', 'rootfs', 'bundle'].map((s) => mkdir(join(d, s))));
      const mountPoints: MountPoint[] = [];
      for (const m of requests) {
        if (m.Type === 'volume') {
          const meta = await this.o.volumes.ensure({ Name: m.Name ?? '' }, Boolean(m.needsAnonymous));
          const mp: MountPoint = { ...m, Name: meta.Name, Source: this.o.volumes.dataPath(meta.Name) };
          if (m.needsAnonymous) mp.Anonymous = true;
          delete (mp as { needsAnonymous?: boolean }).needsAnonymous;
          mountPoints.push(mp);
        } else {
          mountPoints.push({ ...m });
        }
      }
      for (const from of (hc['VolumesFrom'] as string[] | null) ?? []) {
        const [ref, mode] = from.split(':');
        const src = this.find(ref!);
        for (const mp of src.MountPoints) {
          if (mp.Type === 'tmpfs' || mountPoints.some((x) => x.Destination === mp.Destination)) continue;
          mountPoints.push({ ...mp, RW: mode === 'ro' ? false : mp.RW, Anonymous: false });
        }
      }
      const rec: ContainerRecord = {
        Id: id,
        Name: name,
        Created: isoNow(),
        Path: argv[0]!,
        Args: argv.slice(1),
        Config: cfg,
        HostConfig: hc,
        Image: img.id,
        State: createdState(),
        RestartCount: 0,
        Runtime: runtime,
        ConmonPid: 0,
        MountPoints: mountPoints,
        ManuallyStopped: false,
        ExecIDs: [],
        Platform: 'linux',
      };
      if (opts.scratch) rec.Scratch = true;
      if (remapped && this.o.remap) {
        rec.IdMap = { uid: { ...this.o.remap.uid }, gid: { ...this.o.remap.gid } };
        // the container's root owns its writable layer
        await chown(join(d, 'upper'), rec.IdMap.uid.hostID, rec.IdMap.gid.hostID);
        await chown(join(d, 'work'), rec.IdMap.uid.hostID, rec.IdMap.gid.hostID);
      }
      if (this.o.networks) {
        const nc = body['NetworkingConfig'] as Json | null | undefined;
        await this.o.networks.register(id, name, hc, (nc?.['EndpointsConfig'] as Json | null | undefined) ?? null, { sync: !hc['AutoRemove'] });
      }
      await this.writeEtcFiles(rec);
      await this.persist(rec, { sync: !hc['AutoRemove'] });
      this.recs.set(id, rec);
      this.runtimeClean.add(id);
      this.emit(rec, 'create');
      return { Id: id, Warnings: [] };
    } catch (err) {
      this.names.delete(name);
      await this.o.networks?.forget(id).catch(() => undefined);
      await this.scrubDir(id);
      throw err;
    }
  }

  /** The running container whose network stack `container:<name|id>` mode joins. */
  private netContainer(rec: ContainerRecord): ContainerRecord {
    const other = this.find(String(rec.HostConfig['NetworkMode']).slice('container:'.length));
    if (other.Id === rec.Id) throw invalidArgument('cannot join own network');
    if (!other.State.Running || !other.State.Pid) throw conflict(`cannot join network of a non running container: ${other.Id}`);
    return other;
  }

  /**
   * `container:<name|id>` mode shares the other container's stack, so it also sees its hostname,
   * /etc/hosts and /etc/resolv.conf (Docker points HostsPath & co at the other container's files;
   * berth copies them at start).
   */
  private async shareEtcFiles(rec: ContainerRecord): Promise<void> {
    const other = this.netContainer(rec);
    rec.Config['Hostname'] = other.Config['Hostname'];
    rec.Config['Domainname'] = other.Config['Domainname'] ?? '';
    for (const f of ['hostname', 'hosts', 'resolv.conf']) await cp(join(this.dir(other.Id), f), join(this.dir(rec.Id), f));
  }

  private async writeEtcFiles(rec: ContainerRecord, net?: AttachResult): Promise<void> {
    const d = this.dir(rec.Id);
    const nm = String(rec.HostConfig['NetworkMode']);
    const host = nm === 'host';
    const hn = host ? osHostname() : String(rec.Config['Hostname']);
    await writeFile(join(d, 'hostname'), `${hn}\n`);
    let hosts: string;
    if (host) {
      hosts = await readFile('/etc/hosts', 'utf8').catch(() => '127.0.0.1\tlocalhost\n');
    } else {
      hosts = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n';
      hosts += net ? `${net.ip}\t${hn}\n` : `127.0.1.1\t${hn}\n`;
    }
    for (const e of (rec.HostConfig['ExtraHosts'] as string[] | null) ?? []) {
      const i = e.indexOf(':');
      if (i > 0) hosts += `${e.slice(i + 1)}\t${e.slice(0, i)}\n`;
    }
    await writeFile(join(d, 'hosts'), hosts);
    let resolv = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
    if (net?.dnsServers.length) {
      // user networks: aardvark-dns answers container names and forwards the rest to the host's resolvers
      resolv = resolv.split('\n').filter((l) => !l.startsWith('nameserver')).concat(net.dnsServers.map((d) => `nameserver ${d}`)).filter(Boolean).join('\n') + '\n';
    }
    const dns = (rec.HostConfig['Dns'] as string[] | null) ?? [];
    const search = (rec.HostConfig['DnsSearch'] as string[] | null) ?? [];
    const dopts = (rec.HostConfig['DnsOptions'] as string[] | null) ?? [];
    if (dns.length || search.length || dopts.length) {
      const lines = resolv.split('\n').filter((l) => {
        if (dns.length && l.startsWith('nameserver')) return false;
        if (search.length && (l.startsWith('search') || l.startsWith('domain'))) return false;
        if (dopts.length && l.startsWith('options')) return false;
        return true;
      });
      for (const s of dns) lines.push(`nameserver ${s}`);
      if (search.length) lines.push(`search ${search.join(' ')}`);
      if (dopts.length) lines.push(`options ${dopts.join(' ')}`);
      resolv = lines.filter(Boolean).join('\n') + '\n';
    }
    await writeFile(join(d, 'resolv.conf'), resolv);
  }

  /**
   * Keep the kernel's cgroup-attach lock warm (see primeCgroupAttach) until the returned function
   * is called: from the beginning of a start or exec until conmon reports that the runtime made the
   * process. While anyone holds it, one loop writes every few ms (each write after the first finds
   * the lock warm and returns at once), so the runtime's attach never waits a grace period however
   * long the steps before it take. cgroup v1 only; the function is idempotent.
   */
  private warmAttach(): () => void {
    if (this.o.host.cgroupVersion !== 1) return () => undefined;
    this.warmHolders++;
    if (!this.warmLoop) {
      this.warmLoop = (async () => {
        while (this.warmHolders > 0) {
          await primeCgroupAttach();
          if (this.warmHolders > 0) await sleep(4);
        }
        this.warmLoop = undefined;
      })();
    }
    let held = true;
    const release = (): void => {
      if (held) this.warmHolders--;
      held = false;
      clearTimeout(cap);
    };
    // a holder that never gets to release (a step before conmon threw) lets go by itself
    const cap = setTimeout(release, 10_000);
    cap.unref();
    return release;
  }

  private hostLimits(): Json {
    return { nofileHard: this.o.host.nofileHard, cgroupVersion: this.o.host.cgroupVersion, ncpu: this.o.host.ncpu };
  }

  // ---------------------------------------------------------------- start

  async start(ref: string): Promise<void> {
    const rec = this.find(ref);
    await this.lock.run(rec.Id, async () => {
      const s = rec.State.Status;
      if (s === 'running') throw notModified('container already started');
      if (s === 'paused') throw conflict(`cannot start a paused container, try unpause instead`);
      if (s === 'removing') throw conflict(`container is marked for removal and cannot be started`);
      if (!canStart(s)) throw conflict(`cannot start container in state ${s}`);
      const l = this.live.get(rec.Id);
      if (l?.restartTimer) clearTimeout(l.restartTimer);
      rec.ManuallyStopped = false;
      await this.startLocked(rec);
    });
  }

  private specInput(rec: ContainerRecord, mounts: ResolvedMount[], net?: AttachResult): Json & { mounts: ResolvedMount[] } {
    const d = this.dir(rec.Id);
    const nm = String(rec.HostConfig['NetworkMode']);
    const input: Json & { mounts: ResolvedMount[] } = {
      id: rec.Id,
      config: rec.Config,
      hostConfig: rec.HostConfig,
      rootfs: join(d, 'rootfs'),
      mounts,
      etcFiles: { hosts: join(d, 'hosts'), resolvConf: join(d, 'resolv.conf'), hostname: join(d, 'hostname') },
      cgroupsPath: cgroupsPathFor(rec.Id),
      hostLimits: this.hostLimits(),
      runtime: rec.Runtime,
    };
    if (rec.IdMap) {
      input['userns'] = {
        uidMap: [{ containerID: 0, hostID: rec.IdMap.uid.hostID, size: rec.IdMap.uid.size }],
        gidMap: [{ containerID: 0, hostID: rec.IdMap.gid.hostID, size: rec.IdMap.gid.size }],
      };
    }
    if (nm.startsWith('container:')) {
      const other = this.netContainer(rec);
      const keep = this.o.networks?.netnsOf(other.Id);
      input['netnsPath'] = keep ?? `/proc/${other.State.Pid}/ns/net`;
    }
    if (net) input['netnsPath'] = net.netnsPath;
    if (rec.HostConfig['Init'] === true) {
      const init = this.o.host.binaries['tini-static'];
      if (!init) throw invalidArgument('--init needs tini-static, which is not installed');
      input['initPath'] = init;
    }
    return input;
  }

  private async resolveMounts(rec: ContainerRecord, rootfs: string): Promise<ResolvedMount[]> {
    const out: ResolvedMount[] = [];
    for (const mp of rec.MountPoints) {
      if (mp.Type === 'tmpfs') {
        // HostConfig.Tmpfs entries are mounted by the spec builder itself
        if (Object.prototype.hasOwnProperty.call((rec.HostConfig['Tmpfs'] as Json | undefined) ?? {}, mp.Destination)) continue;
        out.push({ destination: mp.Destination, source: 'tmpfs', type: 'tmpfs', readOnly: !mp.RW, options: mp.Options ?? [] });
        continue;
      }
      if (mp.Type === 'bind') {
        if (!existsSync(mp.Source)) {
          if ((rec.HostConfig['Binds'] as string[] | null)?.some((b) => b.startsWith(`${mp.Source}:`))) {
            await mkdir(mp.Source, { recursive: true });
          } else {
            throw invalidArgument(`invalid mount config for type "bind": bind source path does not exist: ${mp.Source}`);
          }
        }
        out.push({ destination: mp.Destination, source: mp.Source, type: 'bind', readOnly: !mp.RW, propagation: mp.Propagation || 'rprivate' });
        continue;
      }
      // volume: seed from the image the first time, as Docker does
      const name = mp.Name!;
      if (!this.o.volumes.has(name)) await this.o.volumes.ensure({ Name: name }, Boolean(mp.Anonymous));
      const data = this.o.volumes.dataPath(name);
      if (await this.o.volumes.claimSeed(name)) {
        const inImage = join(rootfs, mp.Destination);
        try {
          if ((await stat(inImage)).isDirectory()) await cp(inImage, data, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true, force: false, errorOnExist: false });
        } catch {
          /* nothing at that path in the image */
        }
      }
      out.push({ destination: mp.Destination, source: data, type: 'volume', readOnly: !mp.RW });
    }
    return out;
  }

  /** Mount the rootfs if needed; returns its path. */
  private async mountRootfs(rec: ContainerRecord): Promise<string> {
    const d = this.dir(rec.Id);
    const rootfs = join(d, 'rootfs');
    if (!(await isMounted(rootfs))) {
      const img = await this.o.images.resolve(rec.Image);
      let lowers = img.layerDirs;
      if (rec.IdMap && this.o.remap) {
        const remap: Remap = { user: this.o.remap.user, uid: rec.IdMap.uid, gid: rec.IdMap.gid };
        lowers = [];
        for (const l of img.layerDirs) lowers.push(await shiftedLayer(this.o.root, l, remap, basename(dirname(l))));
      }
      // an auto-removed container's writable layer is thrown away at exit: mount it volatile, so
      // its unmount does not sync the host filesystem (podman does the same for --rm)
      const volatile = (Boolean(rec.HostConfig['AutoRemove']) || rec.Scratch === true) && this.volatileOverlay;
      try {
        await mountOverlay(lowers, join(d, 'upper'), join(d, 'work'), rootfs, { volatile });
      } catch (err) {
        if (!volatile) throw err;
        await mountOverlay(lowers, join(d, 'upper'), join(d, 'work'), rootfs);
        // only without the option did it mount: a kernel before 5.10 does not know it
        this.volatileOverlay = false;
      }
    }
    return rootfs;
  }

  private async startLocked(rec: ContainerRecord): Promise<void> {
    const d = this.dir(rec.Id);
    const rt = this.runtimeFor(rec);
    const bundle = join(d, 'bundle');
    let rootfs = '';
    const releaseWarm = this.warmAttach();
    try {
      // the network (namespace, veth, rules) is set up while the rootfs is mounted
      const [fsDone, netDone] = await Promise.allSettled([
        (async () => {
          rootfs = await this.mountRootfs(rec);
          return this.resolveMounts(rec, rootfs);
        })(),
        this.o.networks?.attach({ id: rec.Id, name: rec.Name, hostConfig: rec.HostConfig, config: rec.Config }),
      ]);
      if (fsDone.status === 'rejected') throw fsDone.reason;
      if (netDone.status === 'rejected') throw netDone.reason;
      const mounts = fsDone.value;
      const net = netDone.value;
      if (net) await this.writeEtcFiles(rec, net);
      if (String(rec.HostConfig['NetworkMode']).startsWith('container:')) await this.shareEtcFiles(rec);
      const spec = await this.o.spec.buildRuntimeSpec(this.specInput(rec, mounts, net));
      // rebuilt at every start and read by the runtime right away: atomic, no fsync needed
      await writeJsonAtomic(join(bundle, 'config.json'), spec, { sync: false });
      await rm(join(this.exitDir, rec.Id), { force: true });
      // a leftover runtime record (daemon restart, failed start) would make `create` fail
      await this.runtimeDeleteIfAny(rec).catch(() => undefined);
      this.runtimeClean.delete(rec.Id);
      const live: Live = this.live.get(rec.Id) ?? { exit: deferred(), pendingStdin: [], startedAtMs: Date.now() };
      // attach sessions opened before start already wait on the pending deferred: keep it
      if (live.exit.settled) live.exit = deferred();
      live.startedAtMs = Date.now();
      this.live.set(rec.Id, live);
      // bind sources outside the data root may be host mounts newer than the runtime's long-lived
      // mount namespace: such a container is created in a namespace of its own (crun-setup.ts)
      const fresh = rt.config.freshPath && mounts.some((m) => m.type === 'bind' && !isUnder(m.source, this.o.root));
      const res = await spawnConmon({
        conmonPath: this.o.host.binaries['conmon'] ?? 'conmon',
        runtime: fresh ? { ...rt.config, path: rt.config.freshPath!, wrapArgs: [] } : rt.config,
        id: rec.Id,
        cuuid: rec.Id.slice(0, 16),
        name: rec.Name.slice(1),
        bundle,
        pidFile: join(d, 'pid'),
        conmonPidFile: join(d, 'conmon.pid'),
        logPath: join(d, 'ctr.log'),
        exitDir: this.exitDir,
        socketDir: this.sockDir,
        conmonLog: join(d, 'conmon.log'),
        runtimeLog: join(d, 'runtime.log'),
        stdin: Boolean(rec.Config['OpenStdin']),
        leaveStdinOpen: !rec.Config['StdinOnce'], // Docker closes stdin at a client's EOF only with StdinOnce
        tty: Boolean(rec.Config['Tty']),
      });
      releaseWarm();
      await rt.start(rec.Id);
      rec.ConmonPid = res.conmonPid;
      setStatus(rec.State, 'running');
      rec.State.Pid = res.pid;
      rec.State.ExitCode = 0;
      rec.State.Error = '';
      rec.State.OOMKilled = false;
      rec.State.StartedAt = isoNow();
      rec.State.FinishedAt = ZERO_TIME;
      if (rec.Config['Healthcheck'] && this.healthEnabled(rec)) {
        rec.State.Health = { Status: 'starting', FailingStreak: 0, Log: rec.State.Health?.Log ?? [] };
      }
      await this.persist(rec, { sync: !rec.HostConfig['AutoRemove'] });
      this.emitVolumes(rec, 'mount');
      this.emit(rec, 'start');
      for (const s of live.pendingStdin.splice(0)) this.connectStdin(rec, s);
      if (!live.pump) live.pump = this.pumpFor(rec);
      live.pump.start();
      this.startHealth(rec);
    } catch (err) {
      releaseWarm();
      const msg = messageOf(err);
      await this.runtimeDelete(rec).catch(() => undefined);
      await this.o.networks?.detach(rec.Id, { wait: true }).catch(() => undefined);
      if (rootfs) await unmount(rootfs).catch(() => undefined);
      const cmd0 = rec.Path;
      const isExec = /exec|executable|no such file|permission denied|not found/i.test(msg) && !(err instanceof EngineError && err.kind === 'invalid-argument');
      rec.State.Error = isExec ? dockerStartMessage(msg, cmd0) : msg;
      rec.State.ExitCode = isExec ? startFailureExitCode(msg) : 128;
      setStatus(rec.State, rec.State.StartedAt === ZERO_TIME ? 'created' : 'exited');
      await this.persist(rec).catch(() => undefined);
      const l = this.live.get(rec.Id);
      if (l) {
        for (const s of l.pendingStdin.splice(0)) s.destroy();
        l.exit.resolve(rec.State.ExitCode);
      }
      this.resolveWaiters(rec, 'next-exit', rec.State.ExitCode, rec.State.Error);
      // As dockerd: a failed start of an AutoRemove container removes it, so `docker run --rm`
      // (which waits for condition=removed after a failed start) returns (issue 4).
      if (rec.HostConfig['AutoRemove'] && !this.shuttingDown) {
        setImmediate(() => {
          this.remove(rec.Id, { force: true, volumes: true, auto: true }).catch((e) => this.o.log(`auto-remove ${rec.Id.slice(0, 12)}: ${messageOf(e)}`));
        });
      }
      if (err instanceof EngineError && err.kind !== 'internal') throw err;
      throw new EngineError(isExec ? 'invalid-argument' : 'internal', rec.State.Error, { cause: err });
    }
  }

  // ---------------------------------------------------------------- exits, restarts

  private async onExitFile(id: string): Promise<void> {
    const rec = this.recs.get(id);
    if (!rec) return;
    await this.lock.run(id, async () => {
      const f = join(this.exitDir, id);
      let text = '';
      // conmon creates the exit file, then writes it: an empty read means "not yet"
      for (let i = 0; i < 50; i++) {
        try {
          text = await readFile(f, 'utf8');
        } catch {
          return; // already handled
        }
        if (text.trim()) break;
        await sleep(10);
      }
      if (!rec.State.Running) {
        await rm(f, { force: true });
        return;
      }
      const code = Number(text.trim());
      await rm(f, { force: true });
      await this.finishRun(rec, Number.isFinite(code) ? code : 255, '');
    });
  }

  /** Record the end of a run (lock held), clean up, then apply --rm or the restart policy. */
  private async finishRun(rec: ContainerRecord, code: number, error: string): Promise<void> {
    const oom = await oomKilled(rec.Id, this.o.host.cgroupVersion).catch(() => false);
    const autoRemove = Boolean(rec.HostConfig['AutoRemove']) && !this.shuttingDown;
    // the processes are gone: the network teardown (the slow part, netavark's iptables calls), the
    // runtime delete (cgroups and state only) and the rootfs unmount run side by side (an unmount
    // that finds the rootfs still busy falls back to a lazy one). An auto-removed container is
    // removed right after: its runtime delete and unmount run after the removal (see remove()).
    await Promise.all([
      autoRemove ? undefined : this.runtimeDelete(rec).catch((e) => this.o.log(`runtime delete ${rec.Id.slice(0, 12)}: ${messageOf(e)}`)),
      autoRemove ? undefined : unmount(join(this.dir(rec.Id), 'rootfs')).catch((e) => this.o.log(`unmount ${rec.Id.slice(0, 12)}: ${messageOf(e)}`)),
      this.o.networks?.detach(rec.Id).catch((e) => this.o.log(`network detach ${rec.Id.slice(0, 12)}: ${messageOf(e)}`)),
    ]);
    const live = this.live.get(rec.Id);
    if (live?.healthTimer) clearTimeout(live.healthTimer);
    // every byte the container wrote is in the json-file log before anyone hears of the exit
    if (live?.pump) await live.pump.stop().catch(() => undefined);
    else await this.pumpFor(rec).drainOnce().catch(() => undefined);
    setStatus(rec.State, 'exited');
    rec.State.Pid = 0;
    rec.State.ExitCode = code;
    rec.State.Error = error;
    rec.State.OOMKilled = oom;
    rec.State.FinishedAt = isoNow();
    if (rec.State.Health) rec.State.Health.Status = 'unhealthy';
    await this.persist(rec, { sync: !autoRemove });
    if (oom) this.emit(rec, 'oom');
    this.emit(rec, 'die', { exitCode: String(code) });
    this.emitVolumes(rec, 'unmount');
    live?.exit.resolve(code);
    this.resolveWaiters(rec, 'next-exit', code, error);
    if (autoRemove) {
      setImmediate(() => {
        this.remove(rec.Id, { force: true, volumes: true, auto: true }).catch((e) => this.o.log(`auto-remove ${rec.Id.slice(0, 12)}: ${messageOf(e)}`));
      });
      return;
    }
    this.maybeRestart(rec, code);
  }

  private maybeRestart(rec: ContainerRecord, code: number): void {
    if (this.shuttingDown || rec.ManuallyStopped) return;
    const pol = rec.HostConfig['RestartPolicy'] as { Name: string; MaximumRetryCount?: number };
    let restart = false;
    if (pol.Name === 'always' || pol.Name === 'unless-stopped') restart = true;
    if (pol.Name === 'on-failure' && code !== 0) {
      const max = pol.MaximumRetryCount ?? 0;
      restart = max === 0 || rec.RestartCount < max;
    }
    if (!restart) return;
    const live = this.live.get(rec.Id)!;
    const ranMs = Date.now() - live.startedAtMs;
    const delay = ranMs > 10_000 ? 100 : Math.min(60_000, 100 * 2 ** Math.min(rec.RestartCount, 10));
    setStatus(rec.State, 'restarting');
    void this.persist(rec);
    live.restartTimer = setTimeout(() => {
      void this.lock.run(rec.Id, async () => {
        if (rec.State.Status !== 'restarting' || rec.ManuallyStopped || !this.recs.has(rec.Id)) return;
        rec.RestartCount++;
        try {
          await this.startLocked(rec);
        } catch (e) {
          this.o.log(`restart of ${rec.Id.slice(0, 12)} failed: ${messageOf(e)}`);
        }
      });
    }, delay);
  }

  private resolveWaiters(rec: ContainerRecord, event: 'next-exit' | 'removed', code: number, error: string): void {
    const ws = this.waiters.get(rec.Id);
    if (!ws) return;
    const res = { StatusCode: code, Error: error ? { Message: error } : null };
    const keep: Waiter[] = [];
    for (const w of ws) {
      if (event === 'removed' ? w.cond === 'removed' : w.cond !== 'removed') w.resolve(res);
      else keep.push(w);
    }
    if (keep.length) this.waiters.set(rec.Id, keep);
    else this.waiters.delete(rec.Id);
  }

  // ---------------------------------------------------------------- stop / kill / restart

  async stop(ref: string, opts: { timeout?: number; signal?: string }): Promise<void> {
    const rec = this.find(ref);
    await this.stopRec(rec, opts, true);
  }

  private async stopRec(rec: ContainerRecord, opts: { timeout?: number; signal?: string }, manual: boolean): Promise<void> {
    const live = this.live.get(rec.Id);
    let exitP: Promise<number> | undefined;
    await this.lock.run(rec.Id, async () => {
      if (manual) rec.ManuallyStopped = true;
      if (rec.State.Status === 'restarting') {
        if (live?.restartTimer) clearTimeout(live.restartTimer);
        setStatus(rec.State, 'exited');
        await this.persist(rec);
        return;
      }
      if (!rec.State.Running) {
        await this.persist(rec);
        throw notModified('container already stopped');
      }
      await this.persist(rec);
      const rt = this.runtimeFor(rec);
      if (rec.State.Paused) await rt.resume(rec.Id).catch(() => undefined);
      const sig = normaliseSignal(opts.signal ?? (rec.Config['StopSignal'] as string | undefined), 'TERM');
      exitP = live?.exit.promise;
      await rt.kill(rec.Id, sig).catch(() => undefined);
    });
    if (!exitP) return;
    const t = opts.timeout ?? (typeof rec.Config['StopTimeout'] === 'number' ? (rec.Config['StopTimeout'] as number) : 10);
    const timedOut = t < 0 ? false : await Promise.race([exitP.then(() => false), sleep(t * 1000).then(() => true)]);
    if (timedOut) {
      await this.runtimeFor(rec).kill(rec.Id, 'KILL', true).catch(() => undefined);
      const gone = await Promise.race([exitP.then(() => true), sleep(10_000).then(() => false)]);
      if (!gone) {
        // conmon never reported: check directly
        await this.pollExits();
        await Promise.race([exitP, sleep(5000)]);
      }
    } else if (t < 0) {
      await exitP;
    }
    this.emit(rec, 'stop');
  }

  async restart(ref: string, opts: { timeout?: number; signal?: string }): Promise<void> {
    const rec = this.find(ref);
    if (rec.State.Running) await this.stopRec(rec, opts, false).catch((e) => {
      if (!isKind(e, 'not-modified')) throw e;
    });
    await this.lock.run(rec.Id, async () => {
      const l = this.live.get(rec.Id);
      if (l?.restartTimer) clearTimeout(l.restartTimer);
      rec.ManuallyStopped = false;
      if (rec.State.Status === 'running') return;
      await this.startLocked(rec);
    });
    this.emit(rec, 'restart');
  }

  async kill(ref: string, signal?: string): Promise<void> {
    const rec = this.find(ref);
    const sig = normaliseSignal(signal, 'KILL');
    await this.lock.run(rec.Id, async () => {
      if (!rec.State.Running || rec.State.Status === 'restarting') throw conflict(`Container ${rec.Id} is not running`);
      if (sig === 'KILL' || sig === '9') {
        rec.ManuallyStopped = true;
        await this.persist(rec);
      }
      await this.runtimeFor(rec).kill(rec.Id, sig);
    });
    this.emit(rec, 'kill', { signal: sig });
  }

  // ---------------------------------------------------------------- remove

  /**
   * Remove a container. `auto` (the removal of an AutoRemove container after its run, internal):
   * the answer — `destroy`, `wait?condition=removed` — comes once the record is gone; the runtime
   * delete, unmount and file removal follow in the background. An API `rm` waits for all of it.
   */
  async remove(ref: string, opts: { force: boolean; volumes: boolean; auto?: boolean }): Promise<void> {
    const rec = this.find(ref);
    if (rec.State.Running && rec.State.Status !== 'restarting') {
      if (!opts.force) {
        throw conflict(`cannot remove container "${rec.Name}": container is running: stop the container before removing or force remove`);
      }
      await this.lock.run(rec.Id, async () => {
        rec.ManuallyStopped = true;
        if (rec.State.Paused) await this.runtimeFor(rec).resume(rec.Id).catch(() => undefined);
        await this.runtimeFor(rec).kill(rec.Id, 'KILL', true).catch(() => undefined);
      });
      const l = this.live.get(rec.Id);
      if (l) {
        const ok = await Promise.race([l.exit.promise.then(() => true), sleep(10_000).then(() => false)]);
        if (!ok) {
          await this.pollExits();
          await Promise.race([l.exit.promise, sleep(3000)]);
        }
      }
    }
    await this.lock.run(rec.Id, async () => {
      if (!this.recs.has(rec.Id)) throw notFound(`No such container: ${ref}`);
      const l = this.live.get(rec.Id);
      if (l?.restartTimer) clearTimeout(l.restartTimer);
      if (l?.healthTimer) clearTimeout(l.healthTimer);
      await l?.pump?.stop().catch(() => undefined);
      if (rec.State.Running && rec.State.Status !== 'restarting') {
        // conmon did not report in time: finish by hand
        await this.finishRunQuiet(rec);
      }
      setStatus(rec.State, 'removing');
      await this.o.networks?.forget(rec.Id).catch(() => undefined);
      // make the removal durable first: drop the record, then the rest. The physical part — the
      // runtime's record and cgroups, the rootfs unmount, the files — runs after the answer for an
      // auto-removal (issue 7: 10-20 ms of `run --rm`); a crash in between leaves a directory
      // without container.json and a runtime record without a container, both cleaned by init().
      await rm(join(this.dir(rec.Id), 'container.json'), { force: true });
      const runtimeClean = this.runtimeClean.has(rec.Id);
      this.recs.delete(rec.Id);
      this.names.delete(rec.Name);
      this.live.delete(rec.Id);
      this.runtimeClean.delete(rec.Id);
      for (const e of rec.ExecIDs) this.execs.delete(e);
      const rt = this.o.runtimes.get(rec.Runtime);
      const physical = (async () => {
        const rtDone = (async () => {
          if (!rt || runtimeClean) return;
          const r = new OciRuntime(rt);
          if (await r.hasState(rec.Id)) await r.delete(rec.Id, true);
        })().catch((e) => this.o.log(`runtime delete ${rec.Id.slice(0, 12)}: ${messageOf(e)}`));
        await unmount(join(this.dir(rec.Id), 'rootfs')).catch((e) => this.o.log(`unmount ${rec.Id.slice(0, 12)}: ${messageOf(e)}`));
        await rm(this.dir(rec.Id), { recursive: true, force: true });
        await rm(join(this.sockDir, rec.Id.slice(0, 16)), { force: true }).catch(() => undefined);
        await rtDone;
      })();
      if (opts.auto) this.track(physical);
      else await physical;
      if (opts.volumes) {
        for (const mp of rec.MountPoints) {
          if (mp.Type === 'volume' && mp.Anonymous && mp.Name && this.usersOfVolume(mp.Name).length === 0) {
            await this.o.volumes.remove(mp.Name, true).catch(() => undefined);
          }
        }
      }
      this.removedCodes.set(rec.Id, rec.State.ExitCode);
      if (this.removedCodes.size > 256) this.removedCodes.delete(this.removedCodes.keys().next().value!);
      this.emit(rec, 'destroy');
      this.resolveWaiters(rec, 'next-exit', rec.State.ExitCode, rec.State.Error);
      this.resolveWaiters(rec, 'removed', rec.State.ExitCode, rec.State.Error);
    });
  }

  private async finishRunQuiet(rec: ContainerRecord): Promise<void> {
    await this.runtimeDelete(rec).catch(() => undefined);
    setStatus(rec.State, 'exited');
    rec.State.ExitCode = rec.State.ExitCode || 137;
    rec.State.FinishedAt = isoNow();
    this.live.get(rec.Id)?.exit.resolve(rec.State.ExitCode);
  }

  // ---------------------------------------------------------------- wait

  async wait(ref: string, condition: WaitCondition, signal?: AbortSignal) {
    if (!['not-running', 'next-exit', 'removed'].includes(condition)) {
      throw invalidArgument(`invalid condition: "${condition}"`);
    }
    const rec = this.find(ref);
    const result = new Promise<{ StatusCode: number; Error: { Message: string } | null }>((resolve, reject) => {
      if (condition === 'not-running' && !rec.State.Running) {
        resolve({ StatusCode: rec.State.ExitCode, Error: null });
        return;
      }
      const w: Waiter = { cond: condition, resolve };
      const list = this.waiters.get(rec.Id) ?? [];
      list.push(w);
      this.waiters.set(rec.Id, list);
      signal?.addEventListener('abort', () => {
        const l = this.waiters.get(rec.Id);
        if (l) this.waiters.set(rec.Id, l.filter((x) => x !== w));
        reject(new EngineError('cancelled', 'wait cancelled'));
      }, { once: true });
    });
    result.catch(() => undefined);
    return { ready: Promise.resolve(), result };
  }

  // ---------------------------------------------------------------- logs / attach

  async logs(ref: string, opts: LogsOptions): Promise<{ tty: boolean; chunks: AsyncIterable<OutputChunk> }> {
    const rec = this.find(ref);
    if (!opts.stdout && !opts.stderr) throw invalidArgument('You must choose at least one stream');
    const driver = String((rec.HostConfig['LogConfig'] as { Type?: string }).Type ?? 'json-file');
    if (driver === 'none') throw invalidArgument('configured logging driver does not support reading');
    const jsonPath = this.jsonLogPath(rec);
    const maxFile = this.rotation(rec).maxFile;
    const live = this.live.get(rec.Id);
    const follow = opts.follow && rec.State.Running;
    // the exit resolves after the log pump drained the spool (finishRun): the json log is complete
    // then, and the reader makes one more pass before it stops
    const stopWhen = follow && live ? live.exit.promise : undefined;
    const pump = live?.pump;
    const sinceNs = opts.since !== undefined && opts.since > 0 ? BigInt(Math.floor(opts.since * 1e9)) : undefined;
    const untilNs = opts.until !== undefined && opts.until > 0 ? BigInt(Math.floor(opts.until * 1e9)) : undefined;
    const want = (r: OutputChunk & { unixNano: bigint }): boolean => {
      if (r.stream === 'stdout' && !opts.stdout) return false;
      if (r.stream === 'stderr' && !opts.stderr) return false;
      if (sinceNs !== undefined && r.unixNano < sinceNs) return false;
      if (untilNs !== undefined && r.unixNano > untilNs) return false;
      return true;
    };
    async function* gen(): AsyncGenerator<OutputChunk> {
      let skip = 0;
      const tail = opts.tail;
      if (tail !== undefined && tail >= 0) {
        // count the records that exist now; the follow pass skips all but the last `tail` of them
        let total = 0;
        const kept: number[] = [];
        let idx = 0;
        for await (const r of readJsonLog(jsonPath, maxFile, { follow: false })) {
          if (want(r)) {
            kept.push(idx);
            total++;
          }
          idx++;
        }
        const firstShown = total - tail <= 0 ? 0 : kept[total - tail]!;
        skip = tail === 0 ? idx : firstShown;
      }
      let i = 0;
      for await (const r of readJsonLog(jsonPath, maxFile, {
        follow,
        ...(stopWhen ? { stopWhen } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(pump ? { pump } : {}),
      })) {
        if (i++ < skip) continue;
        if (untilNs !== undefined && r.unixNano > untilNs) {
          if (follow) return;
          continue;
        }
        if (want(r)) yield r;
      }
    }
    return { tty: Boolean(rec.Config['Tty']), chunks: gen() };
  }

  async attach(ref: string, opts: AttachOptions): Promise<AttachSession> {
    const rec = this.find(ref);
    // moby daemon/attach.go: a clean 409 before the upgrade (podman #20179)
    if (rec.State.Paused) throw conflict('You cannot attach to a paused container, unpause it first');
    if (rec.State.Restarting) throw conflict('You cannot attach to a restarting container, wait until it is running');
    const path = join(this.dir(rec.Id), 'ctr.log');
    let size = 0;
    try {
      size = (await stat(path)).size;
    } catch {
      size = 0;
    }
    const ac = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, ac.signal]) : ac.signal;
    const live = this.live.get(rec.Id) ?? { exit: deferred<number>(), pendingStdin: [], startedAtMs: 0 };
    if (!this.live.has(rec.Id)) this.live.set(rec.Id, live);
    // not running: the session follows the next run (docker start -a attaches before start)
    if (!rec.State.Running && live.exit.settled) live.exit = deferred();
    // The session ends at the end of the current run — or the next one, for a container not yet
    // started. The exit resolves only after the log pump drained the spool (finishRun), so the
    // spool is complete then; the reader makes one more pass before it stops.
    const runEnd = (): Promise<unknown> => {
      const l = this.live.get(rec.Id)!;
      return l.exit.promise;
    };
    const wantStream = (s: string) => (s === 'stdout' ? opts.stdout : opts.stderr);
    const self = this;
    async function* output(): AsyncGenerator<OutputChunk> {
      if (opts.logs) {
        for await (const r of readK8sLog(path, { follow: false, signal })) if (wantStream(r.stream)) yield r;
      }
      if (!opts.stream) return;
      if (!rec.State.Running && rec.State.Status !== 'created' && rec.State.Status !== 'restarting' && !opts.logs) {
        // an exited container: the stream waits for the next start
      }
      const stopWhen = new Promise<unknown>((resolve) => {
        const check = () => {
          const l = self.live.get(rec.Id);
          if (!l) return resolve(undefined);
          void runEnd().then(resolve);
        };
        check();
      });
      for await (const r of readK8sLog(path, { follow: true, fromOffset: opts.logs ? undefined as unknown as number : size, stopWhen, signal })) {
        if (wantStream(r.stream)) yield r;
      }
    }
    let stdin: Writable | undefined;
    if (opts.stdin && rec.Config['OpenStdin']) {
      const pt = new PassThrough();
      stdin = pt;
      if (rec.State.Running) this.connectStdin(rec, pt);
      else live.pendingStdin.push(pt);
    }
    const session: AttachSession = {
      tty: Boolean(rec.Config['Tty']),
      output: output(),
      close: () => ac.abort(),
    };
    if (stdin) session.stdin = stdin;
    this.emit(rec, 'attach');
    return session;
  }

  /** Feed a stdin stream into conmon's attach socket (SOCK_SEQPACKET) through socat. */
  private connectStdin(rec: ContainerRecord, src: PassThrough, cuuid = rec.Id.slice(0, 16)): void {
    const sock = join(this.sockDir, cuuid, 'attach');
    const socat = this.o.host.binaries['socat'] ?? 'socat';
    const child = spawn(socat, ['-u', '-', `UNIX-CONNECT:${sock},type=5`], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', (e) => this.o.log(`socat: ${e.message}`));
    if (process.env['BERTH_DEBUG']) {
      src.on('end', () => this.o.log(`stdin of ${rec.Id.slice(0, 12)}: end`));
      this.o.log(`stdin bridge for ${rec.Id.slice(0, 12)} started`);
    }
    child.on('exit', (code) => {
      if (process.env['BERTH_DEBUG']) this.o.log(`stdin bridge for ${rec.Id.slice(0, 12)} exited ${code}`);
      if (code) this.o.log(`stdin bridge for ${rec.Id.slice(0, 12)} exited ${code}: ${err.trim()}`);
      src.destroy();
    });
    child.stdin.on('error', () => undefined);
    // conmon 2.1 can miss an EOF that arrives in the same wakeup as the last data, leaving the
    // container's stdin open: hand the data over, let conmon drain it, then close.
    src.pipe(child.stdin, { end: false });
    src.once('end', () => {
      setTimeout(() => child.stdin.end(), 100);
    });
  }

  async resize(ref: string, h: number, w: number): Promise<void> {
    const rec = this.find(ref);
    if (!rec.State.Running) throw conflict(`Container ${rec.Id} is not running`);
    if (!rec.Config['Tty']) return;
    await conmonResize(join(this.dir(rec.Id), 'bundle'), h, w).catch((e) => {
      throw internal(`cannot resize: ${messageOf(e)}`);
    });
    this.emit(rec, 'resize', { height: String(h), width: String(w) });
  }

  // ---------------------------------------------------------------- pause, rename, update

  async pause(ref: string): Promise<void> {
    const rec = this.find(ref);
    await this.lock.run(rec.Id, async () => {
      if (!rec.State.Running || rec.State.Status === 'restarting') throw conflict(`Container ${rec.Id} is not running`);
      if (rec.State.Paused) throw conflict(`Container ${rec.Id} is already paused`);
      await this.runtimeFor(rec).pause(rec.Id);
      setStatus(rec.State, 'paused');
      await this.persist(rec);
    });
    this.emit(rec, 'pause');
  }

  async unpause(ref: string): Promise<void> {
    const rec = this.find(ref);
    await this.lock.run(rec.Id, async () => {
      if (!rec.State.Paused) throw conflict(`Container ${rec.Id} is not paused`);
      await this.runtimeFor(rec).resume(rec.Id);
      setStatus(rec.State, 'running');
      await this.persist(rec);
    });
    this.emit(rec, 'unpause');
  }

  async rename(ref: string, newName: string): Promise<void> {
    const rec = this.find(ref);
    const bare = newName.replace(/^\//, '');
    if (!NAME_RE.test(bare)) throw invalidArgument(`Invalid container name (${newName}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed`);
    const n = `/${bare}`;
    if (n === rec.Name) throw invalidArgument('Renaming a container with the same name as its current name');
    const other = this.names.get(n);
    if (other) throw conflict(`Conflict. The container name "${n}" is already in use by container "${other}". You have to remove (or rename) that container to be able to reuse that name.`);
    await this.lock.run(rec.Id, async () => {
      const old = rec.Name;
      this.names.delete(old);
      this.names.set(n, rec.Id);
      rec.Name = n;
      await this.persist(rec);
      this.emit(rec, 'rename', { oldName: old });
    });
  }

  async update(ref: string, body: Json): Promise<{ Warnings: string[] }> {
    const rec = this.find(ref);
    await this.lock.run(rec.Id, async () => {
      const keys = ['Memory', 'MemorySwap', 'MemoryReservation', 'NanoCpus', 'CpuShares', 'CpuPeriod', 'CpuQuota', 'CpusetCpus', 'CpusetMems', 'PidsLimit', 'BlkioWeight'];
      const hc: Json = { ...rec.HostConfig };
      for (const k of keys) if (body[k] !== undefined && body[k] !== null && body[k] !== '') hc[k] = body[k];
      if (body['Memory'] && !body['MemorySwap'] && Number(rec.HostConfig['MemorySwap']) > 0) {
        // keep Docker's rule: swap follows memory when only memory changes
        hc['MemorySwap'] = 2 * Number(body['Memory']);
      }
      if (body['RestartPolicy'] && typeof body['RestartPolicy'] === 'object') {
        hc['RestartPolicy'] = { Name: 'no', MaximumRetryCount: 0, ...(body['RestartPolicy'] as Json) };
      }
      validateRestartPolicy(hc);
      this.o.spec.validateHostConfig(hc, this.hostLimits());
      if (rec.State.Running && rec.State.Status !== 'restarting') {
        const res = this.o.spec.resourcesFromHostConfig(hc, this.hostLimits());
        // Only touch the pids limit when this update sets it: an unset PidsLimit (0 from create)
        // becomes "-1", which crun 1.8 rejects on v1 hosts (`docker update --memory`, issue 4).
        if (body['PidsLimit'] === undefined || body['PidsLimit'] === null) delete res['pids'];
        await this.runtimeFor(rec).update(rec.Id, res);
      }
      rec.HostConfig = hc;
      await this.persist(rec);
    });
    this.emit(rec, 'update');
    return { Warnings: [] };
  }

  // ---------------------------------------------------------------- inspect / list

  private view(rec: ContainerRecord): Json {
    const d = this.dir(rec.Id);
    return {
      Id: rec.Id,
      Created: rec.Created,
      Path: rec.Path,
      Args: rec.Args,
      State: rec.State,
      Image: rec.Image,
      ResolvConfPath: join(d, 'resolv.conf'),
      HostnamePath: join(d, 'hostname'),
      HostsPath: join(d, 'hosts'),
      LogPath: this.jsonLogPath(rec),
      Name: rec.Name,
      RestartCount: rec.RestartCount,
      Driver: 'overlay2',
      Platform: 'linux',
      MountLabel: '',
      ProcessLabel: '',
      AppArmorProfile: '',
      ExecIDs: rec.ExecIDs.length ? rec.ExecIDs : null,
      HostConfig: rec.HostConfig,
      GraphDriver: {
        Name: 'overlay2',
        Data: { UpperDir: join(d, 'upper'), WorkDir: join(d, 'work'), MergedDir: join(d, 'rootfs') },
      },
      Mounts: rec.MountPoints.filter((m) => m.Type !== 'tmpfs').map((m) => {
        const o: Json = { Type: m.Type, Source: m.Source, Destination: m.Destination, Mode: m.Mode, RW: m.RW, Propagation: m.Propagation };
        if (m.Type === 'volume') {
          o['Name'] = m.Name;
          o['Driver'] = 'local';
        }
        return o;
      }),
      Config: rec.Config,
      NetworkSettings: this.networkSettings(rec),
    };
  }

  private networkSettings(rec: ContainerRecord): Json {
    const nm = String(rec.HostConfig['NetworkMode']);
    if (this.o.networks && nm !== 'host' && nm !== 'none' && !nm.startsWith('container:') && (this.o.networks.bridgeEnabled || (nm !== 'default' && nm !== 'bridge'))) {
      return this.o.networks.settings(rec.Id, rec.HostConfig);
    }
    const netName = nm === 'host' ? 'host' : nm.startsWith('container:') ? '' : 'none';
    const networks: Json = {};
    if (netName) {
      networks[netName] = {
        IPAMConfig: null, Links: null, Aliases: null, MacAddress: '', DriverOpts: null, NetworkID: netName,
        EndpointID: '', Gateway: '', IPAddress: '', IPPrefixLen: 0, IPv6Gateway: '', GlobalIPv6Address: '',
        GlobalIPv6PrefixLen: 0, DNSNames: null,
      };
    }
    return {
      Bridge: '', SandboxID: '', SandboxKey: rec.State.Pid ? `/proc/${rec.State.Pid}/ns/net` : '',
      HairpinMode: false, LinkLocalIPv6Address: '', LinkLocalIPv6PrefixLen: 0,
      Ports: {}, SecondaryIPAddresses: null, SecondaryIPv6Addresses: null,
      EndpointID: '', Gateway: '', GlobalIPv6Address: '', GlobalIPv6PrefixLen: 0, IPAddress: '', IPPrefixLen: 0,
      IPv6Gateway: '', MacAddress: '', Networks: networks,
    };
  }

  async inspect(ref: string, opts?: { size?: boolean }): Promise<Json> {
    const rec = this.find(ref);
    const v = this.view(rec);
    if (opts?.size) {
      v['SizeRw'] = await dirSize(join(this.dir(rec.Id), 'upper'));
      v['SizeRootFs'] = v['SizeRw'];
    }
    return v;
  }

  private statusText(rec: ContainerRecord): string {
    const s = rec.State;
    const now = Date.now();
    switch (s.Status) {
      case 'running': {
        let t = `Up ${humanDuration(now - Date.parse(s.StartedAt))}`;
        if (s.Health && s.Health.Status !== 'none') t += ` (${s.Health.Status === 'starting' ? 'health: starting' : s.Health.Status})`;
        return t;
      }
      case 'paused':
        return `Up ${humanDuration(now - Date.parse(s.StartedAt))} (Paused)`;
      case 'restarting':
        return `Restarting (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
      case 'exited':
        if (s.FinishedAt === ZERO_TIME) return 'Created';
        return `Exited (${s.ExitCode}) ${humanDuration(now - Date.parse(s.FinishedAt))} ago`;
      case 'removing':
        return 'Removal In Progress';
      case 'dead':
        return 'Dead';
      default:
        return 'Created';
    }
  }

  async list(opts: { all: boolean; limit?: number; size: boolean; filters: Filters }): Promise<Json[]> {
    let recs = [...this.recs.values()].sort((a, b) => (a.Created < b.Created ? 1 : a.Created > b.Created ? -1 : 0));
    const f = opts.filters;
    checkPsFilterKeys(f);
    const all = opts.all || (opts.limit !== undefined && opts.limit > 0) || Boolean(f['status']?.length) || Boolean(f['exited']?.length);
    if (!all) recs = recs.filter((r) => r.State.Running);
    const labelOk = (r: ContainerRecord, l: string) => {
      const labels = (r.Config['Labels'] as Record<string, string> | null) ?? {};
      const i = l.indexOf('=');
      return i < 0 ? l in labels : labels[l.slice(0, i)] === l.slice(i + 1);
    };
    const refTime = (ref: string) => {
      const r = this.find(ref);
      return r.Created;
    };
    recs = recs.filter((r) => {
      if (f['id'] && !f['id'].some((v) => r.Id.startsWith(v))) return false;
      if (f['name'] && !f['name'].some((v) => new RegExp(v.replace(/^\//, '')).test(r.Name.slice(1)))) return false;
      if (f['label'] && !f['label'].every((l) => labelOk(r, l))) return false;
      if (f['status'] && !f['status'].includes(r.State.Status)) return false;
      if (f['exited'] && !(r.State.Status === 'exited' && f['exited'].includes(String(r.State.ExitCode)))) return false;
      if (f['ancestor'] && !f['ancestor'].some((a) => r.Image === a || r.Image.startsWith(`sha256:${a}`) || String(r.Config['Image']) === a || String(r.Config['Image']) === `${a}:latest` || `${String(r.Config['Image'])}:latest` === a)) return false;
      if (f['volume'] && !f['volume'].some((v) => r.MountPoints.some((m) => m.Name === v || m.Destination === v || m.Source === v))) return false;
      if (f['health'] && !f['health'].includes(r.State.Health?.Status ?? 'none')) return false;
      if (f['before'] && !f['before'].every((b) => r.Created < refTime(b))) return false;
      if (f['since'] && !f['since'].every((b) => r.Created > refTime(b))) return false;
      if (f['network'] && !f['network'].some((n) => String(r.HostConfig['NetworkMode']) === n || Boolean(this.o.networks?.networkNames(r.Id).includes(n)))) return false;
      if (f['publish'] || f['expose']) {
        const ports = (this.o.networks ? this.o.networks.listPorts(r.Id, r.Config) : portsFromConfig(r.Config, r.HostConfig)) as ListedPort[];
        if (f['publish'] && !f['publish'].some((v) => portFilterMatches(v, ports, 'publish'))) return false;
        if (f['expose'] && !f['expose'].some((v) => portFilterMatches(v, ports, 'expose'))) return false;
      }
      return true;
    });
    if (opts.limit !== undefined && opts.limit > 0) recs = recs.slice(0, opts.limit);
    const out: Json[] = [];
    for (const r of recs) {
      const cmd = [r.Path, ...r.Args].map((a) => (/\s/.test(a) ? `'${a}'` : a)).join(' ');
      const item: Json = {
        Id: r.Id,
        Names: [r.Name],
        Image: r.Config['Image'],
        ImageID: r.Image,
        Command: cmd,
        Created: Math.floor(Date.parse(r.Created) / 1000),
        Ports: this.o.networks ? this.o.networks.listPorts(r.Id, r.Config) : [],
        Labels: (r.Config['Labels'] as Json | null) ?? {},
        State: r.State.Status,
        Status: this.statusText(r),
        HostConfig: { NetworkMode: r.HostConfig['NetworkMode'] },
        NetworkSettings: { Networks: this.networkSettings(r)['Networks'] },
        Mounts: (this.view(r)['Mounts'] as Json[]).map((m) => ({ ...m })),
      };
      if (opts.size) {
        item['SizeRw'] = await dirSize(join(this.dir(r.Id), 'upper'));
        item['SizeRootFs'] = item['SizeRw'];
      }
      out.push(item);
    }
    return out;
  }

  // ---------------------------------------------------------------- top / stats

  async top(ref: string, psArgs?: string): Promise<{ Titles: string[]; Processes: string[][] }> {
    const rec = this.find(ref);
    if (!rec.State.Running) throw conflict(`Container ${rec.Id} is not running`);
    const pids = new Set(await cgroupPids(rec.Id, this.o.host.cgroupVersion));
    if (rec.State.Pid) pids.add(rec.State.Pid);
    const args = (psArgs && psArgs.trim() ? psArgs.trim() : '-ef').split(/\s+/);
    const out = await new Promise<string>((resolve, reject) => {
      execFile('ps', args, { maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
        if (err) reject(invalidArgument(`ps: ${String(stderr).trim() || err.message}`));
        else resolve(String(stdout));
      });
    });
    const lines = out.split('\n').filter((l) => l.trim());
    const titles = lines[0]!.trim().split(/\s+/);
    const pidCol = titles.indexOf('PID');
    if (pidCol < 0) throw invalidArgument(`Couldn't find PID field in ps output`);
    const procs: string[][] = [];
    for (const l of lines.slice(1)) {
      const f = l.trim().split(/\s+/);
      const pid = Number(f[pidCol]);
      if (!pids.has(pid)) continue;
      const row = f.slice(0, titles.length - 1);
      row.push(f.slice(titles.length - 1).join(' '));
      procs.push(row);
    }
    this.emit(rec, 'top');
    return { Titles: titles, Processes: procs };
  }

  async *stats(ref: string, opts: { stream: boolean; oneShot: boolean; signal?: AbortSignal }): AsyncIterable<Json> {
    const rec = this.find(ref);
    const sample = async (): Promise<Json> => {
      const read = new Date().toISOString();
      if (!rec.State.Running) return { id: rec.Id, name: rec.Name, read, preread: ZERO_TIME };
      const s = await sampleCgroup(rec.Id, this.o.host.cgroupVersion, this.o.host.memTotal);
      const sys = await systemCpuUsage();
      const cpu: Json = {
        cpu_usage: { total_usage: s.cpuTotal, usage_in_kernelmode: s.cpuKernel, usage_in_usermode: s.cpuUser, ...(s.percpu.length ? { percpu_usage: s.percpu } : {}) },
        system_cpu_usage: sys,
        online_cpus: this.o.host.ncpu,
        throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 },
      };
      return {
        id: rec.Id,
        name: rec.Name,
        read,
        preread: ZERO_TIME,
        num_procs: 0,
        pids_stats: { current: s.pids, ...(s.pidsLimit ? { limit: s.pidsLimit } : {}) },
        cpu_stats: cpu,
        precpu_stats: { cpu_usage: { total_usage: 0, usage_in_kernelmode: 0, usage_in_usermode: 0 }, throttling_data: { periods: 0, throttled_periods: 0, throttled_time: 0 } },
        memory_stats: { usage: s.memUsage, limit: s.memLimit, stats: s.memStats },
        blkio_stats: {
          io_service_bytes_recursive: s.blkio.map((b) => ({ major: b.major, minor: b.minor, op: b.op, value: b.value })),
          io_serviced_recursive: null, io_queue_recursive: null, io_service_time_recursive: null,
          io_wait_time_recursive: null, io_merged_recursive: null, io_time_recursive: null, sectors_recursive: null,
        },
        storage_stats: {},
        networks: rec.State.Pid ? await netStats(rec.State.Pid) : {},
      };
    };
    let prev: Json | undefined;
    if (!opts.stream && !opts.oneShot && rec.State.Running) {
      prev = await sample();
      await sleep(1000);
    }
    for (;;) {
      if (opts.signal?.aborted) return;
      const cur = await sample();
      if (prev && cur['cpu_stats']) {
        cur['precpu_stats'] = prev['cpu_stats'];
        cur['preread'] = prev['read'];
      }
      yield cur;
      if (!opts.stream || !rec.State.Running) return;
      prev = cur;
      await sleep(1000);
    }
  }

  // ---------------------------------------------------------------- filesystem: diff, export, archive

  private async withRootfs<T>(rec: ContainerRecord, fn: (rootfs: string) => Promise<T>, keepUntil?: (v: T) => Promise<void>): Promise<T> {
    const rootfs = join(this.dir(rec.Id), 'rootfs');
    // users of one container's rootfs share the mount: the last one out unmounts it (only if it was
    // mounted for them), and a new user waits for an unmount in progress instead of finding the
    // mount about to go (two `putArchive`s in a row, concurrent `cp`s)
    let lease = this.rootfsLeases.get(rec.Id);
    if (!lease) {
      const l: RootfsLease = { users: 0, ownMount: false, ready: Promise.resolve() };
      l.ready = (async () => {
        await this.rootfsUnmounting.get(rec.Id);
        if (!(await isMounted(rootfs))) {
          await this.mountRootfs(rec);
          l.ownMount = true;
        }
      })();
      this.rootfsLeases.set(rec.Id, l);
      lease = l;
    }
    const held = lease;
    held.users++;
    const release = (): void => {
      if (--held.users > 0) return;
      if (this.rootfsLeases.get(rec.Id) === held) this.rootfsLeases.delete(rec.Id);
      if (!held.ownMount || rec.State.Running) return;
      const gone = unmount(rootfs).catch(() => undefined).finally(() => {
        if (this.rootfsUnmounting.get(rec.Id) === gone) this.rootfsUnmounting.delete(rec.Id);
      });
      this.rootfsUnmounting.set(rec.Id, gone);
    };
    let v: T;
    try {
      await held.ready;
      v = await fn(rootfs);
    } catch (err) {
      release();
      await this.rootfsUnmounting.get(rec.Id);
      throw err;
    }
    const done = keepUntil ? keepUntil(v) : Promise.resolve();
    void done.finally(release);
    return v;
  }

  async changes(ref: string): Promise<Array<{ Path: string; Kind: number }>> {
    const rec = this.find(ref);
    const img = await this.o.images.resolve(rec.Image);
    return this.o.archiver.changes(join(this.dir(rec.Id), 'upper'), img.layerDirs);
  }

  async export(ref: string): Promise<Readable> {
    const rec = this.find(ref);
    const r = await this.withRootfs(rec, async (rootfs) => this.o.archiver.packTree(rootfs), (s) => streamDone(s));
    this.emit(rec, 'export');
    return r;
  }

  async statPath(ref: string, path: string) {
    const rec = this.find(ref);
    return this.withRootfs(rec, (rootfs) => this.o.archiver.statInRoot(rootfs, path));
  }

  async getArchive(ref: string, path: string): Promise<{ stat: Json; tar: Readable }> {
    const rec = this.find(ref);
    return this.withRootfs(
      rec,
      async (rootfs) => {
        const st = await this.o.archiver.statInRoot(rootfs, path);
        const tar = await this.o.archiver.packPath(rootfs, path);
        return { stat: st as unknown as Json, tar };
      },
      (v) => streamDone(v.tar),
    );
  }

  async putArchive(ref: string, path: string, tar: Readable, opts: { noOverwriteDirNonDir: boolean; copyUIDGID: boolean }): Promise<void> {
    const rec = this.find(ref);
    if (rec.HostConfig['ReadonlyRootfs']) throw new EngineError('permission-denied', 'container rootfs is marked read-only');
    await this.withRootfs(rec, async (rootfs) => {
      const st = await this.o.archiver.statInRoot(rootfs, path);
      if (!(st.mode & 2 ** 31)) throw invalidArgument(`extraction point is not a directory`);
      await this.o.archiver.extractInto(rootfs, path, tar, { noOverwriteDirNonDir: opts.noOverwriteDirNonDir });
    });
    this.emit(rec, 'extract-to-dir');
  }

  async prune(filters: Filters): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }> {
    const deleted: string[] = [];
    let space = 0;
    const until = filters['until']?.[0];
    const untilMs = until ? (/^\d+(\.\d+)?$/.test(until) ? Number(until) * 1000 : Date.now() - parseDurationMs(until)) : undefined;
    for (const r of [...this.recs.values()]) {
      if (r.State.Running) continue;
      if (untilMs !== undefined && Date.parse(r.Created) >= untilMs) continue;
      if (filters['label'] && !filters['label'].every((l) => {
        const labels = (r.Config['Labels'] as Record<string, string> | null) ?? {};
        const i = l.indexOf('=');
        return i < 0 ? l in labels : labels[l.slice(0, i)] === l.slice(i + 1);
      })) continue;
      space += await dirSize(join(this.dir(r.Id), 'upper'));
      await this.remove(r.Id, { force: false, volumes: false }).catch(() => undefined);
      if (!this.recs.has(r.Id)) deleted.push(r.Id);
    }
    return { ContainersDeleted: deleted, SpaceReclaimed: space };
  }

  /** Paths a commit needs: upper dir, image and config of a container. */
  commitSource(ref: string): { id: string; upperDir: string; image: string; config: Json; running: boolean } {
    const rec = this.find(ref);
    return { id: rec.Id, upperDir: join(this.dir(rec.Id), 'upper'), image: rec.Image, config: rec.Config, running: rec.State.Running };
  }

  // ---------------------------------------------------------------- exec

  async execCreate(ref: string, opts: ExecCreateOptions): Promise<{ Id: string }> {
    const rec = this.find(ref);
    if (!rec.State.Running || rec.State.Status === 'restarting') throw conflict(`container ${rec.Id} is not running`);
    if (rec.State.Paused) throw conflict(`Container ${rec.Id} is paused, unpause the container before exec`);
    if (!Array.isArray(opts.Cmd) || opts.Cmd.length === 0) throw invalidArgument('No exec command specified');
    const id = newId();
    const ex: ExecRecord = {
      ID: id,
      ContainerID: rec.Id,
      Running: false,
      ExitCode: null,
      Pid: 0,
      OpenStdin: Boolean(opts.AttachStdin),
      OpenStdout: opts.AttachStdout !== false,
      OpenStderr: opts.AttachStderr !== false,
      DetachKeys: opts.DetachKeys ?? '',
      Tty: Boolean(opts.Tty),
      Privileged: Boolean(opts.Privileged),
      User: opts.User ?? '',
      WorkingDir: opts.WorkingDir ?? '',
      Env: opts.Env ?? [],
      Cmd: opts.Cmd.map(String),
      ConsoleSize: opts.ConsoleSize ?? null,
      dir: join(this.dir(rec.Id), 'exec', id.slice(0, 16)),
      exit: deferred(),
      started: false,
    };
    this.execs.set(id, ex);
    rec.ExecIDs.push(id);
    this.emit(rec, `exec_create: ${ex.Cmd.join(' ')}`, { execID: id });
    return { Id: id };
  }

  private findExec(id: string): ExecRecord {
    const ex = this.execs.get(id);
    if (!ex) throw notFound(`No such exec instance: ${id}`);
    return ex;
  }

  async execStart(execId: string, opts: { Detach: boolean; Tty?: boolean; ConsoleSize?: [number, number] | null; signal?: AbortSignal }): Promise<AttachSession | undefined> {
    const ex = this.findExec(execId);
    const rec = this.recs.get(ex.ContainerID);
    if (!rec) throw notFound(`No such container: ${ex.ContainerID}`);
    if (ex.started) throw conflict(`Error: Exec command ${execId} has already run`);
    if (!rec.State.Running) throw conflict(`container ${rec.Id} is not running`);
    if (rec.State.Paused) throw conflict(`Container ${rec.Id} is paused, unpause the container before exec`);
    ex.started = true;
    if (opts.Tty !== undefined && opts.Tty !== null) ex.Tty = ex.Tty || Boolean(opts.Tty);
    if (opts.ConsoleSize) ex.ConsoleSize = opts.ConsoleSize;
    const rt = this.runtimeFor(rec);
    const releaseWarm = this.warmAttach();
    const mounts: ResolvedMount[] = [];
    const [proc] = await Promise.all([
      this.o.spec.buildExecProcess({
        base: this.specInput(rec, mounts),
        cmd: ex.Cmd,
        env: ex.Env,
        user: ex.User,
        workingDir: ex.WorkingDir,
        tty: ex.Tty,
        privileged: ex.Privileged,
        ...(ex.ConsoleSize ? { consoleSize: ex.ConsoleSize } : {}),
      }),
      mkdir(join(ex.dir, 'exit'), { recursive: true }),
    ]);
    const logPath = join(ex.dir, 'exec.log');
    await Promise.all([
      // read once by the runtime right away: atomic, no fsync needed
      writeJsonAtomic(join(ex.dir, 'process.json'), proc, { sync: false }),
      writeFile(logPath, ''),
    ]);
    const cuuid = execId.slice(0, 16);
    const exitWatch = this.watchExecExit(ex, rec);
    let conmonPid = 0;
    try {
      const res = await spawnConmon({
        conmonPath: this.o.host.binaries['conmon'] ?? 'conmon',
        runtime: rt.config,
        id: rec.Id,
        cuuid,
        name: rec.Name.slice(1),
        bundle: ex.dir,
        pidFile: join(ex.dir, 'pid'),
        conmonPidFile: join(ex.dir, 'conmon.pid'),
        logPath,
        exitDir: join(ex.dir, 'exit'),
        socketDir: this.sockDir,
        conmonLog: join(ex.dir, 'conmon.log'),
        runtimeLog: join(ex.dir, 'runtime.log'),
        stdin: ex.OpenStdin,
        tty: ex.Tty,
        execProcessSpec: join(ex.dir, 'process.json'),
      }).finally(releaseWarm);
      ex.Pid = res.pid;
      conmonPid = res.conmonPid;
      ex.Running = true;
    } catch (err) {
      exitWatch.cancel();
      const msg = messageOf(err);
      this.o.log(`exec ${execId.slice(0, 12)} in ${rec.Id.slice(0, 12)} failed to start: ${msg}`);
      ex.ExitCode = startFailureExitCode(msg) === 128 ? 126 : startFailureExitCode(msg);
      ex.Running = false;
      ex.exit.resolve(ex.ExitCode);
      const cmd0 = ex.Cmd[0]!;
      const text = ex.ExitCode === 127
        ? `OCI runtime exec failed: exec failed: unable to start container process: exec: "${cmd0}": executable file not found in $PATH: unknown`
        : `OCI runtime exec failed: ${msg}: unknown`;
      if (opts.Detach) throw new EngineError('internal', text);
      // attached: report inside the stream, like dockerd
      async function* errOut(): AsyncGenerator<OutputChunk> {
        yield { stream: 'stdout', data: Buffer.from(`${text}\r\n`), time: new Date().toISOString() };
      }
      return { tty: ex.Tty, output: errOut(), close: () => undefined };
    }
    this.emit(rec, `exec_start: ${ex.Cmd.join(' ')}`, { execID: execId });
    if (opts.Detach) return undefined;
    let stdin: PassThrough | undefined;
    if (ex.OpenStdin) {
      stdin = new PassThrough();
      this.connectStdin(rec, stdin, cuuid);
    }
    const ac = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, ac.signal]) : ac.signal;
    // conmon writes the exit file as the process ends, and may still be copying the last output
    // from the pipes into exec.log: the output ends when conmon itself has exited (then the reader
    // drains the file once more)
    const stopWhen = ex.exit.promise.then(() => waitForPidGone(conmonPid, 2000));
    const wantOut = ex.OpenStdout;
    const wantErr = ex.OpenStderr;
    async function* output(): AsyncGenerator<OutputChunk> {
      for await (const r of readK8sLog(logPath, { follow: true, stopWhen, signal, pollMs: 100 })) {
        if ((r.stream === 'stdout' && wantOut) || (r.stream === 'stderr' && wantErr)) yield r;
      }
    }
    const session: AttachSession = { tty: ex.Tty, output: output(), close: () => ac.abort() };
    if (stdin) session.stdin = stdin;
    return session;
  }

  private watchExecExit(ex: ExecRecord, rec: ContainerRecord): { cancel(): void } {
    const dir = join(ex.dir, 'exit');
    let done = false;
    const check = async () => {
      if (done) return;
      let files: string[] = [];
      try {
        files = await readdir(dir);
      } catch {
        return;
      }
      // conmon writes `<exit-dir>/<container id>` through a temp file `<id>.XXXXXX` and a rename:
      // read only the final name, and only once it holds a number
      if (!files.includes(rec.Id)) return;
      const text = (await readFile(join(dir, rec.Id), 'utf8').catch(() => '')).trim();
      if (!/^-?\d+$/.test(text)) return; // not complete yet: the next check reads it
      const code = Number(text);
      if (done) return;
      done = true;
      clearInterval(timer);
      w?.close();
      ex.Running = false;
      ex.ExitCode = code;
      ex.exit.resolve(ex.ExitCode);
      this.emit(rec, 'exec_die', { execID: ex.ID, exitCode: String(ex.ExitCode) });
      setTimeout(() => void rm(join(this.sockDir, ex.ID.slice(0, 16)), { force: true }), 1000).unref();
    };
    let w: FSWatcher | undefined;
    try {
      w = watch(dir, () => void check());
      w.on('error', () => undefined);
    } catch {
      w = undefined;
    }
    const timer = setInterval(() => void check(), 250);
    timer.unref();
    // the container dying ends its execs
    void this.live.get(rec.Id)?.exit.promise.then(() => setTimeout(() => void check().then(() => {
      if (!done) {
        done = true;
        clearInterval(timer);
        w?.close();
        ex.Running = false;
        ex.ExitCode = ex.ExitCode ?? 137;
        ex.exit.resolve(ex.ExitCode);
      }
    }), 500));
    return {
      cancel: () => {
        done = true;
        clearInterval(timer);
        w?.close();
      },
    };
  }

  async execResize(execId: string, h: number, w: number): Promise<void> {
    const ex = this.findExec(execId);
    if (!ex.Tty || !ex.Running) return;
    await conmonResize(ex.dir, h, w).catch(() => undefined);
  }

  async execInspect(execId: string): Promise<Json> {
    const ex = this.findExec(execId);
    return {
      ID: ex.ID,
      Running: ex.Running,
      ExitCode: ex.ExitCode,
      ProcessConfig: { tty: ex.Tty, entrypoint: ex.Cmd[0], arguments: ex.Cmd.slice(1), privileged: ex.Privileged, user: ex.User },
      OpenStdin: ex.OpenStdin,
      OpenStderr: ex.OpenStderr,
      OpenStdout: ex.OpenStdout,
      CanRemove: false,
      ContainerID: ex.ContainerID,
      DetachKeys: ex.DetachKeys,
      Pid: ex.Pid,
    };
  }

  // ---------------------------------------------------------------- health checks

  private healthEnabled(rec: ContainerRecord): boolean {
    const hc = rec.Config['Healthcheck'] as { Test?: string[] } | undefined;
    const t = hc?.Test;
    return Boolean(t && t.length > 0 && t[0] !== 'NONE');
  }

  private startHealth(rec: ContainerRecord): void {
    if (!this.healthEnabled(rec)) return;
    const live = this.live.get(rec.Id);
    if (!live) return;
    const hc = rec.Config['Healthcheck'] as { Test: string[]; Interval?: number; Timeout?: number; Retries?: number; StartPeriod?: number; StartInterval?: number };
    const interval = (hc.Interval && hc.Interval > 0 ? hc.Interval : 30e9) / 1e6;
    const timeout = (hc.Timeout && hc.Timeout > 0 ? hc.Timeout : 30e9) / 1e6;
    const retries = hc.Retries && hc.Retries > 0 ? hc.Retries : 3;
    const startPeriod = (hc.StartPeriod ?? 0) / 1e6;
    const startedAt = Date.now();
    const tick = async () => {
      if (!rec.State.Running || this.live.get(rec.Id) !== live) return;
      const argv = hc.Test[0] === 'CMD-SHELL' ? ['/bin/sh', '-c', hc.Test.slice(1).join(' ')] : hc.Test.slice(1);
      const start = new Date().toISOString();
      const r = await this.execCapture(rec, argv, timeout).catch((e) => ({ code: -1, output: messageOf(e) }));
      if (!rec.State.Running) return;
      const h = rec.State.Health ?? { Status: 'starting', FailingStreak: 0, Log: [] };
      h.Log.push({ Start: start, End: new Date().toISOString(), ExitCode: r.code, Output: r.output });
      if (h.Log.length > 5) h.Log.splice(0, h.Log.length - 5);
      const before = h.Status;
      if (r.code === 0) {
        h.FailingStreak = 0;
        h.Status = 'healthy';
      } else if (Date.now() - startedAt >= startPeriod) {
        h.FailingStreak++;
        if (h.FailingStreak >= retries) h.Status = 'unhealthy';
      }
      rec.State.Health = h;
      await this.persist(rec).catch(() => undefined);
      if (h.Status !== before) this.emit(rec, `health_status: ${h.Status}`);
      else this.emit(rec, `exec_die`, { exitCode: String(r.code) });
      live.healthTimer = setTimeout(() => void tick(), interval);
    };
    live.healthTimer = setTimeout(() => void tick(), Math.min(interval, (hc.StartInterval ?? 0) / 1e6 || interval));
  }

  /** Run a command in the container directly through the runtime and capture its output. */
  private async execCapture(rec: ContainerRecord, argv: string[], timeoutMs: number): Promise<{ code: number; output: string }> {
    const rt = this.runtimeFor(rec);
    const proc = await this.o.spec.buildExecProcess({ base: this.specInput(rec, []), cmd: argv, tty: false });
    const dir = join(this.dir(rec.Id), 'exec');
    await mkdir(dir, { recursive: true });
    const file = join(dir, `health-${process.hrtime.bigint()}.json`);
    await writeFile(file, JSON.stringify(proc));
    try {
      return await new Promise((resolve) => {
        const cmd = processCommand(rt.config, ['exec', '--process', file, rec.Id]);
        const child = execFile(cmd.file, cmd.args, { timeout: timeoutMs, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
          const output = (String(stdout) + String(stderr)).slice(0, 4096);
          if (err && (err as { killed?: boolean }).killed) resolve({ code: -1, output: `Health check exceeded timeout (${timeoutMs}ms)` });
          else resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, output });
        });
        child.stdin?.end();
      });
    } finally {
      await rm(file, { force: true });
    }
  }
}

/** True when `p` is `dir` or below it (both absolute, normalised). */
function isUnder(p: string, dir: string): boolean {
  const a = resolve(p);
  const d = resolve(dir);
  return a === d || a.startsWith(d.endsWith('/') ? d : `${d}/`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Resolves once `pid` has exited (polled every 2 ms), or after `maxMs`. A zombie counts as exited:
 * conmon is reparented to the host's init when it exits, which may take seconds to reap it.
 */
async function waitForPidGone(pid: number, maxMs: number): Promise<void> {
  if (!(pid > 0)) return sleep(30);
  const until = Date.now() + maxMs;
  while (Date.now() < until) {
    if (!(await pidAliveAsync(pid))) return;
    await sleep(2);
  }
}

function streamDone(s: Readable): Promise<void> {
  return new Promise((resolve) => {
    s.once('end', () => resolve());
    s.once('close', () => resolve());
    s.once('error', () => resolve());
  });
}


/** "10m", "1g", "100k" → bytes. */
export function parseSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)b?$/i.exec(s.trim());
  if (!m) throw invalidArgument(`invalid size: '${s}'`);
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.floor(Number(m[1]) * mult);
}

/** "24h", "30m", "10s" → ms. */
export function parseDurationMs(s: string): number {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(h|m|s|ms)/g;
  let m: RegExpExecArray | null;
  let any = false;
  while ((m = re.exec(s))) {
    any = true;
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3600e3 : m[2] === 'm' ? n * 60e3 : m[2] === 's' ? n * 1e3 : n;
  }
  if (!any) throw invalidArgument(`invalid duration: ${s}`);
  return total;
}

/**
 * Options that `container:<name|id>` network mode cannot take, with moby's wording
 * (runconfig.validateNetContainerMode): the joined stack has its own name, DNS and ports.
 */
function validateContainerNetMode(body: Json, hc: Json): void {
  const has = (v: unknown): boolean => (Array.isArray(v) ? v.length > 0 : v !== undefined && v !== null && v !== '' && !(typeof v === 'object' && Object.keys(v as object).length === 0));
  if (has(body['Hostname'])) throw invalidArgument('conflicting options: hostname and the network mode');
  if (has(hc['Dns'])) throw invalidArgument('conflicting options: dns and the network mode');
  if (has(hc['ExtraHosts'])) throw invalidArgument('conflicting options: custom host-to-IP mapping and the network mode');
  if (has(body['MacAddress'])) throw invalidArgument('conflicting options: mac-address and the network mode');
  if (hc['PublishAllPorts'] === true || has(hc['PortBindings'])) throw invalidArgument('conflicting options: port publishing and the container type network mode');
  if (has(body['ExposedPorts'])) throw invalidArgument('conflicting options: port exposing and the container type network mode');
}
