/**
 * Pull: resolve a reference at its registry, select the platform from an index, then fetch the
 * config and the layers in parallel (a semaphore, default 3). Each blob is streamed once through
 * digest + size verification into a private ingest file and renamed into place only when it
 * verified (a mismatch stores nothing); a layer is unpacked into its ChainID directory in the same
 * pass, in a worker thread (layer-job.ts), and an interrupted download is resumed by the next pull.
 * Blobs and layers already present are skipped; concurrent pulls of one layer share the work.
 * Progress is Docker's JSON message stream (compat notes §6).
 */
import { rm } from 'node:fs/promises';
import { PassThrough, pipeline, type Readable, Transform, type TransformCallback } from 'node:stream';

import { EngineError, invalidArgument, notFound, notImplemented } from '../base/errors.js';
import type { Json } from '../engine/services.js';
import {
  chainIds,
  familiarName,
  familiarString,
  hostArchitecture,
  isPlainLayerMediaType,
  MediaType,
  parseNormalizedNamed,
  parseReference,
  referenceString,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  type Platform,
  type Reference,
} from '../oci/index.js';
import { RegistryClient, registryError, type RegistryCredentials } from '../registry/index.js';
import { deserializeError, runLayerJob, warmLayerWorkers } from './layer-job.js';
import type { LocalImageService } from './local-image-service.js';
import { Channel, progressBar, Semaphore } from './progress-channel.js';

/** Options of {@link pullImage}. */
export interface PullImageOptions {
  /** `os/arch[/variant]`; default linux/<host arch>. */
  platform?: string;
  /** Pull every tag of the repository (`docker pull -a`); the reference must have no tag or digest. */
  allTags?: boolean;
  /** Decoded X-Registry-Auth (Docker AuthConfig). */
  auth?: Json;
  signal?: AbortSignal;
  /** Parallel layer downloads (default 3). */
  maxParallel?: number;
  /** Injected fetch (tests). */
  fetchFn?: typeof fetch;
  /** A blob transfer that receives nothing for this long fails (default 60 s). */
  idleTimeoutMs?: number;
  /** Registries (`host[:port]`) spoken to over plain HTTP besides loopback (daemon config). */
  insecureRegistries?: string[];
  /** Mirror endpoints (`https://host[:port]`) tried first for docker.io images (daemon config). */
  registryMirrors?: string[];
}

/** Turn a transport failure of a blob body into a clear error (kept as-is when already an EngineError). */
export function blobTransferError(err: unknown, digest: string, got: number, size: number): Error {
  if (err instanceof EngineError) {
    if (/size mismatch: expected/.test(err.message)) {
      return new EngineError('unavailable', `fetching blob ${digest}: unexpected EOF: transfer ended after ${got} of ${size} bytes`, { code: 'REGISTRY_TRUNCATED', cause: err });
    }
    if (/mismatch/.test(err.message)) {
      return new EngineError('invalid-argument', `filesystem layer verification failed for digest ${digest}: ${err.message}`, { code: 'DIGEST_MISMATCH', cause: err });
    }
    return err;
  }
  if ((err as Error)?.name === 'AbortError') return err as Error;
  return new EngineError('unavailable', `fetching blob ${digest}: transfer interrupted after ${got} of ${size} bytes: ${(err as Error)?.message ?? String(err)}`, { code: 'REGISTRY_TRUNCATED', cause: err });
}

/** Docker AuthConfig JSON → registry credentials. */
export function credentialsFromAuth(auth: Json | undefined): RegistryCredentials | undefined {
  if (!auth) return undefined;
  const s = (k: string): string | undefined => (typeof auth[k] === 'string' && auth[k] !== '' ? (auth[k] as string) : undefined);
  const out: RegistryCredentials = {};
  let user = s('username');
  let pass = s('password');
  const enc = s('auth');
  if (!user && enc) {
    const dec = Buffer.from(enc, 'base64').toString('utf8');
    const i = dec.indexOf(':');
    if (i > 0) {
      user = dec.slice(0, i);
      pass = dec.slice(i + 1);
    }
  }
  if (user) out.username = user;
  if (pass) out.password = pass;
  const it = s('identitytoken');
  if (it) out.identitytoken = it;
  const rt = s('registrytoken');
  if (rt) out.registrytoken = rt;
  return Object.keys(out).length ? out : undefined;
}

