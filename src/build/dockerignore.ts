/**
 * .dockerignore matching with Docker's rules (moby patternmatcher): one pattern per line, `#`
 * comments, `!` exceptions, the last matching pattern wins, `**` spans directories, `*`/`?` stay
 * within one path component, and a pattern that matches a directory also matches everything in it.
 */

interface Pattern {
  re: RegExp;
  exclusion: boolean;
}

/** Parse a .dockerignore file into pattern lines (comments and blanks dropped, paths cleaned). */
export function readDockerignore(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    let l = raw.trim();
    if (l === '' || l.startsWith('#')) continue;
    let neg = false;
    if (l.startsWith('!')) {
      neg = true;
      l = l.slice(1).trim();
    }
    l = cleanPath(l);
    if (l === '') continue;
    out.push(neg ? `!${l}` : l);
  }
  return out;
}

/** Go's filepath.Clean, relative, without a leading "/". */
function cleanPath(p: string): string {
  const parts: string[] = [];
  for (const c of p.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (parts.length && parts[parts.length - 1] !== '..') parts.pop();
      continue; // ".." above the context root means the root
    }
    parts.push(c);
  }
  return parts.join('/');
}

function compile(pattern: string): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else {
          re += '.*';
        }
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const j = pattern.indexOf(']', i + 1);
      if (j < 0) {
        re += '\\[';
      } else {
        let cls = pattern.slice(i + 1, j);
        if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
        re += `[${cls.replace(/\\/g, '\\\\')}]`;
        i = j;
      }
    } else if (c === '\\' && i + 1 < pattern.length) {
      re += pattern[++i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else {
      re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return new RegExp(`${re}$`);
}

/** A compiled set of .dockerignore patterns. */
export class IgnoreMatcher {
  private readonly patterns: Pattern[];

  constructor(lines: readonly string[]) {
    this.patterns = lines.map((l) => {
      const exclusion = l.startsWith('!');
      return { re: compile(exclusion ? l.slice(1) : l), exclusion };
    });
  }

  /** True when there are no patterns. */
  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /** Whether `path` (relative to the context, "/"-separated) is excluded from the context. */
  ignores(path: string): boolean {
    const p = cleanPath(path);
    if (p === '') return false;
    const comps = p.split('/');
    let matched = false;
    for (const pat of this.patterns) {
      if (pat.exclusion !== matched) continue; // cannot change the outcome
      let hit = pat.re.test(p);
      // a pattern matching a parent directory matches its contents
      for (let n = comps.length - 1; !hit && n > 0; n--) hit = pat.re.test(comps.slice(0, n).join('/'));
      if (hit) matched = !pat.exclusion;
    }
    return matched;
  }
}
