/**
 * The build context on disk: the request's tar extracted (confined to a temp dir: entries and
 * symlinks cannot escape it), .dockerignore applied, and COPY/ADD source collection with globs,
 * symlinks resolved inside the context only, and a content hash (not mtime) for the cache.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Stats } from 'node:fs';

import { invalidArgument, notFound } from '../base/errors.js';
import { resolveInRoot } from '../snapshot/index.js';
import { IgnoreMatcher, readDockerignore } from './dockerignore.js';

/** Remove everything .dockerignore excludes (the Dockerfile and .dockerignore themselves stay readable by the caller first). */
export async function applyDockerignore(dir: string, keep: readonly string[] = []): Promise<void> {
  let text: string;
  try {
    text = await readFile(join(dir, '.dockerignore'), 'utf8');
  } catch {
    return;
  }
  const m = new IgnoreMatcher(readDockerignore(text));
  if (m.empty) return;
  const keepSet = new Set(keep.map((k) => posix.normalize(k).replace(/^\/+/, '')));
  // returns true when the directory still holds something
  const walk = async (rel: string): Promise<boolean> => {
    const names = await readdir(join(dir, rel));
    let kept = false;
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const st = await lstat(join(dir, r));
      if (st.isDirectory()) {
        const inner = await walk(r);
        if (!inner && m.ignores(r)) await rm(join(dir, r), { recursive: true, force: true });
        else kept = true;
      } else if (m.ignores(r) && !keepSet.has(r)) {
        await rm(join(dir, r), { force: true });
      } else {
        kept = true;
      }
    }
    return kept;
  };
  await walk('');
}

/** One file-system object to copy. */
export interface CopyEntry {
  /** Host path of the source. */
  host: string;
  /** Path relative to the copy's destination root ("" is the destination itself). */
  rel: string;
  st: Stats;
  linkTarget?: string;
}

/** Whether a source string holds glob characters. */
export function hasGlob(s: string): boolean {
  return /[*?[]/.test(s);
}

function globRe(p: string): RegExp {
  let re = '^';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const j = p.indexOf(']', i + 1);
      if (j < 0) re += '\\[';
      else {
        re += `[${p.slice(i + 1, j).replace(/^!/, '^')}]`;
        i = j;
      }
    } else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`);
}

/** Expand a glob source (relative to `root`) component by component; returns context-relative paths. */
async function expandGlob(root: string, pattern: string): Promise<string[]> {
  const comps = pattern.split('/').filter((c) => c !== '' && c !== '.');
  let cur = [''];
  for (const c of comps) {
    const next: string[] = [];
    for (const base of cur) {
      if (!hasGlob(c)) {
        next.push(base ? `${base}/${c}` : c);
        continue;
      }
      const re = globRe(c);
      let names: string[] = [];
      try {
        names = await readdir(await resolveInRoot(root, base || '/'));
      } catch {
        continue;
      }
      for (const n of names.sort()) if (re.test(n)) next.push(base ? `${base}/${n}` : n);
    }
    cur = next;
  }
  return cur;
}

/** A resolved COPY source: the top object plus, for a directory, everything below it. */
export interface ResolvedSource {
  /** The source as the user wrote it (for messages). */
  spec: string;
  isDir: boolean;
  /** Base name of the top object. */
  name: string;
  entries: CopyEntry[];
}

async function walkTree(host: string, rel: string, out: CopyEntry[]): Promise<void> {
  for (const n of (await readdir(host)).sort()) {
    const h = join(host, n);
    const r = rel ? `${rel}/${n}` : n;
    const st = await lstat(h);
    const e: CopyEntry = { host: h, rel: r, st };
    if (st.isSymbolicLink()) e.linkTarget = await readlink(h);
    out.push(e);
    if (st.isDirectory()) await walkTree(h, r, out);
  }
}

/**
 * Resolve COPY/ADD sources inside `root` (the context or a staged --from tree). Symlinks are
 * followed as if `root` were `/`, so nothing outside it is read. Missing sources fail with Docker's
 * message.
 */
export async function resolveSources(root: string, specs: readonly string[], what: string): Promise<ResolvedSource[]> {
  const out: ResolvedSource[] = [];
  for (const spec of specs) {
    const paths = hasGlob(spec) ? await expandGlob(root, spec) : [spec];
    if (paths.length === 0) throw notFound(`${what} failed: no source files were specified`);
    for (const p of paths) {
      const host = await resolveInRoot(root, posix.join('/', p));
      let st: Stats;
      try {
        st = await lstat(host);
      } catch {
        throw notFound(`${what} failed: file not found in build context or excluded by .dockerignore: stat ${p.replace(/^\/+/, '')}: file does not exist`);
      }
      const name = posix.basename(posix.join('/', p)) || '/';
      const entries: CopyEntry[] = [{ host, rel: '', st }];
      if (st.isDirectory()) await walkTree(host, '', entries);
      out.push({ spec: p, isDir: st.isDirectory(), name, entries });
    }
  }
  return out;
}

/** sha256 (hex) and inode of context files, recorded while the context was unpacked. */
export type FileDigests = Map<string, { sha256: string; ino: number }>;

async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}

/**
 * A hash of the sources' paths, modes, link targets and file contents (mtime is left out). A
 * file's content enters as its sha256, taken from `known` (hashed while the context arrived) when
 * the path still holds the same inode, else read now.
 */
export async function hashSources(sources: readonly ResolvedSource[], known?: FileDigests): Promise<string> {
  const h = createHash('sha256');
  for (const s of sources) {
    h.update(`S ${s.name} ${s.isDir}\n`);
    for (const e of s.entries) {
      h.update(`${e.rel}\0${e.st.mode}\0${e.linkTarget ?? ''}\0`);
      if (e.st.isFile()) {
        const k = known?.get(e.host);
        h.update(k && k.ino === e.st.ino ? k.sha256 : await fileSha256(e.host));
      }
      h.update('\n');
    }
  }
  return h.digest('hex');
}

/** Reject a destination escaping nothing but odd (kept simple): must be non-empty. */
export function checkDest(dest: string): void {
  if (dest === '') throw invalidArgument('COPY requires at least two arguments, but only one was provided. Destination could not be determined.');
}
