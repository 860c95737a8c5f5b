/**
 * `docker save` / `docker load` archives. Save writes Docker's current format, which is at once a
 * docker-archive (manifest.json + repositories) and an OCI image layout (oci-layout + index.json +
 * blobs/sha256/…): config, manifest and layer blobs are written as stored, so digests survive a
 * round trip. Load reads that, Docker's legacy layout (`<id>/layer.tar`, `<id>.json`) and plain OCI
 * layouts. Archive paths are never written to disk: every file goes into the content store (blobs
 * under `blobs/sha256/` are verified against their names) and is looked up by path from there.
 */
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';

import { invalidArgument, notFound } from '../base/errors.js';
import type { Json } from '../engine/services.js';
import {
  layerMediaTypeFromMagic,
  chainIds,
  familiarString,
  MediaType,
  parseReference,
  withDefaultTag,
  type Descriptor,
  type ImageConfig,
  type ImageManifest,
  type Reference,
} from '../oci/index.js';
import { readTar, writeTarEntry } from '../snapshot/index.js';
import type { LocalImageService } from './local-image-service.js';
import { parsePlatformSpec, selectPlatform } from './pull.js';

const blobPath = (d: string): string => `blobs/sha256/${d.slice(7)}`;

/** One manifest.json entry. */
interface ArchiveEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

/** Archive formats {@link saveImages} writes. */
export type SaveFormat = 'docker' | 'oci';

/**
 * Write `docker save` output for the given references (names, ids) as a tar stream. `format: 'oci'`
 * writes only the OCI image layout (oci-layout, index.json, blobs), without manifest.json/repositories.
 */
export function saveImages(svc: LocalImageService, names: string[], opts: { signal?: AbortSignal; format?: SaveFormat } = {}): Readable {
  if (names.length === 0) throw invalidArgument('no images given');
  const format = opts.format ?? 'docker';
  if (format !== 'docker' && format !== 'oci') throw invalidArgument(`unsupported save format: ${String(format)} (use docker or oci)`);
  // resolve up front so a bad name fails before any byte is sent
  const picked = names.map((n) => {
    const img = svc.findImage(n);
    let tag: string | undefined;
    if (!/^(sha256:)?[0-9a-f]{1,64}$/.test(n) || img.refs.length === 0) {
      try {
        const r = withDefaultTag(parseReference(n));
        if (r.digest === undefined) tag = familiarString(r);
      } catch {
        /* an id prefix */
      }
    }
    return { img, tag };
  });
  const pack = tarStream.pack();
  const run = async (): Promise<void> => {
    const written = new Set<string>();
    const entries: ArchiveEntry[] = [];
    const repositories: Record<string, Record<string, string>> = {};
    const index: { schemaVersion: 2; mediaType: string; manifests: Descriptor[] } = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
    const mtime = new Date(0);
    const addBlob = async (digest: string): Promise<void> => {
      if (written.has(digest)) return;
      written.add(digest);
      const size = await svc.content.blobSize(digest);
      await writeTarEntry(pack, { name: blobPath(digest), size, mode: 0o644, mtime }, () => svc.content.openBlob(digest));
    };
    for (const { img, tag } of picked) {
      for (const l of img.manifest.layers) await addBlob(l.digest);
      await addBlob(img.id);
      await addBlob(img.manifestDigest);
      const existing = entries.find((e) => e.Config === blobPath(img.id));
      if (existing) {
        if (tag && !existing.RepoTags?.includes(tag)) (existing.RepoTags ??= []).push(tag);
      } else entries.push({ Config: blobPath(img.id), RepoTags: tag ? [tag] : null, Layers: img.manifest.layers.map((l) => blobPath(l.digest)) });
      const mdesc: Descriptor = { mediaType: img.manifest.mediaType ?? MediaType.ociManifest, digest: img.manifestDigest, size: await svc.content.blobSize(img.manifestDigest) };
      if (tag) {
        const r = parseReference(tag);
        mdesc.annotations = { 'io.containerd.image.name': `${r.domain}/${r.path}:${r.tag}`, 'org.opencontainers.image.ref.name': r.tag ?? 'latest' };
        const top = img.manifest.layers.at(-1);
        const repoKey = familiarString({ domain: r.domain, path: r.path });
        if (top) (repositories[repoKey] ??= {})[r.tag ?? 'latest'] = top.digest.slice(7);
      }
      index.manifests.push(mdesc);
    }
    const small = (name: string, value: unknown): void => {
      pack.entry({ name, mode: 0o644, mtime }, JSON.stringify(value));
    };
    small('index.json', index);
    if (format === 'docker') small('manifest.json', entries);
    small('oci-layout', { imageLayoutVersion: '1.0.0' });
    if (format === 'docker' && Object.keys(repositories).length) small('repositories', repositories);
    pack.finalize();
  };
  run().catch((err) => pack.destroy(err as Error));
  return Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
}

