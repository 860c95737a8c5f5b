/**
 * The build cache: step key → resulting image id, one small file per key under
 * `<root>/build-cache/`, written atomically, so it survives a daemon restart. Keys follow Docker's
 * rule: parent image id + instruction + content hash of COPY/ADD sources + the build args used.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

import { writeFileAtomic } from '../host/atomic-fs.js';
import { dirSize } from '../host/dir-size.js';

/** What a cache key is made of. */
export interface CacheKeyParts {
  parent: string;
  instruction: string;
  contentHash?: string;
  args?: readonly string[];
}

/** Compute the hex key of a step. */
export function cacheKey(p: CacheKeyParts): string {
  const h = createHash('sha256');
  h.update(`v1\n${p.parent}\n${p.instruction}\n${p.contentHash ?? ''}\n${(p.args ?? []).join('\n')}`);
  return h.digest('hex');
}

/** File-backed step cache. */
export class BuildCache {
  private readonly dir: string;

  constructor(root: string) {
    this.dir = join(root, 'build-cache');
  }

  /** The image id recorded for a key, or undefined. */
  async get(key: string): Promise<string | undefined> {
    try {
      const v = (await readFile(join(this.dir, key), 'utf8')).trim();
      return /^sha256:[0-9a-f]{64}$/.test(v) ? v : undefined;
    } catch {
      return undefined;
    }
  }

  /** Record a key's image id. */
  async put(key: string, imageId: string): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    // no fsync: an entry lost to a power cut is a cache miss (get() ignores anything but an id)
    await writeFileAtomic(join(this.dir, key), `${imageId}\n`, 0o644, { sync: false });
  }

  /** Forget one key (its image is gone). */
  async delete(key: string): Promise<void> {
    await rm(join(this.dir, key), { force: true });
  }

  /** Remove every directory under `dir` (RUN cache mounts); returns their names and byte size. */
  async pruneDirs(dir: string): Promise<{ keys: string[]; bytes: number }> {
    let names: string[] = [];
    try {
      names = await readdir(dir);
    } catch {
      return { keys: [], bytes: 0 };
    }
    let bytes = 0;
    const keys: string[] = [];
    for (const n of names) {
      bytes += await dirSize(join(dir, n));
      await rm(join(dir, n), { recursive: true, force: true });
      keys.push(`cache-mount:${n}`);
    }
    return { keys, bytes };
  }

  /** Drop every entry; returns the removed keys and their byte size. */
  async prune(): Promise<{ keys: string[]; bytes: number }> {
    let names: string[] = [];
    try {
      names = await readdir(this.dir);
    } catch {
      return { keys: [], bytes: 0 };
    }
    let bytes = 0;
    const keys: string[] = [];
    for (const n of names) {
      if (!/^[0-9a-f]{64}$/.test(n)) continue;
      bytes += (await stat(join(this.dir, n)).catch(() => ({ size: 0 }))).size;
      await rm(join(this.dir, n), { force: true });
      keys.push(n);
    }
    return { keys, bytes };
  }
}
