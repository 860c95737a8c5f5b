/**
 * Network commands: create, ls, inspect, rm, prune, connect, disconnect.
 */
import { flagBool, flagList, flagStr, parseArgs } from '../args.js';
import type { Cli } from '../context.js';
import { keyValues } from '../run-config.js';
import { renderList } from '../format.js';
import { confirm, encPath, filtersFromFlags, forEachName, requireArgs } from './common.js';
import { inspectCommand } from './containers.js';

type Json = Record<string, unknown>;

/** `berth network create [--subnet] [--gateway] [--ip-range] [--internal] [--label] [-o] [-d] NAME`. */
export async function create(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'driver', short: 'd', type: 'string' },
    { name: 'subnet', type: 'list' },
    { name: 'gateway', type: 'list' },
    { name: 'ip-range', type: 'list' },
    { name: 'internal', type: 'bool' },
    { name: 'attachable', type: 'bool' },
    { name: 'ipv6', type: 'bool' },
    { name: 'label', type: 'list' },
    { name: 'opt', short: 'o', type: 'list' },
  ], { command: 'network create' });
  requireArgs('network create', p.args, 1, 1);
  const subnets = flagList(p, 'subnet');
  const gateways = flagList(p, 'gateway');
  const ranges = flagList(p, 'ip-range');
  const config = subnets.map((s, i) => ({
    Subnet: s,
    ...(gateways[i] ? { Gateway: gateways[i] } : {}),
    ...(ranges[i] ? { IPRange: ranges[i] } : {}),
  }));
  const body: Json = {
    Name: p.args[0],
    Driver: flagStr(p, 'driver') ?? 'bridge',
    Internal: flagBool(p, 'internal'),
    Attachable: flagBool(p, 'attachable'),
    EnableIPv6: flagBool(p, 'ipv6'),
    IPAM: { Driver: 'default', Options: {}, Config: config },
    Options: keyValues(flagList(p, 'opt')),
    Labels: keyValues(flagList(p, 'label')),
  };
  const c = await cli.client();
  const r = await c.post<{ Id: string }>('/networks/create', undefined, body);
  cli.print(`${r.Id}\n`);
  return 0;
}

/** `berth network ls [-q] [--filter] [--format] [--no-trunc]`. */
export async function ls(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'quiet', short: 'q', type: 'bool' },
    { name: 'filter', short: 'f', type: 'list' },
    { name: 'format', type: 'string' },
    { name: 'no-trunc', type: 'bool' },
  ], { command: 'network ls' });
  const c = await cli.client();
  const nets = await c.get<Json[]>('/networks', { filters: filtersFromFlags(flagList(p, 'filter')) });
  nets.sort((a, b) => String(a['Name']).localeCompare(String(b['Name'])));
  const trunc = !flagBool(p, 'no-trunc');
  const format = flagStr(p, 'format');
  if (flagBool(p, 'quiet') && !format) {
    cli.print(nets.map((n) => `${trunc ? String(n['Id']).slice(0, 12) : String(n['Id'])}\n`).join(''));
    return 0;
  }
  const rows = nets.map((n) => ({
    ID: trunc ? String(n['Id']).slice(0, 12) : String(n['Id']),
    Name: String(n['Name'] ?? ''),
    Driver: String(n['Driver'] ?? ''),
    Scope: String(n['Scope'] ?? 'local'),
    Internal: String(Boolean(n['Internal'])),
    IPv6: String(Boolean(n['EnableIPv6'])),
    CreatedAt: String(n['Created'] ?? ''),
    Labels: Object.entries((n['Labels'] as Record<string, string> | null) ?? {}).map(([k, v]) => `${k}=${v}`).join(','),
  }));
  cli.print(renderList(format, rows, {
    defaultTable: '{{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}',
    headers: { ID: 'NETWORK ID', Name: 'NAME', Driver: 'DRIVER', Scope: 'SCOPE', Internal: 'INTERNAL', IPv6: 'IPV6', CreatedAt: 'CREATED AT', Labels: 'LABELS' },
  }));
  return 0;
}

/** `berth network inspect [-f] NAME…`. */
export function inspect(cli: Cli, argv: string[]): Promise<number> {
  return inspectCommand(cli, argv, 'network', 'network inspect');
}

/** `berth network rm NAME…`. */
export async function rm(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'force', short: 'f', type: 'bool' }], { command: 'network rm' });
  requireArgs('network rm', p.args, 1);
  const c = await cli.client();
  return forEachName(cli, p.args, async (n) => {
    await c.delete(`/networks/${encPath(n)}`);
  });
}

/** `berth network prune [-f] [--filter]`. */
export async function prune(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'force', short: 'f', type: 'bool' }, { name: 'filter', type: 'list' }], { command: 'network prune' });
  if (!flagBool(p, 'force') && !(await confirm(cli, 'WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?'))) return 0;
  const c = await cli.client();
  const r = await c.post<{ NetworksDeleted?: string[] | null }>('/networks/prune', { filters: filtersFromFlags(flagList(p, 'filter')) });
  if (r?.NetworksDeleted?.length) cli.print(`Deleted Networks:\n${r.NetworksDeleted.join('\n')}\n`);
  return 0;
}

/** `berth network connect [--alias]… [--ip] NETWORK CONTAINER`. */
export async function connect(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'alias', type: 'list' }, { name: 'ip', type: 'string' }], { command: 'network connect' });
  requireArgs('network connect', p.args, 2, 2);
  const ep: Json = {};
  const aliases = flagList(p, 'alias');
  if (aliases.length) ep['Aliases'] = aliases;
  const ip = flagStr(p, 'ip');
  if (ip) ep['IPAMConfig'] = { IPv4Address: ip };
  const c = await cli.client();
  await c.post(`/networks/${encPath(p.args[0]!)}/connect`, undefined, { Container: p.args[1], EndpointConfig: ep });
  return 0;
}

/** `berth network disconnect [-f] NETWORK CONTAINER`. */
export async function disconnect(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'force', short: 'f', type: 'bool' }], { command: 'network disconnect' });
  requireArgs('network disconnect', p.args, 2, 2);
  const c = await cli.client();
  await c.post(`/networks/${encPath(p.args[0]!)}/disconnect`, undefined, { Container: p.args[1], Force: flagBool(p, 'force') });
  return 0;
}
