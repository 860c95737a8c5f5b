/**
 * Image metadata: image records (`<root>/metadata/images/<hex>.json`) and the reference map
 * (`<root>/metadata/references.json`: full reference string → image id). Every write is atomic.
 * Callers serialise mutations (the image service holds one lock); reads use the in-memory copy.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

import { readJsonIfExists, writeJsonAtomic } from '../host/atomic-fs.js';

/** What berth remembers about one image besides its config and manifest blobs. */
export interface ImageRecord {
  /** "sha256:<hex>": the config digest. */
  id: string;
  /** Digest of the OCI manifest blob. */
  manifestDigest: string;
  /** Parent image id (commit/build), when known. */
  parent?: string;
  /** Uncompressed size of all layers in bytes. */
  size: number;
  /** RFC3339 time the image was last tagged. */
  lastTagTime?: string;
  /** Free-form labels for the engine (not image labels). */
  annotations?: Record<string, string>;
}

/** The on-disk metadata store. */
export class MetadataStore {
  private readonly dir: string;
  private readonly imagesDir: string;
  private readonly refsPath: string;
  private images = new Map<string, ImageRecord>();
  private refs = new Map<string, string>();

  /** `root` is the data root; files go under `<root>/metadata`. */
  constructor(root: string) {
    this.dir = join(root, 'metadata');
    this.imagesDir = join(this.dir, 'images');
    this.refsPath = join(this.dir, 'references.json');
  }

  /** Load everything into memory, removing temp files left by a crash. */
  async init(): Promise<void> {
    this.images.clear();
    this.refs.clear();
    let names: string[] = [];
    try {
      names = await readdir(this.imagesDir);
    } catch {
      /* empty store */
    }
    for (const n of names) {
      const p = join(this.imagesDir, n);
      if (n.endsWith('.tmp')) {
        await rm(p, { force: true });
        continue;
      }
      if (!/^[0-9a-f]{64}\.json$/.test(n)) continue;
      const rec = await readJsonIfExists<ImageRecord>(p);
      if (rec) this.images.set(rec.id, rec);
    }
    const refs = (await readJsonIfExists<Record<string, string>>(this.refsPath)) ?? {};
    for (const [k, v] of Object.entries(refs)) if (this.images.has(v)) this.refs.set(k, v);
  }

  /** All image records. */
  listImages(): ImageRecord[] {
    return [...this.images.values()];
  }

  getImage(id: string): ImageRecord | undefined {
    return this.images.get(id);
  }

  async putImage(rec: ImageRecord): Promise<void> {
    await writeJsonAtomic(join(this.imagesDir, `${rec.id.slice(7)}.json`), rec);
    this.images.set(rec.id, rec);
  }

  /** Delete an image record and every reference to it. */
  async deleteImage(id: string): Promise<void> {
    let changed = false;
    for (const [k, v] of this.refs) if (v === id) {
      this.refs.delete(k);
      changed = true;
    }
    if (changed) await this.saveRefs();
    await rm(join(this.imagesDir, `${id.slice(7)}.json`), { force: true });
    this.images.delete(id);
  }

  /** Image id a full reference string points at. */
  getRef(ref: string): string | undefined {
    return this.refs.get(ref);
  }

  /** All references (full strings) pointing at an image, sorted. */
  refsOf(id: string): string[] {
    return [...this.refs].filter(([, v]) => v === id).map(([k]) => k).sort();
  }

  /** All (reference, id) pairs. */
  allRefs(): Array<[string, string]> {
    return [...this.refs];
  }

  /** Point a reference at an image; returns the image it pointed at before, if any. */
  async setRef(ref: string, id: string): Promise<string | undefined> {
    const prev = this.refs.get(ref);
    this.refs.set(ref, id);
    await this.saveRefs();
    return prev;
  }

  /** Remove a reference; true when it existed. */
  async deleteRef(ref: string): Promise<boolean> {
    if (!this.refs.delete(ref)) return false;
    await this.saveRefs();
    return true;
  }

  private async saveRefs(): Promise<void> {
    await writeJsonAtomic(this.refsPath, Object.fromEntries([...this.refs].sort(([a], [b]) => a.localeCompare(b))));
  }
}
