/**
 * Mounting, through util-linux's mount(8)/umount(8): Node has no mount(2). Every call is
 * a short spawn; the snapshotter decides what to mount, this only does it.
 */
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { internal } from '../base/errors.js';
// util-linux's binaries by absolute path: a bare name makes every call try each PATH entry first
// (failed execs in the child, on the container start path; issue 7)
import { systemBinary } from './binaries.js';

function run(cmd: 'mount' | 'umount', args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(systemBinary(cmd), args, { timeout: 30_000 }, (err, _out, stderr) => {
      if (err) reject(internal(`${cmd} ${args.join(' ')}: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}

/**
 * Mount an overlay filesystem. `lowerDirs` are given lowest first (image layer order);
 * overlayfs wants the top-most first, which this does.
 */
export async function mountOverlay(lowerDirs: string[], upper: string, work: string, target: string, opts: { volatile?: boolean } = {}): Promise<void> {
  if (lowerDirs.length === 0) throw internal('overlay needs at least one lower dir');
  const lower = [...lowerDirs].reverse().join(':');
  // volatile (Linux 5.10+): the overlay never syncs its upper filesystem, so unmounting it does not
  // flush the whole host filesystem; after a crash its upper dir must be thrown away. The kernel
  // refuses to mount a workdir once used that way until `work/incompat` is removed.
  if (opts.volatile) await rm(join(work, 'work', 'incompat'), { recursive: true, force: true });
  await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}${opts.volatile ? ',volatile' : ''}`, target]);
}

/** Bind-mount src at target. */
export async function bindMount(src: string, target: string, readOnly = false): Promise<void> {
  await run('mount', ['--bind', src, target]);
  if (readOnly) await run('mount', ['-o', 'remount,bind,ro', target]);
}

/** Unmount target; lazily when busy. A target that is not mounted is fine. */
export async function unmount(target: string): Promise<void> {
  if (!(await isMounted(target))) return;
  try {
    await run('umount', [target]);
  } catch {
    await run('umount', ['-l', target]);
  }
}

/** Mount points from /proc/self/mountinfo (decoded). */
export async function listMounts(): Promise<string[]> {
  return (await mountTable()).map((m) => m.mountPoint);
}

/** One line of /proc/self/mountinfo (see proc(5)). */
export interface MountEntry {
  id: number;
  parentId: number;
  /** The mount's root within its filesystem. */
  root: string;
  mountPoint: string;
  fsType: string;
  /** Propagation: a member of a peer group (`shared:N` among the optional fields). */
  shared: boolean;
  /** Receives propagation from a master (`master:N`). */
  slave: boolean;
}

const unescape = (s: string): string => s.replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));

/** Parse mountinfo text. Pure. */
export function parseMountTable(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 7 || sep < 0) continue;
    const opt = f.slice(6, sep);
    out.push({
      id: Number(f[0]),
      parentId: Number(f[1]),
      root: unescape(f[3]!),
      mountPoint: unescape(f[4]!),
      fsType: f[sep + 1] ?? '',
      shared: opt.some((o) => o.startsWith('shared:')),
      slave: opt.some((o) => o.startsWith('master:')),
    });
  }
  return out;
}

/** This process's mount table. */
export async function mountTable(): Promise<MountEntry[]> {
  return parseMountTable(await readFile('/proc/self/mountinfo', 'utf8'));
}

/** Bind-mount `src` at `target` read-only in one mount(8) call. */
export async function bindMountReadOnly(src: string, target: string): Promise<void> {
  await run('mount', ['--bind', '-o', 'ro', src, target]);
}

/** Change the propagation type of the mount at `target` (not recursive). */
export async function setPropagation(target: string, type: 'shared' | 'private' | 'slave'): Promise<void> {
  await run('mount', [`--make-${type}`, target]);
}

/** True when target is a mount point. */
export async function isMounted(target: string): Promise<boolean> {
  const t = target.replace(/\/+$/, '');
  return (await listMounts()).includes(t);
}

/** Unmount everything at or below `root`, deepest first. */
export async function unmountAllUnder(root: string): Promise<void> {
  const r = root.replace(/\/+$/, '');
  const ms = (await listMounts()).filter((m) => m === r || m.startsWith(`${r}/`)).sort((a, b) => b.length - a.length);
  for (const m of ms) {
    try {
      await run('umount', ['-l', m]);
    } catch {
      /* keep going */
    }
  }
}
