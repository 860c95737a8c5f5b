/**
 * Query-string helpers with Docker's leniency: booleans as 1/0/true/false/True/False, filters in
 * both JSON shapes, repeatable params, unknown params ignored.
 */
import { invalidArgument } from '../base/errors.js';
import type { Filters } from '../engine/services.js';

/** Docker's BoolValue: empty, "0", "no", "false", "none" are false; anything else true. */
export function parseBool(s: string): boolean {
  const v = s.trim().toLowerCase();
  return !(v === '' || v === '0' || v === 'no' || v === 'false' || v === 'none');
}

/**
 * Parse a `filters` JSON value in either shape — `{"k":{"v":true}}` (CLI) or `{"k":["v"]}`
 * (docker-py, compose) — into key → values. Empty input gives `{}`.
 */
export function parseFilters(raw: string | null | undefined): Filters {
  if (raw === null || raw === undefined || raw.trim() === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw invalidArgument(`invalid filter: ${(e as Error).message}`);
  }
  if (parsed === null) return {};
  if (typeof parsed !== 'object' || Array.isArray(parsed)) throw invalidArgument(`invalid filter: ${raw}`);
  const out: Filters = {};
  for (const [key, val] of Object.entries(parsed as Record<string, unknown>)) {
    if (val === null) continue;
    if (Array.isArray(val)) {
      out[key] = val.map((v) => String(v));
    } else if (typeof val === 'object') {
      out[key] = Object.entries(val as Record<string, unknown>)
        .filter(([, b]) => b !== false)
        .map(([v]) => v);
    } else if (typeof val === 'string') {
      out[key] = [val];
    } else {
      throw invalidArgument(`invalid filter: value of "${key}" must be a list or a map`);
    }
  }
  return out;
}

/** Typed, lenient accessors over a request's query string. */
export class Query {
  constructor(readonly params: URLSearchParams) {}

  /** Build from the raw query part (without "?"). */
  static parse(search: string): Query {
    return new Query(new URLSearchParams(search));
  }

  /** True when the key is present (even with an empty value). */
  has(key: string): boolean {
    return this.params.has(key);
  }

  /** The value, or undefined when absent. */
  str(key: string): string | undefined {
    const v = this.params.get(key);
    return v === null ? undefined : v;
  }

  /** The value, or undefined when absent or empty. */
  nonEmpty(key: string): string | undefined {
    const v = this.params.get(key);
    return v === null || v === '' ? undefined : v;
  }

  /** Every value of a repeatable key. */
  all(key: string): string[] {
    return this.params.getAll(key);
  }

  /** Boolean with a default for when the key is absent or empty. */
  bool(key: string, def = false): boolean {
    const v = this.params.get(key);
    if (v === null || v.trim() === '') return def;
    return parseBool(v);
  }

  /** Integer, or undefined when absent/empty; invalid-argument when not an integer. */
  int(key: string): number | undefined {
    const v = this.params.get(key);
    if (v === null || v.trim() === '') return undefined;
    if (!/^\s*-?\d+\s*$/.test(v)) throw invalidArgument(`invalid value for ${key}: ${JSON.stringify(v)}: not an integer`);
    return Number.parseInt(v, 10);
  }

  /** Unix time in seconds (fractional, "seconds[.nanos]") or RFC3339; undefined when absent/empty. */
  time(key: string): number | undefined {
    const v = this.params.get(key);
    if (v === null || v.trim() === '') return undefined;
    if (/^-?\d+(\.\d+)?$/.test(v.trim())) return Number.parseFloat(v);
    const ms = Date.parse(v);
    if (Number.isNaN(ms)) throw invalidArgument(`invalid value for ${key}: ${JSON.stringify(v)}: not a timestamp`);
    return ms / 1000;
  }

  /** The `filters` param normalised (see parseFilters). */
  filters(key = 'filters'): Filters {
    return parseFilters(this.params.get(key));
  }
}
