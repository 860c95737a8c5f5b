/**
 * `RUN --mount=…` and `RUN --network=…` (BuildKit's Dockerfile frontend syntax, docs
 * "RUN --mount"): parsing is pure; {@link prepareRunMounts} turns parsed mounts into the RUN
 * container's HostConfig.Mounts entries over host directories the builder owns:
 *
 * - `type=cache`: a persistent directory per cache id (default: the target) under
 *   `<root>/build-cache-mounts/`, kept across builds and removed by `builder prune`. `sharing=shared`
 *   (default) lets concurrent RUNs use it together, `locked` makes them take turns, `private` gives a
 *   RUN that finds it in use a fresh throw-away directory.
 * - `type=bind`: a read-only view (default) of the context or of a stage/image (`from=`); `rw`
 *   makes it writable through a throw-away overlay upper dir, so writes never reach the source.
 * - `type=tmpfs`: a tmpfs (`size=` bytes).
 * - `type=secret`: the secret's bytes in a file (mode 0400 unless `mode=`) bound read-only at
 *   `target` (default `/run/secrets/<id>`); a missing secret fails unless `required=false`.
 *
 * Nothing mounted ends up in the layer: the mounts hide what the RUN writes there, and the
 * mount points the runtime had to create are removed from the upper dir afterwards
 * ({@link removeMountPoints}).
 */
import { createHash } from 'node:crypto';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, rm, rmdir, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';

import { invalidArgument, notImplemented } from '../base/errors.js';
import type { Json } from '../engine/services.js';
import { mountOverlay, unmount } from '../host/mount.js';
import { resolveInRoot } from '../snapshot/index.js';

/** One parsed `--mount` of a RUN. */
export interface RunMount {
  type: 'bind' | 'cache' | 'tmpfs' | 'secret';
  /** Absolute path inside the container. */
  target: string;
  /** Path inside the source (bind/cache `from=`); default "/". */
  source: string;
  /** Stage name/index or image the source is taken from (bind; cache seeds are not supported). */
  from?: string;
  /** Cache or secret id. */
  id: string;
  readonly: boolean;
  sharing: 'shared' | 'private' | 'locked';
  mode?: number;
  uid?: number;
  gid?: number;
  /** Secrets: fail when the secret is missing (BuildKit's default: false, the mount is left out). */
  required: boolean;
  /** tmpfs size in bytes. */
  size?: number;
}

const bool = (v: string | undefined, line: number, key: string): boolean => {
  if (v === undefined || v === '') return true;
  const l = v.toLowerCase();
  if (['1', 'true', 't'].includes(l)) return true;
  if (['0', 'false', 'f'].includes(l)) return false;
  throw invalidArgument(`dockerfile parse error on line ${line}: invalid value for ${key}: ${v}`);
};

