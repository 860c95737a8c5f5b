/**
 * Writing a big file's content with O_DIRECT: the bytes go from a reused, aligned user buffer to the
 * device without filling the page cache. A pull unpacks hundreds of MB at once; on the VMs berth
 * runs on, writing them through the page cache cost up to 2× the CPU of the whole pull depending
 * on what the host had done with the guest's free memory just before (the kernel copy into freshly
 * allocated page-cache pages dominated the profile), while O_DIRECT writes touch only the same few
 * buffers (docs/performance.md, pull). The trade-off: a pulled big file is read from disk, not
 * from memory, the first time it is used.
 *
 * Alignment is found by trying: O_DIRECT needs the buffer address aligned (typically to 512 bytes)
 * and Node gives no addresses, so a buffer's aligned window is the first offset a 4 KiB write
 * accepts. The part of a file that does not fill a 4 KiB block is written through the page cache.
 * Any refusal (a file system without O_DIRECT, an odd block size) falls back to ordinary writes.
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs';

/** Bytes staged per O_DIRECT write. */
const STAGE = 1 << 20;
/** Length and offset granularity of the direct writes. */
const BLOCK = 4096;

/** Aligned staging buffers, reused by every file a thread writes (one per file in flight). */
const free: Buffer[] = [];
/** Raw buffers whose aligned window is not known yet. */
let unprobed: Buffer | undefined;

function isEinval(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'EINVAL';
}

/**
 * Writes one file's content, in order, through O_DIRECT where it can. `fd` is the file, open for
 * writing and empty; it stays the caller's.
 */
export class DirectFileWriter {
  private dfd = -1;
  private stage: Buffer | undefined;
  private fill = 0;
  private off = 0;

  constructor(private readonly fd: number) {
    try {
      this.dfd = openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_DIRECT);
    } catch {
      this.dfd = -1; // no O_DIRECT here: ordinary writes
    }
  }

  /** Add content. */
  write(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.dfd < 0) {
        this.plain(chunk.subarray(i));
        return;
      }
      const st = this.buffer();
      if (!st) {
        this.plain(chunk.subarray(i));
        return;
      }
      const n = Math.min(STAGE - this.fill, chunk.length - i);
      chunk.copy(st, this.fill, i, i + n);
      this.fill += n;
      i += n;
      if (this.fill === STAGE) this.flush(STAGE);
    }
  }

  /** Write what is staged and release the buffer and the O_DIRECT descriptor. */
  end(): void {
    try {
      if (this.stage && this.fill > 0) {
        const aligned = this.fill - (this.fill % BLOCK);
        if (aligned > 0) this.flush(aligned);
        // the tail that does not fill a block goes through the page cache
        if (this.fill > 0) this.flush(this.fill, true);
      }
    } finally {
      this.release();
    }
  }

  /** Release without writing (the caller failed). */
  release(): void {
    if (this.dfd >= 0) closeSync(this.dfd);
    this.dfd = -1;
    if (this.stage) free.push(this.stage);
    this.stage = undefined;
  }

  /** The staging buffer: a free one, or a new one whose aligned window is probed on this file. */
  private buffer(): Buffer | undefined {
    if (this.stage) return this.stage;
    const reuse = free.pop();
    if (reuse) return (this.stage = reuse);
    const raw = unprobed ?? Buffer.allocUnsafeSlow(STAGE + BLOCK);
    unprobed = undefined;
    // the probe writes at offset 0 of this (empty) file; the first real write covers it
    for (let o = 0; o < BLOCK; o += 16) {
      try {
        writeSync(this.dfd, raw, o, BLOCK, 0);
        return (this.stage = raw.subarray(o, o + STAGE));
      } catch (err) {
        if (!isEinval(err)) throw err;
      }
    }
    unprobed = raw;
    closeSync(this.dfd);
    this.dfd = -1;
    return undefined;
  }

  /** Write the first `n` staged bytes at the current offset (through the page cache if `plain`). */
  private flush(n: number, plain = false): void {
    const st = this.stage!;
    if (!plain && this.dfd >= 0) {
      try {
        let done = 0;
        while (done < n) done += writeSync(this.dfd, st, done, n - done, this.off + done);
      } catch (err) {
        if (!isEinval(err)) throw err;
        // refused (an odd block size): this file continues with ordinary writes
        closeSync(this.dfd);
        this.dfd = -1;
        plain = true;
      }
    }
    if (plain || this.dfd < 0) this.pwriteAll(this.fd, st.subarray(0, n), this.off);
    this.off += n;
    st.copy(st, 0, n, this.fill);
    this.fill -= n;
  }

  /** Content once O_DIRECT is off: the staged bytes first, then `rest`. */
  private plain(rest: Buffer): void {
    if (this.stage && this.fill > 0) this.flush(this.fill, true);
    this.pwriteAll(this.fd, rest, this.off);
    this.off += rest.length;
  }

  private pwriteAll(fd: number, b: Buffer, at: number): void {
    let done = 0;
    while (done < b.length) done += writeSync(fd, b, done, b.length - done, at + done);
  }
}
