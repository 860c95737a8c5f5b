/**
 * Pure helpers for `GET /containers/json` filters that need parsing: which keys Docker accepts, and
 * the `publish` / `expose` port filters (`80`, `80/tcp`, `8000-8080/udp`).
 */
import { invalidArgument } from '../base/errors.js';
import { checkFilterKeys } from '../base/filters.js';
import type { Filters } from '../engine/services.js';

/** Filter keys `docker ps` accepts (moby daemon/list.go acceptedPsFilterTags). */
export const PS_FILTER_KEYS: readonly string[] = ['ancestor', 'before', 'exited', 'expose', 'health', 'id', 'isolation', 'is-task', 'label', 'name', 'network', 'publish', 'since', 'status', 'volume'];

/** Throws Docker's `invalid filter '<key>'` for a key `docker ps` does not know. */
export function checkPsFilterKeys(f: Filters): void {
  checkFilterKeys(f, PS_FILTER_KEYS);
}

/** One port of a container as listed by `GET /containers/json`. */
export interface ListedPort {
  PrivatePort: number;
  PublicPort?: number;
  Type: string;
}

/**
 * Does a `publish` (host side) or `expose` (container side) filter value match one of the ports?
 * The value is `port[/proto]` or `start-end[/proto]`; without a proto any proto matches.
 */
export function portFilterMatches(value: string, ports: readonly ListedPort[], side: 'publish' | 'expose'): boolean {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(value.trim());
  if (!m) throw invalidArgument(`invalid filter '${side}=${value}'`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (hi < lo) throw invalidArgument(`invalid filter '${side}=${value}'`);
  const proto = m[3]?.toLowerCase();
  return ports.some((p) => {
    const n = side === 'publish' ? p.PublicPort : p.PrivatePort;
    return n !== undefined && n >= lo && n <= hi && (proto === undefined || p.Type === proto);
  });
}

/** The container ports from its config alone (exposed + bound), when no network service lists them. */
export function portsFromConfig(config: Record<string, unknown>, hostConfig: Record<string, unknown>): ListedPort[] {
  const out: ListedPort[] = [];
  const seen = new Set<string>();
  const bindings = (hostConfig['PortBindings'] as Record<string, Array<{ HostPort?: string }> | null> | null | undefined) ?? {};
  for (const key of [...Object.keys((config['ExposedPorts'] as Record<string, unknown> | null | undefined) ?? {}), ...Object.keys(bindings)]) {
    if (seen.has(key)) continue;
    seen.add(key);
    const [port, proto = 'tcp'] = key.split('/');
    const priv = Number(port);
    if (!Number.isInteger(priv)) continue;
    const bound = (bindings[key] ?? []).map((b) => Number(b.HostPort)).filter((n) => Number.isInteger(n) && n > 0);
    if (bound.length === 0) out.push({ PrivatePort: priv, Type: proto });
    for (const pub of bound) out.push({ PrivatePort: priv, PublicPort: pub, Type: proto });
  }
  return out;
}
