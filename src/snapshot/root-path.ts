/**
 * Paths inside a container rootfs, resolved as if chrooted: symlinks are followed relative to
 * the root and `..` never climbs above it (like Go's FollowSymlinkInScope / securejoin).
 * Resolution is done from the host and is subject to races with processes changing the tree.
 */
import { lstat, readlink } from 'node:fs/promises';
import { posix, join } from 'node:path';
import type { Stats } from 'node:fs';

import { invalidArgument, notFound } from '../base/errors.js';

const MAX_LINKS = 255;

function splitPath(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Resolve `path` inside `root`, following every symlink (including the final component unless
 * `followFinal` is false) within the root. Missing components are kept as-is. Returns a host path.
 */
export async function resolveInRoot(root: string, path: string, opts: { followFinal?: boolean } = {}): Promise<string> {
  const followFinal = opts.followFinal ?? true;
  const resolved: string[] = [];
  let queue = splitPath(path);
  let links = 0;
  let missing = false;
  while (queue.length > 0) {
    const c = queue.shift()!;
    if (c === '..') {
      resolved.pop();
      continue;
    }
    if (missing) {
      resolved.push(c);
      continue;
    }
    const isFinal = queue.length === 0;
    const host = join(root, ...resolved, c);
    let st: Stats;
    try {
      st = await lstat(host);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        missing = true;
        resolved.push(c);
        continue;
      }
      throw err;
    }
    if (st.isSymbolicLink() && (!isFinal || followFinal)) {
      if (++links > MAX_LINKS) throw invalidArgument(`too many levels of symbolic links: ${path}`);
      const target = await readlink(host);
      if (target.startsWith('/')) resolved.length = 0;
      queue = [...splitPath(target), ...queue];
      continue;
    }
    resolved.push(c);
  }
  return join(root, ...resolved);
}

/** The in-container path (absolute, starting with "/") of a host path under root. */
export function containerPathOf(root: string, hostPath: string): string {
  const rel = posix.relative(root, hostPath);
  if (rel.startsWith('..')) throw invalidArgument(`path escapes the root: ${hostPath}`);
  return `/${rel}`;
}

/** Go os.FileMode bits used by Docker's path stat. */
export const GoMode = {
  dir: 2 ** 31,
  append: 2 ** 30,
  exclusive: 2 ** 29,
  temporary: 2 ** 28,
  symlink: 2 ** 27,
  device: 2 ** 26,
  namedPipe: 2 ** 25,
  socket: 2 ** 24,
  setuid: 2 ** 23,
  setgid: 2 ** 22,
  charDevice: 2 ** 21,
  sticky: 2 ** 20,
} as const;

/** Convert a POSIX st_mode into a Go os.FileMode number. */
export function goFileMode(st: Stats): number {
  let m = st.mode & 0o777;
  if (st.isDirectory()) m += GoMode.dir;
  else if (st.isSymbolicLink()) m += GoMode.symlink;
  else if (st.isFIFO()) m += GoMode.namedPipe;
  else if (st.isSocket()) m += GoMode.socket;
  else if (st.isCharacterDevice()) m += GoMode.device + GoMode.charDevice;
  else if (st.isBlockDevice()) m += GoMode.device;
  if (st.mode & 0o4000) m += GoMode.setuid;
  if (st.mode & 0o2000) m += GoMode.setgid;
  if (st.mode & 0o1000) m += GoMode.sticky;
  return m;
}

/** The X-Docker-Container-Path-Stat object. */
export interface PathStat {
  name: string;
  size: number;
  mode: number;
  mtime: string;
  linkTarget: string;
}

/**
 * Docker's base name of a requested path: the base of the cleaned absolute path ("/" for the root,
 * so `/etc/../../..` is "/"; trailing slashes ignored), "." when it ends in "/." (Go's
 * filepath.Base of PreserveTrailingDotOrSeparator).
 */
export function requestBaseName(path: string): string {
  const cleaned = posix.normalize(posix.join('/', path)).replace(/\/+$/, '');
  if (cleaned === '') return '/';
  if (/\/\.$/.test(path)) return '.';
  return posix.basename(cleaned);
}

/**
 * Resolve a requested container path the way Docker's archive endpoints do: parent symlinks are
 * followed; the final component is followed only when the path ends in "/" or "/.".
 */
export async function resolveRequestPath(root: string, path: string): Promise<string> {
  const abs = posix.join('/', path);
  const followFinal = /\/\.?$/.test(path) && abs !== '/';
  return resolveInRoot(root, abs, { followFinal });
}

/** Stat a path inside the rootfs. Throws not-found "Could not find the file … in container". */
export async function statInRoot(root: string, path: string): Promise<PathStat> {
  const host = await resolveRequestPath(root, path);
  let st: Stats;
  try {
    st = await lstat(host);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw notFound(`Could not find the file ${path} in container`);
    }
    throw err;
  }
  let linkTarget = '';
  if (st.isSymbolicLink()) linkTarget = containerPathOf(root, await resolveInRoot(root, containerPathOf(root, host)));
  return { name: requestBaseName(path), size: st.size, mode: goFileMode(st), mtime: st.mtime.toISOString(), linkTarget };
}
