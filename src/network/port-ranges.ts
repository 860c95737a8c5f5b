/** Published-port helpers that need no I/O. */
import type { PortMapping } from './netavark.js';

/**
 * Fold mappings of consecutive container ports onto consecutive host ports (same address and
 * protocol) into one netavark mapping with `range` > 1: `-p 8000-8999:8000-8999` becomes one set of
 * rules instead of a thousand.
 */
export function mergeRanges(maps: readonly PortMapping[]): PortMapping[] {
  const sorted = [...maps].sort((a, b) => a.protocol.localeCompare(b.protocol) || a.host_ip.localeCompare(b.host_ip) || a.container_port - b.container_port || a.host_port - b.host_port);
  const out: PortMapping[] = [];
  for (const m of sorted) {
    const last = out[out.length - 1];
    if (last && last.protocol === m.protocol && last.host_ip === m.host_ip && m.container_port === last.container_port + last.range && m.host_port === last.host_port + last.range) {
      last.range += m.range;
    } else out.push({ ...m });
  }
  return out;
}
