/** Unpack a layer tar into a fresh directory usable as an overlayfs lower dir. */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { relative } from 'node:path';
import type { Readable } from 'node:stream';

import { invalidArgument } from '../base/errors.js';
import { EntryWriter, strictLinkTarget, strictParentDir } from './entry-writer.js';
import { readTar, type ReadTarOptions } from './tar-read.js';
import { encodeRecipe, resolveRecipe, TarSegmenter } from './tar-split.js';

/** Result of {@link applyLayer}. */
export interface ApplyLayerResult {
  /** sha256 of the uncompressed tar. */
  diffId: string;
  /** Bytes of regular-file content unpacked. */
  size: number;
  /** Directories made opaque, relative to the layer root ("" is the root itself). */
  opaque: string[];
  /**
   * With `recipe`: the encoded tar-split recipe that rebuilds this exact tar from the unpacked
   * files (tar-split.ts), or undefined with the reason in {@link noRecipe}.
   */
  recipe?: Buffer;
  noRecipe?: string;
}

/** Options of {@link applyLayer}. */
export interface ApplyLayerOptions extends ReadTarOptions {
  /** Record a tar-split recipe (uncompressed tars only; a compressed one gives none). */
  recipe?: boolean;
  /** Write big files with O_DIRECT (a worker thread only: the writes are synchronous). */
  directIo?: boolean;
}

/**
 * Unpack a layer (plain, gzip or zstd tar) into `destDir`, which must not exist or be empty. Keeps
 * modes, owners, mtimes, symlinks, hardlinks (within the layer), devices, fifos and PAX xattrs;
 * OCI whiteouts become overlay whiteouts (char 0:0) and `.wh..wh..opq` the opaque xattr.
 * A hostile entry (`..`, a path through a symlink, a hardlink outside) rejects the whole layer
 * and `destDir` is removed. `opts.uncompressedDigest`: see {@link ReadTarOptions}.
 */
export async function applyLayer(tar: Readable, destDir: string, opts: ApplyLayerOptions = {}): Promise<ApplyLayerResult> {
  await mkdir(destDir, { recursive: true, mode: 0o755 });
  if ((await readdir(destDir)).length > 0) throw invalidArgument(`layer directory is not empty: ${destDir}`);
  const { recipe: wantRecipe, directIo, ...readOpts } = opts;
  const seg = wantRecipe ? new TarSegmenter() : undefined;
  const contents: Array<{ path: string; size: number }> = [];
  let lost: string | undefined;
  const writer = new EntryWriter({
    parentDir: strictParentDir(destDir),
    linkTarget: strictLinkTarget(destDir),
    whiteouts: true,
    owner: 'tar',
    xattrs: true,
    ...(directIo ? { directIo } : {}),
    ...(seg
      ? {
          onContent: (p: string | undefined, size: number) => {
            if (p === undefined) lost ??= 'an entry\'s content is not kept in a file';
            else contents.push({ path: relative(destDir, p), size });
          },
          // the layer dir starts empty: whatever is replaced was written by this same tar
          onReplace: (p: string) => void (lost ??= `${JSON.stringify(relative(destDir, p))} is written more than once`),
        }
      : {}),
  });
  try {
    const r = await readTar(tar, (h, body) => writer.write(h, body), seg ? { ...readOpts, onRaw: (c) => seg.push(c) } : readOpts);
    await writer.finish();
    const opaque = [...new Set(writer.opaqueDirs.map((d) => relative(destDir, d)))];
    const out: ApplyLayerResult = { diffId: r.diffId, size: writer.size, opaque };
    if (seg) {
      seg.end();
      const parts = r.compressed ? undefined : lost ? undefined : resolveRecipe(seg, contents);
      if (parts) out.recipe = encodeRecipe(parts);
      else out.noRecipe = r.compressed ? 'the layer is compressed' : (lost ?? seg.unusable ?? 'the tar\'s entries do not line up with the files unpacked');
    }
    return out;
  } catch (err) {
    tar.destroy();
    await rm(destDir, { recursive: true, force: true });
    throw err;
  }
}
