/**
 * Container logs in Docker's json-file shape, with rotation.
 *
 * conmon writes the container's output to a k8s-file spool (`ctr.log`) — it must, because it keeps
 * running when berthd is down. berthd's LogPump copies each spool record into
 * `<id>-json.log` as `{"log":"…","stream":"stdout","time":"…"}` lines, rotating by max-size /
 * max-file like Docker's json-file driver, and keeps the spool small: once it is consumed and
 * large, it is renamed and conmon is told to reopen its log (ctl message 2), then the old spool is
 * drained and deleted. The consumed offset is persisted, so a restarted berthd resumes where it stopped.
 */
import { open, rename, rm, stat, readFile, appendFile, type FileHandle } from 'node:fs/promises';
import { watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { parseK8sLine, toUnixNano } from '../runtime/k8s-log.js';
import { conmonReopenLog } from '../runtime/conmon.js';
import { writeFileAtomic } from '../host/atomic-fs.js';
import type { OutputChunk } from '../engine/services.js';

/** Rotation settings (`--log-opt max-size=10m max-file=3`). */
export interface RotateOptions {
  maxSize: number; // 0 = unlimited
  maxFile: number; // >= 1
}

const SPOOL_TRIM = 1 << 20;

/** Encode one record as a json-file line. */
export function jsonLogLine(r: OutputChunk): string {
  return `${JSON.stringify({ log: r.data.toString('utf8'), stream: r.stream, time: r.time })}\n`;
}

/** Decode one json-file line. */
export function parseJsonLogLine(line: string): (OutputChunk & { unixNano: bigint }) | undefined {
  try {
    const j = JSON.parse(line) as { log?: string; stream?: string; time?: string };
    if (typeof j.log !== 'string' || (j.stream !== 'stdout' && j.stream !== 'stderr') || typeof j.time !== 'string') return undefined;
    return { stream: j.stream, data: Buffer.from(j.log, 'utf8'), time: j.time, unixNano: toUnixNano(j.time) };
  } catch {
    return undefined;
  }
}

/** Copies one container's spool into its json-file log. */
export class LogPump {
  private running = false;
  private stopped = false;
  private wake: (() => void) | undefined;
  private watcher: ReturnType<typeof watch> | undefined;
  private done: Promise<void> = Promise.resolve();
  private listeners = new Set<() => void>();

  constructor(
    private readonly spool: string,
    private readonly jsonPath: string,
    private readonly offsetPath: string,
    private readonly bundle: string,
    private readonly rotate: RotateOptions,
    private readonly log: (m: string) => void,
  ) {}

  /** Called after each batch lands in the json log (followers wake up). */
  onWrite(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Start pumping (idempotent). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopped = false;
    try {
      const base = basename(this.spool);
      this.watcher = watch(dirname(this.spool), (_e, f) => {
        if (!f || String(f) === base) this.wake?.();
      });
      this.watcher.on('error', () => undefined);
    } catch {
      this.watcher = undefined;
    }
    this.done = this.loop().catch((e) => this.log(`log pump ${this.spool}: ${(e as Error).message}`));
  }

  /** Drain everything the spool holds, then stop. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.done;
    this.watcher?.close();
    this.watcher = undefined;
    this.running = false;
  }

  /** Copy everything currently in the spool (used when no pump runs, e.g. reconcile). */
  async drainOnce(): Promise<void> {
    await this.pass();
  }

  private async loop(): Promise<void> {
    for (;;) {
      const moved = await this.pass();
      if (moved) continue;
      if (this.stopped) return;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 500);
      });
      this.wake = undefined;
    }
  }

  private async readOffset(): Promise<number> {
    try {
      return Number((await readFile(this.offsetPath, 'utf8')).trim()) || 0;
    } catch {
      return 0;
    }
  }

  /** One pass: copy new complete records; returns true when it moved data. */
  private async pass(): Promise<boolean> {
    let moved = false;
    // an old spool left by an interrupted trim is drained first
    const old = `${this.spool}.old`;
    if (await exists(old)) {
      moved = (await this.copyFrom(old, true)) || moved;
      await rm(old, { force: true });
      await writeFileAtomic(this.offsetPath, '0');
    }
    moved = (await this.copyFrom(this.spool, false)) || moved;
    return moved;
  }

  private async copyFrom(path: string, whole: boolean): Promise<boolean> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch {
      return false;
    }
    try {
      let offset = whole ? 0 : await this.readOffset();
      const size = (await fh.stat()).size;
      if (size < offset) offset = 0;
      if (size === offset) {
        if (!whole && size >= SPOOL_TRIM) await this.trim();
        return false;
      }
      let out = '';
      let pos = offset;
      while (pos < size) {
        const len = Math.min(size - pos, 1 << 20);
        const buf = Buffer.allocUnsafe(len);
        const { bytesRead } = await fh.read(buf, 0, len, pos);
        if (bytesRead <= 0) break;
        const chunk = buf.subarray(0, bytesRead);
        const lastNl = chunk.lastIndexOf(0x0a);
        if (lastNl < 0) break; // incomplete record: wait for the rest
        let start = 0;
        for (;;) {
          const nl = chunk.indexOf(0x0a, start);
          if (nl < 0 || nl > lastNl) break;
          const rec = parseK8sLine(chunk.subarray(start, nl));
          if (rec) out += jsonLogLine(rec);
          start = nl + 1;
        }
        pos += lastNl + 1;
        if (out.length > 1 << 20) {
          await this.append(out);
          out = '';
        }
      }
      if (out) await this.append(out);
      if (!whole) await writeFileAtomic(this.offsetPath, String(pos));
      for (const l of this.listeners) l();
      return pos > offset;
    } finally {
      await fh.close();
    }
  }

  private curSize = -1;

  private async append(text: string): Promise<void> {
    if (this.rotate.maxSize <= 0) {
      await appendFile(this.jsonPath, text);
      return;
    }
    if (this.curSize < 0) {
      try {
        this.curSize = (await stat(this.jsonPath)).size;
      } catch {
        this.curSize = 0;
      }
    }
    // rotate at line boundaries, like Docker's json-file writer
    let buf = '';
    let bufLen = 0;
    for (const line of text.split(/(?<=\n)/)) {
      const len = Buffer.byteLength(line);
      if (this.curSize + bufLen > 0 && this.curSize + bufLen + len > this.rotate.maxSize) {
        if (buf) await appendFile(this.jsonPath, buf);
        await this.rotateFiles();
        this.curSize = 0;
        buf = '';
        bufLen = 0;
      }
      buf += line;
      bufLen += len;
    }
    if (buf) await appendFile(this.jsonPath, buf);
    this.curSize += bufLen;
  }

  private async rotateFiles(): Promise<void> {
    const n = Math.max(1, this.rotate.maxFile);
    if (n === 1) {
      await rm(this.jsonPath, { force: true });
      return;
    }
    await rm(`${this.jsonPath}.${n - 1}`, { force: true });
    for (let i = n - 2; i >= 1; i--) await rename(`${this.jsonPath}.${i}`, `${this.jsonPath}.${i + 1}`).catch(() => undefined);
    await rename(this.jsonPath, `${this.jsonPath}.1`).catch(() => undefined);
  }

  /** Swap the spool out from under conmon once it is consumed. */
  private async trim(): Promise<void> {
    const old = `${this.spool}.old`;
    try {
      await rename(this.spool, old);
    } catch {
      return;
    }
    try {
      await conmonReopenLog(this.bundle);
    } catch {
      // conmon is gone: nothing more will be written to the old spool
    }
    // conmon may still write a few records to the old file before it reopens: give it a moment,
    // then the next pass drains `.old` whole and resets the offset for the new spool.
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** The json-file log files of a container, oldest first. */
export async function jsonLogFiles(jsonPath: string, maxFile: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = Math.max(1, maxFile) - 1; i >= 1; i--) if (await exists(`${jsonPath}.${i}`)) out.push(`${jsonPath}.${i}`);
  out.push(jsonPath);
  return out;
}

