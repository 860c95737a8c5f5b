/**
 * Statistics and output: median and min–max of repeated samples, the ratio to Docker measured in the
 * same run, the target check, a plain-text table, the JSON record and an SVG chart.
 */

/** A target from issue 7: a ratio to Docker in the same run, or an absolute bound. */
export interface Target {
  /** Shown in the table, e.g. "≤ 0.25×". */
  text: string;
  ratioMax?: number;
  ratioMin?: number;
  absMax?: number;
  /** The client the target is for (default `berth`, i.e. berthd through the docker CLI). */
  client?: string;
}

/** One figure the bench reports. */
export interface MetricDef {
  id: string;
  title: string;
  unit: string;
  better: 'lower' | 'higher';
  target?: Target;
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
  samples: number[];
}

/** One metric's outcome for one client: numbers, or why there are none. */
export type Outcome = { summary: Summary } | { error: string };

export interface MetricResult {
  metric: MetricDef;
  byClient: Record<string, Outcome>;
}

/** Median (mean of the middle two for even n), min and max. Throws on an empty list. */
export function summarize(samples: number[]): Summary {
  if (samples.length === 0) throw new Error('no samples');
  const s = [...samples].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, n: s.length, samples };
}

/** The client a ratio is taken against. */
export const BASELINE = 'docker';

/** median(client) / median(docker) for this metric, if both exist. */
export function ratio(r: MetricResult, client: string): number | undefined {
  const a = r.byClient[client];
  const b = r.byClient[BASELINE];
  if (!a || !b || !('summary' in a) || !('summary' in b) || b.summary.median === 0) return undefined;
  return a.summary.median / b.summary.median;
}

/** 'met' / 'missed' / undefined (no target, or nothing to compare) for a client's result. */
export function verdict(r: MetricResult, client: string): 'met' | 'missed' | undefined {
  const t = r.metric.target;
  const o = r.byClient[client];
  if (!t || !o || !('summary' in o)) return undefined;
  if (t.absMax !== undefined) return o.summary.median <= t.absMax ? 'met' : 'missed';
  const q = ratio(r, client);
  if (q === undefined) return undefined;
  if (t.ratioMax !== undefined) return q <= t.ratioMax ? 'met' : 'missed';
  if (t.ratioMin !== undefined) return q >= t.ratioMin ? 'met' : 'missed';
  return undefined;
}

/** A number with 3 significant digits (no exponent for the ranges we print). */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v.toPrecision(2);
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

/** The plain-text table: one row per metric and client. Berth rows carry the target verdict. */
export function table(results: MetricResult[], clients: string[]): string {
  const rows: string[][] = [['figure', 'client', 'median', 'min–max', 'n', '×docker', 'target', '']];
  for (const r of results) {
    let first = true;
    for (const c of clients) {
      const o = r.byClient[c];
      if (!o) continue;
      const name = first ? `${r.metric.title} (${r.metric.unit})` : '';
      first = false;
      if ('error' in o) {
        rows.push([name, c, 'error', '', '', '', '', o.error.split('\n')[0]!.slice(0, 70)]);
        continue;
      }
      const s = o.summary;
      const q = ratio(r, c);
      const judged = r.metric.target !== undefined && c === (r.metric.target.client ?? 'berth');
      const v = judged ? verdict(r, c) : undefined;
      rows.push([
        name, c, fmt(s.median), `${fmt(s.min)}–${fmt(s.max)}`, String(s.n), q === undefined ? '' : `${q.toFixed(2)}×`,
        judged ? (r.metric.target?.text ?? '') : '', v === 'met' ? 'met' : v === 'missed' ? 'MISSED' : '',
      ]);
    }
  }
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const numeric = new Set([2, 3, 4, 5]);
  return rows.map((row, ri) => row.map((cell, i) => pad(cell, w[i]!, ri > 0 && numeric.has(i))).join('  ').trimEnd()).join('\n');
}

/** Markdown version of the table (for docs/performance.md). */
export function markdown(results: MetricResult[], clients: string[]): string {
  const out = ['| figure | ' + clients.join(' | ') + ' | berth ×docker | target |', '|---|' + clients.map(() => '---|').join('') + '---|---|'];
  for (const r of results) {
    const cells = clients.map((c) => {
      const o = r.byClient[c];
      if (!o) return '—';
      if ('error' in o) return 'error';
      return `${fmt(o.summary.median)} (${fmt(o.summary.min)}–${fmt(o.summary.max)})`;
    });
    const q = ratio(r, 'berth');
    const v = r.metric.target ? verdict(r, r.metric.target.client ?? 'berth') : undefined;
    out.push(`| ${r.metric.title} (${r.metric.unit}) | ${cells.join(' | ')} | ${q === undefined ? '' : q.toFixed(2) + '×'} | ${r.metric.target ? r.metric.target.text + (r.metric.target.client ? ` (${r.metric.target.client})` : '') + (v ? ` ${v === 'met' ? '✓' : '✗ missed'}` : '') : ''} |`);
  }
  return out.join('\n');
}

const COLORS: Record<string, string> = { docker: '#2496ed', podman: '#892ca0', berth: '#e8743b', 'berth-cli': '#f2b134' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * An SVG chart: one group per metric, one horizontal bar per client, bar length relative to the
 * largest median of that metric, labelled with the median and (for non-Docker clients) the ratio.
 */
export function svg(results: MetricResult[], clients: string[], title: string): string {
  const rowH = 14;
  const labelW = 300;
  const barW = 420;
  const width = Math.max(labelW + barW + 160, Math.ceil(title.length * 8));
  let y = 40;
  const parts: string[] = [];
  for (const r of results) {
    const present = clients.filter((c) => r.byClient[c]);
    if (present.length === 0) continue;
    const meds = present.map((c) => {
      const o = r.byClient[c]!;
      return 'summary' in o ? o.summary.median : 0;
    });
    const maxMed = Math.max(...meds, 1e-9);
    parts.push(`<text x="4" y="${y + 11}" font-weight="bold">${esc(r.metric.title)} (${esc(r.metric.unit)}${r.metric.better === 'higher' ? ', higher is better' : ''})</text>`);
    y += rowH + 2;
    present.forEach((c, i) => {
      const o = r.byClient[c]!;
      parts.push(`<text x="${labelW - 6}" y="${y + 10}" text-anchor="end">${esc(c)}</text>`);
      if ('error' in o) {
        parts.push(`<text x="${labelW}" y="${y + 10}" fill="#b00">error</text>`);
      } else {
        const len = Math.max(1, (meds[i]! / maxMed) * barW);
        const q = ratio(r, c);
        parts.push(`<rect x="${labelW}" y="${y}" width="${len.toFixed(1)}" height="${rowH - 3}" fill="${COLORS[c] ?? '#888'}"/>`);
        parts.push(`<text x="${(labelW + len + 4).toFixed(1)}" y="${y + 10}">${esc(fmt(o.summary.median))}${q !== undefined && c !== BASELINE ? ` (${q.toFixed(2)}×)` : ''}</text>`);
      }
      y += rowH;
    });
    y += 8;
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y + 10}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="4" y="20" font-size="14" font-weight="bold">${esc(title)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
