/**
 * Where blobs came from: for each blob digest, the registry repositories (`domain/path`) it was
 * pulled from or pushed to, most recent first. A push uses it to ask the registry for a
 * cross-repository mount (`POST /v2/<name>/blobs/uploads/?mount=<digest>&from=<repo>`) instead of
 * uploading a blob the registry already has in another repository (as Docker's
 * V2MetadataService does). Stored in `<root>/metadata/blob-sources.json`, written atomically;
 * losing it only costs an upload.
 */
import { join } from 'node:path';

import { readJsonIfExists, writeJsonAtomic } from '../host/atomic-fs.js';

/** Repositories remembered per blob. */
const MAX_SOURCES = 5;

/** The blob → source repositories record. */
export class BlobSources {
  private readonly path: string;
  private map = new Map<string, string[]>();
  private tail: Promise<void> = Promise.resolve();
  private scheduled = false;

  /** `root` is the data root. */
  constructor(root: string) {
    this.path = join(root, 'metadata', 'blob-sources.json');
  }

  /** Load the record (a missing or unreadable file is an empty record). */
  async init(): Promise<void> {
    const j = await readJsonIfExists<Record<string, unknown>>(this.path).catch(() => undefined);
    this.map = new Map();
    for (const [k, v] of Object.entries(j ?? {})) {
      if (Array.isArray(v)) this.map.set(k, v.filter((x): x is string => typeof x === 'string').slice(0, MAX_SOURCES));
    }
  }

  /** Remember that the registry `domain` has these blobs in repository `path`. */
  async add(digests: string[], domain: string, path: string): Promise<void> {
    const src = `${domain}/${path}`;
    for (const d of digests) {
      const list = (this.map.get(d) ?? []).filter((x) => x !== src);
      list.unshift(src);
      this.map.set(d, list.slice(0, MAX_SOURCES));
    }
    await this.save();
  }

  /**
   * Forget that repository `path` of `domain` holds `digest`: a mount from it was refused (the
   * registry no longer has the blob there, or the credentials may not read it), as Docker drops
   * such a source, so later pushes do not ask again.
   */
  async forget(digest: string, domain: string, path: string): Promise<void> {
    const src = `${domain}/${path}`;
    const list = this.map.get(digest);
    if (!list?.includes(src)) return;
    const rest = list.filter((x) => x !== src);
    if (rest.length > 0) this.map.set(digest, rest);
    else this.map.delete(digest);
    await this.save();
  }

  /** Repositories (paths) of registry `domain` known to hold `digest`, most recent first. */
  sources(digest: string, domain: string): string[] {
    const prefix = `${domain}/`;
    return (this.map.get(digest) ?? []).filter((x) => x.startsWith(prefix)).map((x) => x.slice(prefix.length));
  }

  /** Forget blobs that are no longer stored. */
  async retain(keep: (digest: string) => boolean): Promise<void> {
    let changed = false;
    for (const d of [...this.map.keys()]) {
      if (!keep(d)) {
        this.map.delete(d);
        changed = true;
      }
    }
    if (changed) await this.save();
  }

  /** Write the record; calls made while a write is queued share the next write. */
  private save(): Promise<void> {
    if (this.scheduled) return this.tail;
    this.scheduled = true;
    this.tail = this.tail.then(async () => {
      this.scheduled = false;
      await writeJsonAtomic(this.path, Object.fromEntries(this.map));
    }).catch(() => undefined);
    return this.tail;
  }
}