/** Split a CSV mount value, honouring double quotes ("target=/a,b" keeps the comma). */
function csvFields(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let q = false;
  for (const ch of s) {
    if (ch === '"') q = !q;
    else if (ch === ',' && !q) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((f) => f.trim()).filter((f) => f !== '');
}

/** Parse one `--mount` value (`type=cache,target=/root/.cache,id=x`). `line` names errors. */
export function parseRunMount(spec: string, line: number): RunMount {
  const err = (m: string): never => {
    throw invalidArgument(`dockerfile parse error on line ${line}: ${m}`);
  };
  const kv = new Map<string, string | undefined>();
  for (const f of csvFields(spec)) {
    const i = f.indexOf('=');
    const k = (i < 0 ? f : f.slice(0, i)).toLowerCase();
    kv.set(k, i < 0 ? undefined : f.slice(i + 1));
  }
  const type = (kv.get('type') ?? 'bind').toLowerCase();
  if (type === 'ssh') throw notImplemented(`dockerfile parse error on line ${line}: RUN --mount=type=ssh is not supported by berth`);
  if (type !== 'bind' && type !== 'cache' && type !== 'tmpfs' && type !== 'secret') err(`unsupported mount type "${type}"`);
  let target = kv.get('target') ?? kv.get('dst') ?? kv.get('destination');
  let id = kv.get('id');
  const source = kv.get('source') ?? kv.get('src') ?? '';
  if (type === 'secret') {
    if (!id && target) id = posix.basename(target);
    if (!id) err('secret ID missing from mount options');
    if (!target) target = `/run/secrets/${id!}`;
  }
  if (!target) err('mount target is required (target=/path)');
  if (!target!.startsWith('/')) target = posix.join('/', target!);
  target = posix.normalize(target!).replace(/\/+$/, '') || '/';
  if (target === '/') err('mount target cannot be /');
  const m: RunMount = {
    type: type as RunMount['type'],
    target,
    source: posix.normalize(posix.join('/', source)),
    id: id ?? target,
    readonly: type === 'bind' || type === 'secret',
    sharing: 'shared',
    required: false,
  };
  for (const [k, v] of kv) {
    switch (k) {
      case 'type': case 'target': case 'dst': case 'destination': case 'source': case 'src': case 'id':
        break;
      case 'ro': case 'readonly':
        m.readonly = bool(v, line, k);
        break;
      case 'rw': case 'readwrite':
        m.readonly = !bool(v, line, k);
        break;
      case 'from':
        if (!v) err('from= needs a stage or image name');
        m.from = v!;
        break;
      case 'sharing':
        if (v !== 'shared' && v !== 'private' && v !== 'locked') err(`unsupported sharing value "${v ?? ''}"`);
        m.sharing = v as RunMount['sharing'];
        break;
      case 'mode':
        if (!v || !/^[0-7]{1,4}$/.test(v)) err(`invalid mode ${v ?? ''}`);
        m.mode = Number.parseInt(v!, 8);
        break;
      case 'uid': case 'gid':
        if (!v || !/^\d+$/.test(v)) err(`invalid ${k} ${v ?? ''}`);
        m[k] = Number(v);
        break;
      case 'required':
        m.required = bool(v, line, k);
        break;
      case 'size':
        if (!v || !/^\d+$/.test(v)) err(`invalid size ${v ?? ''}`);
        m.size = Number(v);
        break;
      default:
        err(`unexpected key '${k}' in '${spec}'`);
    }
  }
  if (m.type === 'cache' && m.from) throw notImplemented(`dockerfile parse error on line ${line}: RUN --mount=type=cache,from=… is not supported by berth`);
  return m;
}

/** Parse a RUN's `--network` value: `default`, `none` or `host`. */
export function parseRunNetwork(v: string, line: number): 'default' | 'none' | 'host' {
  if (v === 'default' || v === 'none' || v === 'host') return v;
  throw invalidArgument(`dockerfile parse error on line ${line}: unsupported network mode "${v}" (RUN --network takes default, none or host)`);
}

/** The part of the mounts that decides a step's cache key (contents of cache/tmpfs/secret mounts do not). */
export function mountCacheKey(ms: readonly RunMount[]): string {
  return JSON.stringify(ms.map((m) => [m.type, m.target, m.source, m.from ?? '', m.id, m.readonly, m.sharing, m.mode ?? -1, m.uid ?? -1, m.gid ?? -1, m.required, m.size ?? -1]));
}

/** A source tree a bind mount can read: the context, or a stage/image as overlay lower dirs. */
export interface MountSourceTree {
  /** Lower dirs, lowest first. */
  layers: string[];
  /** Image id, for the cache key ("" for the context). */
  id: string;
}

/** What {@link prepareRunMounts} needs. */
export interface PrepareMountsOptions {
  /** Daemon data root (cache mounts live under it). */
  root: string;
  /** Per-build scratch directory. */
  work: string;
  /** The layers of a `from=` reference, or of the context when `from` is undefined. */
  sourceTree(from: string | undefined): Promise<MountSourceTree>;
  /** Secrets given to this build, by id. */
  secrets: ReadonlyMap<string, Buffer>;
  /** Cache-mount coordination shared by all builds of the daemon. */
  caches: CacheMountRegistry;
}

/** Prepared mounts: HostConfig.Mounts entries and the teardown to run after the container is gone. */
export interface PreparedMounts {
  mounts: Json[];
  release(): Promise<void>;
}

/**
 * Who uses which cache directory right now: `locked` mounts queue on a per-id lock, `private`
 * mounts take a throw-away directory when the cache is in use.
 */
export class CacheMountRegistry {
  private readonly users = new Map<string, number>();
  private readonly locks = new Map<string, Promise<void>>();

  /** The directory of cache `id` under `root`. */
  static dir(root: string, id: string): string {
    return join(root, 'build-cache-mounts', createHash('sha256').update(id).digest('hex').slice(0, 32));
  }

  /** Start using cache `id`; resolves (after waiting, for `locked`) to whether it was free and a release function. */
  async acquire(id: string, sharing: RunMount['sharing']): Promise<{ inUse: boolean; release: () => void }> {
    if (sharing === 'locked') {
      const prev = this.locks.get(id) ?? Promise.resolve();
      let done!: () => void;
      const mine = new Promise<void>((r) => (done = r));
      const tail = prev.then(() => mine);
      this.locks.set(id, tail);
      await prev;
      const inner = this.enter(id);
      return {
        inUse: false,
        release: () => {
          inner();
          done();
          if (this.locks.get(id) === tail) this.locks.delete(id);
        },
      };
    }
    const inUse = (this.users.get(id) ?? 0) > 0;
    return { inUse, release: this.enter(id) };
  }

  private enter(id: string): () => void {
    this.users.set(id, (this.users.get(id) ?? 0) + 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const n = (this.users.get(id) ?? 1) - 1;
      if (n <= 0) this.users.delete(id);
      else this.users.set(id, n);
    };
  }

  /** True when any cache mount is in use (prune then leaves the directories alone). */
  get busy(): boolean {
    return this.users.size > 0;
  }
}

/** Prepare host directories for a RUN's mounts. On failure everything made so far is undone. */
export async function prepareRunMounts(ms: readonly RunMount[], o: PrepareMountsOptions): Promise<PreparedMounts> {
  const undo: Array<() => Promise<void> | void> = [];
  const release = async (): Promise<void> => {
    for (const u of undo.splice(0).reverse()) await Promise.resolve(u()).catch(() => undefined);
  };
  const mounts: Json[] = [];
  try {
    for (const m of ms) {
      if (m.type === 'tmpfs') {
        mounts.push({ Type: 'tmpfs', Target: m.target, ReadOnly: false, TmpfsOptions: { ...(m.size ? { SizeBytes: m.size } : {}), Mode: m.mode ?? 0o1777 } });
        continue;
      }
      if (m.type === 'cache') {
        const cache = await o.caches.acquire(m.id, m.sharing);
        undo.push(cache.release);
        let dir = CacheMountRegistry.dir(o.root, m.id);
        if (m.sharing === 'private' && cache.inUse) {
          dir = await mkdtemp(join(o.work, 'cache-private-'));
          const d = dir;
          undo.push(() => rm(d, { recursive: true, force: true }));
          await chmod(dir, m.mode ?? 0o755);
          await chown(dir, m.uid ?? 0, m.gid ?? 0);
        } else {
          await mkdir(join(o.root, 'build-cache-mounts'), { recursive: true });
          try {
            await mkdir(dir);
            await chmod(dir, m.mode ?? 0o755);
            await chown(dir, m.uid ?? 0, m.gid ?? 0);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          }
        }
        mounts.push({ Type: 'bind', Source: dir, Target: m.target, ReadOnly: m.readonly });
        continue;
      }
      if (m.type === 'secret') {
        const data = o.secrets.get(m.id);
        if (data === undefined) {
          if (!m.required) continue;
          throw invalidArgument(`secret ${m.id} not found: pass it with \`berth build --secret id=${m.id},src=FILE\` (the classic /build API of the docker CLI has no secrets)`);
        }
        const dir = await mkdtemp(join(o.work, 'secret-'));
        undo.push(() => rm(dir, { recursive: true, force: true }));
        const f = join(dir, 'secret');
        await writeFile(f, data, { mode: 0o600 });
        await chown(f, m.uid ?? 0, m.gid ?? 0);
        await chmod(f, m.mode ?? 0o400);
        mounts.push({ Type: 'bind', Source: f, Target: m.target, ReadOnly: true });
        continue;
      }
      // bind: an overlay of the source tree with a throw-away upper dir; read-only unless rw
      const tree = await o.sourceTree(m.from);
      const base = await mkdtemp(join(o.work, 'bind-'));
      undo.push(() => rm(base, { recursive: true, force: true }));
      const merged = join(base, 'merged');
      await mkdir(merged);
      await mkdir(join(base, 'upper'));
      await mkdir(join(base, 'work'));
      await mountOverlay(tree.layers, join(base, 'upper'), join(base, 'work'), merged);
      undo.push(() => unmount(merged));
      const src = await resolveInRoot(merged, m.source);
      try {
        await lstat(src);
      } catch {
        throw invalidArgument(`failed to mount ${m.source}${m.from ? ` from ${m.from}` : ''}: no such file or directory`);
      }
      mounts.push({ Type: 'bind', Source: src, Target: m.target, ReadOnly: m.readonly });
    }
    return { mounts, release };
  } catch (e) {
    await release();
    throw e;
  }
}

/**
 * Remove from a RUN's upper dir the mount points the runtime created for `targets` (they did not
 * exist in the image: `inImage(path)` is false), and parent directories made only for them, so
 * mounts leave nothing in the layer. Only empty directories and empty files are removed.
 */
export async function removeMountPoints(upper: string, targets: readonly string[], inImage: (p: string) => Promise<boolean>): Promise<void> {
  for (const t of targets) {
    let p = t;
    while (p !== '/' && !(await inImage(p))) {
      const host = join(upper, p);
      let st;
      try {
        st = await lstat(host);
      } catch {
        break;
      }
      if (st.isDirectory()) {
        if ((await readdir(host)).length > 0) break;
        await rmdir(host);
      } else if (st.isFile() && st.size === 0) {
        await rm(host);
      } else break;
      p = posix.dirname(p);
    }
  }
}
