/**
 * Local images: OCI config + manifest blobs in the content store, references and records in the
 * metadata store, unpacked layers in the layer store (one dir per ChainID, shared). The image id
 * is the config digest. Implements the engine's ImageService plus what containers need
 * (resolve, commitFromUpper, setUsageChecker).
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';

import { conflict, EngineError, invalidArgument, notFound } from '../base/errors.js';
import { shortId } from '../base/ids.js';
import type { Filters, ImageListOptions, ImageService, ImportOptions, Json } from '../engine/services.js';
import {
  applyChanges,
  chainIds,
  familiarName,
  familiarString,
  hostArchitecture,
  isFullHexId,
  layerMediaTypeFromMagic,
  MediaType,
  parseReference,
  referenceString,
  repositoryName,
  withDefaultTag,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  type ImageRunConfig,
  type Reference,
} from '../oci/index.js';
import { FsContentStore, MetadataStore, type ImageRecord } from '../store/index.js';
import { encodeRecipe, packLayerFromUpper, resolveRecipe, TarSegmenter } from '../snapshot/index.js';
import { loadImages, saveImages, type LoadReport } from './archive.js';
import { clientFor, inspectDistribution, searchRegistry, type RegistryQueryOptions, type SearchOptions } from './distribution.js';
import { pullImage, type PullImageOptions } from './pull.js';
import { pushImage, type PushImageOptions } from './push.js';
import { checkFilterKeys, globMatch, matchLabels, parseBoolFilter, parseUntil } from './image-filters.js';
import { LayerStore, type LayerInfo } from './layer-store.js';
import { BlobSources } from './blob-sources.js';

/** Image event hook: Docker image actions `import`, `tag`, `untag`, `delete`. */
export type ImageEventHook = (action: string, id: string, attrs: Record<string, string>) => void;

/** Constructor options. */
export interface LocalImageServiceOptions {
  /** The data root (`<data-root>`). */
  root: string;
  onEvent?: ImageEventHook;
  /** Daemon registry settings (`insecure-registries`, `registry-mirrors` in daemon.json). */
  registry?: RegistrySettings;
}

/** Registry settings from the daemon's configuration. */
export interface RegistrySettings {
  /** `host[:port]` entries spoken to over plain HTTP. */
  insecureRegistries?: string[];
  /** Mirror endpoints tried first for docker.io images. */
  registryMirrors?: string[];
  /** daemon.json `max-concurrent-downloads`: parallel layer downloads per pull (default 3). */
  maxConcurrentDownloads?: number;
  /** daemon.json `max-concurrent-uploads`: parallel blob uploads per push (default 5). */
  maxConcurrentUploads?: number;
  /** daemon.json `registry-chunk-size` (berth): blobs larger than this are pushed in chunks of it. */
  pushChunkSize?: number;
  /** daemon.json `registry-stall-timeout` (berth, seconds): a blob transfer silent this long fails. */
  stallTimeoutMs?: number;
}

/** What a container needs from its image. */
export interface ResolvedImage {
  /** "sha256:<hex>". */
  id: string;
  /** The full OCI image config. */
  config: ImageConfig;
  /** Overlay lower dirs, lowest layer first. */
  layerDirs: string[];
  /** Per layer dir: its opaque directories ("" = its root), or undefined when not recorded. */
  layerOpaque: Array<readonly string[] | undefined>;
  /** Familiar name the image was found by (`busybox:latest`), or its first tag, or its id. */
  ref: string;
}

/** Options of {@link LocalImageService.commitFromUpper}. */
export interface CommitFromUpperOptions {
  /** The container's overlay upper dir. */
  upperDir: string;
  /** Image the container was created from ("" or undefined for none). */
  parentId?: string;
  /** The container's Docker Config (Cmd, Entrypoint, Env, …), already merged with any request overrides. */
  containerConfig: Json;
  containerId: string;
  comment?: string;
  author?: string;
  /** Dockerfile-style change lines. */
  changes?: string[];
  repo?: string;
  tag?: string;
  /** History `created_by` (the builder's "/bin/sh -c #(nop)  CMD [...]"). */
  createdBy?: string;
  /**
   * Metadata-only step (builder): add no layer and mark the history entry `empty_layer`. Ignored
   * without a parent (an image keeps at least one layer).
   */
  emptyLayer?: boolean;
  /**
   * The caller wrote `upperDir` itself (the builder's COPY layers: no overlay xattrs, no xattrs at
   * all) and gives it up: it becomes the layer's directory by a rename instead of being unpacked
   * again from the blob, and the blob's bytes are not fsynced (Docker leaves layer data unsynced
   * too; the image's metadata still is). `upperDir` is gone afterwards.
   */
  ownUpper?: boolean;
  signal?: AbortSignal;
}

interface LoadedImage {
  rec: ImageRecord;
  config: ImageConfig;
  manifest: ImageManifest;
}

const ZERO_TIME = '0001-01-01T00:00:00Z';

