/**
 * The few file operations Node lacks, done by spawning coreutils/attr binaries:
 * `mknod`, `mkfifo`, `setfattr`, `getfattr` (package `attr`). All take absolute paths.
 */
import { spawn } from 'node:child_process';

import { internal } from '../base/errors.js';

/** Run a binary, resolve with stdout; reject with its stderr on a non-zero exit. */
export function run(cmd: string, args: string[], input?: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout!.on('data', (b: Buffer) => out.push(b));
    p.stderr!.on('data', (b: Buffer) => err.push(b));
    p.on('error', (e) => reject(internal(`${cmd}: ${e.message}`, { cause: e })));
    p.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(internal(`${cmd} ${args.join(' ')}: ${Buffer.concat(err).toString().trim() || `exit ${code}`}`));
    });
    if (input) p.stdin!.end(input);
  });
}

/** Create a character or block device node. */
export async function mknod(path: string, kind: 'c' | 'b', major: number, minor: number, mode: number): Promise<void> {
  await run('mknod', ['-m', (mode & 0o7777).toString(8), '--', path, kind, String(major), String(minor)]);
}

/** Create a FIFO. */
export async function mkfifo(path: string, mode: number): Promise<void> {
  await run('mkfifo', ['-m', (mode & 0o7777).toString(8), '--', path]);
}

/** Set an extended attribute on path (never following a final symlink). */
export async function setXattr(path: string, name: string, value: Buffer): Promise<void> {
  await run('setfattr', ['-h', '-n', name, '-v', `0x${value.toString('hex')}`, '--', path]);
}

/** Decode getfattr's octal escapes in file names (`\012` for newline, `\\` for backslash). */
function unescapeName(s: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(parseInt(s.slice(i + 1, i + 4), 8));
      i += 3;
    } else if (s[i] === '\\' && s[i + 1] === '\\') {
      bytes.push(0x5c);
      i += 1;
    } else {
      bytes.push(...Buffer.from(s[i]!, 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

/**
 * All extended attributes under `dir` (recursive, symlinks not followed), matching `pattern`
 * (a getfattr `-m` regex). Map of absolute path → name → value. Empty when getfattr finds none.
 */
export async function dumpXattrs(dir: string, pattern = '-'): Promise<Map<string, Map<string, Buffer>>> {
  const out = new Map<string, Map<string, Buffer>>();
  let text: string;
  try {
    text = (await run('getfattr', ['-R', '-P', '-h', '-d', '-e', 'hex', '--absolute-names', '-m', pattern, '--', dir])).toString('utf8');
  } catch (err) {
    // getfattr exits 1 when some file has no xattr support; treat as "none" unless nothing printed
    if (/No such file/.test(String(err))) return out;
    throw err;
  }
  let cur: Map<string, Buffer> | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      cur = new Map();
      out.set(unescapeName(line.slice(8)), cur);
    } else if (cur && line.includes('=')) {
      const i = line.indexOf('=');
      const v = line.slice(i + 1);
      cur.set(line.slice(0, i), v.startsWith('0x') ? Buffer.from(v.slice(2), 'hex') : Buffer.from(v.replace(/^"|"$/g, ''), 'utf8'));
    }
  }
  return out;
}

/** Overlay opaque-directory xattr name. */
export const OPAQUE_XATTR = 'trusted.overlay.opaque';
