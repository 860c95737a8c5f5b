/** Disk usage of a directory tree (`system df`): apparent sizes of the regular files and symlinks in it. */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Sum the sizes of the files under `dir` (not following symlinks; hard-linked files counted once).
 * A missing directory is 0; entries that vanish while walking are skipped.
 */
export async function dirSize(dir: string): Promise<number> {
  const seen = new Set<string>();
  let total = 0;
  const walk = async (p: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(p);
    } catch {
      return;
    }
    for (const n of names) {
      const q = join(p, n);
      const st = await lstat(q).catch(() => undefined);
      if (!st) continue;
      if (st.isDirectory()) await walk(q);
      else if (st.isFile() || st.isSymbolicLink()) {
        if (st.nlink > 1) {
          const key = `${st.dev}:${st.ino}`;
          if (seen.has(key)) continue;
          seen.add(key);
        }
        total += st.size;
      }
    }
  };
  await walk(dir);
  return total;
}
