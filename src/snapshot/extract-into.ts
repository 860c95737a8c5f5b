/** `docker cp` into a container: extract a tar under a directory of a rootfs, confined to the root. */
import { lstat, mkdir } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';

import { invalidArgument, notFound } from '../base/errors.js';
import { EntryWriter, strictLinkTarget, strictParentDir } from './entry-writer.js';
import { containerPathOf, resolveInRoot } from './root-path.js';
import { readTar, type TarBody, type TarHeader } from './tar-read.js';

/** Options of {@link extractInto}. */
export interface ExtractIntoOptions {
  /** Refuse to replace a directory with a non-directory and the reverse. */
  noOverwriteDirNonDir?: boolean;
  /** Force this owner on every entry (Docker's copyUIDGID gives the container user's ids); default: the tar's. */
  owner?: { uid: number; gid: number };
  signal?: AbortSignal;
  /** Told each regular file written and the sha256 (hex) of its content (see EntryWriterOptions). */
  onFileDigest?: (hostPath: string, sha256: string, ino: number) => void;
}

/**
 * Extract `tar` into `destDir` (a path inside the container rootfs at `root`). Symlinks inside
 * the rootfs are followed as if chrooted, so nothing lands outside `root`. `destDir` must be an
 * existing directory: not-found "Could not find the file …", invalid-argument "… not a directory".
 * Resolution runs from the host: a process inside a running container can race it.
 */
export async function extractInto(root: string, destDir: string, tar: Readable, opts: ExtractIntoOptions = {}): Promise<void> {
  const destHost = await resolveInRoot(root, posix.join('/', destDir));
  let st;
  try {
    st = await lstat(destHost);
  } catch {
    throw notFound(`Could not find the file ${destDir} in container`);
  }
  if (!st.isDirectory()) throw invalidArgument(`extraction point is not a directory`);
  const destC = containerPathOf(root, destHost);

  const parentDir = async (comps: string[]): Promise<string> => {
    let cur = destC;
    let host = destHost;
    for (const c of comps.slice(0, -1)) {
      host = await resolveInRoot(root, posix.join(cur, c));
      let s;
      try {
        s = await lstat(host);
      } catch {
        await mkdir(host, { recursive: true, mode: 0o755 });
        s = await lstat(host);
      }
      if (!s.isDirectory()) throw invalidArgument(`cannot extract ${JSON.stringify(comps.join('/'))}: ${JSON.stringify(c)} is not a directory`);
      cur = containerPathOf(root, host);
    }
    return host;
  };
  const linkTarget = async (comps: string[]): Promise<string> => {
    if (comps.length === 0) throw invalidArgument('invalid hardlink: empty target');
    const parent = await resolveInRoot(root, posix.join(destC, ...comps.slice(0, -1)));
    return join(parent, comps[comps.length - 1]!);
  };
  const writer = new EntryWriter({
    parentDir,
    linkTarget,
    whiteouts: false,
    owner: opts.owner ?? 'tar',
    noOverwriteDirNonDir: opts.noOverwriteDirNonDir ?? false,
    xattrs: false,
    ...(opts.onFileDigest ? { onFileDigest: opts.onFileDigest } : {}),
  });
  try {
    await readTar(tar, (h, body) => writer.write(h, body), opts.signal ? { signal: opts.signal, noDigest: true } : { noDigest: true });
  } finally {
    await writer.finish();
  }
}

/** One object {@link writeEntries} creates: a tar-style header plus, for a file, the host file holding its content. */
export interface HostEntry {
  header: TarHeader;
  copyFrom?: string;
}

/**
 * Write planned entries into `dest` (a fresh directory the caller owns, e.g. a new layer): like
 * extracting their tar, but file contents are copied from host files in the kernel
 * (copy_file_range) instead of being read into JS and streamed. Parents must be real directories
 * inside `dest` (missing ones are created); an entry never writes through a symlink.
 */
export async function writeEntries(dest: string, entries: Iterable<HostEntry>): Promise<void> {
  const writer = new EntryWriter({
    parentDir: strictParentDir(dest),
    linkTarget: strictLinkTarget(dest),
    whiteouts: false,
    owner: 'tar',
    xattrs: false,
  });
  const none: TarBody = { async *[Symbol.asyncIterator]() {} };
  try {
    for (const e of entries) await writer.write(e.header, none, e.copyFrom);
  } finally {
    await writer.finish();
  }
}
