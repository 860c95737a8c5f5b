/**
 * `berth cp`: copy between the local filesystem and a container through the archive endpoints
 * (HEAD/GET/PUT /containers/{id}/archive), packing and unpacking tar streams locally.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import * as tar from 'tar-stream';

import { ApiError } from '../../client/index.js';
import { flagBool, parseArgs, UsageError } from '../args.js';
import { StatusError, type Cli } from '../context.js';
import { encPath, requireArgs } from './common.js';

/** Decoded `X-Docker-Container-Path-Stat`. */
export interface PathStat { name: string; size: number; mode: number; mtime: string; linkTarget: string }

const GO_DIR = 2 ** 31;

/** Decode the stat header (std base64 JSON). */
export function decodePathStat(h: string | string[] | undefined): PathStat | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  if (!v) return undefined;
  try {
    return JSON.parse(Buffer.from(v, 'base64').toString('utf8')) as PathStat;
  } catch {
    return undefined;
  }
}

/** True when a Go FileMode has the directory bit. */
export function isDirMode(mode: number): boolean {
  return Math.floor(mode / GO_DIR) % 2 === 1;
}

/** Split `container:path`; a local path containing `/` before `:` or starting with `.`/`/` is local. */
export function splitCpArg(arg: string): { container?: string; path: string } {
  if (arg.startsWith('/') || arg.startsWith('.')) return { path: arg };
  const i = arg.indexOf(':');
  if (i <= 0) return { path: arg };
  const c = arg.slice(0, i);
  if (c.includes('/')) return { path: arg };
  return { container: c, path: arg.slice(i + 1) };
}

