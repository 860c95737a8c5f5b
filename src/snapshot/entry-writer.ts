/**
 * Writes tar entries onto disk safely. Entry names are sanitised (leading "/" stripped like
 * Docker, any ".." component rejected); the parent directory comes from a resolver supplied by the
 * caller (strict for layers: no symlink may be crossed; in-root for `docker cp`), and the final
 * component is never followed: whatever is there is replaced, and files are opened O_NOFOLLOW|O_EXCL.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, copyFile, lchown, link, lstat, lutimes, mkdir, open, rm, symlink, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Stats } from 'node:fs';

import { invalidArgument } from '../base/errors.js';
import { DirectFileWriter } from './direct-write.js';
import { mkfifo, mknod, OPAQUE_XATTR, setXattr } from './sys-ops.js';
import type { TarBody, TarHeader } from './tar-read.js';

/** Split and check an entry name: strips leading "/" and "./", rejects "..". Empty = the root. */
export function sanitizeEntryName(name: string): string[] {
  const comps = name.split('/').filter((c) => c !== '' && c !== '.');
  if (comps.includes('..')) throw invalidArgument(`invalid tar entry ${JSON.stringify(name)}: path contains ".."`);
  return comps;
}

/** File content is written in batches of about this many bytes. */
const WRITE_BATCH = 1 << 20;

/** Write all of `bufs` at the file's position with writev (looping on short writes). */
async function writeAll(fh: FileHandle, bufs: Buffer[]): Promise<void> {
  let rest = bufs;
  for (;;) {
    const { bytesWritten } = await fh.writev(rest);
    let n = bytesWritten;
    let i = 0;
    while (i < rest.length && n >= rest[i]!.length) n -= rest[i++]!.length;
    if (i === rest.length) return;
    rest = [rest[i]!.subarray(n), ...rest.slice(i + 1)];
  }
}

/** How the writer finds host paths. */
export interface EntryWriterOptions {
  /** Host directory that will hold the entry with these components (creating missing dirs). */
  parentDir(comps: string[]): Promise<string>;
  /** Host path of an existing hardlink target named by these components (not followed). */
  linkTarget(comps: string[]): Promise<string>;
  /** Turn OCI whiteouts into overlay whiteouts (layers only). */
  whiteouts: boolean;
  /** 'tar' applies the entry's uid/gid; an object forces one owner; 'none' leaves the owner as is. */
  owner: 'tar' | 'none' | { uid: number; gid: number };
  /** Refuse to replace a directory with a non-directory or the reverse (docker cp). */
  noOverwriteDirNonDir?: boolean;
  /** Apply PAX `SCHILY.xattr.*` records (never `trusted.overlay.*`). */
  xattrs?: boolean;
  /**
   * Called with each regular file written from a tar body and the sha256 (hex) of its content,
   * computed while writing (the builder keys COPY steps by it without reading the file again).
   */
  onFileDigest?: (hostPath: string, sha256: string, ino: number) => void;
  /**
   * Called for each regular-file entry with content (size > 0), in order: with the host path its
   * bytes were written to, or undefined when they were not kept in a file (a whiteout entry with a
   * body, the root). The tar-split recorder pairs these with the tar's content segments.
   */
  onContent?: (hostPath: string | undefined, size: number) => void;
  /** Called when an entry replaces or removes something that was already there. */
  onReplace?: (hostPath: string) => void;
  /**
   * Write the content of big regular files with O_DIRECT (direct-write.ts), bypassing the page
   * cache. Synchronous writes: for a worker thread (a pull's layer worker), not the daemon's loop.
   */
  directIo?: boolean;
}

/** Files from this size on are written with O_DIRECT when {@link EntryWriterOptions.directIo} is set. */
const DIRECT_MIN = 256 * 1024;

async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Writes entries one at a time; call {@link finish} at the end to set directory times. */
export class EntryWriter {
  private readonly dirTimes: Array<[string, Date]> = [];
  /** Bytes of regular-file content written. */
  size = 0;
  /** Host paths of the directories made opaque (`.wh..wh..opq` entries), in order. */
  readonly opaqueDirs: string[] = [];
  constructor(private readonly opts: EntryWriterOptions) {}

