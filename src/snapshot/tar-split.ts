/**
 * Layer tars kept as a recipe instead of a second copy (the idea of Docker's and containers/storage's
 * "tar-split"): while an uncompressed layer is unpacked, every byte of the tar that is not the
 * content of a regular file (headers, PAX and GNU long-name records, padding, the end blocks and
 * anything after them) is recorded verbatim, and each file's content is recorded as "N bytes of the
 * unpacked file at this path". The exact tar (same bytes, same digest) is rebuilt from the recipe
 * and the layer directory when it is pushed or saved, so a pulled uncompressed layer is written to
 * disk once instead of twice (blob + files).
 *
 * A recipe only describes the layer when every content entry's bytes stay in the file it was
 * unpacked to; the unpacker marks it unusable when an entry replaces or removes something the same
 * layer wrote, and the {@link TarSegmenter} when it meets something it does not model (sparse
 * files, a global PAX size, a bad header). The caller then keeps the blob itself.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';

import { invalidArgument, notFound } from '../base/errors.js';

const BLOCK = 512;
const MAGIC = Buffer.from('berth-tar-split/1\n');

/** A piece of a tar: raw bytes kept in the recipe, or the content of the n-th content entry. */
export type Segment = { raw: Buffer } | { entry: number; size: number };

/** A growable byte buffer for the raw parts (copies, so the stream's chunks are not retained). */
class ByteBuilder {
  private buf = Buffer.allocUnsafe(4096);
  length = 0;
  append(b: Buffer): void {
    if (this.length + b.length > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + b.length));
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    b.copy(this.buf, this.length);
    this.length += b.length;
  }
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.length));
    this.length = 0;
    return out;
  }
}

