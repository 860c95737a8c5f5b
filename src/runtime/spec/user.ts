/**
 * Resolves Docker's `User` string ("", "name", "uid", "uid:gid", "name:group", ...) against the
 * container's /etc/passwd and /etc/group, with the semantics of runc's user.GetExecUser:
 * numeric ids work without a passwd file, supplementary groups come from /etc/group membership
 * only when no group was given explicitly. Files are read with symlinks resolved inside the rootfs.
 */
import { lstat, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';

import { invalidArgument } from '../../base/errors.js';

/** The result of resolving a user inside a rootfs. */
export interface ExecUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
}

const MAX_ID = 2 ** 31 - 1;

/**
 * Joins `unsafe` onto `root` resolving every symlink as if `root` were `/`, so a link in the
 * image can never point outside the rootfs. Missing components are kept lexically.
 */
export async function secureJoin(root: string, unsafe: string): Promise<string> {
  const parts = unsafe.split('/').filter((p) => p !== '' && p !== '.');
  const done: string[] = [];
  let links = 0;
  while (parts.length > 0) {
    const part = parts.shift()!;
    if (part === '..') {
      done.pop();
      continue;
    }
    const candidate = path.join(root, ...done, part);
    let st;
    try {
      st = await lstat(candidate);
    } catch {
      done.push(part);
      continue;
    }
    if (!st.isSymbolicLink()) {
      done.push(part);
      continue;
    }
    if (++links > 255) throw invalidArgument(`too many symlinks resolving ${unsafe}`);
    const target = await readlink(candidate);
    if (target.startsWith('/')) done.length = 0;
    parts.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
  }
  return path.join(root, ...done);
}

async function readRootfsFile(rootfs: string, p: string): Promise<string | undefined> {
  try {
    return await readFile(await secureJoin(rootfs, p), 'utf8');
  } catch {
    return undefined;
  }
}

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const f = t.split(':');
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!f[0] || !Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    out.push({ name: f[0], uid, gid, home: f[5] || '/' });
  }
  return out;
}

function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#')) continue;
    const f = t.split(':');
    const gid = Number(f[2]);
    if (!f[0] || !Number.isInteger(gid)) continue;
    out.push({ name: f[0], gid, members: (f[3] ?? '').split(',').map((m) => m.trim()).filter(Boolean) });
  }
  return out;
}

function asId(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  if (n > MAX_ID) throw invalidArgument(`uids and gids must be in range 0-${MAX_ID}`);
  return n;
}

/**
 * Resolves `user` inside `rootfs`. `groupAdd` (HostConfig.GroupAdd: names or gids) is appended to
 * the supplementary groups. Unknown names throw invalidArgument with runc/Docker wording.
 */
export async function resolveUser(rootfs: string, user: string, groupAdd: readonly string[] = []): Promise<ExecUser> {
  const colon = user.indexOf(':');
  const userArg = colon < 0 ? user : user.slice(0, colon);
  const groupArg = colon < 0 ? '' : user.slice(colon + 1);

  const passwdText = await readRootfsFile(rootfs, '/etc/passwd');
  const passwd = passwdText === undefined ? [] : parsePasswd(passwdText);
  let groupCache: GroupEntry[] | undefined;
  const groups = async (): Promise<GroupEntry[]> => {
    if (!groupCache) {
      const t = await readRootfsFile(rootfs, '/etc/group');
      groupCache = t === undefined ? [] : parseGroup(t);
    }
    return groupCache;
  };

  // Defaults: root with home "/".
  const res: ExecUser = { uid: 0, gid: 0, additionalGids: [], home: '/' };
  let userName = '';
  const effectiveUser = userArg === '' ? '' : userArg;
  if (effectiveUser === '') {
    const root = passwd.find((p) => p.uid === 0);
    if (root) { res.gid = root.gid; res.home = root.home; userName = root.name; }
  } else {
    const numeric = asId(effectiveUser);
    const entry = passwd.find((p) => (numeric === undefined ? p.name === effectiveUser : p.uid === numeric));
    if (entry) {
      res.uid = entry.uid; res.gid = entry.gid; res.home = entry.home; userName = entry.name;
    } else if (numeric !== undefined) {
      res.uid = numeric;
    } else {
      throw invalidArgument(`unable to find user ${effectiveUser}: no matching entries in passwd file`);
    }
  }

  if (groupArg !== '') {
    const numeric = asId(groupArg);
    const g = (await groups()).find((e) => (numeric === undefined ? e.name === groupArg : e.gid === numeric));
    if (g) res.gid = g.gid;
    else if (numeric !== undefined) res.gid = numeric;
    else throw invalidArgument(`unable to find group ${groupArg}: no matching entries in group file`);
  } else if (userName !== '') {
    for (const g of await groups()) {
      if (g.members.includes(userName) && !res.additionalGids.includes(g.gid)) res.additionalGids.push(g.gid);
    }
  }

  for (const ga of groupAdd) {
    const numeric = asId(ga);
    let gid = numeric;
    if (gid === undefined) {
      const g = (await groups()).find((e) => e.name === ga);
      if (!g) throw invalidArgument(`Unable to find group ${ga}: no matching entries in group file`);
      gid = g.gid;
    }
    if (!res.additionalGids.includes(gid)) res.additionalGids.push(gid);
  }
  return res;
}
