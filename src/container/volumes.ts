/**
 * Named volumes of the `local` driver: `<root>/volumes/<name>/_data` plus a metadata file.
 * A volume is in use while a container record refers to it.
 */
import { mkdir, readdir, rm, rename, readdir as rd } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Filters, Json, VolumeService } from '../engine/services.js';
import { alreadyExists, conflict, invalidArgument, notFound } from '../base/errors.js';
import { readJsonIfExists, writeJsonAtomic } from '../host/atomic-fs.js';
import type { Publish } from '../engine/event-bus.js';

const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

interface VolumeMeta {
  Name: string;
  Driver: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Options: Record<string, string>;
  /** Anonymous volumes (made for image VOLUMEs and `-v /path`). */
  Anonymous: boolean;
  /** Set once the volume has been seeded from an image. */
  Seeded?: boolean;
}

/** The local volume driver. */
export class LocalVolumes implements VolumeService {
  private readonly dir: string;
  private readonly metas = new Map<string, VolumeMeta>();
  /** Returns ids of containers using a volume. */
  usersOf: (name: string) => string[] = () => [];

  constructor(root: string, private readonly publish: Publish) {
    this.dir = join(root, 'volumes');
  }

  /** Load volume metadata; drop half-created volumes (no metadata). */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const name of await readdir(this.dir)) {
      if (name.startsWith('.')) {
        await rm(join(this.dir, name), { recursive: true, force: true });
        continue;
      }
      const meta = await readJsonIfExists<VolumeMeta>(join(this.dir, name, 'volume.json'));
      if (meta) this.metas.set(name, meta);
      else await rm(join(this.dir, name), { recursive: true, force: true });
    }
  }

  /** Host path of a volume's data. */
  dataPath(name: string): string {
    return join(this.dir, name, '_data');
  }

  has(name: string): boolean {
    return this.metas.has(name);
  }

  isAnonymous(name: string): boolean {
    return this.metas.get(name)?.Anonymous ?? false;
  }

  private view(m: VolumeMeta): Json {
    return {
      CreatedAt: m.CreatedAt,
      Driver: m.Driver,
      Labels: m.Labels,
      Mountpoint: this.dataPath(m.Name),
      Name: m.Name,
      Options: m.Options,
      Scope: 'local',
    };
  }

  async list(filters: Filters): Promise<{ Volumes: Json[]; Warnings: string[] | null }> {
    const out: Json[] = [];
    for (const m of this.metas.values()) {
      if (filters['name'] && !filters['name'].some((n) => m.Name.includes(n))) continue;
      if (filters['driver'] && !filters['driver'].includes(m.Driver)) continue;
      if (filters['label'] && !filters['label'].every((l) => {
        const i = l.indexOf('=');
        return i < 0 ? l in m.Labels : m.Labels[l.slice(0, i)] === l.slice(i + 1);
      })) continue;
      if (filters['dangling']) {
        const want = ['true', '1'].includes(filters['dangling'][0]!.toLowerCase());
        if ((this.usersOf(m.Name).length === 0) !== want) continue;
      }
      out.push(this.view(m));
    }
    out.sort((a, b) => String(a['Name']).localeCompare(String(b['Name'])));
    return { Volumes: out, Warnings: null };
  }

  async create(body: Json): Promise<Json> {
    return this.view(await this.ensure(body, false));
  }

  /** Create (or return) a volume; anonymous ones get a 64-hex name. */
  async ensure(body: Json, anonymous: boolean): Promise<VolumeMeta> {
    const driver = (body['Driver'] as string) || 'local';
    if (driver !== 'local') throw invalidArgument(`error looking up volume plugin ${driver}: plugin "${driver}" not found`);
    const name = (body['Name'] as string) || randomBytes(32).toString('hex');
    if (!VOLUME_NAME_RE.test(name)) {
      throw invalidArgument(`create ${name}: "${name}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`);
    }
    const existing = this.metas.get(name);
    if (existing) return existing;
    const meta: VolumeMeta = {
      Name: name,
      Driver: 'local',
      CreatedAt: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      Labels: (body['Labels'] as Record<string, string>) ?? {},
      Options: (body['DriverOpts'] as Record<string, string>) ?? {},
      Anonymous: anonymous,
    };
    const tmp = join(this.dir, `.${name}.${randomBytes(4).toString('hex')}`);
    await mkdir(join(tmp, '_data'), { recursive: true, mode: 0o755 });
    await writeJsonAtomic(join(tmp, 'volume.json'), meta);
    try {
      await rename(tmp, join(this.dir, name));
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      if (this.metas.has(name)) return this.metas.get(name)!;
      throw alreadyExists(`volume ${name}: ${(err as Error).message}`);
    }
    this.metas.set(name, meta);
    this.publish('volume', 'create', name, { driver: 'local' });
    return meta;
  }

  /** True the first time a volume is used, so the caller seeds it from the image. */
  async claimSeed(name: string): Promise<boolean> {
    const m = this.metas.get(name);
    if (!m || m.Seeded) return false;
    const empty = (await rd(this.dataPath(name))).length === 0;
    m.Seeded = true;
    await writeJsonAtomic(join(this.dir, name, 'volume.json'), m);
    return empty;
  }

  async inspect(name: string): Promise<Json> {
    const m = this.metas.get(name);
    if (!m) throw notFound(`get ${name}: no such volume`);
    return this.view(m);
  }

  async remove(name: string, force: boolean): Promise<void> {
    const m = this.metas.get(name);
    if (!m) {
      if (force) return;
      throw notFound(`get ${name}: no such volume`);
    }
    const users = this.usersOf(name);
    if (users.length) throw conflict(`remove ${name}: volume is in use - [${users.join(', ')}]`);
    const trash = join(this.dir, `.rm-${name}-${randomBytes(4).toString('hex')}`);
    await rename(join(this.dir, name), trash);
    this.metas.delete(name);
    await rm(trash, { recursive: true, force: true });
    this.publish('volume', 'destroy', name, { driver: 'local' });
  }

  async prune(filters: Filters): Promise<{ VolumesDeleted: string[]; SpaceReclaimed: number }> {
    const all = filters['all'] && ['true', '1'].includes(filters['all'][0]!.toLowerCase());
    const deleted: string[] = [];
    for (const m of [...this.metas.values()]) {
      if (!all && !m.Anonymous) continue;
      if (this.usersOf(m.Name).length) continue;
      if (filters['label'] && !filters['label'].every((l) => {
        const i = l.indexOf('=');
        return i < 0 ? l in m.Labels : m.Labels[l.slice(0, i)] === l.slice(i + 1);
      })) continue;
      await this.remove(m.Name, false);
      deleted.push(m.Name);
    }
    return { VolumesDeleted: deleted, SpaceReclaimed: 0 };
  }
}