function parseOctal(b: Buffer): number {
  const s = b.toString('latin1').replace(/\0.*$/s, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return NaN;
  return parseInt(s, 8);
}

/** A numeric header field: octal, or GNU base-256 when the high bit of the first byte is set. */
function parseNumeric(b: Buffer): number {
  if ((b[0]! & 0x80) === 0) return parseOctal(b);
  if (b[0] === 0xff) return NaN; // negative
  let n = b[0]! & 0x7f;
  for (let i = 1; i < b.length; i++) n = n * 256 + b[i]!;
  return Number.isSafeInteger(n) ? n : NaN;
}

function checksumOk(h: Buffer): boolean {
  const want = parseOctal(h.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum === want;
}

/** The `size` record of a PAX extended header body, if any. */
function paxSize(body: Buffer): number | undefined {
  let size: number | undefined;
  let i = 0;
  while (i < body.length) {
    const sp = body.indexOf(0x20, i);
    if (sp < 0) break;
    const len = Number(body.toString('latin1', i, sp));
    if (!Number.isInteger(len) || len <= 0 || i + len > body.length) break;
    const rec = body.toString('utf8', sp + 1, i + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0 && rec.slice(0, eq) === 'size') size = Number(rec.slice(eq + 1));
    i += len;
  }
  return size;
}

/**
 * Splits a tar byte stream (fed in order with {@link push}) into raw segments and content entries.
 * Content entries are the regular files (types '0', NUL, '7') with a non-zero size, numbered from 0
 * in stream order: the same entries, in the same order, that a tar reader hands over with a body.
 */
export class TarSegmenter {
  readonly segments: Segment[] = [];
  /** Why the stream cannot be described by a recipe (undefined while it can). */
  unusable: string | undefined;
  /** Bytes seen. */
  total = 0;
  private raw = new ByteBuilder();
  private head = Buffer.alloc(BLOCK);
  private headFill = 0;
  /** Bytes left in the current entry's content (then its padding). */
  private contentLeft = 0;
  private padLeft = 0;
  /** The body of a PAX extended header being collected, to read its `size` record. */
  private meta: ByteBuilder | undefined;
  private nextSize: number | undefined;
  /** Number of content entries seen. */
  contentEntries = 0;
  private zeroBlocks = 0;
  /** After the end-of-archive blocks: everything else is raw. */
  private ended = false;
  /** The current entry's content goes into the recipe as a file reference. */
  private contentIsFile = false;

  push(chunk: Buffer): void {
    this.total += chunk.length;
    if (this.unusable) return;
    let i = 0;
    while (i < chunk.length) {
      if (this.ended) {
        this.raw.append(chunk.subarray(i));
        return;
      }
      if (this.contentLeft > 0) {
        const n = Math.min(this.contentLeft, chunk.length - i);
        const part = chunk.subarray(i, i + n);
        // a file's content is only counted (its segment says how much); the rest is kept
        if (!this.contentIsFile) {
          this.raw.append(part);
          this.meta?.append(part);
        }
        this.contentLeft -= n;
        i += n;
        if (this.contentLeft === 0) this.endContent();
        continue;
      }
      if (this.padLeft > 0) {
        const n = Math.min(this.padLeft, chunk.length - i);
        this.raw.append(chunk.subarray(i, i + n));
        this.padLeft -= n;
        i += n;
        continue;
      }
      const n = Math.min(BLOCK - this.headFill, chunk.length - i);
      chunk.copy(this.head, this.headFill, i, i + n);
      this.headFill += n;
      i += n;
      if (this.headFill === BLOCK) {
        this.headFill = 0;
        this.header(this.head);
        if (this.unusable) return;
      }
    }
  }

  /** Call at the end of the stream; afterwards {@link segments} is complete. */
  end(): void {
    if (this.unusable) return;
    if (this.contentLeft > 0 && this.contentIsFile) {
      this.unusable = 'the tar ends inside a file';
      return;
    }
    if (this.headFill > 0) this.raw.append(this.head.subarray(0, this.headFill));
    this.flushRaw();
  }

  private flushRaw(): void {
    if (this.raw.length > 0) this.segments.push({ raw: this.raw.take() });
  }

  private endContent(): void {
    if (this.meta) {
      const s = paxSize(this.meta.take());
      if (s !== undefined) {
        if (!Number.isSafeInteger(s) || s < 0) this.unusable = 'bad PAX size';
        this.nextSize = s;
      }
      this.meta = undefined;
    }
    this.contentIsFile = false;
  }

  private header(h: Buffer): void {
    this.raw.append(h);
    if (h.every((b) => b === 0)) {
      // two zero blocks end the archive; what follows is kept as it is
      if (++this.zeroBlocks >= 2) this.ended = true;
      return;
    }
    this.zeroBlocks = 0;
    if (!checksumOk(h)) {
      this.unusable = 'a tar header has a bad checksum';
      return;
    }
    const type = String.fromCharCode(h[156]!);
    let size = parseNumeric(h.subarray(124, 136));
    if (!Number.isSafeInteger(size) || size < 0) {
      this.unusable = 'a tar header has a bad size';
      return;
    }
    const isMeta = type === 'x' || type === 'g' || type === 'L' || type === 'K';
    if (!isMeta && this.nextSize !== undefined) {
      size = this.nextSize;
      this.nextSize = undefined;
    }
    if (type === 'S' || type === 'V' || type === 'M') {
      this.unusable = `tar entries of type ${JSON.stringify(type)} are not modelled`;
      return;
    }
    if (type === 'g' && size > 0) {
      // a global PAX header may change the sizes of all later entries: the caller keeps the blob
      this.unusable = 'a global PAX header is not modelled';
      return;
    }
    this.padLeft = (BLOCK - (size % BLOCK)) % BLOCK;
    this.contentLeft = size;
    const regular = type === '0' || type === '\0' || type === '7';
    if (regular && size > 0) {
      this.flushRaw();
      this.segments.push({ entry: this.contentEntries++, size });
      this.contentIsFile = true;
    } else if (type === 'x' && size > 0) {
      this.meta = new ByteBuilder();
    }
    if (size === 0) this.endContent();
  }
}

/** A recipe: segments with the content entries resolved to paths inside the layer directory. */
export type RecipePart = { raw: Buffer } | { path: string; size: number };

/**
 * Resolve a segmenter's content entries to the paths they were unpacked to (`paths[n]` is the
 * layer-relative path of content entry n). Undefined when they do not line up.
 */
export function resolveRecipe(seg: TarSegmenter, paths: Array<{ path: string; size: number }>): RecipePart[] | undefined {
  if (seg.unusable || seg.contentEntries !== paths.length) return undefined;
  const out: RecipePart[] = [];
  for (const s of seg.segments) {
    if ('raw' in s) out.push(s);
    else {
      const p = paths[s.entry];
      if (!p || p.size !== s.size) return undefined;
      out.push(p);
    }
  }
  return out;
}

/** Serialise a recipe (binary: magic, then per part a kind byte and its fields). */
export function encodeRecipe(parts: RecipePart[]): Buffer {
  const bufs: Buffer[] = [MAGIC];
  for (const p of parts) {
    if ('raw' in p) {
      const h = Buffer.alloc(5);
      h[0] = 0;
      h.writeUInt32BE(p.raw.length, 1);
      bufs.push(h, p.raw);
    } else {
      const name = Buffer.from(p.path, 'utf8');
      const h = Buffer.alloc(1 + 8 + 4);
      h[0] = 1;
      h.writeBigUInt64BE(BigInt(p.size), 1);
      h.writeUInt32BE(name.length, 9);
      bufs.push(h, name);
    }
  }
  return Buffer.concat(bufs);
}

/** Parse {@link encodeRecipe}'s output. */
export function decodeRecipe(buf: Buffer): RecipePart[] {
  if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) throw invalidArgument('not a tar-split recipe');
  const out: RecipePart[] = [];
  let i = MAGIC.length;
  const need = (n: number): void => {
    if (i + n > buf.length) throw invalidArgument('truncated tar-split recipe');
  };
  while (i < buf.length) {
    need(1);
    const kind = buf[i++];
    if (kind === 0) {
      need(4);
      const len = buf.readUInt32BE(i);
      i += 4;
      need(len);
      out.push({ raw: buf.subarray(i, i + len) });
      i += len;
    } else if (kind === 1) {
      need(12);
      const size = Number(buf.readBigUInt64BE(i));
      const len = buf.readUInt32BE(i + 8);
      i += 12;
      need(len);
      out.push({ path: buf.toString('utf8', i, i + len), size });
      i += len;
    } else throw invalidArgument('corrupt tar-split recipe');
  }
  return out;
}

/** Total size of the tar a recipe rebuilds. */
export function recipeSize(parts: RecipePart[]): number {
  return parts.reduce((a, p) => a + ('raw' in p ? p.raw.length : p.size), 0);
}

const READ_CHUNK = 1 << 20;

/**
 * Rebuild the tar (or its bytes `[start, end)`) from a recipe and the unpacked layer in `diffDir`.
 * Files are opened without following symlinks and must still have the recorded size. When the
 * whole tar is read and `digest` is given, the bytes are hashed and the stream fails at the end
 * on a mismatch (the layer was changed on disk).
 */
export function rebuildTar(diffDir: string, parts: RecipePart[], opts: { start?: number; end?: number; digest?: string } = {}): Readable {
  const start = opts.start ?? 0;
  const end = opts.end ?? recipeSize(parts);
  const whole = start === 0 && end === recipeSize(parts);
  const hash = whole && opts.digest ? createHash('sha256') : undefined;
  async function* gen(): AsyncGenerator<Buffer> {
    let pos = 0;
    for (const p of parts) {
      const len = 'raw' in p ? p.raw.length : p.size;
      const from = Math.max(start, pos);
      const to = Math.min(end, pos + len);
      if (to > from) {
        if ('raw' in p) {
          const b = p.raw.subarray(from - pos, to - pos);
          hash?.update(b);
          yield b;
        } else {
          let fh;
          try {
            fh = await open(join(diffDir, p.path), constants.O_RDONLY | constants.O_NOFOLLOW);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ELOOP') {
              throw notFound(`layer content changed: ${p.path} is gone from ${diffDir}`);
            }
            throw err;
          }
          try {
            const st = await fh.stat();
            if (!st.isFile() || st.size !== p.size) throw invalidArgument(`layer content changed: ${p.path} in ${diffDir} is not the ${p.size}-byte file unpacked`);
            let off = from - pos;
            const stop = to - pos;
            while (off < stop) {
              const want = Math.min(READ_CHUNK, stop - off);
              const b = Buffer.allocUnsafe(want);
              const { bytesRead } = await fh.read(b, 0, want, off);
              if (bytesRead === 0) throw invalidArgument(`layer content changed: ${p.path} in ${diffDir} is shorter than recorded`);
              const got = bytesRead === want ? b : b.subarray(0, bytesRead);
              hash?.update(got);
              off += bytesRead;
              yield got;
            }
          } finally {
            await fh.close();
          }
        }
      }
      pos += len;
      if (pos >= end) break;
    }
    if (hash) {
      const got = `sha256:${hash.digest('hex')}`;
      if (got !== opts.digest) throw invalidArgument(`layer content changed: the tar rebuilt from ${diffDir} is ${got}, not ${opts.digest}`);
    }
  }
  return Readable.from(gen(), { objectMode: false });
}
