/**
 * Tolerant readers for loosely typed Docker JSON (Config / HostConfig). Docker clients send null,
 * omit fields, or send numbers where we expect them; these helpers normalise without throwing.
 */

/** A finite number field, or 0 when absent/null/not a number. */
export function num(o: Record<string, unknown>, key: string): number {
  const v = o[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** A number field or undefined when absent/null. */
export function optNum(o: Record<string, unknown>, key: string): number | undefined {
  const v = o[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** A string field, or '' when absent/null. */
export function str(o: Record<string, unknown>, key: string): string {
  const v = o[key];
  return typeof v === 'string' ? v : '';
}

/** A boolean field (false when absent). */
export function bool(o: Record<string, unknown>, key: string): boolean {
  return o[key] === true;
}

/** A string array field, or [] when absent/null; non-strings are dropped. */
export function strArr(o: Record<string, unknown>, key: string): string[] {
  const v = o[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** An array-of-objects field, or []. */
export function objArr(o: Record<string, unknown>, key: string): Record<string, unknown>[] {
  const v = o[key];
  return Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => !!x && typeof x === 'object') : [];
}

/** A string-valued map field (e.g. Tmpfs, Sysctls), or {}. */
export function strMap(o: Record<string, unknown>, key: string): Record<string, string> {
  const v = o[key];
  const out: Record<string, string> = {};
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) out[k] = typeof x === 'string' ? x : String(x ?? '');
  }
  return out;
}
