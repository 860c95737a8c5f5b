/**
 * Decompression of the formats Docker accepts for archives (layers, build contexts, ADD): gzip with
 * Node's zlib; zstd, xz and bzip2 through Debian's `zstd`, `xz` and `bzip2` binaries, as Node 20's
 * zlib has none of them and a native addon would be a build dependency. The child reads the
 * compressed bytes on stdin and writes the plain bytes to stdout; the stream is a Duplex, so it sits
 * in a `pipeline()` like `createGunzip()` does, with backpressure both ways.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { Duplex } from 'node:stream';
import { createGunzip } from 'node:zlib';

import { EngineError } from '../base/errors.js';

/** The zstd frame magic number (little-endian 0xFD2FB528), as the first four bytes of a stream. */
export const ZSTD_MAGIC = 0xfd2fb528;

/** True when `head` starts with a zstd frame. */
export function isZstd(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32LE(0) === ZSTD_MAGIC;
}

/** A compression recognised by its magic bytes. */
export type Compression = 'gzip' | 'zstd' | 'xz' | 'bzip2';

/** Bytes {@link compressionOf} needs to see. */
export const MAGIC_BYTES = 6;

/** The compression of a stream that starts with `head` (at least {@link MAGIC_BYTES} when available), or undefined. */
export function compressionOf(head: Buffer): Compression | undefined {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (isZstd(head)) return 'zstd';
  if (head.length >= 6 && head[0] === 0xfd && head.subarray(1, 6).toString('latin1') === '7zXZ\0') return 'xz';
  // "BZh" and a block size digit
  if (head.length >= 4 && head.subarray(0, 3).toString('latin1') === 'BZh' && head[3]! >= 0x31 && head[3]! <= 0x39) return 'bzip2';
  return undefined;
}

/** A decompressing stage for a pipeline. */
export function createDecompressor(kind: Compression): Duplex {
  return kind === 'gzip' ? createGunzip({ chunkSize: 256 * 1024 }) : new ToolDecompress(kind);
}

/** The Debian package of each tool (for the error when it is missing). */
const PACKAGE: Record<Exclude<Compression, 'gzip'>, string> = { zstd: 'zstd', xz: 'xz-utils', bzip2: 'bzip2' };

/**
 * A Duplex that decompresses by running `<tool> -dcq`. Corrupt input fails the stream with
 * invalid-argument (the tool's own message, code `<TOOL>_INVALID`); a missing binary fails it with
 * unavailable (`<TOOL>_MISSING`). Destroying the stream kills the child.
 */
export class ToolDecompress extends Duplex {
  private readonly child: ChildProcessWithoutNullStreams;
  private stderr = '';
  private pendingWrite: ((err?: Error | null) => void) | undefined;
  private exited = false;

  private readonly tool: Exclude<Compression, 'gzip'>;

  /** `binary`: the program to run (default: the tool's name, from PATH). */
  constructor(tool: Exclude<Compression, 'gzip'> = 'zstd', binary: string = tool) {
    super({ highWaterMark: 1 << 20 });
    this.tool = tool;
    this.child = spawn(binary, ['-dcq'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const child = this.child;
    child.stdout.on('data', (c: Buffer) => {
      if (!this.push(c)) child.stdout.pause();
    });
    child.stderr.on('data', (c: Buffer) => {
      if (this.stderr.length < 4096) this.stderr += c.toString('utf8');
    });
    // EPIPE when zstd quits on bad input: the exit status below says why
    child.stdin.on('error', () => undefined);
    child.stdin.on('drain', () => this.flushPendingWrite());
    child.on('error', (err: NodeJS.ErrnoException) => {
      this.exited = true;
      this.flushPendingWrite(err);
      this.destroy(err.code === 'ENOENT'
        ? new EngineError('unavailable', `${tool}-compressed data: the ${binary} binary is not installed (apt-get install ${PACKAGE[tool]})`, { code: `${tool.toUpperCase()}_MISSING`, cause: err })
        : err);
    });
    child.on('close', (code, signal) => {
      this.exited = true;
      if (this.destroyed) return;
      if (code === 0) {
        this.flushPendingWrite();
        this.push(null);
        return;
      }
      const why = this.stderr.trim().replace(/^(zstd|xz|bzip2): (\/\*stdin\*\\ ?: |\(stdin\): |\(stdin\) )?/, '') || (signal ? `killed by ${signal}` : `exit status ${code}`);
      const err = this.invalid(why);
      this.flushPendingWrite(err);
      this.destroy(err);
    });
  }

  private invalid(why: string): EngineError {
    return new EngineError('invalid-argument', `invalid ${this.tool} stream: ${why}`, { code: `${this.tool.toUpperCase()}_INVALID` });
  }

  private flushPendingWrite(err?: Error | null): void {
    const cb = this.pendingWrite;
    this.pendingWrite = undefined;
    cb?.(err);
  }

  override _read(): void {
    this.child.stdout.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.exited) {
      cb(this.invalid('data after the end of the stream'));
      return;
    }
    if (this.child.stdin.write(chunk)) cb();
    else this.pendingWrite = cb;
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.child.stdin.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.flushPendingWrite(err);
    if (!this.exited) this.child.kill('SIGKILL');
    this.child.stdout.destroy();
    this.child.stdin.destroy();
    cb(err);
  }
}


