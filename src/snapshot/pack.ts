/**
 * Writing tars from directory trees: a whole tree (`docker export`), an overlay upper dir as a
 * layer (whiteouts converted to OCI form), and one path inside a rootfs (`docker cp` out).
 * Entries come in a deterministic order (byte-wise sorted names, parents first).
 */
import { createReadStream, type Stats } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import tarStream from 'tar-stream';

import { notFound } from '../base/errors.js';
import { resolveRequestPath, requestBaseName } from './root-path.js';
import { dumpXattrs, OPAQUE_XATTR } from './sys-ops.js';

type Pack = tarStream.Pack;

/** Device major/minor from st_rdev (Linux encoding). */
export function splitRdev(rdev: number): { major: number; minor: number } {
  const major = Math.floor(rdev / 256) & 0xfff | (Math.floor(rdev / 2 ** 32) & ~0xfff);
  const minor = (rdev & 0xff) | (Math.floor(rdev / 4096) & ~0xff & 0xfffff);
  return { major, minor };
}

/** True for an overlay whiteout (character device 0:0). */
export function isOverlayWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/** Directory entries sorted byte-wise (deterministic across locales). */
export async function sortedEntries(dir: string): Promise<string[]> {
  const names = await readdir(dir);
  return names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

/** Wait until a writable drains or closes, without leaving listeners behind. */
function drainOrClose(e: NodeJS.EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      e.off('drain', done);
      e.off('close', done);
      resolve();
    };
    e.on('drain', done);
    e.on('close', done);
  });
}

/**
 * Write one entry into a tar-stream pack, honouring backpressure; `source` is a host file path or a
 * function opening the body stream. Resolves when the entry is in; rejects if the pack goes away.
 */
export async function writeTarEntry(pack: Pack, header: tarStream.Headers & { pax?: Record<string, string> }, source?: string | (() => Readable)): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (err?: unknown): void => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve();
    };
    const e = pack.entry(header, (err) => settle(err ?? undefined));
    // the consumer went away (pack destroyed): stop instead of waiting for a drain that never comes
    e.once('close', () => settle(new Error('tar stream closed')));
    if (source === undefined) {
      e.end();
      return;
    }
    (async () => {
      const rs = typeof source === 'string' ? createReadStream(source, { highWaterMark: 1 << 20 }) : source();
      try {
        for await (const chunk of rs) {
          if (settled) return;
          if (!e.write(chunk)) await drainOrClose(e);
        }
      } finally {
        rs.destroy();
      }
      e.end();
    })().catch((err: unknown) => {
      e.destroy(err as Error);
      settle(err);
    });
  });
}

/** Per-pack state: hardlink map and optional xattrs. */
interface PackState {
  links: Map<string, string>;
  xattrs?: Map<string, Map<string, Buffer>>;
  /** Told of each regular file whose content is packed (size > 0): its tar name and size. */
  onContent?: (name: string, size: number) => void;
}

function paxFor(state: PackState, hostPath: string): Record<string, string> | undefined {
  const x = state.xattrs?.get(hostPath);
  if (!x) return undefined;
  const pax: Record<string, string> = {};
  for (const [k, v] of x) if (!k.startsWith('trusted.overlay.')) pax[`SCHILY.xattr.${k}`] = v.toString('utf8');
  return Object.keys(pax).length ? pax : undefined;
}

/** Emit one filesystem object as a tar entry (no recursion). Sockets are skipped. */
async function emitObject(pack: Pack, state: PackState, hostPath: string, name: string, st: Stats): Promise<void> {
  const header: tarStream.Headers & { pax?: Record<string, string> } = {
    name,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    mtime: st.mtime,
  };
  const pax = paxFor(state, hostPath);
  if (pax) header.pax = pax;
  if (st.isDirectory()) {
    header.type = 'directory';
    await writeTarEntry(pack, header);
  } else if (st.isFile()) {
    const key = `${st.dev}:${st.ino}`;
    const first = st.nlink > 1 ? state.links.get(key) : undefined;
    if (first !== undefined) {
      header.type = 'link';
      header.linkname = first;
      header.size = 0;
      await writeTarEntry(pack, header);
    } else {
      if (st.nlink > 1) state.links.set(key, name);
      header.type = 'file';
      header.size = st.size;
      await writeTarEntry(pack, header, hostPath);
      if (st.size > 0) state.onContent?.(name, st.size);
    }
  } else if (st.isSymbolicLink()) {
    header.type = 'symlink';
    header.linkname = await readlink(hostPath);
    await writeTarEntry(pack, header);
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    const { major, minor } = splitRdev(st.rdev);
    header.type = st.isCharacterDevice() ? 'character-device' : 'block-device';
    header.devmajor = major;
    header.devminor = minor;
    await writeTarEntry(pack, header);
  } else if (st.isFIFO()) {
    header.type = 'fifo';
    await writeTarEntry(pack, header);
  }
}