/** A tiny async mutex: mutations of references and records run one at a time. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

function toUnix(iso: string | undefined): number {
  const t = iso ? Date.parse(iso) : NaN;
  return Number.isNaN(t) ? 0 : Math.floor(t / 1000);
}

/** Pick the image-relevant fields of a Docker container Config. */
function runConfigFromContainer(c: Json, base: ImageRunConfig | undefined): ImageRunConfig {
  const out: ImageRunConfig = { ...(base ?? {}) };
  const arr = (v: unknown): string[] | null | undefined => (Array.isArray(v) ? v.map(String) : v === null ? null : undefined);
  const obj = <T>(v: unknown): T | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as T) : undefined);
  const cmd = arr(c.Cmd);
  if (cmd !== undefined) out.Cmd = cmd;
  const ep = arr(c.Entrypoint);
  if (ep !== undefined) out.Entrypoint = ep;
  const env = arr(c.Env);
  if (env) out.Env = env;
  if (typeof c.WorkingDir === 'string') out.WorkingDir = c.WorkingDir;
  if (typeof c.User === 'string') out.User = c.User;
  else if (typeof c.User === 'number') out.User = String(c.User);
  const labels = obj<Record<string, string>>(c.Labels);
  if (labels) out.Labels = labels;
  const ports = obj<Record<string, object>>(c.ExposedPorts);
  if (ports) out.ExposedPorts = ports;
  const vols = obj<Record<string, object>>(c.Volumes);
  if (vols) out.Volumes = vols;
  if (typeof c.StopSignal === 'string' && c.StopSignal !== '') out.StopSignal = c.StopSignal;
  const hc = obj<ImageRunConfig['Healthcheck']>(c.Healthcheck);
  if (hc) out.Healthcheck = hc;
  const onb = arr(c.OnBuild);
  if (onb !== undefined) out.OnBuild = onb;
  const shell = arr(c.Shell);
  if (shell) out.Shell = shell;
  return out;
}

/** Docker's Config object for image inspect (empty fields filled the way Docker prints them). */
function dockerConfig(c: ImageRunConfig | undefined): Json {
  const cfg = c ?? {};
  const out: Json = {
    Hostname: '',
    Domainname: '',
    User: cfg.User ?? '',
    AttachStdin: false,
    AttachStdout: false,
    AttachStderr: false,
    Tty: false,
    OpenStdin: false,
    StdinOnce: false,
    Env: cfg.Env ?? null,
    Cmd: cfg.Cmd ?? null,
    Image: '',
    Volumes: cfg.Volumes ?? null,
    WorkingDir: cfg.WorkingDir ?? '',
    Entrypoint: cfg.Entrypoint ?? null,
    OnBuild: cfg.OnBuild ?? null,
    Labels: cfg.Labels ?? null,
  };
  if (cfg.ExposedPorts) out.ExposedPorts = cfg.ExposedPorts;
  if (cfg.StopSignal) out.StopSignal = cfg.StopSignal;
  if (cfg.Healthcheck) out.Healthcheck = cfg.Healthcheck;
  if (cfg.ArgsEscaped) out.ArgsEscaped = cfg.ArgsEscaped;
  if (cfg.Shell) out.Shell = cfg.Shell;
  return out;
}

/** The local image service. Call {@link init} before use. */
export class LocalImageService implements ImageService {
  /** Blob store (exposed for pull/load/save, which write and read blobs). */
  readonly content: FsContentStore;
  /** Image records and references. */
  readonly metadata: MetadataStore;
  /** Unpacked layers. */
  readonly layers: LayerStore;
  /** Registry repositories each blob was pulled from or pushed to (cross-repository mounts). */
  readonly blobSources: BlobSources;
  private readonly onEvent: ImageEventHook | undefined;
  private readonly mutex = new Mutex();
  private readonly loaded = new Map<string, LoadedImage>();
  private usageChecker: (imageId: string) => string | undefined = () => undefined;

  constructor(opts: LocalImageServiceOptions) {
    this.content = new FsContentStore(opts.root);
    this.metadata = new MetadataStore(opts.root);
    this.layers = new LayerStore(opts.root);
    // uncompressed pulled layers keep their tar as a recipe beside the unpacked files
    this.content.virtual = this.layers;
    this.blobSources = new BlobSources(opts.root);
    this.onEvent = opts.onEvent;
    this.registry = opts.registry ?? {};
  }
  /** Daemon registry settings applied to pulls and pushes. */
  readonly registry: RegistrySettings;

  /** Reconcile the stores: drop temp/incomplete ingests and layers, and images whose data is gone. */
  async init(): Promise<void> {
    await this.content.init();
    await this.metadata.init();
    await this.layers.init();
    await this.blobSources.init();
    this.loaded.clear();
    for (const rec of this.metadata.listImages()) {
      try {
        const config = JSON.parse((await this.content.readBlob(rec.id)).toString()) as ImageConfig;
        const manifest = JSON.parse((await this.content.readBlob(rec.manifestDigest)).toString()) as ImageManifest;
        const chains = chainIds(config.rootfs.diff_ids);
        if (!chains.every((c) => this.layers.get(c))) throw new Error('missing layer');
        this.loaded.set(rec.id, { rec, config, manifest });
      } catch {
        await this.metadata.deleteImage(rec.id);
      }
    }
  }

  /** Register the function that says which container (if any) uses an image. */
  setUsageChecker(fn: (imageId: string) => string | undefined): void {
    this.usageChecker = fn;
  }

  private emit(action: string, id: string, attrs: Record<string, string>): void {
    try {
      this.onEvent?.(action, id, attrs);
    } catch {
      /* a broken listener must not break image operations */
    }
  }

  // ---- lookup ---------------------------------------------------------------------------------

  private tagsOf(id: string): Reference[] {
    return this.metadata.refsOf(id).map((r) => parseReference(r));
  }

  private repoTags(id: string): string[] {
    return this.tagsOf(id).filter((r) => r.tag !== undefined && r.digest === undefined).map(familiarString);
  }

  private repoDigests(id: string): string[] {
    return this.tagsOf(id).filter((r) => r.digest !== undefined).map((r) => `${familiarName(r)}@${r.digest}`);
  }

