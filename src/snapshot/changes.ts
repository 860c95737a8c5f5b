/** Docker's `GET /containers/{id}/changes` computed from an overlay upper dir and its lower dirs. */
import { lstat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Stats } from 'node:fs';

import { isOverlayWhiteout, sortedEntries } from './pack.js';
import { dumpXattrs, OPAQUE_XATTR } from './sys-ops.js';

/** Docker change kinds. */
export const ChangeKind = { modified: 0, added: 1, deleted: 2 } as const;

/** One change: an absolute in-container path and its kind. */
export interface Change {
  Path: string;
  Kind: number;
}

async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch {
    return undefined;
  }
}

/**
 * Whether `rel` exists in the merged view of `lowerDirs` (lowest first): the highest layer that
 * has the path or a whiteout of it (or of a parent) decides. Opaque dirs in lower layers are not
 * consulted (a hidden lower entry is then reported as modified rather than added).
 */
async function existsInLowers(lowerDirs: readonly string[], rel: string[]): Promise<boolean> {
  for (let i = lowerDirs.length - 1; i >= 0; i--) {
    const layer = lowerDirs[i]!;
    for (let j = 1; j <= rel.length; j++) {
      const st = await lstatOrUndefined(join(layer, ...rel.slice(0, j)));
      if (st && isOverlayWhiteout(st)) return false;
      if (!st) break;
      if (j === rel.length) return true;
    }
  }
  return false;
}

/** Names in a directory of the merged lower view (used for opaque upper dirs). */
async function lowerNames(lowerDirs: readonly string[], rel: string[]): Promise<Set<string>> {
  const names = new Set<string>();
  for (const layer of lowerDirs) {
    try {
      for (const n of await sortedEntries(join(layer, ...rel))) names.add(n);
    } catch {
      /* not a dir in this layer */
    }
  }
  const out = new Set<string>();
  for (const n of names) if (await existsInLowers(lowerDirs, [...rel, n])) out.add(n);
  return out;
}

/**
 * Changes of an overlay upper dir relative to `lowerDirs` (lowest first), sorted by path:
 * whiteouts are deleted, entries also present below are modified, others added. An opaque
 * directory hides everything below it: lower children missing from the upper are deleted.
 */
export async function changes(upperDirIn: string, lowerDirs: readonly string[]): Promise<Change[]> {
  const upperDir = resolve(upperDirIn);
  const opaque = await dumpXattrs(upperDir, `^${OPAQUE_XATTR.replace(/\./g, '\\.')}$`);
  const out: Change[] = [];
  const walk = async (dir: string, rel: string[], underOpaque: boolean): Promise<void> => {
    for (const n of await sortedEntries(dir)) {
      const p = join(dir, n);
      const r = [...rel, n];
      const path = `/${r.join('/')}`;
      const st = await lstat(p);
      if (isOverlayWhiteout(st)) {
        out.push({ Path: path, Kind: ChangeKind.deleted });
        continue;
      }
      const below = underOpaque ? false : await existsInLowers(lowerDirs, r);
      out.push({ Path: path, Kind: below ? ChangeKind.modified : ChangeKind.added });
      if (st.isDirectory()) {
        const isOpaque = opaque.get(p)?.get(OPAQUE_XATTR)?.toString() === 'y';
        if (isOpaque && below) {
          const upperNames = new Set(await sortedEntries(p));
          for (const ln of await lowerNames(lowerDirs, r)) {
            if (!upperNames.has(ln)) out.push({ Path: `${path}/${ln}`, Kind: ChangeKind.deleted });
          }
        }
        await walk(p, r, underOpaque || isOpaque);
      }
    }
  };
  await walk(upperDir, [], false);
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.Path), Buffer.from(b.Path)));
}
