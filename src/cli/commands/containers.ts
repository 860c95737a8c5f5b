/**
 * Container commands that are plain API calls: ps, inspect, stop, kill, restart, rm, logs, wait,
 * top, stats, pause, unpause, rename, update, diff, export, commit, port, prune.
 */
import * as fs from 'node:fs';
import { pipeline } from 'node:stream/promises';

import { ApiError, copyOutput, type ApiClient } from '../../client/index.js';
import { flagBool, flagGiven, flagInt, flagList, flagStr, parseArgs, UsageError, type FlagSpec } from '../args.js';
import { StatusError, type Cli } from '../context.js';
import { bytesSize, ellipsis, goTimeString, humanSize, lazyField, parseBytes, renderList, renderOne, shortId, tabwrite, timeAgo } from '../format.js';
import { confirm, encPath, filtersFromFlags, forEachName, parseTimestampArg, requireArgs } from './common.js';

type Json = Record<string, unknown>;

const formatFlag: FlagSpec = { name: 'format', type: 'string' };

/** A port entry of `/containers/json`. */
interface PortEntry { IP?: string; PrivatePort: number; PublicPort?: number; Type: string }

/**
 * Docker's ps PORTS column (docker/cli DisplayablePorts): `0.0.0.0:8080->80/tcp, 443/tcp`. Runs of
 * consecutive ports with the same address and protocol that are published on the same port number
 * (or not published) fold into one range, `127.0.0.1:9000-9001->9000-9001/udp` or `80-82/tcp`;
 * ports published on another number are listed one by one after them, as Docker does.
 */
