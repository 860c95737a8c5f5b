/**
 * How berthd runs crun on this host (issue 7: every process on the container start path counts).
 *
 * 1. **No self-copy.** crun 1.8 guards against CVE-2019-5736 by copying its own binary into a
 *    sealed memfd and re-executing it at every call (~2.5 ms per call here) — unless the binary sits
 *    on a read-only mount. berthd bind-mounts the host's crun read-only at
 *    `<root>/runtime/bin/crun` and runs that (the protection crun documents for read-only binaries).
 * 2. **Hybrid cgroups without a wrapper per call.** crun 1.8 refuses a host whose cgroup2 mount
 *    (`/sys/fs/cgroup/unified`) lists controllers, but only when it places a process into cgroups
 *    (`create`, `exec`). Instead of a fresh `unshare` + `sh` + `mount` around every such call,
 *    berthd keeps one persistent mount namespace (bound to the file `<root>/runtime/ns/mnt`) in
 *    which an empty file hides that controller list, and conmon runs `nsenter --mount=<file> --
 *    crun …` (one exec instead of five processes). For overlay rootfs mounts and network
 *    namespace files made later on the host to show up inside it, the data root is a shared mount
 *    (bound onto itself if it is not a mount point yet, as dockerd does with its root) and the
 *    namespace is its slave. The namespace file itself must sit on a private mount
 *    (`<root>/runtime/ns`, bound onto itself). The namespace is made anew at every daemon start
 *    (containers never depend on it after `create`), so host mounts outside the data root made
 *    before that start are seen; ones made while berthd runs are not (see docs/architecture.md).
 *
 * Everything here is a host mount under the data root: `release()` undoes it at shutdown when no
 * container still has a mount under the root; otherwise it stays for the next start to reuse.
 * Anything that fails falls back to the previous way (plain crun; the per-call wrapper script).
 */
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { bindMountReadOnly, bindMount, mountTable, setPropagation, unmount, type MountEntry } from '../host/mount.js';
import type { HostInfo } from './host-info.js';
import type { RuntimeConfig } from './oci-runtime.js';

const CONTROLLERS = '/sys/fs/cgroup/unified/cgroup.controllers';

/** crun's configuration plus the undo of the host mounts made for it. */
export interface CrunSetup {
  config: RuntimeConfig;
  /** Unmount what was made for crun, unless a container still has a mount under the data root. */
  release(): Promise<void>;
}

function exec(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 20_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) || (err?.message ?? '') });
    });
  });
}

const at = (t: MountEntry[], p: string): MountEntry | undefined => {
  let hit: MountEntry | undefined;
  for (const m of t) if (m.mountPoint === p) hit = m; // the last one is on top
  return hit;
};

