/**
 * Reading conmon's k8s-file logs: `<RFC3339Nano> <stdout|stderr> <P|F> <content>\n`.
 * A `P` (partial) record continues on the next one; `F` ends a line. Reconstructing bytes:
 * content, plus "\n" after an F record — which gives back exactly what the process wrote.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import { watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { OutputChunk } from '../engine/services.js';

/** One parsed log record. */
export interface LogRecord extends OutputChunk {
  /** Unix time in nanoseconds (as a bigint-safe float of seconds is too coarse). */
  unixNano: bigint;
}

/** Normalise a conmon timestamp to Docker's RFC3339Nano with "Z". */
export function normaliseTime(t: string): string {
  return t.replace(/\+00:00$/, 'Z');
}

/** Nanoseconds since the epoch of an RFC3339Nano timestamp. */
export function toUnixNano(t: string): bigint {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(t);
  if (!m) return 0n;
  const ms = Date.parse(`${m[1]}${m[3] === 'Z' ? 'Z' : m[3]}`);
  const frac = (m[2] ?? '').padEnd(9, '0');
  return BigInt(ms) * 1_000_000n + BigInt(frac || '0');
}

/** Parse one k8s-file line (without its trailing newline). */
export function parseK8sLine(line: string | Buffer): LogRecord | undefined {
  const buf = typeof line === 'string' ? Buffer.from(line) : line;
  const s1 = buf.indexOf(0x20);
  if (s1 < 0) return undefined;
  const s2 = buf.indexOf(0x20, s1 + 1);
  if (s2 < 0) return undefined;
  const s3 = buf.indexOf(0x20, s2 + 1);
  const tag = buf.subarray(s2 + 1, s3 < 0 ? buf.length : s3).toString();
  const stream = buf.subarray(s1 + 1, s2).toString();
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  const tags = tag.split(':');
  const partial = tags.includes('P');
  const content = s3 < 0 ? Buffer.alloc(0) : buf.subarray(s3 + 1);
  const time = normaliseTime(buf.subarray(0, s1).toString());
  const data = partial ? Buffer.from(content) : Buffer.concat([content, Buffer.from('\n')]);
  return { stream, data, time, unixNano: toUnixNano(time) };
}

export interface ReadLogOptions {
  /** Follow new records until `stopWhen` resolves and the file is drained. */
  follow: boolean;
  stopWhen?: Promise<unknown>;
  /** Start reading at this byte offset (attach uses the end of the file). */
  fromOffset?: number;
  signal?: AbortSignal;
  pollMs?: number;
}

/** Async iterator of the records of a k8s-file log. */
export async function* readK8sLog(path: string, opts: ReadLogOptions): AsyncGenerator<LogRecord> {
  let offset = opts.fromOffset ?? 0;
  let rest = Buffer.alloc(0);
  let stopped = false;
  opts.stopWhen?.then(
    () => {
      stopped = true;
      wake?.();
    },
    () => {
      stopped = true;
      wake?.();
    },
  );
  let wake: (() => void) | undefined;
  const onAbort = () => {
    stopped = true;
    wake?.();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let watcher: ReturnType<typeof watch> | undefined;
  if (opts.follow) {
    try {
      const base = basename(path);
      watcher = watch(dirname(path), (_ev, f) => {
        if (!f || String(f) === base) wake?.();
      });
      watcher.on('error', () => undefined);
    } catch {
      watcher = undefined;
    }
  }
  let fh: FileHandle | undefined;
  let ino = -1;
  try {
    for (;;) {
      if (opts.signal?.aborted) return;
      // Keep the file open once it exists: a log deleted under us (--rm) stays readable,
      // and a rotated one (new inode at the path) is drained before switching.
      let pathIno = -1;
      try {
        pathIno = (await stat(path)).ino;
      } catch {
        pathIno = -1;
      }
      if (!fh && pathIno >= 0) {
        try {
          fh = await open(path, 'r');
          ino = (await fh.stat()).ino;
        } catch {
          fh = undefined;
        }
      }
      let size = 0;
      if (fh) size = (await fh.stat()).size;
      if (fh && size < offset) {
        // truncated in place (conmon's size limit): start again
        offset = 0;
        rest = Buffer.alloc(0);
      }
      if (fh && size > offset) {
        while (offset < size) {
          const len = Math.min(size - offset, 1 << 20);
          const buf = Buffer.allocUnsafe(len);
          const { bytesRead } = await fh.read(buf, 0, len, offset);
          if (bytesRead <= 0) break;
          offset += bytesRead;
          const chunk = rest.length ? Buffer.concat([rest, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
          let start = 0;
          for (;;) {
            const nl = chunk.indexOf(0x0a, start);
            if (nl < 0) break;
            const rec = parseK8sLine(chunk.subarray(start, nl));
            start = nl + 1;
            if (rec) yield rec;
          }
          rest = Buffer.from(chunk.subarray(start));
        }
        continue;
      }
      if (fh && pathIno >= 0 && pathIno !== ino) {
        // rotated: the old file is drained, move to the new one
        await fh.close();
        fh = undefined;
        offset = 0;
        rest = Buffer.alloc(0);
        continue;
      }
      if (!opts.follow || stopped) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, opts.pollMs ?? 250);
      });
      wake = undefined;
    }
  } finally {
    await fh?.close().catch(() => undefined);
    watcher?.close();
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
