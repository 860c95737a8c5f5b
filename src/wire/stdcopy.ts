/**
 * Docker's multiplexed stream framing (logs, attach and exec without a TTY):
 * each frame is [stream, 0, 0, 0, len (uint32 BE)] followed by len bytes of payload.
 * stream: 0 stdin, 1 stdout, 2 stderr, 3 systemerr.
 */
import { Transform, type TransformCallback } from 'node:stream';

export const STDIN = 0;
export const STDOUT = 1;
export const STDERR = 2;
export const SYSTEMERR = 3;

/** Encode one frame. */
export function frame(stream: number, payload: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head[0] = stream;
  head.writeUInt32BE(payload.length, 4);
  return Buffer.concat([head, payload]);
}

export interface DemuxedChunk {
  stream: number;
  data: Buffer;
}

/**
 * Incremental deframer: push bytes in, get whole frames out. Frames may span pushes.
 */
export class Deframer {
  private buf: Buffer = Buffer.alloc(0);

  push(bytes: Uint8Array): DemuxedChunk[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, bytes]) : Buffer.from(bytes);
    const out: DemuxedChunk[] = [];
    while (this.buf.length >= 8) {
      const len = this.buf.readUInt32BE(4);
      if (this.buf.length < 8 + len) break;
      out.push({ stream: this.buf[0]!, data: this.buf.subarray(8, 8 + len) });
      this.buf = this.buf.subarray(8 + len);
    }
    return out;
  }

  /** Bytes held back waiting for the rest of a frame. */
  get pending(): number {
    return this.buf.length;
  }
}

/** A transform that frames everything written to it as one stream id. */
export class FramingStream extends Transform {
  constructor(private readonly stream: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    cb(null, frame(this.stream, chunk));
  }
}
