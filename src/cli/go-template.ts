/**
 * A Go text/template subset, as used by `--format` in the docker CLI: fields (`.A.B`), variables
 * (`$`, `$x := …`), pipelines (`a | b`), parentheses, `if/else if/else/end`, `range` (with
 * `$i, $v :=`, `else`), `with`, trim markers (`{{-`, `-}}`), and the functions docker adds
 * (json, join, split, lower, upper, title, pad, truncate) plus Go builtins (len, index, print,
 * printf, println, eq, ne, lt, le, gt, ge, and, or, not, slice).
 */
import { EngineError } from '../base/errors.js';

/** A template parse or execution error. */
export class TemplateError extends EngineError {
  constructor(message: string) {
    super('invalid-argument', `template: ${message}`, { code: 'TEMPLATE' });
    this.name = 'TemplateError';
  }
}

// ---- lexer ---------------------------------------------------------------------------------

type Tok =
  | { t: 'field'; path: string[] } // .A.B ; path [] means "."
  | { t: 'var'; name: string; path: string[] } // $x.A
  | { t: 'ident'; v: string }
  | { t: 'str'; v: string }
  | { t: 'num'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'nil' }
  | { t: 'pipe' }
  | { t: 'lp' }
  | { t: 'rp' }
  | { t: 'decl' } // :=
  | { t: 'assign' } // =
  | { t: 'comma' }
  | { t: 'fieldAfter'; path: string[] }; // .A after a ')'

function lexAction(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  const isId = (c: string | undefined): boolean => !!c && /[A-Za-z0-9_]/.test(c);
  const readPath = (): string[] => {
    const path: string[] = [];
    while (src[i] === '.' && isId(src[i + 1])) {
      i++;
      let s = '';
      while (isId(src[i])) s += src[i++];
      path.push(s);
    }
    return path;
  };
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) { i++; continue; }
    if (c === '|') { out.push({ t: 'pipe' }); i++; continue; }
    if (c === '(') { out.push({ t: 'lp' }); i++; continue; }
    if (c === ')') {
      out.push({ t: 'rp' }); i++;
      if (src[i] === '.' && isId(src[i + 1])) out.push({ t: 'fieldAfter', path: readPath() });
      continue;
    }
    if (c === ',') { out.push({ t: 'comma' }); i++; continue; }
    if (c === ':' && src[i + 1] === '=') { out.push({ t: 'decl' }); i += 2; continue; }
    if (c === '=') { out.push({ t: 'assign' }); i++; continue; }
    if (c === '.') {
      if (isId(src[i + 1])) out.push({ t: 'field', path: readPath() });
      else { out.push({ t: 'field', path: [] }); i++; }
      continue;
    }
    if (c === '$') {
      i++;
      let name = '';
      while (isId(src[i])) name += src[i++];
      out.push({ t: 'var', name, path: readPath() });
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      let s = '';
      for (; j < src.length && src[j] !== '"'; j++) {
        if (src[j] === '\\') {
          j++;
          const e = src[j];
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e === 'r' ? '\r' : e === '0' ? '\0' : (e ?? '');
        } else s += src[j];
      }
      if (j >= src.length) throw new TemplateError('unterminated quoted string');
      out.push({ t: 'str', v: s });
      i = j + 1;
      continue;
    }
    if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) throw new TemplateError('unterminated raw quoted string');
      out.push({ t: 'str', v: src.slice(i + 1, j) });
      i = j + 1;
      continue;
    }
    if (/[0-9-]/.test(c)) {
      const m = /^-?(0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(e[+-]?[0-9]+)?)/.exec(src.slice(i));
      if (!m) throw new TemplateError(`bad number syntax: ${src.slice(i)}`);
      out.push({ t: 'num', v: Number(m[0]) });
      i += m[0].length;
      continue;
    }
    if (isId(c)) {
      let s = '';
      while (isId(src[i])) s += src[i++];
      if (s === 'true' || s === 'false') out.push({ t: 'bool', v: s === 'true' });
      else if (s === 'nil') out.push({ t: 'nil' });
      else out.push({ t: 'ident', v: s });
      continue;
    }
    throw new TemplateError(`unexpected "${c}" in command`);
  }
  return out;
}

// ---- AST -----------------------------------------------------------------------------------

type Arg =
  | { k: 'field'; path: string[] }
  | { k: 'var'; name: string; path: string[] }
  | { k: 'lit'; v: unknown }
  | { k: 'fn'; name: string }
  | { k: 'sub'; pipe: Pipeline; path: string[] };