  /** Find an image: full id, "sha256:" id, name[:tag], name@digest, unique id prefix. */
  private lookup(ref: string): { img: LoadedImage; byName?: Reference } {
    const miss = (): never => {
      throw notFound(`No such image: ${ref}`);
    };
    if (isFullHexId(ref)) return { img: this.loaded.get(`sha256:${ref}`) ?? miss() };
    if (ref.startsWith('sha256:')) {
      const hex = ref.slice(7);
      if (isFullHexId(hex)) return { img: this.loaded.get(ref) ?? miss() };
      return { img: this.byPrefix(hex) ?? miss() };
    }
    let parsed: Reference | undefined;
    let parseErr: unknown;
    try {
      parsed = withDefaultTag(parseReference(ref));
    } catch (err) {
      parseErr = err;
    }
    if (parsed) {
      const id = this.metadata.getRef(referenceString(parsed));
      if (id && this.loaded.has(id)) return { img: this.loaded.get(id)!, byName: parsed };
      if (parsed.digest !== undefined) {
        const repo = repositoryName(parsed);
        for (const img of this.loaded.values()) {
          if (img.rec.manifestDigest === parsed.digest && this.metadata.refsOf(img.rec.id).some((r) => r.startsWith(`${repo}:`) || r.startsWith(`${repo}@`))) {
            return { img, byName: parsed };
          }
        }
      }
    }
    if (/^[0-9a-f]{1,63}$/.test(ref)) {
      const img = this.byPrefix(ref);
      if (img) return { img };
    }
    if (parseErr) throw parseErr;
    return miss();
  }

  private byPrefix(hex: string): LoadedImage | undefined {
    if (hex.length === 0) return undefined;
    const hits = [...this.loaded.values()].filter((i) => i.rec.id.startsWith(`sha256:${hex}`));
    return hits.length === 1 ? hits[0] : undefined;
  }

  /**
   * Resolve a user reference for a container. Throws not-found "No such image: <ref>".
   * Resolution order: full id, "sha256:" id, name[:tag], name@digest, unique id prefix.
   */
  async resolve(ref: string): Promise<ResolvedImage> {
    const { img, byName } = this.lookup(ref);
    const chains = chainIds(img.config.rootfs.diff_ids);
    const display = byName ? familiarString(byName) : (this.repoTags(img.rec.id)[0] ?? img.rec.id);
    return { id: img.rec.id, config: structuredClone(img.config), layerDirs: chains.map((c) => this.layers.diffDir(c)), layerOpaque: chains.map((c) => this.layers.get(c)?.opaque), ref: display };
  }

  /** A local image's record, config and manifest (for push and save). Throws "No such image". */
  findImage(ref: string): { id: string; manifestDigest: string; config: ImageConfig; manifest: ImageManifest; refs: Reference[] } {
    const { img } = this.lookup(ref);
    return { id: img.rec.id, manifestDigest: img.rec.manifestDigest, config: img.config, manifest: img.manifest, refs: this.tagsOf(img.rec.id) };
  }

  /** The image id a full reference points at, if that image is loaded. */
  idForRef(ref: Reference): string | undefined {
    const id = this.metadata.getRef(referenceString(ref));
    return id && this.loaded.has(id) ? id : undefined;
  }

  /**
   * Register an image whose config, manifest and layer blobs are already in the content store and
   * whose layers are unpacked (pull, load). Points `refs` at it (moving them from other images).
   * Returns the id and whether an image with that id already existed.
   */
  async addImage(opts: { config: ImageConfig; manifest: ImageManifest; manifestDigest: string; refs: Reference[]; event?: string }): Promise<{ id: string; existed: boolean }> {
    const id = opts.manifest.config.digest;
    const chains = chainIds(opts.config.rootfs.diff_ids);
    for (const c of chains) if (!this.layers.get(c)) throw notFound(`layer ${c} is not unpacked`);
    const size = chains.reduce((n, c) => n + (this.layers.get(c)?.size ?? 0), 0);
    let existed = false;
    await this.mutex.run(async () => {
      const prev = this.loaded.get(id);
      existed = !!prev;
      const rec: ImageRecord = prev ? { ...prev.rec, manifestDigest: opts.manifestDigest } : { id, manifestDigest: opts.manifestDigest, size };
      if (opts.refs.some((r) => r.tag !== undefined && r.digest === undefined)) rec.lastTagTime = new Date().toISOString();
      await this.metadata.putImage(rec);
      this.loaded.set(id, { rec, config: opts.config, manifest: opts.manifest });
      for (const r of opts.refs) await this.metadata.setRef(referenceString(r), id);
    });
    const first = opts.refs[0];
    // Docker's pull event names the reference (`busybox:latest`, name `busybox`); load/import name the image id.
    if (opts.event === 'pull' && first) this.emit('pull', familiarString(first), { name: familiarName(first) });
    else if (opts.event) this.emit(opts.event, id, first ? { name: familiarString(first) } : {});
    return { id, existed };
  }

  /** Point one more reference (e.g. a RepoDigest after push) at an image. */
  async addRef(ref: Reference, id: string): Promise<void> {
    await this.mutex.run(async () => {
      await this.metadata.setRef(referenceString(ref), id);
    });
  }

  /** Blobs are garbage-collected only when no pull/load is writing (they hold this lease count). */
  private leases = 0;
  /** A collection was skipped because a lease was held; it runs when the last lease ends. */
  private gcPending = false;

  /**
   * Run fn while garbage collection is held off (pull/load/commit write blobs and layers before
   * the image that references them exists). A collection asked for meanwhile (rmi, image prune)
   * runs when the last lease ends.
   */
  async withLease<T>(fn: () => Promise<T>): Promise<T> {
    this.leases++;
    try {
      return await fn();
    } finally {
      this.leases--;
      if (this.leases === 0 && this.gcPending) {
        await this.mutex.run(() => this.collectGarbage()).catch(() => undefined);
      }
    }
  }

  // ---- registry and archives (issue 3) ----------------------------------------------------------

