/**
 * Turning a create request and an image config into the container's effective Config, the way
 * Docker does (user values win; Entrypoint given without Cmd drops the image's Cmd; Env merged by key).
 */
import type { Json } from '../engine/services.js';
import { invalidArgument } from '../base/errors.js';

const asArray = (v: unknown): string[] | undefined => {
  if (v === null || v === undefined) return undefined;
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.map(String);
  return undefined;
};

/** Merge env lists: later entries replace earlier ones with the same key. */
export function mergeEnv(base: string[], over: string[]): string[] {
  const out = new Map<string, string>();
  for (const e of [...base, ...over]) {
    const i = e.indexOf('=');
    out.set(i < 0 ? e : e.slice(0, i), e);
  }
  return [...out.values()];
}

/** The effective Config of a new container. */
export function mergeConfig(body: Json, imageCfg: Json, imageRef: string, id: string): Json {
  const ic = (imageCfg['config'] as Json | undefined) ?? {};
  const userEntrypoint = asArray(body['Entrypoint']);
  const userCmd = asArray(body['Cmd']);
  let entrypoint: string[] | null;
  let cmd: string[] | null;
  if (userEntrypoint !== undefined) {
    entrypoint = userEntrypoint.length === 1 && userEntrypoint[0] === '' ? null : userEntrypoint;
    cmd = userCmd ?? null;
  } else {
    entrypoint = asArray(ic['Entrypoint']) ?? null;
    cmd = userCmd ?? asArray(ic['Cmd']) ?? null;
  }
  const env = mergeEnv(asArray(ic['Env']) ?? [], asArray(body['Env']) ?? []);
  const labels = { ...((ic['Labels'] as Json | null) ?? {}), ...((body['Labels'] as Json | null) ?? {}) };
  const exposed = { ...((ic['ExposedPorts'] as Json | null) ?? {}), ...((body['ExposedPorts'] as Json | null) ?? {}) };
  const volumes = { ...((ic['Volumes'] as Json | null) ?? {}), ...((body['Volumes'] as Json | null) ?? {}) };
  let user: unknown = body['User'];
  if (typeof user === 'number') user = String(user);
  let healthcheck = (body['Healthcheck'] as Json | null | undefined) ?? (ic['Healthcheck'] as Json | undefined);
  if (healthcheck && Array.isArray(healthcheck['Test']) && (healthcheck['Test'] as string[])[0] === 'NONE') {
    healthcheck = { Test: ['NONE'] };
  }
  const cfg: Json = {
    Hostname: (body['Hostname'] as string) || id.slice(0, 12),
    Domainname: (body['Domainname'] as string) ?? '',
    User: (user as string) || (ic['User'] as string) || '',
    AttachStdin: Boolean(body['AttachStdin']),
    AttachStdout: Boolean(body['AttachStdout']),
    AttachStderr: Boolean(body['AttachStderr']),
    ExposedPorts: Object.keys(exposed).length ? exposed : undefined,
    Tty: Boolean(body['Tty']),
    OpenStdin: Boolean(body['OpenStdin']),
    StdinOnce: Boolean(body['StdinOnce']),
    Env: env,
    Cmd: cmd,
    Image: imageRef,
    Volumes: Object.keys(volumes).length ? volumes : null,
    WorkingDir: (body['WorkingDir'] as string) || (ic['WorkingDir'] as string) || '',
    Entrypoint: entrypoint,
    OnBuild: (ic['OnBuild'] as unknown) ?? null,
    Labels: labels,
  };
  if (healthcheck) cfg['Healthcheck'] = healthcheck;
  const stopSignal = (body['StopSignal'] as string) || (ic['StopSignal'] as string);
  if (stopSignal) cfg['StopSignal'] = stopSignal;
  if (typeof body['StopTimeout'] === 'number') cfg['StopTimeout'] = body['StopTimeout'];
  if (cfg['ExposedPorts'] === undefined) delete cfg['ExposedPorts'];
  const argv = [...(entrypoint ?? []), ...(cmd ?? [])];
  if (argv.length === 0) throw invalidArgument('no command specified');
  return cfg;
}

