/**
 * Looking into a stack of unpacked image layers without mounting it (an overlay mount and unmount
 * are two processes): enough to decide where a COPY goes and what the directories it passes
 * through look like.
 */
import type { Stats } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * lstat of an absolute path `p` in the overlay union of `layers` (lowest first; `opaque` holds each
 * layer's opaque directories relative to its root, "" = the root), without mounting it: the topmost
 * layer holding `p` decides (a whiteout: absent); a layer that has an ancestor of `p` as a
 * non-directory (whiteout, file, symlink) or as an opaque directory hides the layers below. Like
 * an lstat in a mounted view, except that symlinks among the ancestors are not followed: callers
 * look at ancestors first and stop at a symlink.
 */
export async function unionLstat(layers: readonly UnionLayer[], p: string): Promise<Stats | undefined> {
  return (await unionFind(layers, p))?.st;
}

/** One layer of a stack seen by {@link unionLstat}. */
export interface UnionLayer {
  dir: string;
  opaque: ReadonlySet<string>;
}

/** {@link unionLstat}, with the directory of the layer that holds `p`. */
export async function unionFind(layers: readonly UnionLayer[], p: string): Promise<{ st: Stats; dir: string } | undefined> {
  const comps = p.split('/').filter((c) => c !== '' && c !== '.');
  for (let i = layers.length - 1; i >= 0; i--) {
    const l = layers[i]!;
    if (comps.length === 0) {
      const st = await lstat(l.dir).catch(() => undefined);
      return st && { st, dir: l.dir };
    }
    let hides = l.opaque.has('');
    for (let k = 0; k < comps.length; k++) {
      const rel = comps.slice(0, k + 1).join('/');
      const st = await lstat(join(l.dir, rel)).catch(() => undefined);
      if (k === comps.length - 1) {
        if (st) return st.isCharacterDevice() && st.rdev === 0 ? undefined : { st, dir: l.dir };
        break;
      }
      if (!st) break;
      if (!st.isDirectory()) return undefined;
      if (l.opaque.has(rel)) hides = true;
    }
    if (hides) return undefined;
  }
  return undefined;
}

/**
 * An image's layer dirs (lowest first) as a stack for {@link unionLstat}. `opaque[i]` undefined (a
 * layer recorded before berth kept its opaque dirs): none assumed for it.
 */
export function layerStack(dirs: readonly string[], opaque?: ReadonlyArray<readonly string[] | undefined>): UnionLayer[] {
  return dirs.map((dir, i) => ({ dir, opaque: new Set(opaque?.[i] ?? []) }));
}