export function displayPorts(ports: readonly PortEntry[] | null | undefined): string {
  if (!ports?.length) return '';
  const sorted = [...ports].sort(
    (a, b) => a.PrivatePort - b.PrivatePort || (a.IP ?? '').localeCompare(b.IP ?? '') || (a.PublicPort ?? 0) - (b.PublicPort ?? 0) || a.Type.localeCompare(b.Type),
  );
  const hostAddr = (ip: string, port: number | string): string => `${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
  const groups = new Map<string, { ip: string; type: string; first: number; last: number }>();
  const folded: string[] = [];
  const mapped: string[] = [];
  const form = (g: { ip: string; type: string; first: number; last: number }): string => {
    const p = g.first === g.last ? String(g.first) : `${g.first}-${g.last}`;
    return g.ip ? `${hostAddr(g.ip, p)}->${p}/${g.type}` : `${p}/${g.type}`;
  };
  for (const p of sorted) {
    const ip = p.IP ?? '';
    if (ip && p.PublicPort !== p.PrivatePort) {
      mapped.push(`${hostAddr(ip, p.PublicPort ?? 0)}->${p.PrivatePort}/${p.Type}`);
      continue;
    }
    const key = ip ? `${ip}/${p.Type}` : p.Type;
    const g = groups.get(key);
    if (g && p.PrivatePort === g.last) continue; // the same port listed twice
    if (g && p.PrivatePort === g.last + 1) {
      g.last = p.PrivatePort;
      continue;
    }
    if (g) folded.push(form(g));
    groups.set(key, { ip, type: p.Type, first: p.PrivatePort, last: p.PrivatePort });
  }
  for (const g of groups.values()) folded.push(form(g));
  return [...folded, ...[...new Set(mapped)]].join(', ');
}

/** The row object `ps --format` templates see (docker's ContainerContext fields). */
export function psRow(c: Json, trunc: boolean, now = Date.now()): Json {
  const names = ((c['Names'] as string[] | null) ?? []).map((n) => n.replace(/^\//, ''));
  const shownNames = trunc ? names.filter((n) => !n.includes('/')) : names;
  const image = String(c['Image'] ?? '');
  const command = String(c['Command'] ?? '');
  const labels = (c['Labels'] as Record<string, string> | null) ?? {};
  const sizeRw = c['SizeRw'];
  const sizeRoot = c['SizeRootFs'];
  const mounts = ((c['Mounts'] as { Name?: string; Source?: string }[] | null) ?? []).map((m) => {
    const n = m.Name || m.Source || '';
    return trunc ? ellipsis(n, 15) : n;
  });
  const nets = Object.keys(((c['NetworkSettings'] as { Networks?: Json } | null)?.Networks) ?? {}).sort();
  const row: Json = {
    ID: trunc ? shortId(String(c['Id'] ?? '')) : String(c['Id'] ?? ''),
    Image: trunc && /^sha256:[0-9a-f]{64}$/.test(image) ? shortId(image) : image,
    Command: JSON.stringify(trunc ? ellipsis(command, 20) : command),
    CreatedAt: '',
    RunningFor: timeAgo(Number(c['Created'] ?? 0), now),
    Ports: displayPorts(c['Ports'] as PortEntry[] | null),
    State: String(c['State'] ?? ''),
    Status: String(c['Status'] ?? ''),
    Size: sizeRw === undefined && sizeRoot === undefined ? '0B' : `${humanSize(Number(sizeRw ?? 0))} (virtual ${humanSize(Number(sizeRoot ?? 0))})`,
    Names: shownNames.join(','),
    Labels: Object.keys(labels).sort().map((k) => `${k}=${labels[k]}`).join(','),
    Mounts: mounts.join(','),
    Networks: nets.join(','),
    LocalVolumes: String(((c['Mounts'] as { Type?: string }[] | null) ?? []).filter((m) => m.Type === 'volume').length),
    RunningForRaw: c['Created'],
  };
  return lazyField(row, 'CreatedAt', () => goTimeString(Number(c['Created'] ?? 0)));
}

const psHeaders = {
  ID: 'CONTAINER ID', Image: 'IMAGE', Command: 'COMMAND', CreatedAt: 'CREATED AT', RunningFor: 'CREATED', Ports: 'PORTS',
  State: 'STATE', Status: 'STATUS', Size: 'SIZE', Names: 'NAMES', Labels: 'LABELS', Mounts: 'MOUNTS', Networks: 'NETWORKS',
  LocalVolumes: 'LOCAL VOLUMES',
};

/** `berth ps` / `container ls`. */
export async function ps(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'all', short: 'a', type: 'bool' },
    { name: 'quiet', short: 'q', type: 'bool' },
    { name: 'last', short: 'n', type: 'int' },
    { name: 'latest', short: 'l', type: 'bool' },
    { name: 'size', short: 's', type: 'bool' },
    { name: 'no-trunc', type: 'bool' },
    { name: 'filter', short: 'f', type: 'list' },
    formatFlag,
  ], { command: 'ps' });
  const c = await cli.client();
  let limit = flagInt(p, 'last') ?? -1;
  if (flagBool(p, 'latest')) limit = 1;
  const all = flagBool(p, 'all') || limit > 0;
  const format = flagStr(p, 'format');
  const size = flagBool(p, 'size') || (!!format && format.includes('.Size'));
  const list = await c.get<Json[]>('/containers/json', {
    all: all ? 1 : undefined,
    limit: limit > 0 ? limit : undefined,
    size: size ? 1 : undefined,
    filters: filtersFromFlags(flagList(p, 'filter')),
  });
  const trunc = !flagBool(p, 'no-trunc');
  const rows = list.map((x) => psRow(x, trunc));
  if (flagBool(p, 'quiet') && !format) {
    cli.print(rows.map((r) => `${String(r['ID'])}\n`).join(''));
    return 0;
  }
  let def = '{{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}';
  if (flagBool(p, 'size')) def += '\t{{.Size}}';
  cli.print(renderList(format, rows, { defaultTable: def, headers: psHeaders }));
  return 0;
}

/** Indented JSON the way Go's json.MarshalIndent prints inspect output (4 spaces, HTML escaped). */
export function inspectJson(v: unknown): string {
  return JSON.stringify(v, null, 4).replace(/[<>&\u2028\u2029]/g, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

async function inspectObject(c: ApiClient, type: string | undefined, name: string, size: boolean): Promise<Json> {
  const tries: [string, () => Promise<Json>][] = [
    ['container', () => c.get<Json>(`/containers/${encPath(name)}/json`, size ? { size: 1 } : undefined)],
    ['image', () => c.get<Json>(`/images/${encPath(name)}/json`)],
    ['volume', () => c.get<Json>(`/volumes/${encPath(name)}`)],
    ['network', () => c.get<Json>(`/networks/${encPath(name)}`)],
  ];
  for (const [t, f] of tries) {
    if (type && type !== t) continue;
    try {
      return await f();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
      if (type) throw err;
    }
  }
  throw new ApiError(404, `No such object: ${name}`);
}

/** Shared body of inspect commands (type fixed or from --type). */
export async function inspectCommand(cli: Cli, argv: string[], fixedType: string | undefined, cmd: string): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'format', short: 'f', type: 'string' },
    { name: 'type', type: 'string' },
    { name: 'size', short: 's', type: 'bool' },
  ], { command: cmd });
  requireArgs(cmd, p.args, 1);
  const c = await cli.client();
  const type = fixedType ?? flagStr(p, 'type');
  if (type && !['container', 'image', 'volume', 'network'].includes(type)) throw new UsageError(`"${type}" is not a valid value for --type`);
  const found: Json[] = [];
  const errors: string[] = [];
  for (const n of p.args) {
    try {
      found.push(await inspectObject(c, type, n, flagBool(p, 'size')));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) errors.push(type ? err.message : `No such object: ${n}`);
      else throw err;
    }
  }
  const format = flagStr(p, 'format');
  if (format) for (const o of found) cli.print(renderOne(format, o));
  else cli.print(`${inspectJson(found)}\n`);
  for (const e of errors) cli.err.write(`Error: ${e}\n`);
  return errors.length ? 1 : 0;
}

/** `berth inspect [--type] [-f] NAME…`. */
export function inspect(cli: Cli, argv: string[]): Promise<number> {
  return inspectCommand(cli, argv, undefined, 'inspect');
}
/** `berth container inspect`. */
export function containerInspect(cli: Cli, argv: string[]): Promise<number> {
  return inspectCommand(cli, argv, 'container', 'container inspect');
}

const enc = encPath;

/** `berth stop [-t N] [-s SIG] C…`. */
export async function stop(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'time', short: 't', type: 'int', aliases: ['timeout'] }, { name: 'signal', short: 's', type: 'string' }], { command: 'stop' });
  requireArgs('stop', p.args, 1);
  const c = await cli.client();
  return forEachName(cli, p.args, async (n) => {
    await c.post(`/containers/${enc(n)}/stop`, { t: flagInt(p, 'time'), signal: flagStr(p, 'signal') });
  });
}

/** `berth restart [-t N] C…`. */
export async function restart(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'time', short: 't', type: 'int', aliases: ['timeout'] }, { name: 'signal', short: 's', type: 'string' }], { command: 'restart' });
  requireArgs('restart', p.args, 1);
  const c = await cli.client();
  return forEachName(cli, p.args, async (n) => {
    await c.post(`/containers/${enc(n)}/restart`, { t: flagInt(p, 'time'), signal: flagStr(p, 'signal') });
  });
}

/** `berth kill [-s SIG] C…`. */
export async function kill(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'signal', short: 's', type: 'string' }], { command: 'kill' });
  requireArgs('kill', p.args, 1);
  const c = await cli.client();
  return forEachName(cli, p.args, async (n) => {
    await c.post(`/containers/${enc(n)}/kill`, { signal: flagStr(p, 'signal') });
  });
}

/** `berth rm [-f] [-v] [-l] C…`. */
export async function rm(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'force', short: 'f', type: 'bool' },
    { name: 'volumes', short: 'v', type: 'bool' },
    { name: 'link', short: 'l', type: 'bool' },
  ], { command: 'rm' });
  requireArgs('rm', p.args, 1);
  const c = await cli.client();
  return forEachName(cli, p.args, async (n) => {
    await c.delete(`/containers/${enc(n)}`, {
      force: flagBool(p, 'force') ? 1 : undefined,
      v: flagBool(p, 'volumes') ? 1 : undefined,
      link: flagBool(p, 'link') ? 1 : undefined,
    });
  });
}

/** `berth pause C…`. */
export async function pause(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [], { command: 'pause' });
  requireArgs('pause', p.args, 1);
  const c = await cli.client();
  return forEachName(cli, p.args, async (n) => void (await c.post(`/containers/${enc(n)}/pause`)));
}

/** `berth unpause C…`. */
export async function unpause(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [], { command: 'unpause' });
  requireArgs('unpause', p.args, 1);
  const c = await cli.client();
  return forEachName(cli, p.args, async (n) => void (await c.post(`/containers/${enc(n)}/unpause`)));
}

/** `berth logs [-f] [--tail N] [--since] [--until] [-t] C`. */
export async function logs(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'follow', short: 'f', type: 'bool' },
    { name: 'tail', short: 'n', type: 'string' },
    { name: 'since', type: 'string' },
    { name: 'until', type: 'string' },
    { name: 'timestamps', short: 't', type: 'bool' },
    { name: 'details', type: 'bool' },
  ], { command: 'logs' });
  requireArgs('logs', p.args, 1, 1);
  const c = await cli.client();
  const name = p.args[0]!;
  const info = await c.get<Json>(`/containers/${enc(name)}/json`);
  const tty = !!(info['Config'] as Json | undefined)?.['Tty'];
  const since = flagStr(p, 'since');
  const until = flagStr(p, 'until');
  const res = await c.request('GET', `/containers/${enc(name)}/logs`, {
    query: {
      stdout: 1,
      stderr: 1,
      follow: flagBool(p, 'follow') ? 1 : undefined,
      since: since === undefined ? undefined : parseTimestampArg(since),
      until: until === undefined ? undefined : parseTimestampArg(until),
      timestamps: flagBool(p, 'timestamps') ? 1 : undefined,
      details: flagBool(p, 'details') ? 1 : undefined,
      tail: flagStr(p, 'tail') ?? 'all',
    },
  });
  await copyOutput(res, !tty, cli.out, cli.err);
  return 0;
}

/** `berth wait C…`: prints each exit code. */
export async function wait(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [], { command: 'wait' });
  requireArgs('wait', p.args, 1);
  const c = await cli.client();
  let failed = false;
  for (const n of p.args) {
    try {
      const r = await c.post<{ StatusCode: number; Error?: { Message?: string } | null }>(`/containers/${enc(n)}/wait`);
      cli.print(`${r.StatusCode}\n`);
    } catch (err) {
      failed = true;
      cli.err.write(`Error response from daemon: ${(err as Error).message}\n`);
    }
  }
  return failed ? 1 : 0;
}

/** `berth top C [ps OPTIONS]`. */
export async function top(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [], { command: 'top', stopAtPositional: true });
  requireArgs('top', p.args, 1);
  const c = await cli.client();
  const [name, ...psArgs] = p.args;
  const r = await c.get<{ Titles: string[]; Processes: string[][] }>(`/containers/${enc(name!)}/top`, psArgs.length ? { ps_args: psArgs.join(' ') } : undefined);
  const lines = [r.Titles.join('\t'), ...(r.Processes ?? []).map((x) => x.join('\t'))];
  cli.print(tabwrite(lines.join('\n'), 20, 3) + '\n');
  return 0;
}

/** Compute one `docker stats` row from a stats object. */
export function statsRow(s: Json, id: string, trunc = true): Json {
  const cpu = (s['cpu_stats'] as Json | undefined) ?? {};
  const pre = (s['precpu_stats'] as Json | undefined) ?? {};
  const cu = (cpu['cpu_usage'] as Json | undefined) ?? {};
  const pu = (pre['cpu_usage'] as Json | undefined) ?? {};
  const cpuDelta = Number(cu['total_usage'] ?? 0) - Number(pu['total_usage'] ?? 0);
  const sysDelta = Number(cpu['system_cpu_usage'] ?? 0) - Number(pre['system_cpu_usage'] ?? 0);
  const online = Number(cpu['online_cpus'] ?? ((cu['percpu_usage'] as unknown[] | undefined)?.length ?? 1)) || 1;
  const cpuPct = sysDelta > 0 && cpuDelta > 0 ? (cpuDelta / sysDelta) * online * 100 : 0;
  const mem = (s['memory_stats'] as Json | undefined) ?? {};
  const ms = (mem['stats'] as Record<string, number> | undefined) ?? {};
  const inactive = ms['total_inactive_file'] ?? ms['inactive_file'] ?? 0;
  const usage = Math.max(0, Number(mem['usage'] ?? 0) - (inactive < Number(mem['usage'] ?? 0) ? inactive : 0));
  const limit = Number(mem['limit'] ?? 0);
  const memPct = limit > 0 ? (usage / limit) * 100 : 0;
  let rx = 0;
  let tx = 0;
  for (const n of Object.values((s['networks'] as Record<string, { rx_bytes?: number; tx_bytes?: number }> | null) ?? {})) {
    rx += n.rx_bytes ?? 0;
    tx += n.tx_bytes ?? 0;
  }
  let br = 0;
  let bw = 0;
  for (const e of ((s['blkio_stats'] as { io_service_bytes_recursive?: { op: string; value: number }[] | null } | undefined)?.io_service_bytes_recursive) ?? []) {
    if (/^read$/i.test(e.op)) br += e.value;
    else if (/^write$/i.test(e.op)) bw += e.value;
  }
  const name = String(s['name'] ?? '').replace(/^\//, '');
  const running = s['read'] !== undefined && s['read'] !== '0001-01-01T00:00:00Z';
  return {
    Container: id,
    ID: trunc ? shortId(String(s['id'] ?? id)) : String(s['id'] ?? id),
    Name: name || '--',
    CPUPerc: running ? `${cpuPct.toFixed(2)}%` : '--',
    MemUsage: running ? `${bytesSize(usage)} / ${bytesSize(limit)}` : '-- / --',
    MemPerc: running ? `${memPct.toFixed(2)}%` : '--',
    NetIO: running ? `${humanSize(rx)} / ${humanSize(tx)}` : '-- / --',
    BlockIO: running ? `${humanSize(br)} / ${humanSize(bw)}` : '-- / --',
    PIDs: running ? String(((s['pids_stats'] as Json | undefined)?.['current']) ?? 0) : '--',
  };
}

/** `berth stats [--no-stream] [-a] [--format] [C…]`. */
export async function stats(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'no-stream', type: 'bool' },
    { name: 'all', short: 'a', type: 'bool' },
    { name: 'no-trunc', type: 'bool' },
    formatFlag,
  ], { command: 'stats' });
  const c = await cli.client();
  const spec = {
    defaultTable: '{{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}',
    headers: { ID: 'CONTAINER ID', Container: 'CONTAINER', Name: 'NAME', CPUPerc: 'CPU %', MemUsage: 'MEM USAGE / LIMIT', MemPerc: 'MEM %', NetIO: 'NET I/O', BlockIO: 'BLOCK I/O', PIDs: 'PIDS' },
  };
  const once = async (): Promise<string> => {
    let names = p.args;
    if (!names.length) {
      const list = await c.get<Json[]>('/containers/json', flagBool(p, 'all') ? { all: 1 } : undefined);
      names = list.map((x) => String(x['Id']));
    }
    const rows = await Promise.all(names.map(async (n) => {
      const s = await c.get<Json>(`/containers/${enc(n)}/stats`, { stream: 0 });
      return statsRow(s, n, !flagBool(p, 'no-trunc'));
    }));
    return renderList(flagStr(p, 'format'), rows, spec);
  };
  if (flagBool(p, 'no-stream')) {
    cli.print(await once());
    return 0;
  }
  for (;;) {
    const out = await once();
    cli.print(`\x1b[2J\x1b[H${out}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** `berth rename OLD NEW`. */
export async function rename(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [], { command: 'rename' });
  requireArgs('rename', p.args, 2, 2);
  const c = await cli.client();
  await c.post(`/containers/${enc(p.args[0]!)}/rename`, { name: p.args[1] });
  return 0;
}

/** `berth update [resource flags] [--restart] C…`. */
export async function update(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'memory', short: 'm', type: 'string' },
    { name: 'memory-swap', type: 'string' },
    { name: 'memory-reservation', type: 'string' },
    { name: 'kernel-memory', type: 'string' },
    { name: 'cpus', type: 'string' },
    { name: 'cpu-shares', short: 'c', type: 'int' },
    { name: 'cpu-period', type: 'int' },
    { name: 'cpu-quota', type: 'int' },
    { name: 'cpu-rt-period', type: 'int' },
    { name: 'cpu-rt-runtime', type: 'int' },
    { name: 'cpuset-cpus', type: 'string' },
    { name: 'cpuset-mems', type: 'string' },
    { name: 'blkio-weight', type: 'int' },
    { name: 'pids-limit', type: 'int' },
    { name: 'restart', type: 'string' },
  ], { command: 'update' });
  requireArgs('update', p.args, 1);
  const body: Json = {};
  if (flagGiven(p, 'memory')) body['Memory'] = parseBytes(flagStr(p, 'memory')!);
  if (flagGiven(p, 'memory-swap')) body['MemorySwap'] = flagStr(p, 'memory-swap') === '-1' ? -1 : parseBytes(flagStr(p, 'memory-swap')!);
  if (flagGiven(p, 'memory-reservation')) body['MemoryReservation'] = parseBytes(flagStr(p, 'memory-reservation')!);
  if (flagGiven(p, 'cpus')) body['NanoCpus'] = Math.round(Number(flagStr(p, 'cpus')) * 1e9);
  if (flagGiven(p, 'cpu-shares')) body['CpuShares'] = flagInt(p, 'cpu-shares');
  if (flagGiven(p, 'cpu-period')) body['CpuPeriod'] = flagInt(p, 'cpu-period');
  if (flagGiven(p, 'cpu-quota')) body['CpuQuota'] = flagInt(p, 'cpu-quota');
  if (flagGiven(p, 'cpu-rt-period')) body['CpuRealtimePeriod'] = flagInt(p, 'cpu-rt-period');
  if (flagGiven(p, 'cpu-rt-runtime')) body['CpuRealtimeRuntime'] = flagInt(p, 'cpu-rt-runtime');
  if (flagGiven(p, 'cpuset-cpus')) body['CpusetCpus'] = flagStr(p, 'cpuset-cpus');
  if (flagGiven(p, 'cpuset-mems')) body['CpusetMems'] = flagStr(p, 'cpuset-mems');
  if (flagGiven(p, 'blkio-weight')) body['BlkioWeight'] = flagInt(p, 'blkio-weight');
  if (flagGiven(p, 'pids-limit')) body['PidsLimit'] = flagInt(p, 'pids-limit');
  const restartFlag = flagStr(p, 'restart');
  if (restartFlag) {
    const [name, max] = restartFlag.split(':');
    body['RestartPolicy'] = { Name: name, MaximumRetryCount: max ? Number(max) : 0 };
  }
  if (!Object.keys(body).length) throw new UsageError('you must provide one or more flags when using this command');
  const c = await cli.client();
  return forEachName(cli, p.args, async (n) => {
    const r = await c.post<{ Warnings?: string[] | null }>(`/containers/${enc(n)}/update`, undefined, body);
    for (const w of r?.Warnings ?? []) cli.err.write(`${w}\n`);
  });
}

