/**
 * Unpacked layers, shared by every image that has them: `<root>/layers/<chainID-hex>/diff` is an
 * overlayfs lower dir, `layer.json` beside it records the DiffID, parent chain and size. A layer is
 * unpacked into `<root>/layers/tmp-<random>/` and renamed into place once complete; a directory
 * without `layer.json` is incomplete and removed by {@link LayerStore.init}.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';

import { readJsonIfExists, writeJsonAtomic, fsyncDir } from '../host/atomic-fs.js';
import { chainIds } from '../oci/index.js';
import { notFound } from '../base/errors.js';
import { applyLayer, decodeRecipe, rebuildTar, recipeSize, type ApplyLayerResult } from '../snapshot/index.js';

/** The recipe file of a layer whose tar is kept as a tar-split (beside `diff/`). */
const TAR_SPLIT = 'tar-split';

async function writeFileSynced(path: string, data: Buffer): Promise<void> {
  const fh = await open(path, 'wx', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** What is recorded for one unpacked layer. */
export interface LayerInfo {
  chainId: string;
  diffId: string;
  /** ChainID of the layer below, or "" for a base layer. */
  parent: string;
  /** Bytes of file content unpacked. */
  size: number;
  /**
   * Directories of the layer marked opaque (overlay xattr), relative to its root ("" = the root).
   * Lets the builder look through a stack of layers without mounting it. Absent in layers
   * recorded before berth kept it.
   */
  opaque?: string[];
  /**
   * The layer's tar is kept as a tar-split recipe (`tar-split` beside `diff/`) instead of a blob:
   * the tar with this digest (= the DiffID) and size is rebuilt from it. Set for uncompressed
   * pulled layers, whose blob is that tar.
   */
  tarSplit?: { digest: string; size: number };
}

/** The on-disk layer store. */
export class LayerStore {
  private readonly dir: string;
  private readonly cache = new Map<string, LayerInfo>();
  /** `root` is the data root; layers go under `<root>/layers`. */
  constructor(root: string) {
    this.dir = join(root, 'layers');
  }

  /** Remove temp and incomplete layer dirs; load the rest. */
  async init(): Promise<void> {
    this.cache.clear();
    let names: string[] = [];
    try {
      names = await readdir(this.dir);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(this.dir, n);
      const info = /^[0-9a-f]{64}$/.test(n) ? await readJsonIfExists<LayerInfo>(join(p, 'layer.json')).catch(() => undefined) : undefined;
      if (!info) {
        await rm(p, { recursive: true, force: true });
        continue;
      }
      this.cache.set(info.chainId, info);
    }
  }

  /** The overlay lower dir of a layer. */
  diffDir(chainId: string): string {
    return join(this.dir, chainId.replace(/^sha256:/, ''), 'diff');
  }

  /** Info of a committed layer. */
  get(chainId: string): LayerInfo | undefined {
    return this.cache.get(chainId);
  }

  /** All committed layers. */
  list(): LayerInfo[] {
    return [...this.cache.values()];
  }

  /**
   * Unpack a layer tar on top of `parentChain` (undefined for a base layer) and commit it. When a
   * layer with the same ChainID already exists the new copy is discarded: each layer is on disk once.
   * `beforeCommit` runs after unpacking and before the layer becomes visible; when it throws, nothing
   * is committed (a pull uses it to wait for the compressed blob's digest verification).
   */
  async register(tar: Readable, parentChain: string | undefined, opts: { signal?: AbortSignal; beforeCommit?: (diffId: string) => Promise<void> } = {}): Promise<LayerInfo> {
    return this.registerWith((dir) => applyLayer(tar, dir, opts.signal ? { signal: opts.signal } : {}), parentChain, opts);
  }

  /**
   * {@link register} with the unpacking done by `unpack`, which fills the fresh directory it is
   * given (a pull does it in a worker thread) and must have stopped writing when it settles.
   */
  async registerWith(unpack: (destDir: string) => Promise<ApplyLayerResult>, parentChain: string | undefined, opts: { beforeCommit?: (diffId: string) => Promise<void> } = {}): Promise<LayerInfo> {
    const tmp = join(this.dir, `tmp-${randomBytes(8).toString('hex')}`);
    try {
      const r = await unpack(join(tmp, 'diff'));
      if (opts.beforeCommit) await opts.beforeCommit(r.diffId);
      const chainId = parentChain ? chainIds([parentChain, r.diffId])[1]! : r.diffId;
      return await this.commitTmp(tmp, { chainId, diffId: r.diffId, parent: parentChain ?? '', size: r.size, opaque: r.opaque }, r.recipe);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * Commit an already unpacked tree as a layer by moving it into the store (no copy): `dir` must be
   * in overlay lower-dir form (whiteouts as char 0:0, opaque xattrs) and on the store's file system,
   * `diffId` the digest of its layer tar. `dir` is gone afterwards unless the call fails or returns
   * undefined (another file system: the caller registers the tar instead). When the layer already
   * exists, the existing one is returned and `dir` is left alone. `recipe`: a tar-split recipe of
   * the layer's tar (whose digest is `diffId`), kept instead of a blob.
   */
  async adopt(dir: string, diffId: string, parentChain: string | undefined, size: number, opaque: string[], recipe?: Buffer): Promise<LayerInfo | undefined> {
    const chainId = parentChain ? chainIds([parentChain, diffId])[1]! : diffId;
    const existing = this.cache.get(chainId);
    if (existing) return existing;
    const tmp = join(this.dir, `tmp-${randomBytes(8).toString('hex')}`);
    await mkdir(tmp, { recursive: true });
    try {
      try {
        await rename(dir, join(tmp, 'diff'));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EXDEV') return undefined;
        throw err;
      }
      // the root of an unpacked layer is 0755 root:root (applyLayer's mkdir)
      await chmod(join(tmp, 'diff'), 0o755);
      return await this.commitTmp(tmp, { chainId, diffId, parent: parentChain ?? '', size, opaque }, recipe);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * Record `info` in `tmp` (holding `diff/`) and rename it into place; a concurrent twin wins.
   * `recipe`: the tar-split recipe of the layer's tar (whose digest is the DiffID), kept beside `diff/`.
   */
  private async commitTmp(tmp: string, info: LayerInfo, recipe?: Buffer): Promise<LayerInfo> {
    const { chainId } = info;
    const existing = this.cache.get(chainId);
    if (existing) return existing;
    if (recipe) {
      await writeFileSynced(join(tmp, TAR_SPLIT), recipe);
      info.tarSplit = { digest: info.diffId, size: recipeSize(decodeRecipe(recipe)) };
    }
    await writeJsonAtomic(join(tmp, 'layer.json'), info);
    const final = join(this.dir, chainId.slice(7));
    try {
      await rename(tmp, final);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      // a concurrent register of the same layer won
      const won = await readJsonIfExists<LayerInfo>(join(final, 'layer.json'));
      if (!won) throw err;
      this.cache.set(chainId, won);
      return won;
    }
    await fsyncDir(this.dir);
    this.cache.set(chainId, info);
    return info;
  }

  /** A layer that keeps the tar with this digest as a recipe, if any. */
  private recipeHolder(digest: string): LayerInfo | undefined {
    for (const l of this.cache.values()) if (l.tarSplit?.digest === digest) return l;
    return undefined;
  }

  /** {@link VirtualBlobs}: the size of the tar a layer's recipe rebuilds. */
  virtualSize(digest: string): number | undefined {
    return this.recipeHolder(digest)?.tarSplit!.size;
  }

  /** {@link VirtualBlobs}: the rebuilt tar (or its bytes `[start, end)`), verified when whole. */
  openVirtual(digest: string, range?: { start: number; end: number }): Readable {
    const l = this.recipeHolder(digest);
    const dir = l ? join(this.dir, l.chainId.slice(7)) : '';
    async function* gen(): AsyncGenerator<Buffer> {
      if (!l) throw notFound(`content ${digest}: not found`);
      const parts = decodeRecipe(await readFile(join(dir, TAR_SPLIT)));
      yield* rebuildTar(join(dir, 'diff'), parts, { ...(range ? { start: range.start, end: Math.max(range.start, range.end) } : {}), digest }) as AsyncIterable<Buffer>;
    }
    return Readable.from(gen(), { objectMode: false });
  }

  /** Delete a layer directory. */
  async remove(chainId: string): Promise<void> {
    this.cache.delete(chainId);
    await rm(join(this.dir, chainId.slice(7)), { recursive: true, force: true });
  }

  /** True when the layer directory exists on disk. */
  async exists(chainId: string): Promise<boolean> {
    try {
      return (await stat(this.diffDir(chainId))).isDirectory();
    } catch {
      return false;
    }
  }
}