/** Parse `os/arch[/variant]` (default linux/<host arch>). */
export function parsePlatformSpec(p: string | undefined): Platform {
  if (!p) return { os: 'linux', architecture: hostArchitecture() };
  const [os, arch, variant] = p.toLowerCase().split('/');
  if (!os || !arch) throw invalidArgument(`invalid platform: ${p}`);
  const out: Platform = { os, architecture: arch };
  if (variant) out.variant = variant;
  return out;
}

/** Choose the manifest for a platform from an index (variant matched when asked for; arm64 defaults to v8). */
export function selectPlatform(manifests: Descriptor[], want: Platform): Descriptor | undefined {
  const cands = manifests.filter((m) => m.platform && m.platform.os === want.os && m.platform.architecture === want.architecture);
  if (want.variant) return cands.find((m) => (m.platform!.variant ?? (want.architecture === 'arm64' ? 'v8' : '')) === want.variant);
  return cands.find((m) => !m.platform!.variant || m.platform!.variant === 'v8') ?? cands[0];
}

const isIndex = (mt: string): boolean => mt === MediaType.ociIndex || mt === MediaType.dockerManifestList;

/** Counts bytes and reports them (throttled) to a callback. */
export class ProgressTap extends Transform {
  private n = 0;
  private last = 0;
  constructor(private readonly report: (n: number) => void) {
    super();
  }
  /** Bytes seen so far. */
  get count(): number {
    return this.n;
  }
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.n += chunk.length;
    const now = Date.now();
    if (now - this.last >= 100) {
      this.last = now;
      this.report(this.n);
    }
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    // the last update always goes out, so a finished transfer shows its full size
    if (this.n > 0) this.report(this.n);
    cb();
  }
}

/** Work shared between concurrent pulls of the same blob or layer, per image service. */
const inflight = new WeakMap<LocalImageService, Map<string, Promise<unknown>>>();

/** Run `fn` once per key per service; concurrent callers await the same promise. */
export function once<T>(svc: LocalImageService, key: string, fn: () => Promise<T>): Promise<T> {
  let m = inflight.get(svc);
  if (!m) inflight.set(svc, (m = new Map()));
  const have = m.get(key);
  if (have) return have as Promise<T>;
  const p = fn().finally(() => m!.delete(key));
  m.set(key, p);
  return p;
}

/** True for an error that only says the operation was cancelled (an abort, or EngineError kind cancelled). */
function isCancellation(err: unknown): boolean {
  return (err as Error)?.name === 'AbortError' || (err as { kind?: string })?.kind === 'cancelled';
}

/**
 * {@link once} for a transfer another pull may own: when the owner is cancelled (its client went
 * away, or its pull failed elsewhere) and this pull is not, this pull does the work itself.
 */
async function sharedTransfer<T>(svc: LocalImageService, key: string, signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await once(svc, key, fn);
    } catch (err) {
      if (signal.aborted || !isCancellation(err) || attempt >= 3) throw err;
    }
  }
}

/** Fetch one blob into the content store (verified) unless present. */
async function fetchBlob(svc: LocalImageService, client: RegistryClient, repo: string, d: Descriptor, ctxRepo: string, signal: AbortSignal, onBytes?: (n: number) => void): Promise<boolean> {
  if (await svc.content.has(d.digest)) return false;
  await sharedTransfer(svc, `blob:${d.digest}`, signal, async () => {
    if (await svc.content.has(d.digest)) return;
    const { stream } = await client.openBlob(repo, d.digest, { repo: ctxRepo }, { signal });
    let src: NodeJS.ReadableStream & import('node:stream').Readable = stream;
    if (onBytes) {
      const tap = new ProgressTap(onBytes);
      pipeline(stream, tap, () => undefined);
      src = tap;
    }
    const counter = new ProgressTap(() => undefined);
    pipeline(src, counter, () => undefined);
    try {
      await svc.content.ingest(counter, { expected: d.digest, size: d.size, signal });
    } catch (err) {
      throw blobTransferError(err, d.digest, counter.count, d.size);
    }
  });
  return true;
}

/**
 * One pass over a layer blob: the registry stream is teed into the content store's verified ingest
 * and into the layer unpacker at once. The layer is committed only after the blob verified (digest
 * and size) and its DiffID matched; on any failure neither the blob nor the layer is kept.
 */
