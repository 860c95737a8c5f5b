/**
 * Dockerfile parser (pure): parser directives (`syntax`, `escape`), comments, line continuations,
 * heredocs (`RUN <<EOF`, `COPY <<EOF /f`), exec/shell forms and `--flag=value` options. Errors name
 * the line ("dockerfile parse error on line N: …"). Variable substitution lives in shell-words.ts.
 */
import { invalidArgument } from '../base/errors.js';

/** A heredoc body attached to an instruction. */
export interface Heredoc {
  /** The delimiter word (`EOF`). */
  name: string;
  /** Body text, each line ending in "\n". */
  content: string;
  /** False when the delimiter was quoted (no variable expansion in the body). */
  expand: boolean;
  /** `<<-`: leading tabs were stripped. */
  chomp: boolean;
}

/** One instruction as written. */
export interface Instruction {
  /** Upper-case keyword (`RUN`). */
  cmd: string;
  /** 1-based line where the instruction starts. */
  line: number;
  /** The instruction text with continuations joined (Docker's `Original`), without heredoc bodies. */
  original: string;
  /** `--name=value` options before the arguments (FROM/RUN/COPY/ADD). */
  flags: string[];
  /** Argument text after keyword and flags, trimmed. */
  rest: string;
  /** Exec form (`["a","b"]`) when the arguments are a JSON string array. */
  json?: string[];
  heredocs: Heredoc[];
}

/** A parsed Dockerfile. */
export interface Dockerfile {
  directives: Record<string, string>;
  /** The escape character (`\` or `` ` ``). */
  escape: string;
  instructions: Instruction[];
}

/** Every instruction keyword the parser accepts. */
export const INSTRUCTIONS = new Set([
  'FROM', 'RUN', 'CMD', 'ENTRYPOINT', 'ENV', 'ARG', 'LABEL', 'WORKDIR', 'USER', 'COPY', 'ADD', 'EXPOSE',
  'VOLUME', 'HEALTHCHECK', 'ONBUILD', 'STOPSIGNAL', 'SHELL', 'MAINTAINER',
]);
const FLAG_INSTRUCTIONS = new Set(['FROM', 'RUN', 'COPY', 'ADD']);
const HEREDOC_INSTRUCTIONS = new Set(['RUN', 'COPY', 'ADD']);
const NEEDS_ARGS = new Set(['FROM', 'RUN', 'CMD', 'ENTRYPOINT', 'ENV', 'ARG', 'LABEL', 'WORKDIR', 'USER', 'COPY', 'ADD', 'EXPOSE', 'VOLUME', 'HEALTHCHECK', 'ONBUILD', 'STOPSIGNAL', 'SHELL', 'MAINTAINER']);

/** A parse error naming its line. */
export function parseError(line: number, msg: string): Error {
  return invalidArgument(`dockerfile parse error on line ${line}: ${msg}`);
}

/** Parse a JSON array of strings, or undefined when `s` is not one (then it is the shell form). */
export function parseJsonArgs(s: string): string[] | undefined {
  const t = s.trim();
  if (!t.startsWith('[') || !t.endsWith(']')) return undefined;
  try {
    const v: unknown = JSON.parse(t);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    /* shell form */
  }
  return undefined;
}

const DIRECTIVE_RE = /^#\s*([a-zA-Z][a-zA-Z0-9_-]*)\s*=\s*(.*?)\s*$/;

/** Parse the directives at the top of a Dockerfile; stops at the first line that is not one. */
function readDirectives(lines: string[]): { directives: Record<string, string>; escape: string } {
  const directives: Record<string, string> = {};
  for (let i = 0; i < lines.length; i++) {
    const m = DIRECTIVE_RE.exec(lines[i]!);
    if (!m) break;
    const key = m[1]!.toLowerCase();
    if (key in directives) throw parseError(i + 1, `only one ${key} parser directive can be used`);
    directives[key] = m[2]!;
  }
  const escape = directives['escape'] ?? '\\';
  if (escape !== '\\' && escape !== '`') throw invalidArgument(`invalid ESCAPE '${escape}'. Must be \` or \\`);
  return { directives, escape };
}