  /** Pull from a registry: Docker JSON progress messages (POST /images/create). */
  pull(ref: string, opts: PullImageOptions = {}): AsyncIterable<Json> {
    const r = this.registry;
    return pullImage(this, ref, {
      ...(r.insecureRegistries ? { insecureRegistries: r.insecureRegistries } : {}),
      ...(r.registryMirrors ? { registryMirrors: r.registryMirrors } : {}),
      ...(r.maxConcurrentDownloads ? { maxParallel: r.maxConcurrentDownloads } : {}),
      ...(r.stallTimeoutMs ? { idleTimeoutMs: r.stallTimeoutMs } : {}),
      ...opts,
    });
  }

  /** Push `name[:tag]` to its registry: Docker JSON progress messages (POST /images/{name}/push). */
  push(name: string, opts: PushImageOptions = {}): AsyncIterable<Json> {
    const r = this.registry;
    const it = pushImage(this, name, {
      ...(r.insecureRegistries ? { insecureRegistries: r.insecureRegistries } : {}),
      ...(r.maxConcurrentUploads ? { maxParallel: r.maxConcurrentUploads } : {}),
      ...(r.pushChunkSize ? { chunkSize: r.pushChunkSize } : {}),
      ...opts,
    });
    const self = this;
    return (async function* (): AsyncGenerator<Json> {
      let failed = false;
      for await (const m of it) {
        if (m['error'] !== undefined) failed = true;
        yield m;
      }
      if (failed) return;
      // Docker's push event: the pushed reference and its repository name.
      const ref = withDefaultTag(parseReference(opts.tag ? `${name}:${opts.tag}` : name));
      self.emit('push', familiarString(ref), { name: familiarName(ref) });
    })();
  }

  /** The registry's descriptor and platforms for a reference (GET /distribution/{name}/json). */
  distributionInspect(ref: string, opts: RegistryQueryOptions = {}): Promise<Json> {
    return inspectDistribution(ref, { ...(this.registry.insecureRegistries ? { insecureRegistries: this.registry.insecureRegistries } : {}), ...opts });
  }

  /** Search a registry's v1 search API (GET /images/search). */
  search(term: string, opts: SearchOptions = {}): Promise<Json[]> {
    return searchRegistry(term, { ...(this.registry.insecureRegistries ? { insecureRegistries: this.registry.insecureRegistries } : {}), ...opts });
  }

  /** `docker save` tar stream of the given images (GET /images/get). */
  save(names: string[], opts: { signal?: AbortSignal; format?: 'docker' | 'oci' } = {}): Readable {
    const tar = saveImages(this, names, opts);
    // Docker's save event, one per image, once the archive is complete.
    tar.once('end', () => {
      for (const n of names) {
        try {
          this.emit('save', this.lookup(n).img.rec.id, { name: n });
        } catch {
          /* removed meanwhile */
        }
      }
    });
    return tar;
  }

  /** Load a `docker save` / OCI layout tar (POST /images/load). */
  load(tar: Readable, opts: { signal?: AbortSignal } = {}): Promise<LoadReport> {
    return loadImages(this, tar, opts).catch((e: unknown) => {
      throw tarInputError(e);
    });
  }