async function fetchAndUnpack(svc: LocalImageService, client: RegistryClient, repo: string, d: Descriptor, ctxRepo: string, parent: string | undefined, diffId: string, signal: AbortSignal, onBytes?: (n: number) => void): Promise<void> {
  const { stream } = await client.openBlob(repo, d.digest, { repo: ctxRepo }, { signal });
  const counter = new ProgressTap(onBytes ?? (() => undefined));
  const toBlob = new PassThrough({ highWaterMark: 1 << 20 });
  const toLayer = new PassThrough({ highWaterMark: 1 << 20 });
  // pipe() to two destinations waits for both (backpressure); errors are forwarded by hand
  const fail = (err: Error): void => {
    toBlob.destroy(err);
    toLayer.destroy(err);
  };
  // errors surface through the ingest and register promises; these keep late ones from being uncaught
  toBlob.on('error', () => undefined);
  toLayer.on('error', () => undefined);
  stream.on('error', fail);
  counter.on('error', fail);
  stream.pipe(counter);
  counter.pipe(toBlob);
  counter.pipe(toLayer);
  const blobDone = svc.content.ingest(toBlob, { expected: d.digest, size: d.size, signal });
  blobDone.catch((err: Error) => {
    // stop the unpacker early on a verification or transfer failure
    toLayer.destroy(err);
    stream.destroy();
  });
  let stored = false;
  try {
    const info = await svc.layers.register(toLayer as unknown as Readable, parent, {
      signal,
      beforeCommit: async (got) => {
        await blobDone;
        stored = true;
        if (got !== diffId) {
          throw invalidArgument(`layer ${d.digest}: uncompressed content ${got} does not match the config's diff ID ${diffId}`, { code: 'DIGEST_MISMATCH' });
        }
      },
    });
    void info;
  } catch (err) {
    stream.destroy();
    toBlob.destroy();
    const blobErr = await blobDone.then(() => undefined, (e: unknown) => e);
    if (stored || !blobErr) await svc.content.delete(d.digest);
    throw blobTransferError(blobErr ?? err, d.digest, counter.count, d.size);
  }
}

/**
 * {@link fetchAndUnpack} with the whole data path in a worker thread (layer-worker.ts): the worker
 * GETs the blob, verifies digest and size, writes the blob's private ingest file and unpacks the
 * layer's temp dir in one pass; this thread then commits the blob and the layer (the layer only when
 * its DiffID matches the config). A transfer that is cut or stalls (or a cancelled pull) keeps the
 * bytes it got in that private file; the next pull of the blob asks only for the rest (`Range`),
 * re-hashing and unpacking the kept prefix first, and starts over when the registry answers 200.
 * Returns false, having kept nothing, when the registry wants authentication the client has not
 * negotiated yet (the caller then uses {@link fetchAndUnpack}).
 */
async function fetchAndUnpackInWorker(svc: LocalImageService, client: RegistryClient, repo: string, d: Descriptor, ctxRepo: string, parent: string | undefined, diffId: string, signal: AbortSignal, onBytes?: (n: number) => void, keepBlob = !isPlainLayerMediaType(d.mediaType)): Promise<boolean> {
  const target = client.blobTarget(repo, d.digest);
  // named by digest: a download cut short leaves its prefix there, and the next pull resumes it.
  // A plain tar is not written as a blob at all: the layer keeps a tar-split recipe that rebuilds
  // it from the unpacked files, so its bytes go to disk once (such a download starts over when cut).
  const blobTmp = keepBlob ? await svc.content.partialPath(d.digest) : undefined;
  let verified: { digest: string; bytes: number } | undefined;
  let stored = false;
  let unauthorized = false;
  let keepPrefix = false;
  let noRecipe: string | undefined;
  try {
    await svc.layers.registerWith(async (layerDir) => {
      const r = await runLayerJob({ ...target, digest: d.digest, size: d.size, ...(blobTmp ? { blobTmp } : {}), layerDir }, { signal, ...(onBytes ? { onBytes } : {}) });
      if (r.t === 'http') {
        if (r.status === 401) unauthorized = true;
        throw registryError(r.status, r.statusText, r.body, { repo: ctxRepo });
      }
      if (r.t === 'error') throw blobTransferError(deserializeError(r.err), d.digest, r.got, d.size);
      verified = { digest: r.digest, bytes: r.bytes };
      if (!blobTmp && !r.recipe) {
        // the tar could not be described by a recipe (it rewrites its own files, or it is
        // compressed after all): fetch it again, keeping the blob
        noRecipe = r.noRecipe ?? 'no recipe';
        throw new EngineError('cancelled', `layer ${d.digest}: ${noRecipe}`);
      }
      return { diffId: r.diffId, size: r.size, opaque: r.opaque, ...(r.recipe ? { recipe: Buffer.from(r.recipe.buffer, r.recipe.byteOffset, r.recipe.byteLength) } : {}) };
    }, parent, {
      beforeCommit: async (got) => {
        if (blobTmp) {
          await svc.content.commitIngest(blobTmp, d.digest, d.size, verified!);
          stored = true;
        } else if (got !== d.digest) {
          // a recipe rebuilds the tar whose digest is the DiffID: that must be the blob
          throw invalidArgument(`layer ${d.digest}: media type ${d.mediaType} but its content is not that tar`, { code: 'DIGEST_MISMATCH' });
        }
        if (got !== diffId) {
          throw invalidArgument(`layer ${d.digest}: uncompressed content ${got} does not match the config's diff ID ${diffId}`, { code: 'DIGEST_MISMATCH' });
        }
      },
    });
  } catch (err) {
    if (stored) await svc.content.delete(d.digest);
    if (noRecipe !== undefined && !signal.aborted) return fetchAndUnpackInWorker(svc, client, repo, d, ctxRepo, parent, diffId, signal, onBytes, true);
    if (unauthorized && !signal.aborted) return false;
    // only an interrupted transfer leaves a prefix worth resuming; bad data is never kept
    keepPrefix = !stored && (isCancellation(err) || ['REGISTRY_TRUNCATED', 'REGISTRY_STALLED'].includes((err as { code?: string })?.code ?? ''));
    throw err;
  } finally {
    if (!keepPrefix && blobTmp) await rm(blobTmp, { force: true });
  }
  // a layer committed by a concurrent twin may carry neither recipe nor blob: fetch the blob then
  if (!(await svc.content.has(d.digest))) await fetchBlob(svc, client, repo, d, ctxRepo, signal);
  return true;
}


