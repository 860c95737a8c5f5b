/**
 * The engine's interfaces, as seen by the HTTP edge (api/). Handlers translate wire shapes into
 * calls of these services and back; they hold no state and pick no status codes (api/errors.ts
 * maps EngineError kinds). Objects returned by inspect/list are already in the Docker Engine API
 * shape (v1.51), because that is the one shape every client of berth speaks.
 */
import type { Readable, Writable, Duplex } from 'node:stream';

/** Loosely typed Docker JSON object (the wire shape is documented in shared/docs/docker-api-compat.md). */
export type Json = Record<string, unknown>;

/** A Docker filters map, normalised from either wire shape: key → list of values. */
export type Filters = Record<string, string[]>;

export interface CreateContainerOptions {
  name?: string;
  /** The whole create body: Config fields at the top level plus HostConfig and NetworkingConfig. */
  body: Json;
  platform?: string;
  /**
   * In-daemon callers only (the builder's RUN containers): the writable layer is read once after
   * the run and then thrown away, so it is mounted `volatile` like an auto-removed container's.
   */
  scratch?: boolean;
}

export interface LogsOptions {
  follow: boolean;
  stdout: boolean;
  stderr: boolean;
  since?: number; // unix seconds (fractional)
  until?: number;
  timestamps: boolean;
  tail?: number; // undefined = all
  signal?: AbortSignal;
}

/** One chunk of container output. */
export interface OutputChunk {
  stream: 'stdout' | 'stderr';
  data: Buffer;
  /** RFC3339Nano time the runtime stamped it with. */
  time: string;
}

export interface AttachOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  /** Replay the logs first. */
  logs: boolean;
  /** Keep streaming live output. */
  stream: boolean;
  detachKeys?: string;
  signal?: AbortSignal;
}

/** An attach session: output chunks come from `output`; bytes written to `stdin` go to the process. */
export interface AttachSession {
  tty: boolean;
  output: AsyncIterable<OutputChunk>;
  /** Present when stdin was requested and the container has OpenStdin. */
  stdin?: Writable;
  close(): void;
}

export type WaitCondition = 'not-running' | 'next-exit' | 'removed';

export interface ExecCreateOptions {
  AttachStdin?: boolean;
  AttachStdout?: boolean;
  AttachStderr?: boolean;
  Tty?: boolean;
  Cmd: string[];
  Env?: string[];
  WorkingDir?: string;
  User?: string;
  Privileged?: boolean;
  DetachKeys?: string;
  ConsoleSize?: [number, number] | null;
}

export interface ContainerService {
  create(opts: CreateContainerOptions): Promise<{ Id: string; Warnings: string[] }>;
  list(opts: { all: boolean; limit?: number; size: boolean; filters: Filters }): Promise<Json[]>;
  inspect(ref: string, opts?: { size?: boolean }): Promise<Json>;
  /** Throws not-modified when already running. */
  start(ref: string): Promise<void>;
  /** Throws not-modified when already stopped. */
  stop(ref: string, opts: { timeout?: number; signal?: string }): Promise<void>;
  restart(ref: string, opts: { timeout?: number; signal?: string }): Promise<void>;
  /** Throws conflict when not running. */
  kill(ref: string, signal?: string): Promise<void>;
  remove(ref: string, opts: { force: boolean; volumes: boolean }): Promise<void>;
  /**
   * Registers the wait at once (before resolving `ready`), then resolves `result` with the exit code.
   * The HTTP edge flushes its headers after `ready`.
   */
  wait(ref: string, condition: WaitCondition, signal?: AbortSignal): Promise<{ ready: Promise<void>; result: Promise<{ StatusCode: number; Error: { Message: string } | null }> }>;
  logs(ref: string, opts: LogsOptions): Promise<{ tty: boolean; chunks: AsyncIterable<OutputChunk> }>;
  attach(ref: string, opts: AttachOptions): Promise<AttachSession>;
  resize(ref: string, h: number, w: number): Promise<void>;
  pause(ref: string): Promise<void>;
  unpause(ref: string): Promise<void>;
  rename(ref: string, newName: string): Promise<void>;
  update(ref: string, body: Json): Promise<{ Warnings: string[] }>;
  top(ref: string, psArgs?: string): Promise<{ Titles: string[]; Processes: string[][] }>;
  /** One stats sample in Docker's shape (precpu filled from the previous sample). */
  stats(ref: string, opts: { stream: boolean; oneShot: boolean; signal?: AbortSignal }): AsyncIterable<Json>;
  changes(ref: string): Promise<Array<{ Path: string; Kind: number }>>;
  export(ref: string): Promise<Readable>;
  /** Stat of a path inside the container, in the X-Docker-Container-Path-Stat shape. */
  statPath(ref: string, path: string): Promise<{ name: string; size: number; mode: number; mtime: string; linkTarget: string }>;
  getArchive(ref: string, path: string): Promise<{ stat: Json; tar: Readable }>;
  putArchive(ref: string, path: string, tar: Readable, opts: { noOverwriteDirNonDir: boolean; copyUIDGID: boolean }): Promise<void>;
  prune(filters: Filters): Promise<{ ContainersDeleted: string[]; SpaceReclaimed: number }>;
  execCreate(ref: string, opts: ExecCreateOptions): Promise<{ Id: string }>;
  /** Starts an exec. Detached: resolves with no session. Otherwise returns an attach session. */
  execStart(execId: string, opts: { Detach: boolean; Tty?: boolean; ConsoleSize?: [number, number] | null; signal?: AbortSignal }): Promise<AttachSession | undefined>;
  execResize(execId: string, h: number, w: number): Promise<void>;
  execInspect(execId: string): Promise<Json>;
}

