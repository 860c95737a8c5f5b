/**
 * System commands: version, info, events, system df, system prune.
 */

import { ApiError } from '../../client/index.js';
import { flagBool, flagList, flagStr, parseArgs, type FlagSpec } from '../args.js';
import type { Cli } from '../context.js';
import { bytesSize, humanSize, renderList, renderOne } from '../format.js';
import { goJson } from '../go-template.js';
import { confirm, filtersFromFlags, parseTimestampArg, rfc3339NanoFixed } from './common.js';

const CLI_VERSION = '0.1.0';
const formatFlag: FlagSpec = { name: 'format', short: 'f', type: 'string' };

/** `berth info [--format]` / `berth system info`. */
export async function info(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [formatFlag], { command: 'info' });
  const c = await cli.client();
  const i = await c.get<Record<string, unknown>>('/info');
  const format = flagStr(p, 'format');
  if (format) {
    cli.print(renderOne(format, { ...i, ClientInfo: { Debug: false, Context: 'default', Plugins: [], Warnings: null } }));
    return 0;
  }
  cli.print(renderInfo(i));
  const warnings = (i['Warnings'] as string[] | null) ?? [];
  for (const w of warnings) cli.err.write(`${w}\n`);
  return 0;
}

/** Render `/info` the way `docker info` does. */
export function renderInfo(i: Record<string, unknown>): string {
  const v = (k: string): string => {
    const x = i[k];
    return x === undefined || x === null ? '' : String(x);
  };
  let s = 'Client:\n Version:    ' + CLI_VERSION + '\n Context:    default\n Debug Mode: false\n\nServer:\n';
  s += ` Containers: ${v('Containers')}\n  Running: ${v('ContainersRunning')}\n  Paused: ${v('ContainersPaused')}\n  Stopped: ${v('ContainersStopped')}\n`;
  s += ` Images: ${v('Images')}\n`;
  s += ` Server Version: ${v('ServerVersion')}\n`;
  s += ` Storage Driver: ${v('Driver')}\n`;
  for (const pair of (i['DriverStatus'] as [string, string][] | null) ?? []) s += `  ${pair[0]}: ${pair[1]}\n`;
  s += ` Logging Driver: ${v('LoggingDriver')}\n`;
  s += ` Cgroup Driver: ${v('CgroupDriver')}\n`;
  s += ` Cgroup Version: ${v('CgroupVersion')}\n`;
  const plugins = (i['Plugins'] as Record<string, string[] | null> | undefined) ?? {};
  s += ' Plugins:\n';
  for (const k of ['Volume', 'Network', 'Log']) s += `  ${k}: ${(plugins[k] ?? []).join(' ')}\n`;
  s += ` Swarm: ${String((i['Swarm'] as { LocalNodeState?: string } | undefined)?.LocalNodeState ?? 'inactive')}\n`;
  const runtimes = Object.keys((i['Runtimes'] as Record<string, unknown> | undefined) ?? {});
  s += ` Runtimes: ${runtimes.join(' ')}\n`;
  s += ` Default Runtime: ${v('DefaultRuntime')}\n`;
  if (i['InitBinary'] !== undefined) s += ` Init Binary: ${v('InitBinary')}\n`;
  const secopts = (i['SecurityOptions'] as string[] | null) ?? [];
  if (secopts.length) {
    s += ' Security Options:\n';
    for (const o of secopts) {
      const parts = o.split(',');
      s += `  ${parts[0]!.replace(/^name=/, '')}\n`;
      for (const q of parts.slice(1)) {
        const [k, val] = q.split('=');
        s += `   ${k![0]!.toUpperCase()}${k!.slice(1)}: ${val}\n`;
      }
    }
  }
  s += ` Kernel Version: ${v('KernelVersion')}\n`;
  s += ` Operating System: ${v('OperatingSystem')}\n`;
  s += ` OSType: ${v('OSType')}\n`;
  s += ` Architecture: ${v('Architecture')}\n`;
  s += ` CPUs: ${v('NCPU')}\n`;
  s += ` Total Memory: ${bytesSize(Number(i['MemTotal'] ?? 0))}\n`;
  s += ` Name: ${v('Name')}\n`;
  s += ` ID: ${v('ID')}\n`;
  s += ` Docker Root Dir: ${v('DockerRootDir')}\n`;
  s += ` Debug Mode: ${String(i['Debug'] ?? false)}\n`;
  if (i['HttpProxy']) s += ` HTTP Proxy: ${v('HttpProxy')}\n`;
  if (i['HttpsProxy']) s += ` HTTPS Proxy: ${v('HttpsProxy')}\n`;
  if (i['NoProxy']) s += ` No Proxy: ${v('NoProxy')}\n`;
  const labels = (i['Labels'] as string[] | null) ?? [];
  if (labels.length) s += ` Labels:\n${labels.map((l) => `  ${l}\n`).join('')}`;
  s += ` Experimental: ${String(i['ExperimentalBuild'] ?? false)}\n`;
  const reg = (i['RegistryConfig'] as { InsecureRegistryCIDRs?: string[] | null; IndexConfigs?: Record<string, { Secure?: boolean }> } | undefined) ?? {};
  const insecure = [
    ...Object.entries(reg.IndexConfigs ?? {}).filter(([, x]) => x.Secure === false).map(([k]) => k),
    ...(reg.InsecureRegistryCIDRs ?? []),
  ];
  if (insecure.length) s += ` Insecure Registries:\n${insecure.map((x) => `  ${x}\n`).join('')}`;
  s += ` Live Restore Enabled: ${String(i['LiveRestoreEnabled'] ?? false)}\n`;
  return s + '\n';
}