/** Registry clients to try for a reference: the configured mirrors first (docker.io only), then the registry itself. */
export function registryClients(ref: Reference, opts: PullImageOptions & { credentials?: RegistryCredentials }): RegistryClient[] {
  const common = {
    ...(opts.credentials ? { credentials: opts.credentials } : {}),
    ...(opts.fetchFn ? { fetchFn: opts.fetchFn } : {}),
    ...(opts.idleTimeoutMs !== undefined ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
    ...(opts.insecureRegistries ? { insecureRegistries: opts.insecureRegistries } : {}),
  };
  const out: RegistryClient[] = [];
  if (ref.domain === 'docker.io') {
    for (const m of opts.registryMirrors ?? []) {
      const endpoint = /^https?:\/\//.test(m) ? m : `https://${m}`;
      // mirrors get no credentials meant for Docker Hub
      const { credentials: _c, ...rest } = common as typeof common & { credentials?: RegistryCredentials };
      void _c;
      out.push(new RegistryClient(ref.domain, { ...rest, endpoint }));
    }
  }
  out.push(new RegistryClient(ref.domain, common));
  return out;
}

/** Run `first` against each candidate client until one answers; the last client's error wins. */
async function resolveWithMirrors<T>(ref: Reference, opts: PullImageOptions & { credentials?: RegistryCredentials }, first: (c: RegistryClient) => Promise<T>): Promise<{ client: RegistryClient; manifest: T }> {
  const clients = registryClients(ref, opts);
  for (let i = 0; i < clients.length; i++) {
    try {
      return { client: clients[i]!, manifest: await first(clients[i]!) };
    } catch (err) {
      if (i === clients.length - 1 || opts.signal?.aborted) throw err;
    }
  }
  throw new Error('unreachable');
}

/** Parse JSON bytes or fail with invalid-argument. */
function parseJson<T>(b: Buffer, what: string): T {
  try {
    return JSON.parse(b.toString('utf8')) as T;
  } catch {
    throw invalidArgument(`${what} is not valid JSON`);
  }
}

/**
 * Pull an image (or with `allTags` every tag of a repository); yields Docker JSON progress messages.
 * Throws before the first message on a bad ref.
 */
export async function* pullImage(svc: LocalImageService, refStr: string, opts: PullImageOptions = {}): AsyncGenerator<Json> {
  if (!opts.allTags) {
    yield* pullOne(svc, refStr, opts);
    return;
  }
  const bare = parseReference(refStr);
  if (bare.tag !== undefined || bare.digest !== undefined) throw invalidArgument('tag can\'t be used with --all-tags/-a');
  const creds = credentialsFromAuth(opts.auth);
  const ctx = { repo: familiarName(bare) };
  const { manifest: tags } = await resolveWithMirrors(bare, { ...opts, ...(creds ? { credentials: creds } : {}) }, (c) => c.listTags(bare.path, ctx, opts.signal ? { signal: opts.signal } : {}));
  if (tags.length === 0) throw notFound(`repository ${familiarName(bare)} has no tags`);
  let newer = false;
  for (const tag of tags.sort()) {
    for await (const m of pullOne(svc, referenceString({ ...bare, tag }), opts)) {
      const st = typeof m['status'] === 'string' ? m['status'] : '';
      if (st.startsWith('Status: ')) {
        if (st.startsWith('Status: Downloaded newer')) newer = true;
        continue;
      }
      yield m;
    }
  }
  yield { status: newer ? `Status: Downloaded newer image for ${familiarName(bare)}` : `Status: Image is up to date for ${familiarName(bare)}` };
}

/** Pull one reference (tag defaults to latest). */
async function* pullOne(svc: LocalImageService, refStr: string, opts: PullImageOptions): AsyncGenerator<Json> {
  const ref: Reference = parseNormalizedNamed(refStr);
  const want = parsePlatformSpec(opts.platform);
  const creds = credentialsFromAuth(opts.auth);
  const repo = ref.path;
  const shown = familiarString(ref);
  const ctx = { repo: familiarName(ref), ref: shown };
  const ac = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, ac.signal]) : ac.signal;

  const { client, manifest: top } = await resolveWithMirrors(ref, { ...opts, ...(creds ? { credentials: creds } : {}) }, (c) => c.getManifest(repo, ref.digest ?? ref.tag!, ctx, { signal }));
  yield { status: `Pulling from ${ref.path}`, id: ref.digest ?? ref.tag };
  let man = top;
  if (isIndex(top.mediaType)) {
    const idx = parseJson<{ manifests?: Descriptor[] }>(top.bytes, 'image index');
    const pick = selectPlatform(idx.manifests ?? [], want);
    if (!pick) throw notFound(`no matching manifest for ${want.os}/${want.architecture}${want.variant ? `/${want.variant}` : ''} in the manifest list entries`);
    man = await client.getManifest(repo, pick.digest, ctx, { signal });
  }
  if (man.mediaType !== MediaType.ociManifest && man.mediaType !== MediaType.dockerManifest) {
    throw notImplemented(`unsupported manifest media type ${man.mediaType}`);
  }
  const manifest = parseJson<ImageManifest>(man.bytes, 'image manifest');
  if (!manifest.config?.digest || !Array.isArray(manifest.layers)) throw invalidArgument('image manifest has no config or layers');
  if (!opts.fetchFn) {
    // layers to fetch go to worker threads: start them now, while the config is fetched
    const missing = (await Promise.all(manifest.layers.map((l) => svc.content.has(l.digest)))).filter((h) => !h).length;
    warmLayerWorkers(Math.min(missing, opts.maxParallel ?? 3));
  }

  const out = new Channel<Json>();
  const work = svc.withLease(async () => {
    await fetchBlob(svc, client, repo, manifest.config, ctx.repo, signal);
    const config = parseJson<ImageConfig>(await svc.content.readBlob(manifest.config.digest), 'image config');
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== manifest.layers.length) throw invalidArgument(`image config has ${diffIds.length} diff IDs but the manifest ${manifest.layers.length} layers`);
    if (isIndex(top.mediaType) && (config.os !== want.os || config.architecture !== want.architecture)) {
      throw invalidArgument(`image config platform ${config.os}/${config.architecture} does not match the requested ${want.os}/${want.architecture}`);
    }
    const chains = chainIds(diffIds);
    const sem = new Semaphore(opts.maxParallel ?? 3);
    const pending: Promise<void>[] = [];
    let firstFailure: { err: unknown } | undefined;
    manifest.layers.forEach((l, i) => {
      const id = l.digest.slice(7, 19);
      const chain = chains[i]!;
      const haveLayer = !!svc.layers.get(chain);
      pending.push((async () => {
        if (haveLayer && (await svc.content.has(l.digest))) {
          out.push({ status: 'Already exists', progressDetail: {}, id });
          return;
        }
        out.push({ status: 'Pulling fs layer', progressDetail: {}, id });
        if (!haveLayer && !(await svc.content.has(l.digest))) {
          // one pass: download, verify and unpack together
          if (sem.full) out.push({ status: 'Waiting', progressDetail: {}, id });
          await sem.run(async () => {
            await sharedTransfer(svc, `blob:${l.digest}`, signal, async () => {
              if (svc.layers.get(chain) || (await svc.content.has(l.digest))) return;
              const parent = i > 0 ? chains[i - 1] : undefined;
              const onBytes = (n: number): void => {
                out.push({ status: 'Downloading', progressDetail: { current: n, total: l.size }, progress: progressBar(n, l.size), id });
              };
              // an injected fetch (tests) must see every request: then the in-thread path
              if (!opts.fetchFn && (await fetchAndUnpackInWorker(svc, client, repo, l, ctx.repo, parent, diffIds[i]!, signal, onBytes))) return;
              await fetchAndUnpack(svc, client, repo, l, ctx.repo, parent, diffIds[i]!, signal, onBytes);
            });
            // verified and unpacked in the same pass: Docker's remaining steps, in its order
            out.push({ status: 'Verifying Checksum', progressDetail: {}, id });
            out.push({ status: 'Download complete', progressDetail: {}, id });
            out.push({ status: 'Extracting', progressDetail: { current: l.size, total: l.size }, progress: progressBar(l.size, l.size), id });
          });
        }
        if ((haveLayer || !svc.layers.get(chain)) && sem.full) out.push({ status: 'Waiting', progressDetail: {}, id });
        if (haveLayer || !svc.layers.get(chain)) await sem.run(async () => {
          const fetched = await fetchBlob(svc, client, repo, l, ctx.repo, signal, (n) =>
            out.push({ status: 'Downloading', progressDetail: { current: n, total: l.size }, progress: progressBar(n, l.size), id }),
          );
          if (fetched) out.push({ status: 'Verifying Checksum', progressDetail: {}, id });
          out.push({ status: 'Download complete', progressDetail: {}, id });
        });
        if (!svc.layers.get(chain)) {
          out.push({ status: 'Extracting', progressDetail: { current: 0, total: l.size }, progress: progressBar(0, l.size), id });
          await sharedTransfer(svc, `layer:${chain}`, signal, async () => {
            if (svc.layers.get(chain)) return;
            const info = await svc.layers.register(svc.content.openBlob(l.digest), i > 0 ? chains[i - 1] : undefined, { signal });
            if (info.diffId !== diffIds[i]) {
              await svc.layers.remove(info.chainId);
              throw invalidArgument(`layer ${l.digest}: uncompressed content ${info.diffId} does not match the config's diff ID ${diffIds[i]}`, { code: 'DIGEST_MISMATCH' });
            }
          });
          out.push({ status: 'Extracting', progressDetail: { current: l.size, total: l.size }, progress: progressBar(l.size, l.size), id });
        }
        out.push({ status: 'Pull complete', progressDetail: {}, id });
      })().catch((err) => {
        // the first failure is the one reported; the other layers then fail as cancelled
        if (!ac.signal.aborted) firstFailure = { err };
        ac.abort(err);
        throw err;
      }));
    });
    const results = await Promise.allSettled(pending);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw firstFailure ? firstFailure.err : failed.reason;
    await svc.content.ingest(man.bytes, { expected: man.digest });
    const refs: Reference[] = [{ domain: ref.domain, path: ref.path, digest: top.digest }];
    if (ref.tag !== undefined && ref.digest === undefined) refs.push({ domain: ref.domain, path: ref.path, tag: ref.tag });
    const prevId = ref.tag !== undefined && ref.digest === undefined ? svc.idForRef({ domain: ref.domain, path: ref.path, tag: ref.tag }) : svc.idForRef(refs[0]!);
    const { id } = await svc.addImage({ config, manifest, manifestDigest: man.digest, refs, event: 'pull' });
    await svc.blobSources.add([manifest.config.digest, ...manifest.layers.map((l) => l.digest)], ref.domain, ref.path);
    return prevId === id;
  });
  let upToDate = false;
  work.then((u) => {
    upToDate = u;
    out.close();
  }, (err) => out.close(err));
  try {
    yield* out;
  } finally {
    if (!ac.signal.aborted) ac.abort(new EngineError('cancelled', 'pull cancelled'));
    await work.catch(() => undefined);
  }
  yield { status: `Digest: ${top.digest}` };
  yield { status: upToDate ? `Status: Image is up to date for ${shown}` : `Status: Downloaded newer image for ${shown}` };
}
