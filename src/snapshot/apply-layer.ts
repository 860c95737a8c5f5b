/** Unpack a layer tar into a fresh directory usable as an overlayfs lower dir. */
import { mkdir, readdir, rm } from 'node:fs/promises';
import { relative } from 'node:path';
import type { Readable } from 'node:stream';

import { invalidArgument } from '../base/errors.js';
import { EntryWriter, strictLinkTarget, strictParentDir } from './entry-writer.js';
import { readTar, type ReadTarOptions } from './tar-read.js';

/** Result of {@link applyLayer}. */
export interface ApplyLayerResult {
  /** sha256 of the uncompressed tar. */
  diffId: string;
  /** Bytes of regular-file content unpacked. */
  size: number;
  /** Directories made opaque, relative to the layer root ("" is the root itself). */
  opaque: string[];
}

/**
 * Unpack a layer (plain, gzip or zstd tar) into `destDir`, which must not exist or be empty. Keeps
 * modes, owners, mtimes, symlinks, hardlinks (within the layer), devices, fifos and PAX xattrs;
 * OCI whiteouts become overlay whiteouts (char 0:0) and `.wh..wh..opq` the opaque xattr.
 * A hostile entry (`..`, a path through a symlink, a hardlink outside) rejects the whole layer
 * and `destDir` is removed. `opts.uncompressedDigest`: see {@link ReadTarOptions}.
 */
export async function applyLayer(tar: Readable, destDir: string, opts: ReadTarOptions = {}): Promise<ApplyLayerResult> {
  await mkdir(destDir, { recursive: true, mode: 0o755 });
  if ((await readdir(destDir)).length > 0) throw invalidArgument(`layer directory is not empty: ${destDir}`);
  const writer = new EntryWriter({
    parentDir: strictParentDir(destDir),
    linkTarget: strictLinkTarget(destDir),
    whiteouts: true,
    owner: 'tar',
    xattrs: true,
  });
  try {
    const r = await readTar(tar, (h, body) => writer.write(h, body), opts);
    await writer.finish();
    const opaque = [...new Set(writer.opaqueDirs.map((d) => relative(destDir, d)))];
    return { diffId: r.diffId, size: writer.size, opaque };
  } catch (err) {
    tar.destroy();
    await rm(destDir, { recursive: true, force: true });
    throw err;
  }
}
