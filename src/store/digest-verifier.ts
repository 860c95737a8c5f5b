/** Stream stages for blob ingest: a sha256 verifier and a size limiter. */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

import { invalidArgument } from '../base/errors.js';

/**
 * Passes bytes through while hashing them. With `expected`, fails in flush when the digest differs;
 * with `size`, fails as soon as more bytes arrive than announced, and in flush when fewer did.
 */
export class DigestVerifier extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private count = 0;
  private result: string | undefined;
  constructor(private readonly expected?: string, private readonly size?: number) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.length;
    if (this.size !== undefined && this.count > this.size) {
      cb(invalidArgument(`size mismatch: got more than the expected ${this.size} bytes`));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    this.result = `sha256:${this.hash.digest('hex')}`;
    if (this.size !== undefined && this.count !== this.size) {
      cb(invalidArgument(`size mismatch: expected ${this.size} bytes, got ${this.count}`));
      return;
    }
    if (this.expected !== undefined && this.result !== this.expected) {
      cb(invalidArgument(`digest mismatch: expected ${this.expected}, got ${this.result}`));
      return;
    }
    cb();
  }
  /** The digest of everything that passed (after the stream ended). */
  get digest(): string {
    if (this.result === undefined) throw new Error('DigestVerifier: stream not finished');
    return this.result;
  }
  /** Bytes seen so far. */
  get bytes(): number {
    return this.count;
  }
}
