/**
 * Docker's human unit parsers: memory sizes (go-units RAMInBytes: binary multiples), `--cpus`
 * (exact decimal → NanoCpus) and `--ulimit name=soft[:hard]`.
 */
import { invalidArgument } from '../../base/errors.js';

const MEM_RE = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i;
const MEM_MULT: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };

/**
 * Parses a memory size: "32m", "1g", "512k", "1.5GiB", "1024" (bytes) or a number of bytes.
 * "-1"/-1 is accepted and returned as -1 (Docker's "unlimited" for --memory-swap).
 * Throws invalidArgument("invalid size: 'x'") on anything else.
 */
export function parseMemory(s: string | number): number {
  if (typeof s === 'number') {
    if (s === -1) return -1;
    if (!Number.isInteger(s) || s < 0) throw invalidArgument(`invalid size: '${s}'`);
    return s;
  }
  const t = s.trim();
  if (t === '-1') return -1;
  const m = MEM_RE.exec(t);
  if (!m) throw invalidArgument(`invalid size: '${s}'`);
  const mult = m[2] ? MEM_MULT[m[2].toLowerCase()]! : 1;
  const v = Math.floor(Number(m[1]) * mult);
  if (!Number.isSafeInteger(v)) throw invalidArgument(`invalid size: '${s}'`);
  return v;
}

/**
 * Parses `--cpus` ("1.5", "0.25", "2") exactly into NanoCpus (1.5 → 1500000000).
 * More than 9 significant decimals → "value is too precise", junk → "failed to parse x as a rational number".
 */
export function parseCpus(s: string): number {
  const t = s.trim();
  const m = /^(-)?(\d*)(?:\.(\d*))?$/.exec(t);
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) throw invalidArgument(`failed to parse ${s} as a rational number`);
  const whole = m[2] === '' ? 0 : Number(m[2]);
  let frac = (m[3] ?? '').replace(/0+$/, '');
  if (frac.length > 9) throw invalidArgument('value is too precise');
  frac = frac.padEnd(9, '0');
  const nano = whole * 1e9 + Number(frac);
  if (!Number.isSafeInteger(nano)) throw invalidArgument(`failed to parse ${s} as a rational number`);
  return m[1] ? -nano : nano;
}

/** Ulimit names Docker accepts (go-units), mapped to OCI rlimit types. */
export const ULIMIT_NAMES: Readonly<Record<string, string>> = Object.freeze({
  core: 'RLIMIT_CORE', cpu: 'RLIMIT_CPU', data: 'RLIMIT_DATA', fsize: 'RLIMIT_FSIZE',
  locks: 'RLIMIT_LOCKS', memlock: 'RLIMIT_MEMLOCK', msgqueue: 'RLIMIT_MSGQUEUE', nice: 'RLIMIT_NICE',
  nofile: 'RLIMIT_NOFILE', nproc: 'RLIMIT_NPROC', rss: 'RLIMIT_RSS', rtprio: 'RLIMIT_RTPRIO',
  rttime: 'RLIMIT_RTTIME', sigpending: 'RLIMIT_SIGPENDING', stack: 'RLIMIT_STACK',
});

/** A Docker HostConfig.Ulimits entry. */
export interface Ulimit {
  Name: string;
  Soft: number;
  Hard: number;
}

/** Parses `--ulimit nofile=1024:2048` (or `name=n`, soft = hard) into a HostConfig.Ulimits entry. */
export function parseUlimit(s: string): Ulimit {
  const eq = s.indexOf('=');
  if (eq < 0) throw invalidArgument(`invalid ulimit argument: ${s}`);
  const name = s.slice(0, eq);
  if (!(name in ULIMIT_NAMES)) throw invalidArgument(`invalid ulimit type: ${name}`);
  const parts = s.slice(eq + 1).split(':');
  if (parts.length > 2) throw invalidArgument(`too many limit value arguments - ${s.slice(eq + 1)}, can only have up to two, \`soft[:hard]\``);
  const vals = parts.map((p) => {
    if (!/^-?\d+$/.test(p)) throw invalidArgument(`invalid ulimit argument: ${s}`);
    return Number(p);
  });
  const soft = vals[0]!;
  const hard = vals[1] ?? soft;
  validateUlimit({ Name: name, Soft: soft, Hard: hard });
  return { Name: name, Soft: soft, Hard: hard };
}

/** Checks one Ulimit with go-units wording; -1 means unlimited. */
export function validateUlimit(u: Ulimit): void {
  if (!(u.Name in ULIMIT_NAMES)) throw invalidArgument(`invalid ulimit type: ${u.Name}`);
  const soft = u.Soft === -1 ? Infinity : u.Soft;
  const hard = u.Hard === -1 ? Infinity : u.Hard;
  if (!Number.isInteger(u.Soft) || !Number.isInteger(u.Hard) || u.Soft < -1 || u.Hard < -1) {
    throw invalidArgument(`invalid ulimit value for ${u.Name}: ${u.Soft}:${u.Hard}`);
  }
  if (soft > hard) throw invalidArgument(`ulimit soft limit must be less than or equal to hard limit: ${u.Soft} > ${u.Hard}`);
}
