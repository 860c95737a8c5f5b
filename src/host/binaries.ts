/** Where the system's binaries are. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const resolved = new Map<string, string>();

/**
 * The absolute path of a system binary (`ip`, `unshare`, `mount`, `sh`), looked up once in the
 * usual directories; the bare name (a PATH lookup) when it is in none of them. Absolute paths
 * spare every start a walk over PATH's failed execs.
 */
export function systemBinary(name: string): string {
  let p = resolved.get(name);
  if (p === undefined) {
    p = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].map((d) => join(d, name)).find((f) => existsSync(f)) ?? name;
    resolved.set(name, p);
  }
  return p;
}
