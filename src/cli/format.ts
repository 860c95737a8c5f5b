/**
 * Output formatting like the docker CLI: human sizes ("1.23MB"), human durations ("About a
 * minute"), truncation with "…", Go's tabwriter alignment, and `--format` handling with
 * `table` headers over the Go template engine.
 */
import { GoTemplate, goJson } from './go-template.js';

/** Decimal human size with `precision` significant digits (docker units.HumanSizeWithPrecision). */
export function humanSize(bytes: number, precision = 3): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
  let v = bytes;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${formatG(v, precision)}${units[i]}`;
}

/** Binary human size ("1.5MiB"), used by stats (docker units.BytesSize). */
export function bytesSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${formatG(v, 4)}${units[i]}`;
}

/** Go's %.<p>g for values that have been scaled below 1000. */
function formatG(v: number, precision: number): string {
  if (v === 0) return '0';
  const s = v.toPrecision(precision);
  if (s.includes('e')) return String(Number(s));
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/** Parse "64m", "1g", "512k", "100" (bytes) into a byte count, as docker's RAMInBytes. */
export function parseBytes(s: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b?)\s*$/i.exec(s);
  if (!m) throw new Error(`invalid size: '${s}'`);
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
  return Math.round(Number(m[1]) * mult[m[2]!.toLowerCase()]!);
}

/** docker units.HumanDuration: "Less than a second", "About a minute", "3 hours", "2 weeks". */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(ms / 60000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.floor(ms / 3600000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(ms / 3600000 / 24 / 365)} years`;
}

/** "<duration> ago" for a unix-seconds or RFC3339 timestamp. */
export function timeAgo(t: number | string, now: number = Date.now()): string {
  const ms = typeof t === 'number' ? t * 1000 : Date.parse(t);
  if (!Number.isFinite(ms)) return '';
  return `${humanDuration(Math.max(0, now - ms))} ago`;
}

let zoneFormat: Intl.DateTimeFormat | undefined;

/**
 * Go's "2006-01-02 15:04:05 -0700 MST" layout in local time (docker ps CreatedAt). The zone name
 * needs ICU's time zone data: the first Intl.DateTimeFormat of a process costs 30–60 ms here, so
 * one formatter is shared and rows compute this lazily ({@link lazyField}).
 */
export function goTimeString(unixSeconds: number): string {
  const d = new Date(unixSeconds * 1000);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  zoneFormat ??= new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' });
  const tz = zoneFormat.formatToParts(d).find((x) => x.type === 'timeZoneName')?.value ?? '';
  const zone = tz === 'GMT' || tz === 'UTC' ? 'UTC' : tz;
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${sign}${p(Math.floor(Math.abs(off) / 60))}${p(Math.abs(off) % 60)} ${zone}`;
}

/**
 * Define `key` on `row` as an enumerable property computed on first read (templates, JSON output
 * and object spread still see it; a table that never shows it never pays for it).
 */
export function lazyField<T extends object>(row: T, key: string, compute: () => unknown): T {
  let done = false;
  let value: unknown;
  Object.defineProperty(row, key, {
    enumerable: true,
    configurable: true,
    get: () => {
      if (!done) {
        value = compute();
        done = true;
      }
      return value;
    },
  });
  return row;
}

/** Truncate to `max` display characters, ending with "…" when cut (docker formatter.Ellipsis). */
export function ellipsis(s: string, max: number): string {
  const chars = [...s];
  if (chars.length <= max) return s;
  if (max <= 1) return chars.slice(0, max).join('');
  return chars.slice(0, max - 1).join('') + '…';
}

/** The 12-char short id, without any "sha256:" prefix. */
export function shortId(id: string): string {
  return stripAlgo(id).slice(0, 12);
}

/** Remove the "sha256:" prefix. */
export function stripAlgo(id: string): string {
  const i = id.indexOf(':');
  return i >= 0 ? id.slice(i + 1) : id;
}

/**
 * Align tab-separated cells like Go's text/tabwriter(minwidth, tabwidth=1, padding, ' ', 0):
 * each tab-terminated cell is padded to the widest cell of its column plus padding; the text
 * after the last tab of a line is not aligned.
 */
export function tabwrite(text: string, minWidth = 10, padding = 3): string {
  const lines = text.split('\n');
  const rows = lines.map((l) => l.split('\t'));
  const widths: number[] = [];
  for (const r of rows) {
    for (let c = 0; c < r.length - 1; c++) widths[c] = Math.max(widths[c] ?? 0, [...r[c]!].length);
  }
  return rows
    .map((r) =>
      r.map((cell, c) => (c < r.length - 1 ? cell.padEnd(Math.max(minWidth, widths[c]! + padding) - ([...cell].length - cell.length)) : cell)).join(''),
    )
    .join('\n');
}

/** How a list command renders its items. */
export interface FormatSpec {
  /** The default table format without the "table " prefix, e.g. "{{.ID}}\t{{.Image}}". */
  defaultTable: string;
  /** Header text per field name; unknown fields get the upper-cased name. */
  headers: Record<string, string>;
}

/** Convert the `\t` and `\n` escapes users type in formats into real characters (docker preFormat). */
export function unescapeFormat(f: string): string {
  return f.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
}

/**
 * Render items with a `--format` value: "" or "table" → default table; "table <tmpl>" → table with
 * headers; "json" → one JSON object per line; anything else → the template per item.
 * Every rendered item is followed by a newline.
 */
export function renderList(format: string | undefined, items: readonly unknown[], spec: FormatSpec): string {
  let f = format ?? '';
  if (f === 'json') return items.map((i) => goJson(i) + '\n').join('');
  let table = false;
  if (f === '' || f === 'table') {
    f = spec.defaultTable;
    table = true;
  } else if (f.startsWith('table ')) {
    f = f.slice('table '.length);
    table = true;
  }
  f = unescapeFormat(f.trim());
  const tmpl = new GoTemplate(f);
  let body = '';
  for (const it of items) body += tmpl.execute(it) + '\n';
  if (!table) return body;
  const header = tmpl.execute(headerContext(spec.headers));
  const all = header + '\n' + body;
  const out = tabwrite(all.endsWith('\n') ? all.slice(0, -1) : all);
  return out + '\n';
}

/** An object whose every field renders as its column header. */
export function headerContext(headers: Record<string, string>): unknown {
  return new Proxy(
    {},
    {
      get: (_t, k) => (typeof k === 'string' ? headers[k] ?? headerFor(k) : undefined),
      has: () => true,
    },
  );
}

function headerFor(field: string): string {
  // "RunningFor" → "RUNNING FOR"
  return field.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase();
}

/** Render a single object with a template (inspect/version/info --format). */
export function renderOne(format: string, data: unknown): string {
  if (format === 'json') return goJson(data) + '\n';
  return new GoTemplate(unescapeFormat(format)).execute(data) + '\n';
}
