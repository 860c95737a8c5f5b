/**
 * Create-time checks moby makes in `verifyContainerSettings` that nothing else here covers: port
 * specifications, the stop signal, healthcheck durations and bind-mount sources of `Mounts`.
 * Run before anything is written, so a refused create leaves no trace.
 */
import { existsSync } from 'node:fs';

import { invalidArgument } from '../base/errors.js';
import type { Json } from '../engine/services.js';
import { normaliseSignal } from './config-merge.js';

/** Docker's minimum healthcheck duration (1 ms, in ns). */
const MIN_HEALTH_NS = 1_000_000;

function validPort(spec: string, allowEmpty: boolean): boolean {
  if (spec === '') return allowEmpty;
  const m = /^(\d+)(?:-(\d+))?$/.exec(spec);
  if (!m) return false;
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  return lo <= 65535 && hi <= 65535 && lo <= hi && (lo > 0 || allowEmpty);
}

/** Throws invalid-argument with moby's wording for the settings it refuses at create. */
export function checkCreateSettings(config: Json, hostConfig: Json): void {
  const bindings = (hostConfig['PortBindings'] as Record<string, Array<{ HostPort?: string } | null> | null> | null | undefined) ?? {};
  for (const [key, list] of Object.entries(bindings)) {
    const [port = '', proto = 'tcp'] = key.split('/');
    if (!validPort(port, false) || !['tcp', 'udp', 'sctp'].includes(proto.toLowerCase())) throw invalidArgument(`invalid port specification: "${port}"`);
    for (const b of list ?? []) {
      const hp = (b?.HostPort ?? '').trim();
      if (!validPort(hp, true)) throw invalidArgument(`invalid port specification: "${hp}"`);
    }
  }
  const stopSignal = config['StopSignal'];
  if (typeof stopSignal === 'string' && stopSignal !== '') {
    try {
      normaliseSignal(stopSignal);
    } catch {
      throw invalidArgument(`Invalid signal: ${stopSignal}`);
    }
  }
  const hc = config['Healthcheck'] as Record<string, unknown> | null | undefined;
  if (hc) {
    for (const k of ['Interval', 'Timeout', 'StartPeriod', 'StartInterval']) {
      const v = hc[k];
      if (typeof v === 'number' && v !== 0 && v < MIN_HEALTH_NS) throw invalidArgument(`${k} in Healthcheck cannot be less than 1ms`);
    }
    if (typeof hc['Retries'] === 'number' && hc['Retries'] < 0) throw invalidArgument('Retries in Healthcheck cannot be negative');
  }
  for (const m of (hostConfig['Mounts'] as Array<Record<string, unknown>> | null | undefined) ?? []) {
    if (m && m['Type'] === 'bind' && typeof m['Source'] === 'string' && m['Source'] !== '' && !existsSync(m['Source'])) {
      throw invalidArgument(`invalid mount config for type "bind": bind source path does not exist: ${m['Source']}`);
    }
  }
}
