/**
 * Push: upload the blobs of a local image that the registry lacks (HEAD first, monolithic upload),
 * then PUT the stored manifest bytes by tag, so the pushed image keeps its manifest digest and
 * pulls back byte-identical. Progress is Docker's JSON message stream.
 */
import { EngineError, invalidArgument } from '../base/errors.js';
import type { Json } from '../engine/services.js';
import { familiarName, MediaType, parseReference, repositoryName, type Descriptor, type Reference } from '../oci/index.js';
import { RegistryClient } from '../registry/index.js';
import type { LocalImageService } from './local-image-service.js';
import { Channel, progressBar, Semaphore } from './progress-channel.js';
import { credentialsFromAuth } from './pull.js';

/** Options of {@link pushImage}. */
export interface PushImageOptions {
  /** Tag to push (all local tags of the repository when absent, like docker push -a). */
  tag?: string;
  auth?: Json;
  signal?: AbortSignal;
  maxParallel?: number;
  fetchFn?: typeof fetch;
  /** Registries (`host[:port]`) spoken to over plain HTTP besides loopback (daemon config). */
  insecureRegistries?: string[];
}

/** Push `name[:tag]`; yields Docker JSON progress messages. */
export async function* pushImage(svc: LocalImageService, name: string, opts: PushImageOptions = {}): AsyncGenerator<Json> {
  const parsed = parseReference(name);
  if (parsed.digest !== undefined) throw invalidArgument('cannot push a digest reference');
  const repoRef: Reference = { domain: parsed.domain, path: parsed.path };
  const tags: string[] = [];
  const wanted = opts.tag ?? parsed.tag;
  if (wanted) tags.push(wanted);
  else {
    const repoName = repositoryName(repoRef);
    for (const [r] of svc.metadata.allRefs()) {
      const p = parseReference(r);
      if (repositoryName(p) === repoName && p.tag !== undefined && p.digest === undefined) tags.push(p.tag);
    }
    if (tags.length === 0) throw new EngineError('not-found', `An image does not exist locally with the tag: ${familiarName(repoRef)}`, { code: 'NO_SUCH_IMAGE' });
  }
  const creds = credentialsFromAuth(opts.auth);
  const client = new RegistryClient(parsed.domain, { ...(creds ? { credentials: creds } : {}), ...(opts.fetchFn ? { fetchFn: opts.fetchFn } : {}), ...(opts.insecureRegistries ? { insecureRegistries: opts.insecureRegistries } : {}) });
  const ctx = { repo: familiarName(repoRef), op: 'push' as const };
  const signal = opts.signal;
  const sig = signal ? { signal } : {};
  const images = tags.map((t) => {
    try {
      return { tag: t, img: svc.findImage(`${repositoryName(repoRef)}:${t}`) };
    } catch {
      throw new EngineError('not-found', `tag does not exist: ${familiarName(repoRef)}:${t}`, { code: 'NO_SUCH_IMAGE' });
    }
  });
  yield { status: `The push refers to repository [${repositoryName(repoRef).replace(/^docker\.io\//, 'docker.io/')}]` };
  for (const { tag, img } of images) {
    const out = new Channel<Json>();
    const sem = new Semaphore(opts.maxParallel ?? 3);
    const layers = [...img.manifest.layers].reverse();
    const upload = async (d: Descriptor, id: string | undefined): Promise<void> => {
      if (id) out.push({ status: 'Preparing', progressDetail: {}, id });
      await sem.run(async () => {
        if (await client.hasBlob(parsed.path, d.digest, sig)) {
          if (id) out.push({ status: 'Layer already exists', progressDetail: {}, id });
          return;
        }
        if (id) out.push({ status: 'Pushing', progressDetail: { current: 0, total: d.size }, progress: progressBar(0, d.size), id });
        const size = await svc.content.blobSize(d.digest);
        await client.uploadBlob(parsed.path, d.digest, size, () => svc.content.openBlob(d.digest), ctx, sig);
        if (id) {
          out.push({ status: 'Pushing', progressDetail: { current: size, total: size }, progress: progressBar(size, size), id });
          out.push({ status: 'Pushed', progressDetail: {}, id });
        }
      });
    };
    const work = (async () => {
      await Promise.all(layers.map((l) => upload(l, l.digest.slice(7, 19))));
      await upload(img.manifest.config, undefined);
      const bytes = await svc.content.readBlob(img.manifestDigest);
      const mediaType = img.manifest.mediaType ?? MediaType.ociManifest;
      const digest = await client.putManifest(parsed.path, tag, bytes, mediaType, ctx, sig);
      await svc.addRef({ ...repoRef, digest }, img.id);
      return { digest, size: bytes.length };
    })();
    let result: { digest: string; size: number } | undefined;
    work.then((r) => {
      result = r;
      out.close();
    }, (err) => out.close(err));
    try {
      yield* out;
    } finally {
      await work.catch(() => undefined);
    }
    yield { status: `${tag}: digest: ${result!.digest} size: ${result!.size}` };
    yield { progressDetail: {}, aux: { Tag: tag, Digest: result!.digest, Size: result!.size } };
  }
}