/** Pack a local path into a tar stream whose top entry is named `as`. */
export function packLocal(src: string, as: string, followLink: boolean): tar.Pack {
  const pack = tar.pack();
  const add = async (p: string, name: string): Promise<void> => {
    const st = followLink && p === src ? await fs.promises.stat(p) : await fs.promises.lstat(p);
    const base = { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
    if (st.isDirectory()) {
      await new Promise<void>((res, rej) => pack.entry({ ...base, type: 'directory' }, (e) => (e ? rej(e) : res())));
      for (const child of (await fs.promises.readdir(p)).sort()) await add(path.join(p, child), `${name}/${child}`);
    } else if (st.isSymbolicLink()) {
      const target = await fs.promises.readlink(p);
      await new Promise<void>((res, rej) => pack.entry({ ...base, type: 'symlink', linkname: target }, (e) => (e ? rej(e) : res())));
    } else if (st.isFile()) {
      const entry = pack.entry({ ...base, type: 'file', size: st.size });
      await pipeline(fs.createReadStream(p), entry);
    }
  };
  add(src, as).then(() => pack.finalize(), (err: Error) => pack.destroy(err));
  return pack;
}

/**
 * Extract a tar stream into `destDir`; when `rename` is given, the first path component of every
 * entry (the source's basename) is replaced with it.
 */
export async function extractLocal(src: Readable, destDir: string, rename: string | undefined): Promise<void> {
  const ex = tar.extract();
  const done = pipeline(src, ex);
  const rootDir = path.resolve(destDir);
  const dirModes: [string, number][] = [];
  for await (const entry of ex) {
    const h = entry.header;
    let name = h.name.replace(/^\.\//, '').replace(/\/+$/, '');
    if (rename !== undefined && name) {
      const parts = name.split('/');
      parts[0] = rename;
      name = parts.join('/');
    }
    const target = path.resolve(rootDir, name);
    if (target !== rootDir && !target.startsWith(rootDir + path.sep)) {
      entry.resume();
      continue;
    }
    const mode = (h.mode ?? 0o644) & 0o7777;
    switch (h.type) {
      case 'directory':
        await fs.promises.mkdir(target, { recursive: true });
        dirModes.push([target, mode]);
        entry.resume();
        break;
      case 'symlink':
        await fs.promises.mkdir(path.dirname(target), { recursive: true });
        await fs.promises.rm(target, { force: true });
        await fs.promises.symlink(h.linkname ?? '', target);
        entry.resume();
        break;
      case 'link': {
        let ln = (h.linkname ?? '').replace(/^\.\//, '');
        if (rename !== undefined) {
          const parts = ln.split('/');
          parts[0] = rename;
          ln = parts.join('/');
        }
        await fs.promises.rm(target, { force: true });
        await fs.promises.link(path.resolve(rootDir, ln), target);
        entry.resume();
        break;
      }
      case 'file':
      case 'contiguous-file':
      case null:
      case undefined: {
        await fs.promises.mkdir(path.dirname(target), { recursive: true });
        await fs.promises.rm(target, { force: true }).catch(() => undefined);
        await pipeline(entry, fs.createWriteStream(target, { mode }));
        await fs.promises.chmod(target, mode);
        if (h.mtime) await fs.promises.utimes(target, h.mtime, h.mtime).catch(() => undefined);
        break;
      }
      default:
        entry.resume();
    }
  }
  await done;
  for (const [d, m] of dirModes.reverse()) await fs.promises.chmod(d, m).catch(() => undefined);
}

/** `berth cp [-a] [-L] [-q] SRC DEST` where exactly one side is `CONTAINER:PATH`. */
export async function cp(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'archive', short: 'a', type: 'bool' },
    { name: 'follow-link', short: 'L', type: 'bool' },
    { name: 'quiet', short: 'q', type: 'bool' },
  ], { command: 'cp' });
  requireArgs('cp', p.args, 2, 2);
  const src = splitCpArg(p.args[0]!);
  const dst = splitCpArg(p.args[1]!);
  if (src.container && dst.container) throw new UsageError('copying between containers is not supported');
  if (!src.container && !dst.container) throw new UsageError('must specify at least one container source');
  const c = await cli.client();
  if (src.container) {
    // container → local
    const cpath = `/containers/${encPath(src.container)}/archive`;
    const srcPath = src.path || '/';
    const res = await c.request('GET', cpath, { query: { path: srcPath } });
    const stat = decodePathStat(res.headers['x-docker-container-path-stat']);
    if (dst.path === '-') {
      await pipeline(res, cli.out, { end: false });
      return 0;
    }
    const destExists = fs.existsSync(dst.path);
    const destIsDir = destExists && fs.statSync(dst.path).isDirectory();
    const srcIsDir = stat ? isDirMode(stat.mode) : false;
    if (dst.path.endsWith('/') && !destExists) {
      res.resume();
      throw new StatusError(1, `Error: destination directory "${dst.path}" must exist`);
    }
    if (destExists && !destIsDir && srcIsDir) {
      res.resume();
      throw new StatusError(1, `Error: cannot copy a directory to a file`);
    }
    if (destIsDir && !(srcIsDir && srcPath.endsWith('/.'))) await extractLocal(res, dst.path, undefined);
    else if (destIsDir) await extractLocal(res, dst.path, '.');
    else await extractLocal(res, path.dirname(dst.path), path.basename(dst.path));
    return 0;
  }
  // local → container
  const cpath = `/containers/${encPath(dst.container!)}/archive`;
  const destPath = dst.path || '/';
  let dstStat: PathStat | undefined;
  try {
    const res = await c.request('HEAD', cpath, { query: { path: destPath } });
    res.resume();
    dstStat = decodePathStat(res.headers['x-docker-container-path-stat']);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
  }
  const query = { path: destPath, noOverwriteDirNonDir: 'true', copyUIDGID: flagBool(p, 'archive') ? 'true' : undefined };
  if (src.path === '-') {
    await c.request('PUT', cpath, { query, body: cli.stdin, contentType: 'application/x-tar' }).then((r) => r.resume());
    return 0;
  }
  let lst: fs.Stats;
  try {
    lst = flagBool(p, 'follow-link') ? fs.statSync(src.path) : fs.lstatSync(src.path);
  } catch {
    throw new StatusError(1, `lstat ${path.resolve(src.path)}: no such file or directory`);
  }
  const srcBase = path.basename(path.resolve(src.path));
  let putDir: string;
  let entryName: string;
  if (dstStat && isDirMode(dstStat.mode)) {
    putDir = destPath;
    entryName = src.path.endsWith('/.') && lst.isDirectory() ? '.' : srcBase;
  } else {
    if (destPath.endsWith('/')) throw new StatusError(1, `Error response from daemon: Could not find the file ${destPath} in container ${dst.container}`);
    if (dstStat && lst.isDirectory()) throw new StatusError(1, 'Error: cannot copy directory to a file');
    putDir = path.posix.dirname(destPath);
    entryName = path.posix.basename(destPath);
  }
  const pack = packLocal(src.path, entryName, flagBool(p, 'follow-link'));
  const r = await c.request('PUT', cpath, { query: { ...query, path: putDir }, body: pack, contentType: 'application/x-tar' });
  r.resume();
  return 0;
}