/** Read json-file logs: the rotated files then the live one, following it when asked. */
export async function* readJsonLog(
  jsonPath: string,
  maxFile: number,
  opts: { follow: boolean; stopWhen?: Promise<unknown>; signal?: AbortSignal; pump?: LogPump },
): AsyncGenerator<OutputChunk & { unixNano: bigint }> {
  const files = await jsonLogFiles(jsonPath, maxFile);
  for (const f of files.slice(0, -1)) {
    let text = '';
    try {
      text = await readFile(f, 'utf8');
    } catch {
      continue;
    }
    for (const l of text.split('\n')) {
      const r = l ? parseJsonLogLine(l) : undefined;
      if (r) yield r;
    }
  }
  let offset = 0;
  let ino = -1;
  let rest = '';
  let stopped = false;
  let wake: (() => void) | undefined;
  opts.stopWhen?.then(() => {
    stopped = true;
    wake?.();
  }, () => {
    stopped = true;
    wake?.();
  });
  const unsub = opts.pump?.onWrite(() => wake?.());
  const onAbort = () => {
    stopped = true;
    wake?.();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    for (;;) {
      if (opts.signal?.aborted) return;
      let st;
      try {
        st = await stat(jsonPath);
      } catch {
        st = undefined;
      }
      if (st && ino >= 0 && st.ino !== ino) {
        // rotated under us: start on the new file
        offset = 0;
        rest = '';
      }
      if (st) ino = st.ino;
      if (st && st.size > offset) {
        const fh = await open(jsonPath, 'r');
        try {
          const len = st.size - offset;
          const buf = Buffer.allocUnsafe(len);
          const { bytesRead } = await fh.read(buf, 0, len, offset);
          offset += bytesRead;
          const text = rest + buf.subarray(0, bytesRead).toString('utf8');
          const lines = text.split('\n');
          rest = lines.pop() ?? '';
          for (const l of lines) {
            const r = l ? parseJsonLogLine(l) : undefined;
            if (r) yield r;
          }
        } finally {
          await fh.close();
        }
        continue;
      }
      if (!opts.follow || stopped) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 250);
      });
      wake = undefined;
    }
  } finally {
    unsub?.();
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