/** `berth diff C`: "C /etc", "A /new", "D /gone". */
export async function diff(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [], { command: 'diff' });
  requireArgs('diff', p.args, 1, 1);
  const c = await cli.client();
  const changes = (await c.get<{ Path: string; Kind: number }[] | null>(`/containers/${enc(p.args[0]!)}/changes`)) ?? [];
  cli.print(changes.map((x) => `${['C', 'A', 'D'][x.Kind] ?? '?'} ${x.Path}\n`).join(''));
  return 0;
}

/** `berth export [-o FILE] C`. */
export async function exportContainer(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'output', short: 'o', type: 'string' }], { command: 'export' });
  requireArgs('export', p.args, 1, 1);
  const out = flagStr(p, 'output');
  if (!out && cli.out.isTTY) throw new StatusError(1, 'cowardly refusing to save to a terminal. Use the -o flag or redirect');
  const c = await cli.client();
  const res = await c.request('GET', `/containers/${enc(p.args[0]!)}/export`);
  if (out) await pipeline(res, fs.createWriteStream(out));
  else await pipeline(res, cli.out, { end: false });
  return 0;
}

/** Split "repo[:tag]" where the repo may contain a registry port. */
export function splitRepoTag(ref: string): { repo: string; tag: string | undefined } {
  const at = ref.indexOf('@');
  if (at >= 0) return { repo: ref.slice(0, at), tag: undefined };
  const colon = ref.lastIndexOf(':');
  if (colon > ref.lastIndexOf('/')) return { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repo: ref, tag: undefined };
}