/** Docker's default HostConfig fields, filled where the request left them out. */
export function normaliseHostConfig(hc: Json | undefined): Json {
  const h: Json = { ...(hc ?? {}) };
  const def = (k: string, v: unknown) => {
    if (h[k] === undefined || h[k] === null) h[k] = v;
  };
  def('Binds', null);
  def('NetworkMode', 'default');
  def('PortBindings', {});
  def('RestartPolicy', { Name: 'no', MaximumRetryCount: 0 });
  def('AutoRemove', false);
  def('VolumeDriver', '');
  def('VolumesFrom', null);
  def('CapAdd', null);
  def('CapDrop', null);
  def('Dns', []);
  def('DnsOptions', []);
  def('DnsSearch', []);
  def('ExtraHosts', null);
  def('Privileged', false);
  def('PublishAllPorts', false);
  def('ReadonlyRootfs', false);
  def('SecurityOpt', null);
  def('Tmpfs', undefined);
  def('ShmSize', 67108864);
  def('Runtime', '');
  def('Memory', 0);
  def('MemorySwap', 0);
  def('NanoCpus', 0);
  def('CpuShares', 0);
  def('CpuPeriod', 0);
  def('CpuQuota', 0);
  def('CpusetCpus', '');
  def('CpusetMems', '');
  def('PidsLimit', null);
  def('Ulimits', null);
  def('Devices', []);
  def('Init', null);
  def('LogConfig', { Type: 'json-file', Config: {} });
  const lc = h['LogConfig'] as Json;
  if (!lc['Type']) lc['Type'] = 'json-file';
  if (!lc['Config']) lc['Config'] = {};
  const rp = h['RestartPolicy'] as Json;
  if (!rp['Name']) rp['Name'] = 'no';
  if (rp['MaximumRetryCount'] === undefined) rp['MaximumRetryCount'] = 0;
  if (h['Tmpfs'] === undefined) delete h['Tmpfs'];
  return h;
}

/** Validate the restart policy (Docker's wording). */
export function validateRestartPolicy(hc: Json): void {
  const rp = hc['RestartPolicy'] as { Name: string; MaximumRetryCount?: number };
  if (!['no', '', 'always', 'unless-stopped', 'on-failure'].includes(rp.Name)) {
    throw invalidArgument(`invalid restart policy '${rp.Name}'`);
  }
  if (rp.Name !== 'on-failure' && (rp.MaximumRetryCount ?? 0) > 0) {
    throw invalidArgument(`invalid restart policy: maximum retry count can only be used with 'on-failure'`);
  }
  if ((rp.MaximumRetryCount ?? 0) < 0) throw invalidArgument('invalid restart policy: maximum retry count cannot be negative');
  if (hc['AutoRemove'] && rp.Name !== 'no' && rp.Name !== '') {
    throw invalidArgument("can't create 'AutoRemove' container with restart policy");
  }
}

/** A signal name or number → the form runtimes accept ("TERM", "9"). */
export function normaliseSignal(sig: string | undefined, dflt = 'TERM'): string {
  const s = (sig ?? '').trim();
  if (!s) return dflt;
  if (/^\d+$/.test(s)) {
    const n = Number(s);
    if (n < 1 || n > 64) throw invalidArgument(`invalid signal: ${sig}`);
    return s;
  }
  const name = s.toUpperCase().replace(/^SIG/, '');
  if (!SIGNALS.has(name)) throw invalidArgument(`invalid signal: ${sig}`);
  return name;
}

const SIGNALS = new Set([
  'HUP', 'INT', 'QUIT', 'ILL', 'TRAP', 'ABRT', 'BUS', 'FPE', 'KILL', 'USR1', 'SEGV', 'USR2', 'PIPE', 'ALRM',
  'TERM', 'STKFLT', 'CHLD', 'CONT', 'STOP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'XCPU', 'XFSZ', 'VTALRM', 'PROF',
  'WINCH', 'IO', 'POLL', 'PWR', 'SYS', 'RTMIN', 'RTMAX',
]);
