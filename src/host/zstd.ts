/**
 * zstd decompression through Debian's `zstd` binary (package zstd): Node 20's zlib has no zstd, and
 * a native addon would be a build dependency. The child reads the compressed bytes on stdin and
 * writes the plain bytes to stdout; the stream is a Duplex, so it sits in a `pipeline()` like
 * `createGunzip()` does, with backpressure both ways.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { Duplex } from 'node:stream';

import { EngineError } from '../base/errors.js';

/** The zstd frame magic number (little-endian 0xFD2FB528), as the first four bytes of a stream. */
export const ZSTD_MAGIC = 0xfd2fb528;

/** True when `head` starts with a zstd frame. */
export function isZstd(head: Buffer): boolean {
  return head.length >= 4 && head.readUInt32LE(0) === ZSTD_MAGIC;
}

/**
 * A Duplex that decompresses zstd by running `zstd -dcq`. Corrupt input fails the stream with
 * invalid-argument (zstd's own message); a missing binary fails it with unavailable. Destroying the
 * stream kills the child.
 */
export class ZstdDecompress extends Duplex {
  private readonly child: ChildProcessWithoutNullStreams;
  private stderr = '';
  private pendingWrite: ((err?: Error | null) => void) | undefined;
  private exited = false;

  constructor(binary = 'zstd') {
    super({ highWaterMark: 1 << 20 });
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
        ? new EngineError('unavailable', `zstd-compressed layer: the ${binary} binary is not installed (apt-get install zstd)`, { code: 'ZSTD_MISSING', cause: err })
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
      const why = this.stderr.trim().replace(/^zstd: (\/\*stdin\*\\ ?: )?/, '') || (signal ? `killed by ${signal}` : `exit status ${code}`);
      const err = new EngineError('invalid-argument', `invalid zstd stream: ${why}`, { code: 'ZSTD_INVALID' });
      this.flushPendingWrite(err);
      this.destroy(err);
    });
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
      cb(new EngineError('invalid-argument', 'invalid zstd stream: data after the end of the stream', { code: 'ZSTD_INVALID' }));
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

/** A zstd decompressor for a pipeline. */
export function createZstdDecompress(): ZstdDecompress {
  return new ZstdDecompress();
}