interface Command { args: Arg[] }
interface Pipeline { decl: string[]; isAssign: boolean; cmds: Command[] }

type Node =
  | { n: 'text'; v: string }
  | { n: 'action'; pipe: Pipeline }
  | { n: 'if'; pipe: Pipeline; then: Node[]; else: Node[] }
  | { n: 'with'; pipe: Pipeline; then: Node[]; else: Node[] }
  | { n: 'range'; pipe: Pipeline; body: Node[]; else: Node[] };

function parsePipeline(toks: Tok[]): Pipeline {
  let pos = 0;
  const decl: string[] = [];
  let isAssign = false;
  // declarations: $x := / $i, $v := / $x =
  {
    let j = 0;
    const names: string[] = [];
    while (toks[j]?.t === 'var' && (toks[j] as { path: string[] }).path.length === 0) {
      names.push((toks[j] as { name: string }).name);
      j++;
      if (toks[j]?.t === 'comma') { j++; continue; }
      break;
    }
    if (names.length && (toks[j]?.t === 'decl' || toks[j]?.t === 'assign')) {
      isAssign = toks[j]!.t === 'assign';
      decl.push(...names);
      pos = j + 1;
    }
  }
  const parseCmds = (stopAtRp: boolean): Command[] => {
    const cmds: Command[] = [];
    let cur: Arg[] = [];
    while (pos < toks.length) {
      const t = toks[pos]!;
      if (t.t === 'rp') {
        if (!stopAtRp) throw new TemplateError('unexpected ")"');
        break;
      }
      pos++;
      switch (t.t) {
        case 'pipe':
          if (!cur.length) throw new TemplateError('missing command before "|"');
          cmds.push({ args: cur });
          cur = [];
          break;
        case 'field': cur.push({ k: 'field', path: t.path }); break;
        case 'var': cur.push({ k: 'var', name: t.name, path: t.path }); break;
        case 'str': cur.push({ k: 'lit', v: t.v }); break;
        case 'num': cur.push({ k: 'lit', v: t.v }); break;
        case 'bool': cur.push({ k: 'lit', v: t.v }); break;
        case 'nil': cur.push({ k: 'lit', v: null }); break;
        case 'ident': cur.push({ k: 'fn', name: t.v }); break;
        case 'lp': {
          const inner = parseCmds(true);
          if (toks[pos]?.t !== 'rp') throw new TemplateError('unclosed left paren');
          pos++;
          let path: string[] = [];
          if (toks[pos]?.t === 'fieldAfter') path = (toks[pos++] as { path: string[] }).path;
          cur.push({ k: 'sub', pipe: { decl: [], isAssign: false, cmds: inner }, path });
          break;
        }
        default:
          throw new TemplateError(`unexpected token in command`);
      }
    }
    if (cur.length) cmds.push({ args: cur });
    if (!cmds.length) throw new TemplateError('missing value for command');
    return cmds;
  };
  const cmds = parseCmds(false);
  return { decl, isAssign, cmds };
}

interface RawAction { kind: 'text' | 'action'; v: string }

function split(src: string): RawAction[] {
  const out: RawAction[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) { out.push({ kind: 'text', v: src.slice(i) }); break; }
    let text = src.slice(i, open);
    let body = open + 2;
    if (src[body] === '-' && /\s/.test(src[body + 1] ?? '')) { text = text.replace(/\s+$/, ''); body += 2; }
    if (text) out.push({ kind: 'text', v: text });
    // find the closing braces, skipping over quoted strings
    let j = body;
    let q: string | undefined;
    for (; j < src.length; j++) {
      const c = src[j]!;
      if (q) {
        if (c === '\\' && q === '"') j++;
        else if (c === q) q = undefined;
        continue;
      }
      if (c === '"' || c === '`') q = c;
      else if (c === '}' && src[j + 1] === '}') break;
    }
    if (j >= src.length) throw new TemplateError('unclosed action');
    let inner = src.slice(body, j);
    let next = j + 2;
    if (/\s-$/.test(inner)) {
      inner = inner.slice(0, -2);
      while (next < src.length && /\s/.test(src[next]!)) next++;
    }
    const trimmed = inner.trim();
    if (!(trimmed.startsWith('/*') && trimmed.endsWith('*/'))) out.push({ kind: 'action', v: trimmed });
    i = next;
  }
  return out;
}

