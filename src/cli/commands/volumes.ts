/**
 * Volume commands: create, ls, inspect, rm, prune.
 */
import { flagBool, flagList, flagStr, parseArgs } from '../args.js';
import type { Cli } from '../context.js';
import { keyValues } from '../run-config.js';
import { humanSize, renderList } from '../format.js';
import { confirm, encPath, filtersFromFlags, forEachName, requireArgs } from './common.js';
import { inspectCommand } from './containers.js';

type Json = Record<string, unknown>;

/** `berth volume create [-d DRIVER] [-o k=v]… [--label k=v]… [NAME]`. */
export async function create(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'driver', short: 'd', type: 'string' },
    { name: 'opt', short: 'o', type: 'list' },
    { name: 'label', type: 'list' },
    { name: 'name', type: 'string' },
  ], { command: 'volume create' });
  requireArgs('volume create', p.args, 0, 1);
  const c = await cli.client();
  const body: Json = {
    Driver: flagStr(p, 'driver') ?? 'local',
    DriverOpts: keyValues(flagList(p, 'opt')),
    Labels: keyValues(flagList(p, 'label')),
  };
  const name = p.args[0] ?? flagStr(p, 'name');
  if (name) body['Name'] = name;
  const v = await c.post<{ Name: string }>('/volumes/create', undefined, body);
  cli.print(`${v.Name}\n`);
  return 0;
}

/** `berth volume ls [-q] [--filter] [--format]`. */
export async function ls(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'quiet', short: 'q', type: 'bool' },
    { name: 'filter', short: 'f', type: 'list' },
    { name: 'format', type: 'string' },
  ], { command: 'volume ls' });
  const c = await cli.client();
  const r = await c.get<{ Volumes: Json[] | null }>('/volumes', { filters: filtersFromFlags(flagList(p, 'filter')) });
  const vols = (r.Volumes ?? []).slice().sort((a, b) => String(a['Name']).localeCompare(String(b['Name'])));
  const format = flagStr(p, 'format');
  if (flagBool(p, 'quiet') && !format) {
    cli.print(vols.map((v) => `${String(v['Name'])}\n`).join(''));
    return 0;
  }
  const rows = vols.map((v) => {
    const labels = (v['Labels'] as Record<string, string> | null) ?? {};
    const usage = v['UsageData'] as { Size?: number } | undefined;
    return {
      Name: String(v['Name'] ?? ''),
      Driver: String(v['Driver'] ?? ''),
      Scope: String(v['Scope'] ?? 'local'),
      Mountpoint: String(v['Mountpoint'] ?? ''),
      Labels: Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(','),
      Links: 'N/A',
      Size: usage?.Size !== undefined && usage.Size >= 0 ? humanSize(usage.Size) : 'N/A',
    };
  });
  cli.print(renderList(format, rows, {
    defaultTable: '{{.Driver}}\t{{.Name}}',
    headers: { Name: 'VOLUME NAME', Driver: 'DRIVER', Scope: 'SCOPE', Mountpoint: 'MOUNTPOINT', Labels: 'LABELS', Links: 'LINKS', Size: 'SIZE' },
  }));
  return 0;
}

/** `berth volume inspect [-f] NAME…`. */
export function inspect(cli: Cli, argv: string[]): Promise<number> {
  return inspectCommand(cli, argv, 'volume', 'volume inspect');
}

/** `berth volume rm [-f] NAME…`. */
export async function rm(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'force', short: 'f', type: 'bool' }], { command: 'volume rm' });
  requireArgs('volume rm', p.args, 1);
  const c = await cli.client();
  return forEachName(cli, p.args, async (n) => {
    await c.delete(`/volumes/${encPath(n)}`, { force: flagBool(p, 'force') ? 1 : undefined });
  });
}

/** `berth volume prune [-a] [-f] [--filter]`. */
export async function prune(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'all', short: 'a', type: 'bool' }, { name: 'force', short: 'f', type: 'bool' }, { name: 'filter', type: 'list' }], { command: 'volume prune' });
  if (!flagBool(p, 'force')) {
    const q = flagBool(p, 'all')
      ? 'WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?'
      : 'WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?';
    if (!(await confirm(cli, q))) return 0;
  }
  const c = await cli.client();
  const filters = filtersFromFlags(flagList(p, 'filter')) ?? {};
  if (flagBool(p, 'all')) filters['all'] = { true: true };
  const r = await c.post<{ VolumesDeleted?: string[] | null; SpaceReclaimed?: number }>('/volumes/prune', { filters: Object.keys(filters).length ? filters : undefined });
  if (r?.VolumesDeleted?.length) cli.print(`Deleted Volumes:\n${r.VolumesDeleted.join('\n')}\n\n`);
  cli.print(`Total reclaimed space: ${humanSize(r?.SpaceReclaimed ?? 0)}\n`);
  return 0;
}
