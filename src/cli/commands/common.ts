/**
 * Helpers shared by commands: filter flags → API filters map, time arguments, confirmation prompts.
 */
import { UsageError } from '../args.js';
import type { Cli } from '../context.js';
import { parseDurationNs } from '../run-config.js';

/** `--filter k=v` list → `{"k":{"v":true}}` (the docker CLI's map-of-bools shape). */
export function filtersFromFlags(list: readonly string[]): Record<string, Record<string, boolean>> | undefined {
  if (!list.length) return undefined;
  const out: Record<string, Record<string, boolean>> = {};
  for (const f of list) {
    const i = f.indexOf('=');
    if (i <= 0) throw new UsageError(`bad format of filter (expected name=value)`);
    const k = f.slice(0, i).trim().toLowerCase();
    (out[k] ??= {})[f.slice(i + 1)] = true;
  }
  return out;
}

/**
 * Docker's timestamp arguments (--since/--until): unix seconds[.nanos], RFC3339 dates, or a Go
 * duration meaning "that long ago". Returns the API string "seconds[.nanos]".
 */
export function parseTimestampArg(s: string, now: number = Date.now()): string {
  if (/^\d+(\.\d+)?$/.test(s)) return s;
  if (/^\d+(\.\d+)?(ns|us|µs|ms|s|m|h)/.test(s)) {
    const ns = parseDurationNs(s);
    return String(Math.floor((now * 1e6 - ns) / 1e9));
  }
  const ms = Date.parse(s);
  if (Number.isNaN(ms)) throw new UsageError(`failed to parse value as time or duration: "${s}"`);
  return String(Math.floor(ms / 1000));
}

/** Ask a yes/no question on stdin; anything but y/yes is "no". */
export async function confirm(cli: Cli, question: string): Promise<boolean> {
  cli.print(`${question} [y/N] `);
  const answer = await new Promise<string>((resolve) => {
    let buf = '';
    const onData = (c: Buffer): void => {
      buf += c.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) finish(buf.slice(0, nl));
    };
    const finish = (v: string): void => {
      cli.stdin.off('data', onData);
      cli.stdin.off('end', onEnd);
      cli.stdin.pause();
      resolve(v);
    };
    const onEnd = (): void => finish(buf);
    cli.stdin.on('data', onData);
    cli.stdin.once('end', onEnd);
  });
  return /^y(es)?$/i.test(answer.trim());
}

/** Go's RFC3339NanoFixed in local time ("2006-01-02T15:04:05.000000000Z07:00") for a nanosecond time. */
export function rfc3339NanoFixed(timeNano: bigint | number): string {
  const ns = BigInt(timeNano);
  const ms = Number(ns / 1_000_000n);
  const frac = String(ns % 1_000_000_000n).padStart(9, '0');
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const zone = off === 0 ? 'Z' : `${off > 0 ? '+' : '-'}${p(Math.floor(Math.abs(off) / 60))}:${p(Math.abs(off) % 60)}`;
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${frac}${zone}`;
}

/** Run `fn` for each name, printing the name on success and collecting errors like docker (exit 1 if any failed). */
export async function forEachName(cli: Cli, names: readonly string[], fn: (n: string) => Promise<string | void>): Promise<number> {
  let failed = false;
  for (const n of names) {
    try {
      const shown = await fn(n);
      cli.print(`${shown ?? n}\n`);
    } catch (err) {
      failed = true;
      const msg = err instanceof Error ? err.message : String(err);
      const isApi = (err as { status?: number }).status !== undefined;
      cli.err.write(`${isApi ? 'Error response from daemon: ' : 'Error: '}${msg}\n`);
    }
  }
  return failed ? 1 : 0;
}

/** Require at least / exactly N positional arguments, with docker's wording. */
export function requireArgs(cmd: string, args: readonly string[], min: number, max = Infinity): void {
  if (args.length < min || args.length > max) {
    const what = min === max ? `exactly ${min} argument${min === 1 ? '' : 's'}` : max === Infinity ? `at least ${min} argument${min === 1 ? '' : 's'}` : `at most ${max} argument${max === 1 ? '' : 's'}`;
    throw new UsageError(`"berth ${cmd}" requires ${what}.`);
  }
}

/** Encode an object reference for a URL path, keeping `/`, `:` and `@` readable (as docker does). */
export function encPath(ref: string): string {
  return encodeURIComponent(ref).replace(/%2F/gi, '/').replace(/%3A/gi, ':').replace(/%40/g, '@');
}