function parseNodes(raw: RawAction[]): Node[] {
  let pos = 0;
  // returns nodes and the terminating keyword ("end", "else", "else if …") or undefined at EOF
  const parseList = (): { nodes: Node[]; term: string | undefined } => {
    const nodes: Node[] = [];
    while (pos < raw.length) {
      const r = raw[pos++]!;
      if (r.kind === 'text') { nodes.push({ n: 'text', v: r.v }); continue; }
      const word = /^([a-z]+)\b/.exec(r.v)?.[1];
      if (word === 'end' || word === 'else') return { nodes, term: r.v };
      if (word === 'if' || word === 'with' || word === 'range') {
        nodes.push(parseBlock(word, r.v.slice(word.length)));
        continue;
      }
      if (word === 'define' || word === 'template' || word === 'block') throw new TemplateError(`"${word}" is not supported`);
      nodes.push({ n: 'action', pipe: parsePipeline(lexAction(r.v)) });
    }
    return { nodes, term: undefined };
  };
  const parseBlock = (word: 'if' | 'with' | 'range', rest: string): Node => {
    const pipe = parsePipeline(lexAction(rest));
    const body = parseList();
    let elseNodes: Node[] = [];
    if (body.term === undefined) throw new TemplateError(`unexpected EOF in ${word}`);
    if (body.term.startsWith('else')) {
      const after = body.term.slice(4).trim();
      if (after.startsWith('if ') && word === 'if') {
        elseNodes = [parseBlock('if', after.slice(2))];
      } else if (after.startsWith('with ') && word === 'with') {
        elseNodes = [parseBlock('with', after.slice(4))];
      } else {
        const e = parseList();
        if (e.term !== 'end') throw new TemplateError(`expected end; found ${e.term ?? 'EOF'}`);
        elseNodes = e.nodes;
      }
    } else if (body.term !== 'end') throw new TemplateError(`unexpected ${body.term}`);
    if (word === 'range') return { n: 'range', pipe, body: body.nodes, else: elseNodes };
    return { n: word, pipe, then: body.nodes, else: elseNodes };
  };
  const top = parseList();
  if (top.term !== undefined) throw new TemplateError(`unexpected {{${top.term}}}`);
  return top.nodes;
}

// ---- values ---------------------------------------------------------------------------------

/** Go's notion of truth: false, 0, nil, empty string/array/map are false. */
export function truthy(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (v instanceof Map) return v.size > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}

/** Format a value the way Go's fmt %v prints decoded JSON values. */
export function goPrint(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `[${v.map(goPrintInner).join(' ')}]`;
  if (v instanceof Map) return `map[${[...v.keys()].sort().map((k) => `${String(k)}:${goPrintInner(v.get(k))}`).join(' ')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `map[${Object.keys(o).sort().map((k) => `${k}:${goPrintInner(o[k])}`).join(' ')}]`;
  }
  return String(v);
}
function goPrintInner(v: unknown): string {
  return v === undefined ? '<nil>' : goPrint(v);
}

function field(v: unknown, name: string): unknown {
  if (v === null || v === undefined) {
    throw new TemplateError(`nil pointer evaluating interface {}.${name}`);
  }
  if (v instanceof Map) return v.get(name);
  if (typeof v === 'object') {
    const x = (v as Record<string, unknown>)[name];
    return typeof x === 'function' ? (x as () => unknown).call(v) : x;
  }
  throw new TemplateError(`can't evaluate field ${name} in type ${typeof v}`);
}

function toNum(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  throw new TemplateError(`incompatible types for comparison`);
}

