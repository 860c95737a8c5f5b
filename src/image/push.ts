/**
 * Push: upload the blobs of a local image that the registry lacks (HEAD first; then a
 * cross-repository mount when the blob is known to be in another repository of the same registry;
 * else an upload, monolithic or in chunks above the configured chunk size), then PUT the stored
 * manifest bytes by tag, so the pushed image keeps its manifest digest and pulls back
 * byte-identical. Progress is Docker's JSON message stream ("Preparing", "Waiting", "Pushing",
 * "Pushed", "Layer already exists", "Mounted from <repo>", "<tag>: digest: … size: …").
 */
import { pipeline } from 'node:stream';

import { EngineError, invalidArgument } from '../base/errors.js';
import type { Json } from '../engine/services.js';
import { familiarName, MediaType, parseReference, repositoryName, type Descriptor, type Reference } from '../oci/index.js';
import { clientFor } from './distribution.js';
import type { LocalImageService } from './local-image-service.js';
import { Channel, progressBar, Semaphore } from './progress-channel.js';
import { ProgressTap } from './pull.js';

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
  /** Blobs larger than this are uploaded in chunks of this many bytes (default: monolithic). */
  chunkSize?: number;
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
  const client = clientFor(parsed.domain, opts);
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
    const limit = opts.maxParallel ?? 5;
    const sem = new Semaphore(limit);
    let queued = 0;
    const layers = [...img.manifest.layers].reverse();
    const upload = async (d: Descriptor, id: string | undefined): Promise<void> => {
      if (id) out.push({ status: 'Preparing', progressDetail: {}, id });
      if (id && ++queued > limit) out.push({ status: 'Waiting', progressDetail: {}, id });
      await sem.run(async () => {
        if (await client.hasBlob(parsed.path, d.digest, sig)) {
          if (id) out.push({ status: 'Layer already exists', progressDetail: {}, id });
          await svc.blobSources.add([d.digest], parsed.domain, parsed.path);
          return;
        }
        const size = await svc.content.blobSize(d.digest);
        const mountFrom = svc.blobSources.sources(d.digest, parsed.domain).find((p) => p !== parsed.path);
        let last = 0;
        let lastN = -1;
        // the body's tap and the client's end-of-chunk callback both report a chunk's end: once each
        const report = (n: number): void => {
          const now = Date.now();
          if (!id || n === lastN || (n < size && now - last < 100)) return;
          last = now;
          lastN = n;
          out.push({ status: 'Pushing', progressDetail: { current: n, total: size }, progress: progressBar(n, size), id });
        };
        const how = await client.uploadBlob(parsed.path, d.digest, size, (start, end) => {
          const src = start === 0 && end === size ? svc.content.openBlob(d.digest) : svc.content.openBlob(d.digest, { start, end });
          const tap = new ProgressTap((n) => report(start + n));
          pipeline(src, tap, () => undefined);
          return tap;
        }, ctx, { ...sig, ...(mountFrom ? { mountFrom } : {}), ...(opts.chunkSize ? { chunkSize: opts.chunkSize } : {}), onChunk: report });
        if (mountFrom && how !== 'mounted') await svc.blobSources.forget(d.digest, parsed.domain, mountFrom);
        await svc.blobSources.add([d.digest], parsed.domain, parsed.path);
        if (!id) return;
        if (how === 'mounted') out.push({ status: `Mounted from ${mountFrom}`, progressDetail: {}, id });
        else out.push({ status: 'Pushed', progressDetail: {}, id });
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