  /** Check credentials against a registry (POST /auth). Throws unauthenticated when refused. */
  async login(auth: Json, opts: { signal?: AbortSignal; fetchFn?: typeof fetch } = {}): Promise<{ Status: string; IdentityToken: string }> {
    const server = typeof auth.serveraddress === 'string' && auth.serveraddress !== '' ? auth.serveraddress : 'docker.io';
    const domain = server.replace(/^https?:\/\//, '').replace(/\/.*$/, '').replace(/^index\.docker\.io$|^registry-1\.docker\.io$/, 'docker.io');
    // a registry listed in insecure-registries is logged in to over plain HTTP, as pulls and pushes are
    const client = clientFor(domain, { auth, ...(this.registry.insecureRegistries ? { insecureRegistries: this.registry.insecureRegistries } : {}), ...(opts.fetchFn ? { fetchFn: opts.fetchFn } : {}) });
    await client.ping(opts.signal ? { signal: opts.signal } : {});
    return { Status: 'Login Succeeded', IdentityToken: '' };
  }

  // ---- ImageService ---------------------------------------------------------------------------

  async list(opts: ImageListOptions): Promise<Json[]> {
    const f = opts.filters ?? {};
    checkFilterKeys(f, ['reference', 'dangling', 'label', 'before', 'since', 'until']);
    const dangling = f.dangling?.length ? parseBoolFilter('dangling', f.dangling[f.dangling.length - 1]!) : undefined;
    const before = f.before?.length ? toUnix(this.lookup(f.before[0]!).img.config.created) : undefined;
    const since = f.since?.length ? toUnix(this.lookup(f.since[0]!).img.config.created) : undefined;
    const until = f.until?.length ? parseUntil(f.until[0]!) : undefined;
    const parents = new Set([...this.loaded.values()].map((i) => i.rec.parent).filter((p): p is string => !!p));
    const out: Json[] = [];
    for (const img of this.loaded.values()) {
      const id = img.rec.id;
      const refs = this.tagsOf(id);
      const tags = this.repoTags(id);
      const created = toUnix(img.config.created);
      if (dangling === true && tags.length > 0) continue;
      if (dangling === false && tags.length === 0) continue;
      if (!opts.all && tags.length === 0 && parents.has(id) && dangling === undefined) continue;
      if (f.label?.length && !matchLabels(img.config.config?.Labels, f.label)) continue;
      if (before !== undefined && !(created < before)) continue;
      if (since !== undefined && !(created > since)) continue;
      if (until !== undefined && !(created * 1000 < until)) continue;
      if (f.reference?.length) {
        const ok = f.reference.some((pat) => refs.some((r) => matchReference(pat, r)));
        if (!ok) continue;
      }
      out.push({
        Id: id,
        ParentId: img.rec.parent ?? '',
        RepoTags: tags,
        RepoDigests: this.repoDigests(id),
        Created: created,
        Size: img.rec.size,
        SharedSize: -1,
        VirtualSize: img.rec.size,
        Labels: img.config.config?.Labels ?? {},
        Containers: -1,
      });
    }
    out.sort((a, b) => (b.Created as number) - (a.Created as number) || String(a.Id).localeCompare(String(b.Id)));
    return out;
  }

  /**
   * Image disk usage for `GET /system/df`: every image (dangling ones too) with its size and the
   * part of it shared with other images (`SharedSize`), and `LayersSize`, the bytes of all
   * unpacked layers counted once. `containersOf(id)` gives the number of containers per image.
   */
  diskUsage(containersOf: (imageId: string) => number): { LayersSize: number; Images: Json[] } {
    const users = new Map<string, number>();
    const chainsOf = new Map<string, string[]>();
    for (const img of this.loaded.values()) {
      const chains = chainIds(img.config.rootfs.diff_ids);
      chainsOf.set(img.rec.id, chains);
      for (const c of new Set(chains)) users.set(c, (users.get(c) ?? 0) + 1);
    }
    const size = (c: string): number => this.layers.get(c)?.size ?? 0;
    const images: Json[] = [];
    for (const img of this.loaded.values()) {
      const chains = [...new Set(chainsOf.get(img.rec.id) ?? [])];
      images.push({
        Id: img.rec.id,
        ParentId: img.rec.parent ?? '',
        RepoTags: this.repoTags(img.rec.id),
        RepoDigests: this.repoDigests(img.rec.id),
        Created: toUnix(img.config.created),
        Size: img.rec.size,
        SharedSize: chains.filter((c) => (users.get(c) ?? 0) > 1).reduce((a, c) => a + size(c), 0),
        VirtualSize: img.rec.size,
        Labels: img.config.config?.Labels ?? {},
        Containers: containersOf(img.rec.id),
      });
    }
    images.sort((a, b) => (b['Created'] as number) - (a['Created'] as number) || String(a['Id']).localeCompare(String(b['Id'])));
    return { LayersSize: this.layers.list().reduce((a, l) => a + l.size, 0), Images: images };
  }

  async inspect(ref: string): Promise<Json> {
    const { img } = this.lookup(ref);
    const id = img.rec.id;
    const dirs = chainIds(img.config.rootfs.diff_ids).map((c) => this.layers.diffDir(c));
    const data: Record<string, string> = {};
    if (dirs.length > 0) {
      data.UpperDir = dirs[dirs.length - 1]!;
      if (dirs.length > 1) data.LowerDir = dirs.slice(0, -1).reverse().join(':');
    }
    const out: Json = {
      Id: id,
      RepoTags: this.repoTags(id),
      RepoDigests: this.repoDigests(id),
      Parent: img.rec.parent ?? '',
      Comment: img.config.comment ?? img.config.history?.at(-1)?.comment ?? '',
      Created: img.config.created ?? ZERO_TIME,
      DockerVersion: img.config.docker_version ?? '',
      Author: img.config.author ?? '',
      Config: dockerConfig(img.config.config),
      Architecture: img.config.architecture,
      Os: img.config.os,
      Size: img.rec.size,
      RootFS: { Type: 'layers', Layers: [...img.config.rootfs.diff_ids] },
      GraphDriver: { Name: 'overlay2', Data: data },
      Metadata: { LastTagTime: img.rec.lastTagTime ?? ZERO_TIME },
    };
    if (img.config.variant) out.Variant = img.config.variant;
    if (img.config.container) out.Container = img.config.container;
    return out;
  }

  async history(ref: string): Promise<Json[]> {
    const { img } = this.lookup(ref);
    // ids/tags are known for this image and every local parent: map history length → image
    const known = new Map<number, string>();
    for (let cur: LoadedImage | undefined = img, n = 0; cur && n < 1000; n++) {
      known.set((cur.config.history ?? []).length, cur.rec.id);
      cur = cur.rec.parent ? this.loaded.get(cur.rec.parent) : undefined;
    }
    const chains = chainIds(img.config.rootfs.diff_ids);
    const history = img.config.history ?? [];
    let layer = 0;
    const rows: Json[] = [];
    history.forEach((h, i) => {
      let size = 0;
      if (!h.empty_layer) {
        const c = chains[layer++];
        size = c ? (this.layers.get(c)?.size ?? 0) : 0;
      }
      const id = known.get(i + 1);
      const tags = id ? this.repoTags(id) : [];
      rows.push({
        Id: id ?? '<missing>',
        Created: toUnix(h.created),
        CreatedBy: h.created_by ?? '',
        Tags: tags.length ? tags : null,
        Size: size,
        Comment: h.comment ?? '',
      });
    });
    if (rows.length === 0) {
      rows.push({ Id: img.rec.id, Created: toUnix(img.config.created), CreatedBy: '', Tags: this.repoTags(img.rec.id), Size: img.rec.size, Comment: '' });
    }
    return rows.reverse();
  }

  async tag(ref: string, repo: string, tag?: string): Promise<void> {
    const { img } = this.lookup(ref);
    const target = this.parseTagTarget(repo, tag);
    await this.mutex.run(async () => {
      await this.metadata.setRef(referenceString(target), img.rec.id);
      img.rec.lastTagTime = new Date().toISOString();
      await this.metadata.putImage(img.rec);
    });
    this.emit('tag', img.rec.id, { name: familiarString(target) });
  }

  /** Validate `repo[:tag]` for tag/import/commit. */
  private parseTagTarget(repo: string, tag?: string): Reference {
    if (isFullHexId(repo)) throw invalidArgument('refusing to create an ambiguous tag using digest algorithm as name');
    let r = parseReference(repo);
    if (r.digest !== undefined) throw invalidArgument('refusing to create a tag with a digest reference');
    if (tag) {
      r = parseReference(`${referenceString({ domain: r.domain, path: r.path })}:${tag}`);
    }
    return withDefaultTag(r);
  }

  async remove(ref: string, opts: { force: boolean; noprune: boolean }): Promise<Json[]> {
    return this.mutex.run(async () => {
      const { img, byName } = this.lookup(ref);
      const id = img.rec.id;
      const report: Json[] = [];
      const user = this.usageChecker(id);
      const byId = !byName;
      if (!byId) {
        const full = referenceString(byName);
        const allRefs = this.metadata.refsOf(id);
        const sameRepoDigest = (r: string): boolean => byName.digest === undefined && r.startsWith(`${repositoryName(byName)}@`);
        const isLast = allRefs.filter((r) => r !== full && !sameRepoDigest(r)).length === 0;
        if (isLast && user && !opts.force) {
          throw conflict(`conflict: unable to remove repository reference "${ref}" (must force) - container ${shortId(user)} is using its referenced image ${shortId(id)}`);
        }
        await this.metadata.deleteRef(full);
        report.push({ Untagged: familiarString(byName) });
        this.emit('untag', id, { name: familiarString(byName) });
        if (byName.digest === undefined) {
          // moby: when a removed tag leaves only digest references of the same repository, they go too
          const repo = repositoryName(byName);
          const left = this.tagsOf(id).filter((r) => repositoryName(r) === repo);
          if (left.length > 0 && left.every((r) => r.digest !== undefined)) {
            for (const r of left) {
              await this.metadata.deleteRef(referenceString(r));
              const name = `${familiarName(r)}@${r.digest}`;
              report.push({ Untagged: name });
              this.emit('untag', id, { name });
            }
          }
        }
        if (this.metadata.refsOf(id).length > 0) return report;
        // last reference: delete the image too when nobody uses it (a forced removal keeps a used
        // image, untagged) and no image is built on it
        if (user || this.hasChildren(id)) return report;
      } else {
        const refs = this.tagsOf(id);
        const repos = new Set(refs.map(repositoryName));
        if (repos.size > 1 && !opts.force) {
          throw conflict(`conflict: unable to delete ${shortId(id)} (must be forced) - image is referenced in multiple repositories`);
        }
        if (this.hasChildren(id)) {
          throw conflict(`conflict: unable to delete ${shortId(id)} (cannot be forced) - image has dependent child images`);
        }
        if (user && !opts.force) {
          throw conflict(`conflict: unable to delete ${shortId(id)} (must be forced) - image is being used by stopped container ${shortId(user)}`);
        }
        for (const r of refs) {
          await this.metadata.deleteRef(referenceString(r));
          const name = r.digest !== undefined ? `${familiarName(r)}@${r.digest}` : familiarString(r);
          report.push({ Untagged: name });
          this.emit('untag', id, { name });
        }
        // forced removal of a used image: untag only; its layers stay for the container
        if (user) return report;
      }
      await this.deleteImageAndParents(id, !opts.noprune, report);
      return report;
    });
  }

  private blobInUse(digest: string): boolean {
    for (const i of this.loaded.values()) {
      if (i.rec.id === digest || i.rec.manifestDigest === digest || i.manifest.layers.some((l) => l.digest === digest)) return true;
    }
    return false;
  }

  private hasChildren(id: string): boolean {
    for (const i of this.loaded.values()) if (i.rec.parent === id) return true;
    return false;
  }

  /** Delete an untagged, unused image, then (prune) its untagged childless parents. Then GC. */
  private async deleteImageAndParents(id: string, prune: boolean, report: Json[]): Promise<number> {
    let cur: string | undefined = id;
    while (cur) {
      const img = this.loaded.get(cur);
      if (!img) break;
      const parent = img.rec.parent;
      await this.metadata.deleteImage(cur);
      this.loaded.delete(cur);
      report.push({ Deleted: cur });
      this.emit('delete', cur, {});
      if (!prune || !parent) break;
      const p = this.loaded.get(parent);
      if (!p || this.metadata.refsOf(parent).length > 0 || this.usageChecker(parent)) break;
      if ([...this.loaded.values()].some((i) => i.rec.parent === parent)) break;
      cur = parent;
    }
    return this.collectGarbage(report);
  }

  /** Remove layers and blobs no image references; returns bytes of layers removed. */
  private async collectGarbage(report?: Json[]): Promise<number> {
    if (this.leases > 0) {
      // a pull/load is writing blobs and layers not yet referenced: collect when it ends
      this.gcPending = true;
      return 0;
    }
    this.gcPending = false;
    const liveChains = new Set<string>();
    const liveBlobs = new Set<string>();
    for (const img of this.loaded.values()) {
      for (const c of chainIds(img.config.rootfs.diff_ids)) liveChains.add(c);
      liveBlobs.add(img.rec.id);
      liveBlobs.add(img.rec.manifestDigest);
      for (const l of img.manifest.layers) liveBlobs.add(l.digest);
    }
    let reclaimed = 0;
    // a layer that keeps a live blob as its tar-split recipe stays while that blob has no other
    // holder (an image may use the same tar at another place in its chain)
    const recipeLive = new Set(this.layers.list().filter((l) => l.tarSplit && liveChains.has(l.chainId)).map((l) => l.tarSplit!.digest));
    for (const l of this.layers.list()) {
      if (liveChains.has(l.chainId)) continue;
      if (l.tarSplit && liveBlobs.has(l.tarSplit.digest) && !recipeLive.has(l.tarSplit.digest) && !(await this.content.hasFile(l.tarSplit.digest))) {
        recipeLive.add(l.tarSplit.digest);
        continue;
      }
      reclaimed += l.size;
      await this.layers.remove(l.chainId);
      report?.push({ Deleted: l.chainId });
    }
    for (const d of await this.content.list()) if (!liveBlobs.has(d)) await this.content.delete(d);
    await this.blobSources.retain((d) => liveBlobs.has(d));
    return reclaimed;
  }

  async import(tar: Readable, opts: ImportOptions): Promise<string> {
    // the layer and blob exist before the image that references them: hold garbage collection off
    return this.withLease(() => this.importUnleased(tar, opts));
  }

  private async importUnleased(tar: Readable, opts: ImportOptions): Promise<string> {
    const platform = parsePlatform(opts.platform);
    let target: Reference | undefined;
    if (opts.repo) target = this.parseTagTarget(opts.repo, opts.tag);
    const runConfig = applyChanges({}, opts.changes ?? []);
    const blob = await this.content.ingest(tar, opts.signal ? { signal: opts.signal } : {});
    let layer;
    try {
      layer = await this.layers.register(this.content.openBlob(blob.digest), undefined, opts.signal ? { signal: opts.signal } : {});
    } catch (err) {
      if (!this.blobInUse(blob.digest)) await this.content.delete(blob.digest);
      throw tarInputError(err);
    }
    const created = new Date().toISOString();
    const comment = opts.message || 'Imported from -';
    const config: ImageConfig = {
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant ? { variant: platform.variant } : {}),
      created,
      config: runConfig,
      rootfs: { type: 'layers', diff_ids: [layer.diffId] },
      history: [{ created, comment }],
      comment: opts.message ?? '',
    };
    const mediaType = layerMediaTypeFromMagic(await this.content.head(blob.digest));
    const id = await this.storeImage(config, [{ mediaType, digest: blob.digest, size: blob.size }], undefined, target);
    this.emit('import', id, target ? { name: familiarString(target) } : {});
    if (target) this.emit('tag', id, { name: familiarString(target) });
    return id;
  }

