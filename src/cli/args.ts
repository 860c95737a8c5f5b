/**
 * Docker-style argument parsing (pflag conventions): `-it`, `-e A=B`, `-eA=B`, `--name=x`,
 * `--name x`, repeated list flags, `--` ends flags, optional stop at the first positional
 * (run/create/exec: flags after the image name belong to the container command).
 */
import { EngineError } from '../base/errors.js';

/** How a flag takes its value. */
export type FlagType = 'bool' | 'string' | 'list' | 'int';

/** One flag of a command. */
export interface FlagSpec {
  /** Long name without dashes; also the key in ParsedArgs.flags. */
  name: string;
  short?: string;
  type: FlagType;
  /** Other long names that mean the same flag. */
  aliases?: string[];
  description?: string;
}

/** Parser behaviour. */
export interface ParseOptions {
  /** Stop parsing flags at the first positional argument. */
  stopAtPositional?: boolean;
  /** Command name for error messages. */
  command?: string;
}

/** Flag values: bool → boolean, string → string, list → string[], int → number. */
export type FlagValue = boolean | string | string[] | number;

/** The result of parsing. */
export interface ParsedArgs {
  flags: Record<string, FlagValue>;
  args: string[];
}

/** A usage error (exit code 125, like docker). */
export class UsageError extends EngineError {
  constructor(message: string) {
    super('invalid-argument', message, { code: 'USAGE' });
    this.name = 'UsageError';
  }
}

function parseBool(v: string, flag: string): boolean {
  if (/^(1|t|true|TRUE|True)$/.test(v)) return true;
  if (/^(0|f|false|FALSE|False)$/.test(v)) return false;
  throw new UsageError(`invalid argument "${v}" for "${flag}" flag: strconv.ParseBool: parsing "${v}": invalid syntax`);
}

/** Parse argv (without the command words) against flag specs. */
export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[], opts: ParseOptions = {}): ParsedArgs {
  const byLong = new Map<string, FlagSpec>();
  const byShort = new Map<string, FlagSpec>();
  for (const s of specs) {
    byLong.set(s.name, s);
    for (const a of s.aliases ?? []) byLong.set(a, s);
    if (s.short) byShort.set(s.short, s);
  }
  const flags: Record<string, FlagValue> = {};
  const args: string[] = [];
  const set = (spec: FlagSpec, raw: string | undefined, shown: string): void => {
    switch (spec.type) {
      case 'bool':
        flags[spec.name] = raw === undefined ? true : parseBool(raw, shown);
        break;
      case 'string':
        flags[spec.name] = raw ?? '';
        break;
      case 'int': {
        const n = Number(raw);
        if (raw === undefined || raw.trim() === '' || !Number.isInteger(n)) {
          throw new UsageError(`invalid argument "${raw ?? ''}" for "${shown}" flag: strconv.ParseInt: parsing "${raw ?? ''}": invalid syntax`);
        }
        flags[spec.name] = n;
        break;
      }
      case 'list': {
        const prev = flags[spec.name];
        flags[spec.name] = [...(Array.isArray(prev) ? prev : []), raw ?? ''];
        break;
      }
    }
  };
  let i = 0;
  const takeValue = (shown: string): string => {
    if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: ${shown}`);
    i++;
    return argv[i]!;
  };
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      const spec = byLong.get(name);
      if (!spec) throw new UsageError(`unknown flag: --${name}`);
      const shown = `--${name}`;
      if (eq >= 0) set(spec, a.slice(eq + 1), shown);
      else if (spec.type === 'bool') set(spec, undefined, shown);
      else set(spec, takeValue(shown), shown);
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      // a cluster of shorthands: -it, -p80:80, -e=A=B
      for (let j = 1; j < a.length; j++) {
        const ch = a[j]!;
        const spec = byShort.get(ch);
        if (!spec) throw new UsageError(`unknown shorthand flag: '${ch}' in ${a}`);
        const shown = `-${ch}, --${spec.name}`;
        const rest = a.slice(j + 1);
        if (spec.type === 'bool') {
          if (rest.startsWith('=')) {
            set(spec, rest.slice(1), shown);
            break;
          }
          set(spec, undefined, shown);
          continue;
        }
        if (rest.length > 0) set(spec, rest.startsWith('=') ? rest.slice(1) : rest, shown);
        else set(spec, takeValue(shown), shown);
        break;
      }
      continue;
    }
    args.push(a);
    if (opts.stopAtPositional) {
      args.push(...argv.slice(i + 1));
      break;
    }
  }
  return { flags, args };
}

/** Typed accessors over ParsedArgs.flags. */
export function flagBool(p: ParsedArgs, name: string): boolean {
  return p.flags[name] === true;
}
/** The string value of a flag, or undefined when not given. */
export function flagStr(p: ParsedArgs, name: string): string | undefined {
  const v = p.flags[name];
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
}
/** The values of a list flag (empty when not given). */
export function flagList(p: ParsedArgs, name: string): string[] {
  const v = p.flags[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}
/** The numeric value of an int flag, or undefined. */
export function flagInt(p: ParsedArgs, name: string): number | undefined {
  const v = p.flags[name];
  return typeof v === 'number' ? v : undefined;
}
/** True when the flag appeared on the command line. */
export function flagGiven(p: ParsedArgs, name: string): boolean {
  return name in p.flags;
}
