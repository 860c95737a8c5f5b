/** Filter helpers for `GET /images/json` and `POST /images/prune`. */
import { invalidArgument } from '../base/errors.js';

/** Go path.Match-style glob: `*` and `?` never match "/", `[...]` classes. */
export function globMatch(pattern: string, s: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end === -1) return false;
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith('^')) cls = `^${cls.slice(1)}`;
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else if (c === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  try {
    return new RegExp(`${re}$`).test(s);
  } catch {
    return false;
  }
}

export { checkFilterKeys } from '../base/filters.js';

/** `label` filter values (`key` or `key=value`): true when all match. */
export function matchLabels(labels: Record<string, string> | undefined, wanted: readonly string[]): boolean {
  const l = labels ?? {};
  return wanted.every((w) => {
    const i = w.indexOf('=');
    if (i === -1) return Object.hasOwn(l, w);
    return l[w.slice(0, i)] === w.slice(i + 1);
  });
}

/** Parse a boolean filter value ("true"/"1"/"false"/"0"). */
export function parseBoolFilter(key: string, v: string): boolean {
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw invalidArgument(`invalid filter '${key}=${v}'`);
}

/** `until` filter: unix seconds, RFC3339, or a Go duration ago ("10m", "24h"). Returns ms since epoch. */
export function parseUntil(v: string, now = Date.now()): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  // a Go duration: one or more <number><unit> parts (`24h`, `1h30m`, `1.5h`, `90s`)
  if (/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(v)) {
    const mult: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1e3, m: 60e3, h: 3600e3 };
    let ms = 0;
    for (const p of v.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(p[1]) * mult[p[2]!]!;
    return now - ms;
  }
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw invalidArgument(`invalid filter 'until=${v}'`);
  return t;
}
