/**
 * Process liveness from /proc. `kill(pid, 0)` also succeeds for a zombie: conmon daemonizes, so when
 * it exits it is reparented to the host's init (or a subreaper), and until that process reaps it the
 * pid still exists. On hosts whose init reaps slowly (this project's VMs: up to seconds) a zombie
 * must count as gone.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/** The state letter of a /proc/<pid>/stat line (R, S, D, Z, X, …), or undefined when malformed. */
export function statState(stat: string): string | undefined {
  // the command name (field 2) is in parentheses and may itself contain ") ": the state follows the last one
  const i = stat.lastIndexOf(')');
  if (i < 0) return undefined;
  const s = stat.slice(i + 1).trimStart()[0];
  return s;
}

/** True when a /proc/<pid>/stat line is of a live process (not a zombie or dead). */
export function aliveFromStat(stat: string): boolean {
  const s = statState(stat);
  return s !== undefined && s !== 'Z' && s !== 'X' && s !== 'x';
}

/** True while `pid` is a live (not zombie) process. */
export function pidAlive(pid: number): boolean {
  if (!(pid > 0)) return false;
  try {
    return aliveFromStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** {@link pidAlive} without blocking the event loop. */
export async function pidAliveAsync(pid: number): Promise<boolean> {
  if (!(pid > 0)) return false;
  try {
    return aliveFromStat(await readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