  /** Write config + manifest blobs, the record, and the tag (if any). Returns the image id. */
  private async storeImage(config: ImageConfig, layerDescs: Descriptor[], parent: string | undefined, target: Reference | undefined): Promise<string> {
    const configBytes = Buffer.from(JSON.stringify(config));
    const cfg = await this.content.ingest(configBytes);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: cfg.digest, size: cfg.size },
      layers: layerDescs,
    };
    const man = await this.content.ingest(Buffer.from(JSON.stringify(manifest)));
    const chains = chainIds(config.rootfs.diff_ids);
    const size = chains.reduce((n, c) => n + (this.layers.get(c)?.size ?? 0), 0);
    const id = cfg.digest;
    await this.mutex.run(async () => {
      const rec: ImageRecord = { id, manifestDigest: man.digest, size, ...(parent ? { parent } : {}) };
      if (target) rec.lastTagTime = new Date().toISOString();
      await this.metadata.putImage(rec);
      this.loaded.set(id, { rec, config, manifest });
      if (target) await this.metadata.setRef(referenceString(target), id);
    });
    return id;
  }

  async prune(filters: Filters): Promise<{ ImagesDeleted: Json[]; SpaceReclaimed: number }> {
    const f = filters ?? {};
    checkFilterKeys(f, ['dangling', 'label', 'label!', 'until']);
    const danglingOnly = f.dangling?.length ? parseBoolFilter('dangling', f.dangling[f.dangling.length - 1]!) : true;
    const until = f.until?.length ? parseUntil(f.until[0]!) : undefined;
    return this.mutex.run(async () => {
      const report: Json[] = [];
      let reclaimed = 0;
      for (let changed = true; changed; ) {
        changed = false;
        for (const img of [...this.loaded.values()]) {
          const id = img.rec.id;
          if (!this.loaded.has(id)) continue;
          const refs = this.tagsOf(id);
          if (danglingOnly && refs.length > 0) continue;
          if (this.usageChecker(id)) continue;
          if ([...this.loaded.values()].some((i) => i.rec.parent === id)) continue;
          if (f.label?.length && !matchLabels(img.config.config?.Labels, f.label)) continue;
          if (f['label!']?.length && f['label!'].some((l) => matchLabels(img.config.config?.Labels, [l]))) continue;
          if (until !== undefined && !(Date.parse(img.config.created ?? '') < until)) continue;
          for (const r of refs) {
            await this.metadata.deleteRef(referenceString(r));
            report.push({ Untagged: familiarString(r) });
            this.emit('untag', id, { name: familiarString(r) });
          }
          reclaimed += await this.deleteImageAndParents(id, false, report);
          changed = danglingOnly; // a deleted child can make its untagged parent prunable
        }
      }
      return { ImagesDeleted: report, SpaceReclaimed: reclaimed };
    });
  }

  // ---- commit ---------------------------------------------------------------------------------

  /**
   * Make an image from a container's overlay upper dir: the parent's layers plus one new layer
   * (recorded even when empty, like Docker), the container's config with `changes` applied, and a
   * history entry with the comment and author. Tags it when `repo` is given. Returns the id.
   */
  async commitFromUpper(opts: CommitFromUpperOptions): Promise<string> {
    // the new layer and blobs exist before the image that references them (a build commits steps
    // while a prune may run): hold garbage collection off until the image is recorded
    return this.withLease(() => this.commitFromUpperUnleased(opts));
  }

  private async commitFromUpperUnleased(opts: CommitFromUpperOptions): Promise<string> {
    const parent = opts.parentId ? this.lookup(opts.parentId).img : undefined;
    const target = opts.repo ? this.parseTagTarget(opts.repo, opts.tag) : undefined;
    const base = parent ? structuredClone(parent.config) : undefined;
    const runConfig = applyChanges(runConfigFromContainer(opts.containerConfig, base?.config), opts.changes ?? []);
    const parentDiffs = base?.rootfs.diff_ids ?? [];
    const parentChain = chainIds(parentDiffs).at(-1);
    const sig = opts.signal ? { signal: opts.signal } : {};
    const empty = Boolean(opts.emptyLayer && parent && parentDiffs.length > 0);
    let blob: { digest: string; size: number } | undefined;
    let layer: LayerInfo | undefined;
    if (!empty && opts.ownUpper) {
      // one pass over the tree: the tar is hashed (digest = DiffID: local layers stay uncompressed)
      // and recorded as a tar-split recipe, and the tree itself becomes the layer, so the layer's
      // bytes are on disk once (the blob is rebuilt from the recipe for push and save)
      const stats = { fileBytes: 0 };
      const contents: Array<{ path: string; size: number }> = [];
      const seg = new TarSegmenter();
      const hash = createHash('sha256');
      for await (const c of packLayerFromUpper(opts.upperDir, { xattrs: false, stats, onContent: (path, size) => contents.push({ path, size }) })) {
        opts.signal?.throwIfAborted();
        hash.update(c as Buffer);
        seg.push(c as Buffer);
      }
      seg.end();
      const digest = `sha256:${hash.digest('hex')}`;
      const parts = resolveRecipe(seg, contents);
      const adopted = parts ? await this.layers.adopt(opts.upperDir, digest, parentChain, stats.fileBytes, [], encodeRecipe(parts)) : undefined;
      if (adopted && (await this.content.has(digest))) {
        layer = adopted;
        blob = { digest, size: seg.total };
      } else {
        // no recipe (the tree changed while it was packed), another file system, or a twin layer
        // that has neither recipe nor blob: the tar is stored as a blob after all
        const again = { fileBytes: 0 };
        blob = await this.content.ingest(packLayerFromUpper(opts.upperDir, { xattrs: false, stats: again }), { ...sig, sync: false, ...(adopted ? { expected: digest } : {}) });
        layer = adopted ?? (await this.layers.adopt(opts.upperDir, blob.digest, parentChain, again.fileBytes, []));
      }
    } else if (!empty) {
      blob = await this.content.ingest(packLayerFromUpper(opts.upperDir), sig);
    }
    if (blob && !layer) layer = await this.layers.register(this.content.openBlob(blob.digest), parentChain, sig);
    const created = new Date().toISOString();
    const history = [...(base?.history ?? [])];
    history.push({
      created,
      ...(opts.author ? { author: opts.author } : {}),
      ...(opts.createdBy ? { created_by: opts.createdBy } : {}),
      ...(opts.comment ? { comment: opts.comment } : {}),
      ...(empty ? { empty_layer: true } : {}),
    });
    const platformBase = base ?? { architecture: hostArchitecture(), os: 'linux' };
    const config: ImageConfig = {
      architecture: platformBase.architecture,
      os: platformBase.os,
      ...(base?.variant ? { variant: base.variant } : {}),
      created,
      config: runConfig,
      rootfs: { type: 'layers', diff_ids: layer ? [...parentDiffs, layer.diffId] : [...parentDiffs] },
      history,
      container: opts.containerId,
      ...(opts.author ? { author: opts.author } : {}),
      ...(opts.comment ? { comment: opts.comment } : {}),
      docker_version: '',
    };
    const layers: Descriptor[] = [...(parent?.manifest.layers ?? []), ...(blob ? [{ mediaType: MediaType.ociLayer, digest: blob.digest, size: blob.size }] : [])];
    const id = await this.storeImage(config, layers, parent?.rec.id, target);
    if (target) this.emit('tag', id, { name: familiarString(target) });
    return id;
  }
}