/** `berth events [--since] [--until] [--filter] [--format]`. */
export async function events(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'since', type: 'string' },
    { name: 'until', type: 'string' },
    { name: 'filter', short: 'f', type: 'list' },
    { name: 'format', type: 'string' },
  ], { command: 'events' });
  const c = await cli.client();
  const since = flagStr(p, 'since');
  const until = flagStr(p, 'until');
  const format = flagStr(p, 'format');
  const query = {
    since: since === undefined ? undefined : parseTimestampArg(since),
    until: until === undefined ? undefined : parseTimestampArg(until),
    filters: filtersFromFlags(flagList(p, 'filter')),
  };
  for await (const ev of c.ndjson<Record<string, unknown>>('GET', '/events', { query })) {
    if (format) cli.print(format === 'json' ? goJson(ev) + '\n' : renderOne(format, ev));
    else cli.print(formatEvent(ev));
  }
  return 0;
}

/** One event line as docker prints it: `<time> <type> <action> <id> (k=v, …)`. */
export function formatEvent(ev: Record<string, unknown>): string {
  const timeNano = ev['timeNano'] !== undefined ? BigInt(Math.round(Number(ev['timeNano']))) : BigInt(Number(ev['time'] ?? 0)) * 1_000_000_000n;
  const actor = (ev['Actor'] as { ID?: string; Attributes?: Record<string, string> } | undefined) ?? {};
  const attrs = actor.Attributes ?? {};
  const keys = Object.keys(attrs).sort();
  const a = keys.length ? ` (${keys.map((k) => `${k}=${attrs[k]}`).join(', ')})` : '';
  return `${rfc3339NanoFixed(timeNano)} ${String(ev['Type'] ?? '')} ${String(ev['Action'] ?? ev['status'] ?? '')} ${actor.ID ?? String(ev['id'] ?? '')}${a}\n`;
}

/** `berth system df [-v] [--format]`. */
export async function df(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [formatFlag, { name: 'verbose', short: 'v', type: 'bool' }], { command: 'system df' });
  const c = await cli.client();
  const d = await c.get<Record<string, unknown>>('/system/df');
  const images = (d['Images'] as Record<string, number>[] | null) ?? [];
  const containers = (d['Containers'] as Record<string, unknown>[] | null) ?? [];
  const volumes = (d['Volumes'] as { UsageData?: { Size?: number; RefCount?: number } }[] | null) ?? [];
  const cache = (d['BuildCache'] as { Size?: number; InUse?: boolean; Shared?: boolean }[] | null) ?? [];
  const pct = (r: number, t: number): string => (t > 0 ? ` (${Math.round((r * 100) / t)}%)` : '');
  const imgActive = images.filter((i) => (i['Containers'] ?? 0) > 0);
  const imgSize = Number(d['LayersSize'] ?? images.reduce((a, i) => a + (i['Size'] ?? 0), 0));
  const imgUsed = imgActive.reduce((a, i) => a + ((i['Size'] ?? 0) - Math.max(0, i['SharedSize'] ?? 0)), 0);
  const imgReclaim = Math.max(0, imgSize - imgUsed);
  const cActive = containers.filter((x) => x['State'] === 'running' || x['State'] === 'paused' || x['State'] === 'restarting');
  const cSize = containers.reduce((a, x) => a + Number(x['SizeRw'] ?? 0), 0);
  const cReclaim = containers.filter((x) => !cActive.includes(x)).reduce((a, x) => a + Number(x['SizeRw'] ?? 0), 0);
  const vActive = volumes.filter((v) => (v.UsageData?.RefCount ?? 0) > 0);
  const vSize = volumes.reduce((a, v) => a + Math.max(0, v.UsageData?.Size ?? 0), 0);
  const vReclaim = volumes.filter((v) => !vActive.includes(v)).reduce((a, v) => a + Math.max(0, v.UsageData?.Size ?? 0), 0);
  const bSize = cache.reduce((a, b) => a + (b.Size ?? 0), 0);
  const bReclaim = cache.filter((b) => !b.InUse && !b.Shared).reduce((a, b) => a + (b.Size ?? 0), 0);
  const rows = [
    { Type: 'Images', TotalCount: images.length, Active: imgActive.length, Size: humanSize(imgSize), Reclaimable: humanSize(imgReclaim) + pct(imgReclaim, imgSize) },
    { Type: 'Containers', TotalCount: containers.length, Active: cActive.length, Size: humanSize(cSize), Reclaimable: humanSize(cReclaim) + pct(cReclaim, cSize) },
    { Type: 'Local Volumes', TotalCount: volumes.length, Active: vActive.length, Size: humanSize(vSize), Reclaimable: humanSize(vReclaim) + pct(vReclaim, vSize) },
    { Type: 'Build Cache', TotalCount: cache.length, Active: cache.filter((b) => b.InUse).length, Size: humanSize(bSize), Reclaimable: humanSize(bReclaim) },
  ];
  cli.print(renderList(flagStr(p, 'format'), rows, {
    defaultTable: '{{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}',
    headers: { Type: 'TYPE', TotalCount: 'TOTAL', Active: 'ACTIVE', Size: 'SIZE', Reclaimable: 'RECLAIMABLE' },
  }));
  return 0;
}

