/**
 * Parsing a container's storage requests (Binds, Mounts, Tmpfs, image VOLUMEs, VolumesFrom) into
 * MountPoints at create time, and into runtime mounts at start.
 */
import { isAbsolute, posix } from 'node:path';
import { invalidArgument } from '../base/errors.js';
import type { Json } from '../engine/services.js';
import type { MountPoint } from './types.js';

/** A volume to create before the mount points are final. */
export interface MountRequest extends MountPoint {
  /** For volume mounts without a name: create an anonymous volume. */
  needsAnonymous?: boolean;
}

function cleanDest(d: string): string {
  if (!d || !isAbsolute(d)) throw invalidArgument(`invalid mount config: mount path must be absolute: "${d}"`);
  return posix.normalize(d).replace(/\/+$/, '') || '/';
}

/** Parse one `-v` bind spec: "src:dst[:opts]" or "name:dst[:opts]". */
export function parseBind(spec: string): MountRequest {
  const parts = spec.split(':');
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) {
    throw invalidArgument(`invalid volume specification: '${spec}'`);
  }
  const [src, dst, opts = ''] = parts as [string, string, string?];
  const flags = opts.split(',').filter(Boolean);
  for (const f of flags) {
    if (!['ro', 'rw', 'z', 'Z', 'private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave', 'nocopy', 'consistent', 'cached', 'delegated'].includes(f)) {
      throw invalidArgument(`invalid mode: ${f}`);
    }
  }
  const ro = flags.includes('ro');
  const prop = flags.find((f) => /private|shared|slave/.test(f)) ?? 'rprivate';
  const dest = cleanDest(dst);
  if (isAbsolute(src)) {
    return { Type: 'bind', Source: posix.normalize(src), Destination: dest, Mode: opts, RW: !ro, Propagation: prop };
  }
  return { Type: 'volume', Name: src, Source: '', Destination: dest, Driver: 'local', Mode: opts || 'z', RW: !ro, Propagation: '' };
}

/** Parse HostConfig.Mounts entries. */
export function parseMountEntry(m: Json): MountRequest {
  const type = String(m['Type'] ?? '');
  const target = cleanDest(String(m['Target'] ?? m['Destination'] ?? ''));
  const ro = Boolean(m['ReadOnly']);
  if (type === 'bind') {
    const src = String(m['Source'] ?? '');
    if (!isAbsolute(src)) throw invalidArgument(`invalid mount config for type "bind": invalid mount path: '${src}' mount path must be absolute`);
    const bo = (m['BindOptions'] as Json | undefined) ?? {};
    return { Type: 'bind', Source: posix.normalize(src), Destination: target, Mode: '', RW: !ro, Propagation: String(bo['Propagation'] ?? 'rprivate') };
  }
  if (type === 'volume') {
    const src = String(m['Source'] ?? '');
    return src
      ? { Type: 'volume', Name: src, Source: '', Destination: target, Driver: 'local', Mode: 'z', RW: !ro, Propagation: '' }
      : { Type: 'volume', Source: '', Destination: target, Driver: 'local', Mode: '', RW: !ro, Propagation: '', needsAnonymous: true };
  }
  if (type === 'tmpfs') {
    const to = (m['TmpfsOptions'] as Json | undefined) ?? {};
    const opts: string[] = [];
    if (to['SizeBytes']) opts.push(`size=${Number(to['SizeBytes'])}`);
    if (to['Mode']) opts.push(`mode=${Number(to['Mode']).toString(8)}`);
    return { Type: 'tmpfs', Source: '', Destination: target, Mode: '', RW: !ro, Propagation: '', Options: opts };
  }
  throw invalidArgument(`invalid mount config: mount type unknown: "${type}"`);
}

/**
 * All mount requests of a new container, in precedence order: Mounts and Binds win over Tmpfs,
 * which win over image/Config volumes at the same destination.
 */
export function collectMounts(cfg: Json, hc: Json): MountRequest[] {
  const byDest = new Map<string, MountRequest>();
  const add = (m: MountRequest, override: boolean) => {
    if (byDest.has(m.Destination)) {
      if (!override) return;
      if (byDest.get(m.Destination)!.Type !== 'volume' || !byDest.get(m.Destination)!.needsAnonymous) {
        throw invalidArgument(`Duplicate mount point: ${m.Destination}`);
      }
    }
    byDest.set(m.Destination, m);
  };
  for (const b of (hc['Binds'] as string[] | null) ?? []) add(parseBind(b), true);
  for (const m of (hc['Mounts'] as Json[] | null) ?? []) add(parseMountEntry(m), true);
  for (const [dest, opts] of Object.entries((hc['Tmpfs'] as Record<string, string> | undefined) ?? {})) {
    const d = cleanDest(dest);
    const o = String(opts ?? '').split(',').filter(Boolean);
    add({ Type: 'tmpfs', Source: '', Destination: d, Mode: o.join(','), RW: !o.includes('ro'), Propagation: '', Options: o.filter((x) => x !== 'ro' && x !== 'rw') }, true);
  }
  for (const dest of Object.keys((cfg['Volumes'] as Record<string, unknown> | null) ?? {})) {
    const d = cleanDest(dest);
    if (!byDest.has(d)) byDest.set(d, { Type: 'volume', Source: '', Destination: d, Driver: 'local', Mode: '', RW: true, Propagation: '', needsAnonymous: true });
  }
  return [...byDest.values()];
}