  /**
   * Write one entry. `copyFrom` (a host file) gives a regular file's content instead of `body`; it
   * is copied with copy_file_range (in the kernel, no pass through JS buffers).
   */
  async write(h: TarHeader, body: TarBody, copyFrom?: string): Promise<void> {
    const type = h.type ?? 'file';
    if (!this.opts.onContent || (type !== 'file' && type !== 'contiguous-file') || !(h.size && h.size > 0)) {
      await this.writeEntry(h, body, copyFrom);
      return;
    }
    const before = this.size;
    const path = await this.writeEntry(h, body, copyFrom);
    // the file holds exactly the entry's bytes, or the recorder is told they were not kept
    this.opts.onContent(path !== undefined && this.size - before === h.size ? path : undefined, h.size);
  }

  /** {@link write}; returns the host path a regular file's content was written to. */
  private async writeEntry(h: TarHeader, body: TarBody, copyFrom?: string): Promise<string | undefined> {
    const comps = sanitizeEntryName(h.name);
    const type = h.type ?? 'file';
    if (comps.length === 0) return undefined; // the root itself ("./"): keep the destination's own metadata
    const base = comps[comps.length - 1]!;
    const parent = await this.opts.parentDir(comps);
    const path = join(parent, base);

    if (this.opts.whiteouts && base.startsWith('.wh.')) {
      if (base === '.wh..wh..opq') {
        await setXattr(parent, OPAQUE_XATTR, Buffer.from('y'));
        this.opaqueDirs.push(parent);
      } else if (!base.startsWith('.wh..wh.')) {
        const victim = join(parent, base.slice(4));
        if (base.length === 4) throw invalidArgument(`invalid whiteout entry ${JSON.stringify(h.name)}`);
        if (this.opts.onReplace && (await lstatOrUndefined(victim))) this.opts.onReplace(victim);
        await rm(victim, { recursive: true, force: true });
        await mknod(victim, 'c', 0, 0, 0);
        if (this.opts.owner === 'tar') await lchown(victim, h.uid ?? 0, h.gid ?? 0);
      }
      return;
    }

    const existing = await lstatOrUndefined(path);
    const isDir = type === 'directory';
    if (existing) {
      if (this.opts.noOverwriteDirNonDir) {
        if (existing.isDirectory() && !isDir) throw invalidArgument(`cannot overwrite directory ${JSON.stringify(path)} with non-directory ${JSON.stringify(h.name)}`);
        if (!existing.isDirectory() && isDir) throw invalidArgument(`cannot overwrite non-directory ${JSON.stringify(path)} with directory ${JSON.stringify(h.name)}`);
      }
      if (!(existing.isDirectory() && isDir)) {
        this.opts.onReplace?.(path);
        if (existing.isDirectory()) await rm(path, { recursive: true, force: true });
        else await unlink(path);
      }
    }
    const mode = (h.mode ?? (isDir ? 0o755 : 0o644)) & 0o7777;
    let contentPath: string | undefined;
    switch (type) {
      case 'directory':
        if (!existing || !existing.isDirectory()) await mkdir(path, { mode: 0o700 });
        break;
      case 'file':
      case 'contiguous-file': {
        if (copyFrom !== undefined) {
          await copyFile(copyFrom, path, constants.COPYFILE_EXCL);
          this.size += (await lstat(path)).size;
          break;
        }
        const hash = this.opts.onFileDigest ? createHash('sha256') : undefined;
        const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        if (this.opts.directIo && !hash && (h.size ?? 0) >= DIRECT_MIN) {
          const dw = new DirectFileWriter(fh.fd);
          try {
            for await (const chunk of body) {
              dw.write(chunk);
              this.size += chunk.length;
            }
            dw.end();
          } finally {
            dw.release();
            await fh.close();
          }
          contentPath = path;
          break;
        }
        let ino = 0;
        try {
          // batch the tar stream's small chunks into writes of up to 1 MiB (one writev each, no copy)
          let batch: Buffer[] = [];
          let batched = 0;
          for await (const chunk of body) {
            batch.push(chunk);
            hash?.update(chunk);
            batched += chunk.length;
            this.size += chunk.length;
            if (batched >= WRITE_BATCH) {
              await writeAll(fh, batch);
              batch = [];
              batched = 0;
            }
          }
          if (batched > 0) await writeAll(fh, batch);
          if (hash) ino = (await fh.stat()).ino;
        } finally {
          await fh.close();
        }
        if (hash) this.opts.onFileDigest!(path, hash.digest('hex'), ino);
        contentPath = path;
        break;
      }
      case 'link': {
        const target = await this.opts.linkTarget(sanitizeEntryName(h.linkname ?? ''));
        const ts = await lstatOrUndefined(target);
        if (!ts) throw invalidArgument(`invalid hardlink ${JSON.stringify(h.name)}: target ${JSON.stringify(h.linkname)} not found in the archive`);
        if (ts.isDirectory()) throw invalidArgument(`invalid hardlink ${JSON.stringify(h.name)}: target is a directory`);
        await link(target, path);
        return; // a hardlink shares the target's inode: do not change its owner/mode/times
      }
      case 'symlink':
        await symlink(h.linkname ?? '', path);
        break;
      case 'character-device':
      case 'block-device':
        await mknod(path, type === 'character-device' ? 'c' : 'b', h.devmajor ?? 0, h.devminor ?? 0, mode);
        break;
      case 'fifo':
        await mkfifo(path, mode);
        break;
      default:
        return; // pax/gnu meta entries are consumed by tar-stream; anything else is skipped
    }
    if (this.opts.owner === 'tar') await lchown(path, h.uid ?? 0, h.gid ?? 0);
    else if (this.opts.owner !== 'none') await lchown(path, this.opts.owner.uid, this.opts.owner.gid);
    if (type !== 'symlink') await chmod(path, mode);
    if (this.opts.xattrs && h.pax) {
      for (const [k, v] of Object.entries(h.pax)) {
        if (!k.startsWith('SCHILY.xattr.')) continue;
        const name = k.slice('SCHILY.xattr.'.length);
        if (name.startsWith('trusted.overlay.')) continue;
        await setXattr(path, name, Buffer.from(v, 'utf8'));
      }
    }
    const mtime = h.mtime ?? new Date(0);
    if (isDir) this.dirTimes.push([path, mtime]);
    else await lutimes(path, mtime, mtime);
    return contentPath;
  }

