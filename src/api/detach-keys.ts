/**
 * Detach key sequences (`ctrl-p,ctrl-q` by default, `detachKeys` param), parsed like moby's
 * term.ToBytes and matched on the stdin byte stream server-side.
 */
import { invalidArgument } from '../base/errors.js';

/** Docker's default detach sequence. */
export const DEFAULT_DETACH_KEYS = 'ctrl-p,ctrl-q';

/**
 * Parse "ctrl-p,ctrl-q" / "a,ctrl-@" into bytes. Each comma-separated key is one character or
 * `ctrl-<x>` with x in a-z, @, [, \, ], ^, _. Throws invalid-argument otherwise.
 */
export function parseDetachKeys(spec: string): Buffer {
  const out: number[] = [];
  for (const raw of spec.split(',')) {
    const key = raw.trim();
    if (key.length === 1) {
      out.push(key.charCodeAt(0));
      continue;
    }
    const m = /^ctrl-(.)$/i.exec(key);
    if (!m) throw invalidArgument(`Invalid detach keys (${spec}) provided`);
    const c = m[1]!.toLowerCase();
    if (c >= 'a' && c <= 'z') out.push(c.charCodeAt(0) - 96);
    else if (c === '@') out.push(0);
    else if ('[\\]^_'.includes(c)) out.push(27 + '[\\]^_'.indexOf(c));
    else throw invalidArgument(`Invalid detach keys (${spec}) provided`);
  }
  return Buffer.from(out);
}

/** Result of feeding bytes to a DetachMatcher. */
export interface DetachScan {
  /** Bytes to forward to the process. */
  data: Buffer;
  /** True once the whole sequence was seen (bytes after it are dropped). */
  detached: boolean;
}

/**
 * Incremental matcher: holds back a partial match across chunks and releases it when the
 * sequence breaks, so the process sees every byte that is not part of a full detach sequence.
 */
export class DetachMatcher {
  private held = 0;
  constructor(private readonly keys: Buffer) {}

  /** Scan one chunk. */
  push(chunk: Buffer): DetachScan {
    if (this.keys.length === 0) return { data: chunk, detached: false };
    const out: number[] = [];
    for (const b of chunk) {
      if (b === this.keys[this.held]) {
        this.held++;
        if (this.held === this.keys.length) return { data: Buffer.from(out), detached: true };
        continue;
      }
      if (this.held > 0) {
        for (let i = 0; i < this.held; i++) out.push(this.keys[i]!);
        this.held = 0;
      }
      if (b === this.keys[0]) this.held = 1;
      else out.push(b);
    }
    return { data: Buffer.from(out), detached: false };
  }
}