/** `berth commit [-a] [-m] [-c]… [-p] C [REPO[:TAG]]`. */
export async function commit(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [
    { name: 'author', short: 'a', type: 'string' },
    { name: 'message', short: 'm', type: 'string' },
    { name: 'change', short: 'c', type: 'list' },
    { name: 'pause', short: 'p', type: 'bool' },
  ], { command: 'commit' });
  requireArgs('commit', p.args, 1, 2);
  const c = await cli.client();
  const ref = p.args[1] ? splitRepoTag(p.args[1]) : undefined;
  const r = await c.post<{ Id: string }>('/commit', {
    container: p.args[0],
    repo: ref?.repo,
    tag: ref?.tag,
    comment: flagStr(p, 'message'),
    author: flagStr(p, 'author'),
    pause: flagGiven(p, 'pause') ? flagBool(p, 'pause') : true,
    changes: flagList(p, 'change'),
  }, {});
  cli.print(`${r.Id}\n`);
  return 0;
}

/** `berth port C [PRIVATE_PORT[/PROTO]]`. */
export async function port(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [], { command: 'port' });
  requireArgs('port', p.args, 1, 2);
  const c = await cli.client();
  const info = await c.get<Json>(`/containers/${enc(p.args[0]!)}/json`);
  const ports = ((info['NetworkSettings'] as Json | undefined)?.['Ports'] as Record<string, { HostIp: string; HostPort: string }[] | null> | undefined) ?? {};
  let want = p.args[1];
  if (want && !want.includes('/')) want += '/tcp';
  const lines: string[] = [];
  for (const k of Object.keys(ports).sort()) {
    if (want && k !== want) continue;
    for (const b of ports[k] ?? []) {
      const ip = b.HostIp.includes(':') ? `[${b.HostIp}]` : b.HostIp;
      lines.push(want ? `${ip}:${b.HostPort}` : `${k} -> ${ip}:${b.HostPort}`);
    }
  }
  if (want && !lines.length) throw new StatusError(1, `Error: No public port '${want}' published for ${p.args[0]}`);
  cli.print(lines.map((l) => `${l}\n`).join(''));
  return 0;
}

/** `berth container prune [-f] [--filter]`. */
export async function prune(cli: Cli, argv: string[]): Promise<number> {
  const p = parseArgs(argv, [{ name: 'force', short: 'f', type: 'bool' }, { name: 'filter', type: 'list' }], { command: 'container prune' });
  if (!flagBool(p, 'force')) {
    if (!(await confirm(cli, 'WARNING! This will remove all stopped containers.\nAre you sure you want to continue?'))) return 0;
  }
  const c = await cli.client();
  const r = await c.post<{ ContainersDeleted?: string[] | null; SpaceReclaimed?: number }>('/containers/prune', { filters: filtersFromFlags(flagList(p, 'filter')) });
  if (r?.ContainersDeleted?.length) cli.print(`Deleted Containers:\n${r.ContainersDeleted.join('\n')}\n\n`);
  cli.print(`Total reclaimed space: ${humanSize(r?.SpaceReclaimed ?? 0)}\n`);
  return 0;
}