export interface ImageListOptions {
  all: boolean;
  filters: Filters;
  digests?: boolean;
}

export interface ImportOptions {
  repo?: string;
  tag?: string;
  message?: string;
  /** Dockerfile-style changes: "CMD [\"sh\"]", "ENV A=B", … */
  changes?: string[];
  platform?: string;
  signal?: AbortSignal;
}

export interface CommitOptions {
  container: string;
  repo?: string;
  tag?: string;
  comment?: string;
  author?: string;
  pause?: boolean;
  changes?: string[];
  /** Config overrides from the request body. */
  config?: Json;
}

export interface ImageService {
  list(opts: ImageListOptions): Promise<Json[]>;
  inspect(ref: string): Promise<Json>;
  history(ref: string): Promise<Json[]>;
  tag(ref: string, repo: string, tag?: string): Promise<void>;
  remove(ref: string, opts: { force: boolean; noprune: boolean }): Promise<Json[]>;
  /** Import a rootfs tarball as a one-layer image; returns "sha256:<id>". */
  import(tar: Readable, opts: ImportOptions): Promise<string>;
  prune(filters: Filters): Promise<{ ImagesDeleted: Json[]; SpaceReclaimed: number }>;
}

export interface VolumeService {
  list(filters: Filters): Promise<{ Volumes: Json[]; Warnings: string[] | null }>;
  create(body: Json): Promise<Json>;
  inspect(name: string): Promise<Json>;
  remove(name: string, force: boolean): Promise<void>;
  prune(filters: Filters): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }>;
}

export interface SystemEvent {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  scope: 'local';
  time: number;
  timeNano: number;
  status?: string;
  id?: string;
  from?: string;
}

export interface SystemService {
  version(): Json;
  info(): Promise<Json>;
  df(): Promise<Json>;
  /** Past events in [since, until] then, when until is absent, live ones until the signal aborts. */
  events(opts: { since?: number; until?: number; filters: Filters; signal: AbortSignal }): AsyncIterable<SystemEvent>;
}

/** Options of {@link BuildService.build} (the classic builder's POST /build query, parsed). */
export interface BuildOptions {
  /** The build context: a tar stream (plain; the edge decompresses). */
  context: Readable;
  /** Dockerfile path inside the context; default "Dockerfile". */
  dockerfile?: string;
  /** Names to tag the result with (`name[:tag]`). */
  tags: string[];
  /** --build-arg values; null means "take it from the daemon's environment" (ignored). */
  buildArgs: Record<string, string | null>;
  /** --label: labels added to the final image. */
  labels: Record<string, string>;
  target?: string;
  noCache: boolean;
  /** Network mode of RUN containers ("default" = the default bridge, "host", "none", a network name). */
  networkMode?: string;
  extraHosts?: string[];
  /** Always pull FROM images (`--pull`), even when present locally. */
  pull?: boolean;
  /** Target platform (`--platform`); only the host's is accepted. */
  platform?: string;
  /** /dev/shm size of RUN containers in bytes (`--shm-size`). */
  shmSize?: number;
  /** Secrets for `RUN --mount=type=secret` by id (berth's extension; the classic API has none). */
  secrets?: ReadonlyMap<string, Buffer>;
  signal?: AbortSignal;
}

/** Image builds from Dockerfiles (classic builder protocol). */
export interface BuildService {
  /**
   * Run a build. Yields classic builder messages (`{stream}`, `{aux:{ID}}`); the last stream lines
   * are "Successfully built" / "Successfully tagged". Errors before the first step (bad Dockerfile,
   * unknown target) are thrown from the first `next()`; a failing RUN throws an EngineError whose
   * details.code is the exit code.
   */
  build(opts: BuildOptions): AsyncIterable<Json>;
  /** Drop the build cache (`builder prune`). */
  prune(opts: { all: boolean }): Promise<{ CachesDeleted: string[]; SpaceReclaimed: number }>;
}

/** Networks (Docker shapes; compat notes §5). */
export interface NetworkService {
  list(filters: Filters): Promise<Json[]>;
  inspect(ref: string): Promise<Json>;
  create(body: Json): Promise<{ Id: string; Warning: string }>;
  remove(ref: string): Promise<void>;
  prune(filters: Filters): Promise<{ NetworksDeleted: string[] }>;
  connect(ref: string, body: Json): Promise<void>;
  disconnect(ref: string, body: Json): Promise<void>;
}

/** Everything the API edge can call. */
export interface Engine {
  containers: ContainerService;
  images: ImageService;
  volumes: VolumeService;
  system: SystemService;
  /** Commit lives at the engine level because it spans containers and images. */
  commit(opts: CommitOptions): Promise<{ Id: string }>;
  /** Image builds; absent when the engine was built without a builder. */
  build?: BuildService;
  /** Networks; absent when the engine was built without network support (built-ins only). */
  networks?: NetworkService;
}

export type { Duplex };