  /** Set directory mtimes (deepest first), after all children were written. */
  async finish(): Promise<void> {
    for (const [p, t] of this.dirTimes.reverse()) await lutimes(p, t, t);
    this.dirTimes.length = 0;
  }
}

/**
 * A strict parent resolver for unpacking into a fresh directory: every parent component must be
 * a real directory inside `dest` (missing ones are created 0755); a symlink or a file is an error.
 */
export function strictParentDir(dest: string): (comps: string[]) => Promise<string> {
  return async (comps) => {
    let p = dest;
    for (const c of comps.slice(0, -1)) {
      p = join(p, c);
      const st = await lstatOrUndefined(p);
      if (!st) await mkdir(p, { mode: 0o755 });
      else if (st.isSymbolicLink()) throw invalidArgument(`invalid tar entry ${JSON.stringify(comps.join('/'))}: parent ${JSON.stringify(c)} is a symlink (would write outside the layer)`);
      else if (!st.isDirectory()) throw invalidArgument(`invalid tar entry ${JSON.stringify(comps.join('/'))}: parent ${JSON.stringify(c)} is not a directory`);
    }
    return p;
  };
}

/** Strict resolver for hardlink targets inside `dest`: no symlink may be crossed on the way. */
export function strictLinkTarget(dest: string): (comps: string[]) => Promise<string> {
  return async (comps) => {
    if (comps.length === 0) throw invalidArgument('invalid hardlink: empty target');
    let p = dest;
    for (const c of comps.slice(0, -1)) {
      p = join(p, c);
      const st = await lstatOrUndefined(p);
      if (!st || !st.isDirectory()) throw invalidArgument(`invalid hardlink target ${JSON.stringify(comps.join('/'))}: not inside the archive`);
    }
    return join(p, comps[comps.length - 1]!);
  };
}
