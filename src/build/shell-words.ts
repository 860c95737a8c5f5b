/**
 * Dockerfile variable substitution and word splitting (moby's shell lexer rules): `$V`, `${V}`,
 * `${V:-x}`, `${V-x}`, `${V:+x}`, `${V+x}`, `${V:?msg}`; single quotes are literal, double quotes
 * allow expansion, the escape character escapes the next character. Quotes are removed.
 */
import { invalidArgument } from '../base/errors.js';

/** Variable lookup: undefined when unset. */
export type Lookup = (name: string) => string | undefined;

/** Build a lookup over `KEY=value` lists (later entries win). */
export function envLookup(...lists: ReadonlyArray<readonly string[]>): Lookup {
  const m = new Map<string, string>();
  for (const l of lists) {
    for (const e of l) {
      const i = e.indexOf('=');
      if (i > 0) m.set(e.slice(0, i), e.slice(i + 1));
      else if (i < 0) m.set(e, '');
    }
  }
  return (n) => m.get(n);
}

class Lexer {
  i = 0;
  constructor(readonly s: string, readonly env: Lookup, readonly esc: string) {}

  /** Process until end (or an unquoted `stop` char); returns words (split on unquoted blanks when `split`). */
  run(split: boolean, stop?: string): string[] {
    const words: string[] = [];
    let cur = '';
    let has = false;
    const s = this.s;
    while (this.i < s.length) {
      const c = s[this.i]!;
      if (stop !== undefined && c === stop) break;
      if (split && /\s/.test(c)) {
        if (has) words.push(cur);
        cur = '';
        has = false;
        this.i++;
        continue;
      }
      has = true;
      if (c === this.esc) {
        this.i++;
        if (this.i < s.length) cur += s[this.i++];
        else cur += c;
      } else if (c === "'") {
        this.i++;
        const j = s.indexOf("'", this.i);
        if (j < 0) throw invalidArgument(`unexpected end of statement while looking for matching single-quote`);
        cur += s.slice(this.i, j);
        this.i = j + 1;
      } else if (c === '"') {
        this.i++;
        cur += this.doubleQuoted();
      } else if (c === '$') {
        cur += this.dollar();
      } else {
        cur += c;
        this.i++;
      }
    }
    if (has) words.push(cur);
    return words;
  }

  private doubleQuoted(): string {
    let out = '';
    const s = this.s;
    while (this.i < s.length) {
      const c = s[this.i]!;
      if (c === '"') {
        this.i++;
        return out;
      }
      if (c === this.esc && this.i + 1 < s.length && ['"', '$', this.esc].includes(s[this.i + 1]!)) {
        out += s[this.i + 1];
        this.i += 2;
      } else if (c === '$') {
        out += this.dollar();
      } else {
        out += c;
        this.i++;
      }
    }
    throw invalidArgument('unexpected end of statement while looking for matching double-quote');
  }

  private dollar(): string {
    const s = this.s;
    this.i++; // '$'
    if (s[this.i] === '{') {
      this.i++;
      const nm = /^[A-Za-z_][A-Za-z0-9_]*|^[0-9]/.exec(s.slice(this.i));
      if (!nm) throw invalidArgument(`bad substitution: ${s}`);
      const name = nm[0];
      this.i += name.length;
      const val = this.env(name);
      if (s[this.i] === '}') {
        this.i++;
        return val ?? '';
      }
      const mod = /^(:?[-+?])/.exec(s.slice(this.i));
      if (!mod) throw invalidArgument(`unsupported modifier (${s[this.i] ?? ''}) in substitution: ${s}`);
      this.i += mod[1]!.length;
      const word = this.run(false, '}').join('');
      if (s[this.i] !== '}') throw invalidArgument(`missing '}' in substitution: ${s}`);
      this.i++;
      const colon = mod[1]!.startsWith(':');
      const set = colon ? val !== undefined && val !== '' : val !== undefined;
      switch (mod[1]!.slice(-1)) {
        case '-':
          return set ? val! : word;
        case '+':
          return set ? word : '';
        default:
          if (!set) throw invalidArgument(`${name}: ${word || 'is not allowed to be unset'}`);
          return val!;
      }
    }
    const nm = /^[A-Za-z_][A-Za-z0-9_]*/.exec(s.slice(this.i));
    if (!nm) return '$';
    this.i += nm[0].length;
    return this.env(nm[0]) ?? '';
  }
}

/** Expand one word: variables substituted, quotes and escapes removed. */
export function expandWord(s: string, env: Lookup, escape = '\\'): string {
  return new Lexer(s, env, escape).run(false).join('');
}

/** Expand and split on unquoted whitespace. */
export function expandWords(s: string, env: Lookup, escape = '\\'): string[] {
  return new Lexer(s, env, escape).run(true);
}

/**
 * Split `k=v k2="v 2"` (or the legacy `k value`) into pairs, expanding each value; keys are
 * expanded too. Used by ENV, LABEL and ARG.
 */
export function parseKeyValuePairs(instr: string, rest: string, env: Lookup, escape = '\\'): Array<[string, string]> {
  const words = splitRaw(rest, escape);
  if (words.length === 0) throw invalidArgument(`${instr} requires at least one argument`);
  if (!words[0]!.includes('=')) {
    if (instr === 'ARG') return words.map((w) => [expandWord(w, env, escape), ''] as [string, string]);
    const m = /^(\S+)\s+([\s\S]*)$/.exec(rest.trim());
    if (!m) throw invalidArgument(`${instr} must have two arguments`);
    return [[expandWord(m[1]!, env, escape), expandWord(m[2]!.trim(), env, escape)]];
  }
  return words.map((w) => {
    const i = w.indexOf('=');
    if (i === 0) throw invalidArgument(`${instr} names can not be blank`);
    if (i < 0) {
      if (instr === 'ARG') return [expandWord(w, env, escape), ''] as [string, string];
      throw invalidArgument(`Syntax error - can't find = in "${w}". Must be of the form: name=value`);
    }
    return [expandWord(w.slice(0, i), env, escape), expandWord(w.slice(i + 1), env, escape)] as [string, string];
  });
}

/** Split on unquoted whitespace, keeping quotes and escapes in the words. */
export function splitRaw(s: string, escape = '\\'): string[] {
  const out: string[] = [];
  let cur = '';
  let q: string | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === escape && i + 1 < s.length) {
      cur += c + s[++i];
      continue;
    }
    if (q) {
      if (c === q) q = undefined;
      cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      q = c;
      cur += c;
      continue;
    }
    if (/\s/.test(c)) {
      if (cur !== '') out.push(cur);
      cur = '';
      continue;
    }
    cur += c;
  }
  if (cur !== '') out.push(cur);
  return out;
}
