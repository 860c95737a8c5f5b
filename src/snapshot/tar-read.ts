/**
 * Reading tar streams with tar-stream: gzip, zstd, xz and bzip2 are detected by magic (all but gzip
 * through their Debian binaries, host/decompress.ts), the uncompressed bytes are
 * hashed on the way (that hash is a layer's DiffID), and each entry is handed to a callback in order.
 */
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { type Duplex, Readable, Transform, type TransformCallback, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';

import { invalidArgument } from '../base/errors.js';
import { compressionOf, createDecompressor, MAGIC_BYTES } from '../host/decompress.js';

/** A tar header as tar-stream decodes it, with PAX records when there were any. */
export interface TarHeader extends tarStream.Headers {
  pax?: Record<string, string>;
}

/** The body of one entry: async-iterable bytes. */
export type TarBody = AsyncIterable<Buffer>;

/** Called for each entry in order; the body may be left unread. */
export type EntryHandler = (header: TarHeader, body: TarBody) => Promise<void>;

/** Result of reading a tar: the sha256 and length of the uncompressed stream. */
export interface ReadTarResult {
  diffId: string;
  bytes: number;
  /** The source was gzip or zstd. */
  compressed: boolean;
}

/** Pass-through stage that hashes what flows by. */
class HashTap extends Transform {
  readonly hash = createHash('sha256');
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    cb(null, chunk);
  }
}

/**
 * Read at least n bytes (or to the end). Returns the head and a stream of all the bytes (head
 * included): the source itself with the head put back (`unshift`), so the data path has no extra
 * stage (an async-generator bridge here cost measurable time per chunk on pulls).
 */
async function peek(src: Readable, n: number): Promise<{ head: Buffer; stream: Readable }> {
  const chunks: Buffer[] = [];
  let len = 0;
  while (len < n) {
    const c = src.read() as Buffer | string | null;
    if (c !== null) {
      const b = typeof c === 'string' ? Buffer.from(c) : c;
      chunks.push(b);
      len += b.length;
      continue;
    }
    if (src.readableEnded || src.destroyed) break;
    await new Promise<void>((resolve, reject) => {
      const settle = (err?: Error): void => {
        src.off('readable', ok);
        src.off('end', ok);
        src.off('close', ok);
        src.off('error', settle);
        if (err) reject(err);
        else resolve();
      };
      const ok = (): void => settle();
      src.on('readable', ok);
      src.on('end', ok);
      src.on('close', ok);
      src.on('error', settle);
    });
    if (src.errored) throw src.errored;
  }
  if (src.errored) throw src.errored;
  const head = Buffer.concat(chunks);
  if (src.readableEnded || src.destroyed) return { head, stream: Readable.from(head.length ? [head] : [], { objectMode: false }) };
  if (head.length) src.unshift(head);
  return { head, stream: src };
}

/** Consume whatever is left of an entry body. */
export async function drain(body: TarBody): Promise<void> {
  for await (const _ of body) {
    /* discard */
  }
}

/** Options of {@link readTar}. */
export interface ReadTarOptions {
  signal?: AbortSignal;
  /**
   * The digest of the source bytes, when the caller verifies them itself (a pulled blob): if the
   * tar turns out to be uncompressed, that digest is its DiffID and the bytes are not hashed again.
   * The result is only as good as the caller's verification.
   */
  uncompressedDigest?: string;
  /** The caller needs no DiffID (`docker cp`, a build context): the stream is not hashed ("" returned). */
  noDigest?: boolean;
  /**
   * Called with every chunk of an uncompressed tar, in order, before the entries in it are handed
   * over (the tar-split recorder). Never called for a compressed one.
   */
  onRaw?: (chunk: Buffer) => void;
}

/**
 * Read a tar (plain, gzip or zstd) and call `onEntry` for each entry, sequentially. Rejects with the
 * first error (from the stream or the handler); the source is destroyed then. `noDigest`: the
 * caller needs no DiffID (`docker cp`, a build context), so the stream is not hashed ("" returned).
 */
export async function readTar(src: Readable, onEntry: EntryHandler, opts: ReadTarOptions = {}): Promise<ReadTarResult> {
  const { head, stream } = await peek(src, MAGIC_BYTES);
  const stages: Duplex[] = [];
  const compression = compressionOf(head);
  if (compression) stages.push(createDecompressor(compression));
  const compressed = stages.length > 0;
  const onRaw = compressed ? undefined : opts.onRaw;
  const known = stages.length === 0 ? opts.uncompressedDigest : undefined;
  const hasher = known || opts.noDigest ? undefined : new HashTap();
  if (hasher) stages.push(hasher);
  const extract = tarStream.extract();
  const ac = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, ac.signal]) : ac.signal;

  let bytes = 0;
  // a Writable, not `for await` over the source: a byte stream's async iterator read()s everything
  // buffered at once, which concatenates (copies) the chunks
  const sink = new Writable({
    highWaterMark: 1 << 20,
    write(chunk: Buffer, _e, cb): void {
      bytes += chunk.length;
      onRaw?.(chunk);
      if (extract.write(chunk)) cb();
      else once(extract, 'drain', { signal }).then(() => cb(), cb);
    },
    final(cb): void {
      extract.end();
      cb();
    },
  });
  const feed = (
    stages.length === 2
      ? pipeline(stream, stages[0]!, stages[1]!, sink, { signal })
      : stages.length === 1
        ? pipeline(stream, stages[0]!, sink, { signal })
        : pipeline(stream, sink, { signal })
  ).catch((err: unknown) => {
    extract.destroy(err as Error);
    throw err;
  });

  const consume = (async () => {
    for await (const entry of extract) {
      await onEntry(entry.header as TarHeader, entry as unknown as TarBody);
      await drain(entry as unknown as TarBody);
    }
  })().catch((err: unknown) => {
    ac.abort(err);
    extract.destroy(err as Error);
    throw err;
  });

  const [c, f] = await Promise.allSettled([consume, feed]);
  if (c.status === 'rejected') throw wrapTarError(c.reason);
  if (f.status === 'rejected') throw wrapTarError(f.reason);
  return { diffId: hasher ? `sha256:${hasher.hash.digest('hex')}` : (known ?? ''), bytes, compressed };
}

function wrapTarError(err: unknown): unknown {
  if (err instanceof Error && 'kind' in err) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR' || /tar|header|checksum/i.test(String((err as Error)?.message))) {
    return invalidArgument(`invalid tar stream: ${(err as Error).message}`, { cause: err });
  }
  return err;
}