/** `berth system prune [-a] [-f] [--volumes] [--filter]`. */
export async function prune(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'all', short: 'a', type: 'bool' },
    { name: 'force', short: 'f', type: 'bool' },
    { name: 'volumes', type: 'bool' },
    { name: 'filter', type: 'list' },
  ], { command: 'system prune' });
  const all = flagBool(p, 'all');
  const vols = flagBool(p, 'volumes');
  if (!flagBool(p, 'force')) {
    const lines = ['all stopped containers', 'all networks not used by at least one container'];
    if (vols) lines.push('all anonymous volumes not used by at least one container');
    lines.push(all ? 'all images without at least one container associated to them' : 'all dangling images');
    lines.push(all ? 'all build cache' : 'unused build cache');
    cli.print(`WARNING! This will remove:\n${lines.map((l) => `  - ${l}\n`).join('')}\n`);
    if (!(await confirm(cli, 'Are you sure you want to continue?'))) return 0;
  }
  const c = await cli.client();
  const base = filtersFromFlags(flagList(p, 'filter')) ?? {};
  let total = 0;
  const cr = await c.post<{ ContainersDeleted?: string[] | null; SpaceReclaimed?: number }>('/containers/prune', { filters: base });
  if (cr?.ContainersDeleted?.length) cli.print(`Deleted Containers:\n${cr.ContainersDeleted.join('\n')}\n\n`);
  total += cr?.SpaceReclaimed ?? 0;
  try {
    const nr = await c.post<{ NetworksDeleted?: string[] | null }>('/networks/prune', { filters: base });
    if (nr?.NetworksDeleted?.length) cli.print(`Deleted Networks:\n${nr.NetworksDeleted.join('\n')}\n\n`);
  } catch (err) {
    if (!(err instanceof ApiError && (err.status === 404 || err.status === 501))) throw err;
  }
  if (vols) {
    const vr = await c.post<{ VolumesDeleted?: string[] | null; SpaceReclaimed?: number }>('/volumes/prune', { filters: base });
    if (vr?.VolumesDeleted?.length) cli.print(`Deleted Volumes:\n${vr.VolumesDeleted.join('\n')}\n\n`);
    total += vr?.SpaceReclaimed ?? 0;
  }
  const ir = await c.post<{ ImagesDeleted?: { Untagged?: string; Deleted?: string }[] | null; SpaceReclaimed?: number }>('/images/prune', {
    filters: { ...base, dangling: { [all ? 'false' : 'true']: true } },
  });
  if (ir?.ImagesDeleted?.length) {
    cli.print(`Deleted Images:\n${ir.ImagesDeleted.map((x) => (x.Untagged ? `untagged: ${x.Untagged}` : `deleted: ${x.Deleted}`)).join('\n')}\n\n`);
  }
  total += ir?.SpaceReclaimed ?? 0;
  try {
    const br = await c.post<{ SpaceReclaimed?: number }>('/build/prune', { all });
    total += br?.SpaceReclaimed ?? 0;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
  }
  cli.print(`Total reclaimed space: ${humanSize(total)}\n`);
  return 0;
}

