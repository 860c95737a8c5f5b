/**
 * User-namespace remapping (`berthd --userns-remap`), as Docker does it: container root is a host
 * uid from a subordinate range, and image layers are seen through copies whose ownership is shifted
 * into that range (one copy per layer and range, made once and shared, like Docker's per-remap graph).
 */
import { readFile, mkdir, rename, rm, lstat, lchown, readdir } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { invalidArgument } from '../base/errors.js';
import { writeFileAtomic } from '../host/atomic-fs.js';

/** A contiguous id range: container id 0 → host id `hostID`, `size` ids. */
export interface IdRange {
  hostID: number;
  size: number;
}

/** The remap in force: uid and gid ranges. */
export interface Remap {
  user: string;
  uid: IdRange;
  gid: IdRange;
}

const DEFAULT_USER = 'berthremap';

/** Parse /etc/subuid-style text and return the first range of `user`. */
export function findSubIdRange(text: string, user: string): IdRange | undefined {
  for (const line of text.split('\n')) {
    const [name, start, count] = line.trim().split(':');
    if (name === user && start && count && /^\d+$/.test(start) && /^\d+$/.test(count)) {
      return { hostID: Number(start), size: Number(count) };
    }
  }
  return undefined;
}

/** Pick a free range start after every range already listed (65536-aligned). */
export function nextFreeStart(text: string): number {
  let end = 0;
  for (const line of text.split('\n')) {
    const [, start, count] = line.trim().split(':');
    if (start && count && /^\d+$/.test(start) && /^\d+$/.test(count)) end = Math.max(end, Number(start) + Number(count));
  }
  return end === 0 ? 100000 : Math.ceil(end / 65536) * 65536;
}

async function readText(p: string): Promise<string> {
  try {
    return await readFile(p, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Resolve the daemon's remap setting. "default" uses (and, on first use, adds to /etc/subuid and
 * /etc/subgid) a range for the user "berthremap"; any other value names a user that must already
 * have ranges in both files.
 */
export async function resolveRemap(setting: string): Promise<Remap> {
  const user = setting === 'default' ? DEFAULT_USER : setting.split(':')[0]!;
  const subuid = await readText('/etc/subuid');
  const subgid = await readText('/etc/subgid');
  let uid = findSubIdRange(subuid, user);
  let gid = findSubIdRange(subgid, user);
  if ((!uid || !gid) && setting === 'default') {
    if (!uid) {
      uid = { hostID: nextFreeStart(subuid), size: 65536 };
      await writeFileAtomic('/etc/subuid', `${subuid}${subuid && !subuid.endsWith('\n') ? '\n' : ''}${user}:${uid.hostID}:${uid.size}\n`);
    }
    if (!gid) {
      gid = { hostID: nextFreeStart(subgid), size: 65536 };
      await writeFileAtomic('/etc/subgid', `${subgid}${subgid && !subgid.endsWith('\n') ? '\n' : ''}${user}:${gid.hostID}:${gid.size}\n`);
    }
  }
  if (!uid || !gid) throw invalidArgument(`userns-remap: no subordinate id ranges for user "${user}" in /etc/subuid and /etc/subgid`);
  return { user, uid, gid };
}

/** Shift ownership of every entry under dir (not following symlinks) by the remap. */
export async function shiftTree(dir: string, remap: Remap): Promise<void> {
  const shift = async (p: string): Promise<void> => {
    const st = await lstat(p);
    const u = st.uid < remap.uid.size ? st.uid + remap.uid.hostID : st.uid;
    const g = st.gid < remap.gid.size ? st.gid + remap.gid.hostID : st.gid;
    await lchown(p, u, g);
    if (st.isDirectory()) {
      for (const e of await readdir(p)) await shift(join(p, e));
    }
  };
  await shift(dir);
}

/**
 * The shifted copy of a layer directory for a remap, made once (copy to a temp dir, shift, rename).
 */
export async function shiftedLayer(root: string, layerDir: string, remap: Remap, key: string): Promise<string> {
  const base = join(root, 'userns', `${remap.uid.hostID}.${remap.gid.hostID}`);
  const dest = join(base, key);
  try {
    await lstat(dest);
    return dest;
  } catch {
    /* not made yet */
  }
  await mkdir(base, { recursive: true });
  const tmp = join(base, `.tmp-${key}-${randomBytes(4).toString('hex')}`);
  try {
    // cp -a keeps device whiteouts, the overlay opaque xattr, modes and times (Node's fs.cp does not)
    await new Promise<void>((resolve, reject) => {
      execFile('cp', ['-a', '--reflink=auto', layerDir, tmp], (err, _o, stderr) => (err ? reject(new Error(`cp: ${String(stderr).trim() || err.message}`)) : resolve()));
    });
    await shiftTree(tmp, remap);
    await rename(tmp, dest);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    try {
      await lstat(dest); // another start made it first
      return dest;
    } catch {
      throw err;
    }
  }
  return dest;
}
