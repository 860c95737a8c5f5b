/**
 * Pull: resolve a reference at its registry, select the platform from an index, then fetch the
 * config and the layers in parallel (a semaphore, default 3). Each blob is streamed once through
 * the content store's DigestVerifier + size check into an ingest file and renamed into place only
 * when it verified (a mismatch stores nothing); the layer is then unpacked into its ChainID
 * directory. Blobs and layers already present are skipped; concurrent pulls of one layer share the
 * work. Progress is Docker's JSON message stream (compat notes §6).
 */
import { pipeline, Transform, type TransformCallback } from 'node:stream';

import { EngineError, invalidArgument, notFound, notImplemented } from '../base/errors.js';
import type { Json } from '../engine/services.js';
import {
  chainIds,
  familiarName,
  familiarString,
  hostArchitecture,
  MediaType,
  parseNormalizedNamed,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  type Platform,
  type Reference,
} from '../oci/index.js';
import { RegistryClient, type FetchedManifest, type RegistryCredentials } from '../registry/index.js';
import type { LocalImageService } from './local-image-service.js';
import { Channel, progressBar, Semaphore } from './progress-channel.js';

/** Options of {@link pullImage}. */
export interface PullImageOptions {
  /** `os/arch[/variant]`; default linux/<host arch>. */
  platform?: string;
  /** Decoded X-Registry-Auth (Docker AuthConfig). */
  auth?: Json;
  signal?: AbortSignal;
  /** Parallel layer downloads (default 3). */
  maxParallel?: number;
  /** Injected fetch (tests). */
  fetchFn?: typeof fetch;
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
class ProgressTap extends Transform {
  private n = 0;
  private last = 0;
  constructor(private readonly report: (n: number) => void) {
    super();
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

/** Fetch one blob into the content store (verified) unless present. */
async function fetchBlob(svc: LocalImageService, client: RegistryClient, repo: string, d: Descriptor, ctxRepo: string, signal: AbortSignal, onBytes?: (n: number) => void): Promise<boolean> {
  if (await svc.content.has(d.digest)) return false;
  await once(svc, `blob:${d.digest}`, async () => {
    if (await svc.content.has(d.digest)) return;
    const { stream } = await client.openBlob(repo, d.digest, { repo: ctxRepo }, { signal });
    let src: NodeJS.ReadableStream & import('node:stream').Readable = stream;
    if (onBytes) {
      const tap = new ProgressTap(onBytes);
      pipeline(stream, tap, () => undefined);
      src = tap;
    }
    try {
      await svc.content.ingest(src, { expected: d.digest, size: d.size, signal });
    } catch (err) {
      if (err instanceof EngineError && /mismatch/.test(err.message)) {
        throw new EngineError('invalid-argument', `filesystem layer verification failed for digest ${d.digest}: ${err.message}`, { code: 'DIGEST_MISMATCH', cause: err });
      }
      throw err;
    }
  });
  return true;
}

/** Parse JSON bytes or fail with invalid-argument. */
function parseJson<T>(b: Buffer, what: string): T {
  try {
    return JSON.parse(b.toString('utf8')) as T;
  } catch {
    throw invalidArgument(`${what} is not valid JSON`);
  }
}

/** Pull an image; yields Docker JSON progress messages. Throws before the first message on a bad ref. */
export async function* pullImage(svc: LocalImageService, refStr: string, opts: PullImageOptions = {}): AsyncGenerator<Json> {
  const ref: Reference = parseNormalizedNamed(refStr);
  const want = parsePlatformSpec(opts.platform);
  const creds = credentialsFromAuth(opts.auth);
  const client = new RegistryClient(ref.domain, { ...(creds ? { credentials: creds } : {}), ...(opts.fetchFn ? { fetchFn: opts.fetchFn } : {}) });
  const repo = ref.path;
  const shown = familiarString(ref);
  const ctx = { repo: familiarName(ref), ref: shown };
  const ac = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, ac.signal]) : ac.signal;

  const top: FetchedManifest = await client.getManifest(repo, ref.digest ?? ref.tag!, ctx, { signal });
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
  for (const l of manifest.layers) {
    if (l.mediaType === MediaType.ociLayerZstd || l.mediaType.endsWith('+zstd')) throw notImplemented('zstd-compressed layers are not supported yet');
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
        await sem.run(async () => {
          out.push({ status: 'Waiting', progressDetail: {}, id });
          const fetched = await fetchBlob(svc, client, repo, l, ctx.repo, signal, (n) =>
            out.push({ status: 'Downloading', progressDetail: { current: n, total: l.size }, progress: progressBar(n, l.size), id }),
          );
          if (fetched) out.push({ status: 'Verifying Checksum', progressDetail: {}, id });
          out.push({ status: 'Download complete', progressDetail: {}, id });
        });
        if (!svc.layers.get(chain)) {
          out.push({ status: 'Extracting', progressDetail: { current: 0, total: l.size }, progress: progressBar(0, l.size), id });
          await once(svc, `layer:${chain}`, async () => {
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
        ac.abort(err);
        throw err;
      }));
    });
    const results = await Promise.allSettled(pending);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    await svc.content.ingest(man.bytes, { expected: man.digest });
    const refs: Reference[] = [{ domain: ref.domain, path: ref.path, digest: top.digest }];
    if (ref.tag !== undefined && ref.digest === undefined) refs.push({ domain: ref.domain, path: ref.path, tag: ref.tag });
    const prevId = ref.tag !== undefined && ref.digest === undefined ? svc.idForRef({ domain: ref.domain, path: ref.path, tag: ref.tag }) : svc.idForRef(refs[0]!);
    const { id } = await svc.addImage({ config, manifest, manifestDigest: man.digest, refs, event: 'pull' });
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
