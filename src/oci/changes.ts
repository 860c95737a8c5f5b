/**
 * Dockerfile-style `changes` lines for `docker import --change` and `docker commit --change`
 * (moby's validCommitCommands): CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD,
 * STOPSIGNAL, USER, VOLUME, WORKDIR. Each is applied to an image run config.
 */
import { posix } from 'node:path';

import { invalidArgument } from '../base/errors.js';
import type { HealthConfig, ImageRunConfig } from './image-spec.js';

/** One parsed change line. */
export interface ChangeInstruction {
  /** Upper-case instruction word. */
  instruction: string;
  /** The text after the instruction word, trimmed. */
  rest: string;
}

const VALID = new Set(['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'HEALTHCHECK', 'LABEL', 'ONBUILD', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR']);
const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** Split `changes` entries (each may hold several lines, with `\` continuations) into instructions. */
export function parseChanges(changes: readonly string[]): ChangeInstruction[] {
  const out: ChangeInstruction[] = [];
  for (const block of changes) {
    const joined = block.replace(/\\\r?\n/g, '');
    for (const raw of joined.split(/\r?\n/)) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      const m = /^(\S+)\s*([\s\S]*)$/.exec(line)!;
      const instruction = m[1]!.toUpperCase();
      if (!VALID.has(instruction)) throw invalidArgument(`${m[1]!.toLowerCase()} is not a valid change command`);
      out.push({ instruction, rest: m[2]!.trim() });
    }
  }
  return out;
}

/** A JSON array of strings, or undefined when `s` is not one (then it is shell form). */
function parseJsonArray(s: string): string[] | undefined {
  if (!s.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(s);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    /* shell form */
  }
  return undefined;
}

/** Split words, honouring single/double quotes and backslash escapes (quotes are removed). */
export function splitWords(s: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
      continue;
    }
    if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (c === '"' || c === "'") quote = c;
    else if (c === '\\' && i + 1 < s.length) cur += s[++i];
    else cur += c;
  }
  if (quote) throw invalidArgument(`unmatched quote in: ${s}`);
  if (inWord) words.push(cur);
  return words;
}

/** `k=v k2="v 2"` or legacy `k value with spaces` → pairs. */
export function parseKeyValues(instr: string, rest: string): Array<[string, string]> {
  if (rest === '') throw invalidArgument(`${instr} requires at least one argument`);
  const firstWord = rest.split(/\s+/, 1)[0]!;
  if (!firstWord.includes('=')) {
    const m = /^(\S+)\s+([\s\S]+)$/.exec(rest);
    if (!m) throw invalidArgument(`${instr} must have two arguments`);
    return [[m[1]!, m[2]!.trim()]];
  }
  return splitWords(rest).map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) throw invalidArgument(`${instr} names can not be blank`);
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

function exposedPorts(words: string[]): string[] {
  const out: string[] = [];
  for (const w of words) {
    const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(w);
    if (!m) throw invalidArgument(`invalid containerPort: ${w}`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo < 1 || hi > 65535 || hi < lo) throw invalidArgument(`invalid range format for --expose specification: ${w}`);
    const proto = (m[3] ?? 'tcp').toLowerCase();
    for (let p = lo; p <= hi; p++) out.push(`${p}/${proto}`);
  }
  return out;
}

/** Parse a Go duration ("30s", "1m30s", "500ms") into nanoseconds. */
export function parseGoDuration(s: string): number {
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  const unit: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  if (s === '0') return 0;
  let total = 0;
  let matched = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) {
    total += Number(m[1]) * unit[m[2]!]!;
    matched = re.lastIndex;
  }
  if (matched !== s.length || s.length === 0) throw invalidArgument(`time: invalid duration "${s}"`);
  return Math.round(total);
}

function parseHealthcheck(rest: string, cfg: ImageRunConfig): HealthConfig {
  const words = rest.split(/\s+/);
  if (words[0]?.toUpperCase() === 'NONE') {
    if (words.length > 1) throw invalidArgument('HEALTHCHECK NONE takes no arguments');
    return { Test: ['NONE'] };
  }
  const hc: HealthConfig = {};
  let s = rest;
  for (;;) {
    const m = /^--(interval|timeout|start-period|start-interval|retries)=(\S+)\s*/.exec(s);
    if (!m) break;
    s = s.slice(m[0].length);
    const v = m[2]!;
    if (m[1] === 'retries') {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw invalidArgument(`invalid retries: ${v}`);
      hc.Retries = n;
    } else {
      const ns = parseGoDuration(v);
      if (m[1] === 'interval') hc.Interval = ns;
      else if (m[1] === 'timeout') hc.Timeout = ns;
      else if (m[1] === 'start-period') hc.StartPeriod = ns;
      else hc.StartInterval = ns;
    }
  }
  const cm = /^CMD\s+([\s\S]+)$/i.exec(s);
  if (!cm) throw invalidArgument('Unknown type in HEALTHCHECK (try CMD)');
  const json = parseJsonArray(cm[1]!.trim());
  hc.Test = json ? ['CMD', ...json] : ['CMD-SHELL', cm[1]!.trim()];
  void cfg;
  return hc;
}

/**
 * Apply change lines to a copy of `config` and return it. Throws invalid-argument for an unknown
 * instruction ("x is not a valid change command") or a malformed argument.
 */
export function applyChanges(config: ImageRunConfig, changes: readonly string[]): ImageRunConfig {
  const cfg: ImageRunConfig = structuredClone(config);
  let cmdSet = false;
  for (const { instruction, rest } of parseChanges(changes)) {
    const shell = cfg.Shell && cfg.Shell.length > 0 ? cfg.Shell : DEFAULT_SHELL;
    switch (instruction) {
      case 'CMD':
      case 'ENTRYPOINT': {
        const json = parseJsonArray(rest);
        const value = json ?? (rest === '' ? [] : [...shell, rest]);
        if (instruction === 'CMD') {
          cfg.Cmd = value;
          cmdSet = true;
        } else {
          cfg.Entrypoint = value;
          // Docker (dispatchers.go): an ENTRYPOINT resets a CMD that was not set by these changes
          if (!cmdSet) cfg.Cmd = null;
        }
        break;
      }
      case 'ENV': {
        const env = [...(cfg.Env ?? [])];
        for (const [k, v] of parseKeyValues('ENV', rest)) {
          const i = env.findIndex((e) => e.split('=', 1)[0] === k);
          if (i === -1) env.push(`${k}=${v}`);
          else env[i] = `${k}=${v}`;
        }
        cfg.Env = env;
        break;
      }
      case 'LABEL': {
        const labels = { ...(cfg.Labels ?? {}) };
        for (const [k, v] of parseKeyValues('LABEL', rest)) labels[k] = v;
        cfg.Labels = labels;
        break;
      }
      case 'EXPOSE': {
        if (rest === '') throw invalidArgument('EXPOSE requires at least one argument');
        const ports = { ...(cfg.ExposedPorts ?? {}) };
        for (const p of exposedPorts(rest.split(/\s+/))) ports[p] = {};
        cfg.ExposedPorts = ports;
        break;
      }
      case 'VOLUME': {
        const list = parseJsonArray(rest) ?? rest.split(/\s+/).filter((x) => x !== '');
        if (list.length === 0) throw invalidArgument('VOLUME requires at least one argument');
        const vols = { ...(cfg.Volumes ?? {}) };
        for (const v of list) {
          if (v.trim() === '') throw invalidArgument('VOLUME specified can not be an empty string');
          vols[v] = {};
        }
        cfg.Volumes = vols;
        break;
      }
      case 'WORKDIR': {
        if (rest === '') throw invalidArgument('WORKDIR requires exactly one argument');
        const dir = rest.startsWith('/') ? rest : posix.join(cfg.WorkingDir || '/', rest);
        cfg.WorkingDir = posix.normalize(dir);
        break;
      }
      case 'USER':
        if (rest === '') throw invalidArgument('USER requires exactly one argument');
        cfg.User = rest;
        break;
      case 'STOPSIGNAL':
        if (rest === '' || /\s/.test(rest)) throw invalidArgument('STOPSIGNAL requires exactly one argument');
        cfg.StopSignal = rest;
        break;
      case 'ONBUILD': {
        const m = /^(\S+)\s*([\s\S]*)$/.exec(rest);
        if (!m) throw invalidArgument('ONBUILD requires at least one argument');
        const word = m[1]!.toUpperCase();
        if (word === 'ONBUILD') throw invalidArgument("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed");
        if (word === 'FROM' || word === 'MAINTAINER') throw invalidArgument(`${word} isn't allowed as an ONBUILD trigger`);
        cfg.OnBuild = [...(cfg.OnBuild ?? []), `${word} ${m[2]!}`.trim()];
        break;
      }
      case 'HEALTHCHECK':
        cfg.Healthcheck = parseHealthcheck(rest, cfg);
        break;
    }
  }
  return cfg;
}