/** What a loaded archive produced. */
export interface LoadReport {
  /** `Loaded image: x` / `Loaded image ID: sha256:…` lines, as Docker prints them. */
  lines: string[];
  ids: string[];
}

const JSON_LIMIT = 8 << 20;

/** Read a `docker save` / OCI layout tar from `src` and register its images. */
export async function loadImages(svc: LocalImageService, src: Readable, opts: { signal?: AbortSignal } = {}): Promise<LoadReport> {
  return svc.withLease(async () => {
    const paths = new Map<string, string>(); // archive path → blob digest
    const small = new Map<string, Buffer>(); // json metadata files
    const sig = opts.signal ? { signal: opts.signal } : {};
    await readTar(src, async (h, body) => {
      const name = (h.name ?? '').replace(/^\.\//, '').replace(/\/+$/, '');
      if (h.type !== 'file' && h.type !== 'contiguous-file') return;
      const m = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(name);
      if (m) {
        const r = await svc.content.ingest(Readable.from(body), { expected: `sha256:${m[1]}`, ...(h.size !== undefined ? { size: h.size } : {}), ...sig });
        paths.set(name, r.digest);
        return;
      }
      if (['manifest.json', 'index.json', 'repositories', 'oci-layout'].includes(name) || (name.endsWith('.json') && (h.size ?? 0) <= JSON_LIMIT)) {
        const chunks: Buffer[] = [];
        let n = 0;
        for await (const c of body) {
          n += c.length;
          if (n > JSON_LIMIT) throw invalidArgument(`${name} is too large`);
          chunks.push(c);
        }
        const buf = Buffer.concat(chunks);
        small.set(name, buf);
        if (!['manifest.json', 'index.json', 'repositories', 'oci-layout'].includes(name)) paths.set(name, (await svc.content.ingest(buf)).digest);
        return;
      }
      if (/(^|\/)layer\.tar$|\.tar(\.gz)?$/.test(name)) {
        const r = await svc.content.ingest(Readable.from(body), sig);
        paths.set(name, r.digest);
      }
    }, sig);

    const parse = <T>(name: string): T | undefined => {
      const b = small.get(name);
      if (!b) return undefined;
      try {
        return JSON.parse(b.toString('utf8')) as T;
      } catch {
        throw invalidArgument(`invalid ${name} in archive`);
      }
    };
    const report: LoadReport = { lines: [], ids: [] };
    const index = parse<{ manifests?: Descriptor[] }>('index.json');
    const manifestJson = parse<ArchiveEntry[]>('manifest.json');
    const digestAt = (p: string): string => {
      const d = paths.get(p.replace(/^\.\//, ''));
      if (!d) throw invalidArgument(`archive is missing ${p}`);
      return d;
    };
    if (manifestJson) {
      if (!Array.isArray(manifestJson)) throw invalidArgument('invalid manifest.json in archive');
      // manifests of the OCI side of the archive, by config digest: reusing them keeps the digest
      const ociByConfig = new Map<string, { digest: string; manifest: ImageManifest }>();
      for (const d of index?.manifests ?? []) {
        if (!(await svc.content.has(d.digest))) continue;
        try {
          const m = JSON.parse((await svc.content.readBlob(d.digest)).toString('utf8')) as ImageManifest;
          if (m.config?.digest) ociByConfig.set(m.config.digest, { digest: d.digest, manifest: m });
        } catch {
          /* not a manifest */
        }
      }
      for (const e of manifestJson) {
        const cfgDigest = digestAt(e.Config);
        const layerDigests = (e.Layers ?? []).map(digestAt);
        const refs = (e.RepoTags ?? []).map((t) => withDefaultTag(parseReference(t)));
        const oci = ociByConfig.get(cfgDigest);
        const usable = oci && oci.manifest.layers.length === layerDigests.length && oci.manifest.layers.every((l, i) => l.digest === layerDigests[i]);
        const id = await registerLoaded(svc, cfgDigest, layerDigests, refs, usable ? oci : undefined, opts.signal);
        report.ids.push(id);
        if (refs.length) for (const r of refs) report.lines.push(`Loaded image: ${familiarString(r)}`);
        else report.lines.push(`Loaded image ID: ${id}`);
      }
      return report;
    }
    if (index && Array.isArray(index.manifests)) {
      for (const d of index.manifests) {
        let desc = d;
        if (d.mediaType === MediaType.ociIndex || d.mediaType === MediaType.dockerManifestList) {
          const sub = JSON.parse((await svc.content.readBlob(d.digest)).toString('utf8')) as { manifests?: Descriptor[] };
          const pick = selectPlatform(sub.manifests ?? [], parsePlatformSpec(undefined));
          if (!pick) continue;
          desc = { ...pick, ...(d.annotations ? { annotations: d.annotations } : {}) };
        }
        if (!(await svc.content.has(desc.digest))) throw invalidArgument(`archive is missing blob ${desc.digest}`);
        const manifest = JSON.parse((await svc.content.readBlob(desc.digest)).toString('utf8')) as ImageManifest;
        const name = d.annotations?.['io.containerd.image.name'] ?? d.annotations?.['org.opencontainers.image.ref.name'];
        const refs: Reference[] = [];
        if (name) {
          try {
            refs.push(withDefaultTag(parseReference(name)));
          } catch {
            /* a bare tag name in ref.name has no repository: keep the image untagged */
          }
        }
        const id = await registerLoaded(svc, manifest.config.digest, manifest.layers.map((l) => l.digest), refs, { digest: desc.digest, manifest }, opts.signal);
        report.ids.push(id);
        if (refs.length) for (const r of refs) report.lines.push(`Loaded image: ${familiarString(r)}`);
        else report.lines.push(`Loaded image ID: ${id}`);
      }
      return report;
    }
    throw invalidArgument('archive has neither manifest.json nor index.json');
  });
}

/** Unpack the layers of one archive image and register it. */
async function registerLoaded(svc: LocalImageService, cfgDigest: string, layerDigests: string[], refs: Reference[], oci: { digest: string; manifest: ImageManifest } | undefined, signal: AbortSignal | undefined): Promise<string> {
  if (!(await svc.content.has(cfgDigest))) throw notFound(`archive is missing config ${cfgDigest}`);
  const config = JSON.parse((await svc.content.readBlob(cfgDigest)).toString('utf8')) as ImageConfig;
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== layerDigests.length) throw invalidArgument(`image config has ${diffIds.length} diff IDs but the archive ${layerDigests.length} layers`);
  const chains = chainIds(diffIds);
  for (let i = 0; i < layerDigests.length; i++) {
    if (svc.layers.get(chains[i]!)) continue;
    const info = await svc.layers.register(svc.content.openBlob(layerDigests[i]!), i > 0 ? chains[i - 1] : undefined, signal ? { signal } : {});
    if (info.diffId !== diffIds[i]) {
      await svc.layers.remove(info.chainId);
      throw invalidArgument(`layer ${layerDigests[i]}: content ${info.diffId} does not match the config's diff ID ${diffIds[i]}`, { code: 'DIGEST_MISMATCH' });
    }
  }
  let manifest: ImageManifest;
  let manifestDigest: string;
  if (oci) {
    manifest = oci.manifest;
    manifestDigest = oci.digest;
  } else {
    const layers: Descriptor[] = [];
    for (const d of layerDigests) {
      const head = await svc.content.head(d);
      layers.push({ mediaType: layerMediaTypeFromMagic(head), digest: d, size: await svc.content.blobSize(d) });
    }
    manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: MediaType.ociConfig, digest: cfgDigest, size: await svc.content.blobSize(cfgDigest) }, layers };
    manifestDigest = (await svc.content.ingest(Buffer.from(JSON.stringify(manifest)))).digest;
  }
  const { id } = await svc.addImage({ config, manifest, manifestDigest, refs, event: 'load' });
  return id;
}

/** Docker's load stream messages for a report. */
export function loadMessages(r: LoadReport): Json[] {
  return r.lines.map((l) => ({ stream: `${l}\n` }));
}