/** Run a producer into a tar pack and expose it as a byte Readable; producer errors destroy it. */
function packStream(produce: (pack: Pack) => Promise<void>): Readable {
  const pack = tarStream.pack();
  produce(pack).then(
    () => pack.finalize(),
    (err: unknown) => pack.destroy(err as Error),
  );
  return Readable.from(pack as AsyncIterable<Buffer>, { objectMode: false });
}

async function walkTree(pack: Pack, state: PackState, hostDir: string, prefix: string): Promise<void> {
  for (const n of await sortedEntries(hostDir)) {
    const p = join(hostDir, n);
    const st = await lstat(p);
    const name = prefix === '' ? n : `${prefix}/${n}`;
    await emitObject(pack, state, p, name, st);
    if (st.isDirectory()) await walkTree(pack, state, p, name);
  }
}

/** A tar of everything under `dir` (not `dir` itself), hardlinks kept, deterministic order. */
export function packTree(dir: string): Readable {
  return packStream(async (pack) => {
    await walkTree(pack, { links: new Map() }, dir, '');
  });
}

/** Options of {@link packLayerFromUpper}. */
export interface PackLayerOptions {
  /**
   * false: the tree has no xattrs (one the caller wrote itself), so none are read (that takes a
   * `getfattr` process). Default true.
   */
  xattrs?: boolean;
  /** Filled in as the tar is written: bytes of regular-file content packed. */
  stats?: { fileBytes: number };
  /**
   * Told of each regular file whose content is packed (size > 0), in tar order: its path relative
   * to the upper dir and its size (a tar-split recipe pairs these with the tar's content segments).
   */
  onContent?: (path: string, size: number) => void;
}

/**
 * A layer tar of an overlay upper dir: whiteouts (char 0:0) become `.wh.<name>` entries, opaque
 * directories get a `.wh..wh..opq` entry; other xattrs are kept as PAX records.
 */
export function packLayerFromUpper(upperDirIn: string, opts: PackLayerOptions = {}): Readable {
  const upperDir = resolve(upperDirIn);
  return packStream(async (pack) => {
    const xattrs = opts.xattrs === false ? new Map<string, Map<string, Buffer>>() : await dumpXattrs(upperDir);
    const state: PackState = { links: new Map(), xattrs, ...(opts.onContent ? { onContent: opts.onContent } : {}) };
    const walk = async (hostDir: string, prefix: string): Promise<void> => {
      for (const n of await sortedEntries(hostDir)) {
        const p = join(hostDir, n);
        const st = await lstat(p);
        const name = prefix === '' ? n : `${prefix}/${n}`;
        if (isOverlayWhiteout(st)) {
          const wh = prefix === '' ? `.wh.${n}` : `${prefix}/.wh.${n}`;
          await writeTarEntry(pack, { name: wh, type: 'file', size: 0, mode: 0o644, uid: 0, gid: 0, mtime: st.mtime });
          continue;
        }
        await emitObject(pack, state, p, name, st);
        if (opts.stats && st.isFile()) opts.stats.fileBytes += st.size;
        if (st.isDirectory()) {
          if (xattrs.get(p)?.get(OPAQUE_XATTR)?.toString() === 'y') {
            await writeTarEntry(pack, { name: `${name}/.wh..wh..opq`, type: 'file', size: 0, mode: 0o644, uid: 0, gid: 0, mtime: st.mtime });
          }
          await walk(p, name);
        }
      }
    };
    // an opaque upper root would hide the whole image: represent it at the top level
    if (xattrs.get(upperDir)?.get(OPAQUE_XATTR)?.toString() === 'y') {
      await writeTarEntry(pack, { name: '.wh..wh..opq', type: 'file', size: 0, mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) });
    }
    await walk(upperDir, '');
  });
}

/**
 * Tar of one path inside a rootfs, named by its base name (`docker cp` / GET archive). A final
 * symlink is archived as a link unless the path ends in "/" or "/.". Throws not-found.
 */
export async function packPath(root: string, path: string): Promise<Readable> {
  const host = await resolveRequestPath(root, path);
  let st: Stats;
  try {
    st = await lstat(host);
  } catch {
    throw notFound(`Could not find the file ${path} in container`);
  }
  const base = requestBaseName(path);
  const name = /\/\.$/.test(path) || base === '/' ? '.' : base;
  return packStream(async (pack) => {
    const state: PackState = { links: new Map() };
    await emitObject(pack, state, host, name, st);
    if (st.isDirectory()) await walkTree(pack, state, host, name);
  });
}