function cmp(a: unknown, b: unknown): number {
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  const x = toNum(a);
  const y = toNum(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

function eqv(a: unknown, b: unknown): boolean {
  if ((a === null || a === undefined) && (b === null || b === undefined)) return true;
  if (typeof a === 'object' || typeof b === 'object') return JSON.stringify(a) === JSON.stringify(b);
  return a === b;
}

function sprintf(fmt: string, args: unknown[]): string {
  let ai = 0;
  return fmt.replace(/%([-+ 0#]*)(\d+)?(?:\.(\d+))?([svdqtfxXg%])/g, (_m, fl: string, w: string | undefined, prec: string | undefined, verb: string) => {
    if (verb === '%') return '%';
    const a = args[ai++];
    let s: string;
    switch (verb) {
      case 'd': s = String(Math.trunc(toNum(a))); break;
      case 'f': s = toNum(a).toFixed(prec ? Number(prec) : 6); break;
      case 'g': s = String(toNum(a)); break;
      case 'x': s = typeof a === 'string' ? Buffer.from(a).toString('hex') : Math.trunc(toNum(a)).toString(16); break;
      case 'X': s = (typeof a === 'string' ? Buffer.from(a).toString('hex') : Math.trunc(toNum(a)).toString(16)).toUpperCase(); break;
      case 'q': s = JSON.stringify(typeof a === 'string' ? a : goPrint(a)); break;
      case 't': s = String(truthy(a)); break;
      default: s = goPrint(a);
    }
    if (verb === 's' && prec) s = s.slice(0, Number(prec));
    if (w) s = fl.includes('-') ? s.padEnd(Number(w)) : s.padStart(Number(w), fl.includes('0') && verb !== 's' ? '0' : ' ');
    return s;
  });
}

/** Marshal like Go's encoding/json with SetEscapeHTML(false) (docker's `json` function). */
export function goJson(v: unknown): string {
  const s = JSON.stringify(v === undefined ? null : v);
  return s === undefined ? 'null' : s;
}

type Fn = (...args: unknown[]) => unknown;

/** The function map: Go builtins plus docker's template helpers. */
export const templateFuncs: Record<string, Fn> = {
  json: (v) => goJson(v),
  join: (list, sep) => (Array.isArray(list) ? list.map(goPrint).join(String(sep ?? '')) : goPrint(list)),
  split: (s, sep) => String(s).split(String(sep)),
  lower: (s) => goPrint(s).toLowerCase(),
  upper: (s) => goPrint(s).toUpperCase(),
  title: (s) => goPrint(s).replace(/(^|[^\p{L}\p{N}_'])(\p{L})/gu, (_m, a: string, b: string) => a + b.toUpperCase()),
  pad: (s, before, after) => ' '.repeat(toNum(before)) + goPrint(s) + ' '.repeat(toNum(after)),
  truncate: (s, n) => {
    const str = goPrint(s);
    const len = toNum(n);
    return [...str].length > len ? [...str].slice(0, len).join('') : str;
  },
  len: (v) => {
    if (typeof v === 'string') return Buffer.byteLength(v);
    if (Array.isArray(v)) return v.length;
    if (v instanceof Map) return v.size;
    if (v && typeof v === 'object') return Object.keys(v).length;
    throw new TemplateError(`error calling len: len of ${v === null || v === undefined ? 'nil pointer' : `type ${typeof v}`}`);
  },
  index: (v, ...keys) => {
    let cur: unknown = v;
    for (const k of keys) {
      if (cur === null || cur === undefined) throw new TemplateError('error calling index: index of untyped nil');
      if (Array.isArray(cur)) {
        const i = toNum(k);
        if (i < 0 || i >= cur.length) throw new TemplateError(`error calling index: index out of range: ${i}`);
        cur = cur[i];
      } else if (typeof cur === 'string') {
        cur = cur.charCodeAt(toNum(k));
      } else if (cur instanceof Map) cur = cur.get(k);
      else if (typeof cur === 'object') cur = (cur as Record<string, unknown>)[String(k)];
      else throw new TemplateError(`error calling index: can't index item of type ${typeof cur}`);
    }
    return cur;
  },
  slice: (v, a, b) => {
    if (typeof v === 'string' || Array.isArray(v)) return v.slice(a === undefined ? 0 : toNum(a), b === undefined ? undefined : toNum(b));
    throw new TemplateError('error calling slice: can\'t slice item');
  },
  print: (...a) => a.map((x, i) => (i > 0 && typeof x !== 'string' && typeof a[i - 1] !== 'string' ? ' ' : '') + goPrint(x)).join(''),
  println: (...a) => a.map(goPrint).join(' ') + '\n',
  printf: (f, ...a) => sprintf(String(f), a),
  eq: (a, ...bs) => bs.some((b) => eqv(a, b)),
  ne: (a, b) => !eqv(a, b),
  lt: (a, b) => cmp(a, b) < 0,
  le: (a, b) => cmp(a, b) <= 0,
  gt: (a, b) => cmp(a, b) > 0,
  ge: (a, b) => cmp(a, b) >= 0,
  not: (a) => !truthy(a),
  and: (...a) => { for (const x of a) if (!truthy(x)) return x; return a[a.length - 1]; },
  or: (...a) => { for (const x of a) if (truthy(x)) return x; return a[a.length - 1]; },
  html: (s) => goPrint(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&#34;').replace(/'/g, '&#39;'),
  urlquery: (...a) => encodeURIComponent(a.map(goPrint).join('')),
};

// ---- execution ------------------------------------------------------------------------------

class Scope {
  private readonly vars: Map<string, unknown>[];
  constructor(root: unknown) {
    this.vars = [new Map([['', root]])];
  }
  push(): void { this.vars.push(new Map()); }
  pop(): void { this.vars.pop(); }
  declare(name: string, v: unknown): void { this.vars[this.vars.length - 1]!.set(name, v); }
  assign(name: string, v: unknown): void {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      if (this.vars[i]!.has(name)) { this.vars[i]!.set(name, v); return; }
    }
    throw new TemplateError(`undefined variable: $${name}`);
  }
  get(name: string): unknown {
    for (let i = this.vars.length - 1; i >= 0; i--) if (this.vars[i]!.has(name)) return this.vars[i]!.get(name);
    throw new TemplateError(`undefined variable: $${name}`);
  }
}

function evalArg(a: Arg, dot: unknown, sc: Scope): unknown {
  switch (a.k) {
    case 'field': return a.path.reduce(field, dot);
    case 'var': return a.path.reduce(field, sc.get(a.name));
    case 'lit': return a.v;
    case 'sub': return a.path.reduce(field, evalPipe(a.pipe, dot, sc));
    case 'fn': {
      const f = templateFuncs[a.name];
      if (!f) throw new TemplateError(`function "${a.name}" not defined`);
      return f();
    }
  }
}

function evalCmd(c: Command, dot: unknown, sc: Scope, piped: { v: unknown } | undefined): unknown {
  const head = c.args[0]!;
  if (head.k === 'fn') {
    const f = templateFuncs[head.name];
    if (!f) throw new TemplateError(`function "${head.name}" not defined`);
    const args = c.args.slice(1).map((x) => evalArg(x, dot, sc));
    if (piped) args.push(piped.v);
    return f(...args);
  }
  if (c.args.length > 1 || piped) throw new TemplateError(`can't give argument to non-function`);
  return evalArg(head, dot, sc);
}

function evalPipe(p: Pipeline, dot: unknown, sc: Scope): unknown {
  let piped: { v: unknown } | undefined;
  for (const c of p.cmds) piped = { v: evalCmd(c, dot, sc, piped) };
  const v = piped!.v;
  if (p.decl.length === 1) {
    if (p.isAssign) sc.assign(p.decl[0]!, v); else sc.declare(p.decl[0]!, v);
  }
  return v;
}

function exec(nodes: Node[], dot: unknown, sc: Scope, out: string[]): void {
  for (const n of nodes) {
    switch (n.n) {
      case 'text': out.push(n.v); break;
      case 'action': {
        const v = evalPipe(n.pipe, dot, sc);
        if (n.pipe.decl.length === 0) out.push(goPrint(v));
        break;
      }
      case 'if': case 'with': {
        sc.push();
        const v = evalPipe(n.pipe, dot, sc);
        if (truthy(v)) exec(n.then, n.n === 'with' ? v : dot, sc, out);
        else exec(n.else, dot, sc, out);
        sc.pop();
        break;
      }
      case 'range': {
        sc.push();
        const decl = n.pipe.decl;
        const v = evalPipe({ ...n.pipe, decl: [] }, dot, sc);
        let entries: [unknown, unknown][] = [];
        if (Array.isArray(v)) entries = v.map((x, i) => [i, x]);
        else if (v instanceof Map) entries = [...v.keys()].sort().map((k) => [k, v.get(k)]);
        else if (v && typeof v === 'object') entries = Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]);
        else if (typeof v === 'number') entries = Array.from({ length: v }, (_x, i) => [i, i]);
        else if (v !== null && v !== undefined) throw new TemplateError(`range can't iterate over ${goPrint(v)}`);
        if (!entries.length) exec(n.else, dot, sc, out);
        for (const [k, x] of entries) {
          sc.push();
          if (decl.length === 1) sc.declare(decl[0]!, x);
          else if (decl.length === 2) { sc.declare(decl[0]!, k); sc.declare(decl[1]!, x); }
          exec(n.body, x, sc, out);
          sc.pop();
        }
        sc.pop();
        break;
      }
    }
  }
}

/** A parsed template, executable many times. */
export class GoTemplate {
  private readonly nodes: Node[];
  /** Parse template source; throws TemplateError on syntax errors. */
  constructor(readonly source: string) {
    this.nodes = parseNodes(split(source));
  }
  /** Execute against `data` (the dot) and return the output. */
  execute(data: unknown): string {
    const out: string[] = [];
    exec(this.nodes, data, new Scope(data), out);
    return out.join('');
  }
}

/** Parse and execute in one call. */
export function renderTemplate(source: string, data: unknown): string {
  return new GoTemplate(source).execute(data);
}