/** `reference` filter: a glob against the familiar name (pattern without tag) or name:tag. */
function matchReference(pattern: string, r: Reference): boolean {
  if (r.tag === undefined) return false;
  const lastSlash = pattern.lastIndexOf('/');
  const hasTag = pattern.lastIndexOf(':') > lastSlash;
  const name = familiarName(r);
  if (hasTag) return globMatch(pattern, `${name}:${r.tag}`) || globMatch(pattern, referenceString(r));
  return globMatch(pattern, name) || globMatch(pattern, repositoryName(r));
}

/** Parse an import platform ("linux", "linux/arm64", "linux/arm/v7"); only linux is accepted. */
function parsePlatform(p: string | undefined): { os: string; architecture: string; variant?: string } {
  if (!p) return { os: 'linux', architecture: hostArchitecture() };
  const [os, arch, variant] = p.toLowerCase().split('/');
  if (os !== 'linux') throw invalidArgument(`"${os}": unknown operating system or architecture: invalid argument`);
  const out: { os: string; architecture: string; variant?: string } = { os, architecture: arch || hostArchitecture() };
  if (variant) out.variant = variant;
  return out;
}

/**
 * A client's archive that is not a tar (tar-stream's parse errors) is bad input, not a daemon fault:
 * classify it as invalid-argument where it enters, so the client sees the reason.
 */
function tarInputError(err: unknown): unknown {
  if (err instanceof EngineError || !(err instanceof Error)) return err;
  if (/^(Unexpected end of data|Invalid tar header)/.test(err.message)) return invalidArgument(`invalid tar archive: ${err.message}`, { cause: err });
  return err;
}