const HEREDOC_RE = /<<(-?)\s*(["']?)([A-Za-z_][A-Za-z0-9_.-]*)\2/g;

/** Parse a whole Dockerfile. Throws invalid-argument naming the line on any syntax error. */
export function parseDockerfile(text: string): Dockerfile {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const { directives, escape } = readDirectives(lines);
  const instructions: Instruction[] = [];
  const isComment = (l: string): boolean => /^\s*#/.test(l);
  const continues = (l: string): boolean => {
    const t = l.replace(/\s+$/, '');
    if (!t.endsWith(escape)) return false;
    // an escaped escape char at the end does not continue the line
    let n = 0;
    for (let j = t.length - 1; j >= 0 && t[j] === escape; j--) n++;
    return n % 2 === 1;
  };
  let i = 0;
  while (i < lines.length) {
    const raw = lines[i]!;
    if (raw.trim() === '' || isComment(raw)) {
      i++;
      continue;
    }
    const start = i + 1;
    let text = '';
    let cur = raw;
    for (;;) {
      if (continues(cur)) {
        const t = cur.replace(/\s+$/, '');
        text += t.slice(0, -1);
        i++;
        // comment and empty lines inside a continuation are skipped
        while (i < lines.length && (isComment(lines[i]!) || lines[i]!.trim() === '')) i++;
        if (i >= lines.length) break;
        cur = lines[i]!;
        continue;
      }
      text += cur;
      i++;
      break;
    }
    const m = /^\s*(\S+)\s*([\s\S]*)$/.exec(text);
    if (!m) continue;
    const cmd = m[1]!.toUpperCase();
    if (!INSTRUCTIONS.has(cmd)) throw parseError(start, `unknown instruction: ${m[1]!}`);
    let rest = m[2]!.trim();
    const flags: string[] = [];
    if (FLAG_INSTRUCTIONS.has(cmd)) {
      for (;;) {
        const fm = /^--([a-zA-Z][a-zA-Z0-9-]*)(=(?:"[^"]*"|\S*))?(\s+|$)/.exec(rest);
        if (!fm) break;
        flags.push(`--${fm[1]!}${fm[2] ?? ''}`);
        rest = rest.slice(fm[0].length);
      }
    }
    const heredocs: Heredoc[] = [];
    if (HEREDOC_INSTRUCTIONS.has(cmd) && parseJsonArgs(rest) === undefined) {
      for (const hm of rest.matchAll(HEREDOC_RE)) {
        const chomp = hm[1] === '-';
        const name = hm[3]!;
        let content = '';
        let closed = false;
        while (i < lines.length) {
          let l = lines[i]!;
          i++;
          if (chomp) l = l.replace(/^\t+/, '');
          if (l === name) {
            closed = true;
            break;
          }
          content += `${l}\n`;
        }
        if (!closed) throw parseError(start, `unterminated heredoc ${name}`);
        heredocs.push({ name, content, expand: hm[2] === '', chomp });
      }
    }
    if (NEEDS_ARGS.has(cmd) && rest === '' && heredocs.length === 0) {
      throw parseError(start, `${cmd} requires at least one argument`);
    }
    const inst: Instruction = { cmd, line: start, original: text.trim(), flags, rest, heredocs };
    const json = parseJsonArgs(rest);
    if (json !== undefined) inst.json = json;
    instructions.push(inst);
  }
  return { directives, escape, instructions };
}

/** Value of flag `--name=v` in an instruction, or undefined. Quotes around the value are removed. */
export function flagValue(inst: Instruction, name: string): string | undefined {
  for (const f of inst.flags) {
    if (f === `--${name}`) return '';
    if (f.startsWith(`--${name}=`)) return f.slice(name.length + 3).replace(/^"(.*)"$/, '$1');
  }
  return undefined;
}

/** Every value of a repeatable flag (`--mount=a --mount=b`), quotes removed, in order. */
export function flagValues(inst: Instruction, name: string): string[] {
  const out: string[] = [];
  for (const f of inst.flags) {
    if (f === `--${name}`) out.push('');
    else if (f.startsWith(`--${name}=`)) out.push(f.slice(name.length + 3).replace(/^"(.*)"$/, '$1'));
  }
  return out;
}

/** One build stage: a FROM and the instructions up to the next FROM. */
export interface Stage {
  index: number;
  /** `AS name`, lower-cased. */
  name?: string;
  /** The FROM's image argument, unexpanded. */
  base: string;
  platform?: string;
  from: Instruction;
  instructions: Instruction[];
}

/** Stages plus the ARGs declared before the first FROM. */
export interface StagePlan {
  metaArgs: Instruction[];
  stages: Stage[];
}

const ALLOWED_FROM_FLAGS = new Set(['platform']);
const ALLOWED_FLAGS: Record<string, Set<string>> = {
  RUN: new Set(['mount', 'network', 'security']),
  COPY: new Set(['from', 'chown', 'chmod', 'link', 'parents', 'exclude']),
  ADD: new Set(['chown', 'chmod', 'link', 'checksum', 'keep-git-dir', 'exclude']),
};

/** Split instructions into stages; validates FROM syntax, names and flags. */
export function splitStages(df: Dockerfile): StagePlan {
  const metaArgs: Instruction[] = [];
  const stages: Stage[] = [];
  for (const inst of df.instructions) {
    if (inst.cmd === 'FROM') {
      const words = inst.rest.split(/\s+/);
      if (words.length !== 1 && !(words.length === 3 && words[1]!.toUpperCase() === 'AS')) {
        throw parseError(inst.line, 'FROM requires either one or three arguments');
      }
      for (const f of inst.flags) {
        const n = /^--([^=]+)/.exec(f)![1]!;
        if (!ALLOWED_FROM_FLAGS.has(n)) throw parseError(inst.line, `unknown flag: ${n}`);
      }
      const st: Stage = { index: stages.length, base: words[0]!, from: inst, instructions: [] };
      if (words.length === 3) {
        const name = words[2]!.toLowerCase();
        if (!/^[a-z][a-z0-9._-]*$/.test(name)) throw parseError(inst.line, `invalid name for build stage: "${words[2]!}", name can't start with a number or contain symbols`);
        if (stages.some((s) => s.name === name)) throw parseError(inst.line, `duplicate name ${name}`);
        st.name = name;
      }
      const p = flagValue(inst, 'platform');
      if (p) st.platform = p;
      stages.push(st);
      continue;
    }
    if (stages.length === 0) {
      if (inst.cmd !== 'ARG') throw parseError(inst.line, `${inst.cmd} instruction before FROM (only ARG may precede FROM)`);
      metaArgs.push(inst);
      continue;
    }
    const allowed = ALLOWED_FLAGS[inst.cmd];
    for (const f of inst.flags) {
      const n = /^--([^=]+)/.exec(f)![1]!;
      if (!allowed?.has(n)) throw parseError(inst.line, `unknown flag: ${n}`);
    }
    stages[stages.length - 1]!.instructions.push(inst);
  }
  if (stages.length === 0) throw invalidArgument('the Dockerfile (Dockerfile) cannot be empty: no FROM instruction');
  return { metaArgs, stages };
}