/** Configure crun for this host; see the module comment. */
export async function setupCrun(dataRoot: string, host: HostInfo, log: (msg: string) => void): Promise<CrunSetup> {
  const crun = host.binaries['crun']!;
  // mountinfo lists canonical paths
  const root = await realpath(dataRoot);
  const rtDir = join(root, 'runtime');
  const globalArgs = [`--root=${join(rtDir, 'crun')}`];
  await mkdir(join(rtDir, 'bin'), { recursive: true });
  const roCrun = join(rtDir, 'bin', 'crun');
  const nsDir = join(rtDir, 'ns');
  const nsFile = join(nsDir, 'mnt');
  const marker = join(rtDir, 'shared-root');
  const hybrid = host.cgroupMode === 'hybrid';
  const made: string[] = []; // mounts this daemon made or reuses, outermost first
  let ownRoot = false;

  const release = async (): Promise<void> => {
    const t = await mountTable().catch(() => [] as MountEntry[]);
    const ours = new Set(made);
    // a container's rootfs or network namespace is still mounted: keep everything for the next start
    if (t.some((m) => m.mountPoint.startsWith(`${root}/`) && !ours.has(m.mountPoint))) return;
    for (const p of [...made].reverse()) await unmount(p).catch((e) => log(`unmount ${p}: ${(e as Error).message}`));
    made.length = 0;
    if (ownRoot) {
      await unmount(root).catch((e) => log(`unmount ${root}: ${(e as Error).message}`));
      await rm(marker, { force: true });
      ownRoot = false;
    }
  };

  // 1. hybrid cgroups: the data root must be a shared mount (before anything is mounted below it)
  let sharedRoot = false;
  if (hybrid) {
    try {
      let t = await mountTable();
      const rootMount = at(t, root);
      if (!rootMount) {
        // only this module's own mounts may be below a root that is not a mount point (a bind over
        // containers' mounts would hide them)
        for (const p of [nsFile, nsDir, roCrun]) if (at(t, p)) await unmount(p);
        t = await mountTable();
        if (t.some((m) => m.mountPoint.startsWith(`${root}/`))) throw new Error('the data root has mounts but is not a mount point');
        await bindMount(root, root);
        t = await mountTable();
        await writeFile(marker, String(at(t, root)!.id));
        ownRoot = true;
      } else {
        ownRoot = (await readFile(marker, 'utf8').catch(() => '')).trim() === String(rootMount.id);
      }
      if (!at(t, root)!.shared) await setPropagation(root, 'shared');
      sharedRoot = true;
    } catch (e) {
      log(`crun: the data root cannot be made a shared mount (${(e as Error).message})`);
    }
  }

  // 2. read-only crun
  let bin = crun;
  try {
    let t = await mountTable();
    if (at(t, roCrun)) {
      const [a, b] = await Promise.all([stat(crun), stat(roCrun)]);
      // crun upgraded since (dpkg replaces the file): bind the new one
      if (a.ino !== b.ino || a.dev !== b.dev) await unmount(roCrun);
      t = await mountTable();
    }
    if (!at(t, roCrun)) {
      await writeFile(roCrun, '');
      await bindMountReadOnly(crun, roCrun);
    }
    made.push(roCrun);
    bin = roCrun;
  } catch (e) {
    log(`crun: running ${crun} directly (read-only bind failed: ${(e as Error).message})`);
  }

  if (!hybrid) return { config: { name: 'crun', path: bin, globalArgs }, release };

  // 3. one persistent mount namespace with the controller list hidden
  const note = 'hybrid cgroups: crun creates containers in a mount namespace with the cgroup2 controllers hidden';
  const nsenter = host.binaries['nsenter'];
  const unshare = host.binaries['unshare'];
  const mountBin = host.binaries['mount'] ?? 'mount';
  const empty = join(rtDir, 'empty-controllers');
  await writeFile(empty, '');
  // a private mount namespace per create/exec: the fallback, and for containers with bind mounts
  // from outside the data root (a host mount made after the long-lived namespace is not in it)
  const wrapper = join(rtDir, 'crun-hybrid');
  if (unshare) {
    await writeFile(
      wrapper,
      `#!/bin/sh\n# generated by berthd: run crun with the cgroup2 controllers hidden (hybrid cgroup host)\n` +
        `exec ${unshare} -m --propagation private /bin/sh -c '${mountBin} --bind "$0" ${CONTROLLERS} && exec ${bin} "$@"' ${empty} "$@"\n`,
    );
    await chmod(wrapper, 0o755);
  }
  try {
    if (!sharedRoot) throw new Error('no shared data root');
    if (!nsenter || !unshare) throw new Error('nsenter or unshare is not installed');
    await mkdir(nsDir, { recursive: true });
    let t = await mountTable();
    if (!at(t, nsDir)) {
      await bindMount(nsDir, nsDir);
      t = await mountTable();
    }
    made.push(nsDir);
    const nd = at(t, nsDir)!;
    if (nd.shared || nd.slave) await setPropagation(nsDir, 'private');
    // a namespace from an earlier start is made anew, so it sees the host's mounts as they are now
    if (at(t, nsFile)) await unmount(nsFile);
    await writeFile(nsFile, '');
    const u = await exec(unshare, [`--mount=${nsFile}`, '--propagation', 'slave', mountBin, '--bind', empty, CONTROLLERS]);
    if (u.code !== 0) throw new Error(`unshare: ${u.stderr.trim()}`);
    made.push(nsFile);
    const c = await exec(nsenter, [`--mount=${nsFile}`, '--', '/bin/cat', CONTROLLERS]);
    if (c.code !== 0 || c.stdout.trim() !== '') throw new Error(`the namespace does not hide the controllers: ${c.stderr.trim() || c.stdout.trim()}`);
    return {
      config: { name: 'crun', path: nsenter, wrapArgs: [`--mount=${nsFile}`, '--', bin], verbPath: bin, freshPath: wrapper, globalArgs, note },
      release,
    };
  } catch (e) {
    log(`crun: hybrid cgroups through a wrapper per call (${(e as Error).message})`);
    for (const p of [nsFile, nsDir]) {
      if (!made.includes(p)) continue;
      made.splice(made.indexOf(p), 1);
      await unmount(p).catch(() => undefined);
    }
  }
  if (!unshare) return { config: { name: 'crun', path: bin, globalArgs }, release };
  return { config: { name: 'crun', path: wrapper, verbPath: bin, globalArgs, note }, release };
}
