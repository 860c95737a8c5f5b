/**
 * Content-addressed blob store (containerd's layout): blobs live at
 * `<root>/content/blobs/sha256/<hex>`; writes go to `<root>/content/ingest/<random>` through a
 * DigestVerifier, are fsynced (unless the caller opts out), then renamed into place. An existing
 * blob counts as success and is kept.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import { invalidArgument, notFound } from '../base/errors.js';
import { DIGEST_RE } from '../base/digest.js';
import { fsyncDir } from '../host/atomic-fs.js';
import { DigestVerifier } from './digest-verifier.js';

/** Options for one ingest. */
export interface IngestOptions {
  /** Expected digest: the write is rejected (nothing stored) when the bytes differ. */
  expected?: string;
  /** Expected size in bytes, when known. */
  size?: number;
  signal?: AbortSignal;
  /**
   * false: skip the fsync of the blob's bytes (still written to a temp file and renamed into
   * place). For layer data a commit can make again, as Docker leaves its layer diffs unsynced.
   */
  sync?: boolean;
}

/** What was stored. */
export interface IngestResult {
  digest: string;
  size: number;
}

/** Reads blobs. */
export interface Provider {
  has(digest: string): Promise<boolean>;
  readBlob(digest: string): Promise<Buffer>;
  openBlob(digest: string, range?: { start: number; end: number }): Readable;
  blobSize(digest: string): Promise<number>;
}

/**
 * Blobs kept in another form and rebuilt on read (a layer tar kept as a tar-split recipe beside
 * its unpacked files): they count as present, have a size and can be read, but are not listed,
 * deleted or collected here; they live and die with what holds them.
 */
export interface VirtualBlobs {
  virtualSize(digest: string): number | undefined;
  openVirtual(digest: string, range?: { start: number; end: number }): Readable;
}

/** Writes blobs. */
export interface Ingester {
  ingest(src: Readable | Uint8Array, opts?: IngestOptions): Promise<IngestResult>;
}

/** Content store with listing and deletion. */
export interface ContentStore extends Provider, Ingester {
  delete(digest: string): Promise<void>;
  list(): Promise<string[]>;
}

/** Chunks at least this big are written on their own, not copied into a batch. */
const BIG_CHUNK = 256 * 1024;

/**
 * Joins small chunks into writes of about 1 MiB: a registry body arrives in 16–64 KiB pieces, and
 * one write call per piece costs more than copying them together (measured on pulls). Big chunks
 * (a layer packed from files read 1 MiB at a time) pass through uncopied.
 */
class WriteBatcher extends Transform {
  private parts: Buffer[] = [];
  private size = 0;
  override _transform(chunk: Buffer, _e: BufferEncoding, cb: TransformCallback): void {
    if (chunk.length >= BIG_CHUNK) {
      // already big (a file read in 1 MiB pieces): pass it on as is instead of copying it
      if (this.size > 0) this.push(this.joined());
      this.push(chunk);
      cb();
      return;
    }
    this.parts.push(chunk);
    this.size += chunk.length;
    if (this.size >= 1 << 20) this.push(this.joined());
    cb();
  }
  override _flush(cb: TransformCallback): void {
    if (this.size > 0) this.push(this.joined());
    cb();
  }
  private joined(): Buffer {
    const b = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.size);
    this.parts = [];
    this.size = 0;
    return b;
  }
}

/** Kept download prefixes older than this are removed at start-up. */
const PARTIAL_MAX_AGE_MS = 24 * 3600_000;

function checkDigest(d: string): string {
  if (!DIGEST_RE.test(d)) throw invalidArgument(`invalid digest: ${d}`);
  return d.slice(7);
}

/** The filesystem implementation of {@link ContentStore}. */
export class FsContentStore implements ContentStore {
  private readonly blobDir: string;
  private readonly ingestDir: string;
  /** Where blobs without a file of their own come from (the layer store's recipes). */
  virtual: VirtualBlobs | undefined;
  /** `root` is the data root; blobs go under `<root>/content`. */
  constructor(root: string) {
    this.blobDir = join(root, 'content', 'blobs', 'sha256');
    this.ingestDir = join(root, 'content', 'ingest');
  }

  /**
   * Create the directories and remove ingest files left by a crash, except the kept prefixes of
   * interrupted downloads ({@link partialPath}) younger than a day, which a later pull resumes.
   */
  async init(): Promise<void> {
    await mkdir(this.blobDir, { recursive: true });
    await mkdir(this.ingestDir, { recursive: true });
    for (const n of await readdir(this.ingestDir)) {
      const p = join(this.ingestDir, n);
      const keep = /^partial-[0-9a-f]{64}$/.test(n) && (await stat(p).then((st) => st.isFile() && Date.now() - st.mtimeMs < PARTIAL_MAX_AGE_MS, () => false));
      if (!keep) await rm(p, { recursive: true, force: true });
    }
  }

  /** Path of a blob on disk (whether or not it exists). */
  blobPath(digest: string): string {
    return join(this.blobDir, checkDigest(digest));
  }

  /** True when the blob has a file of its own (not only a {@link VirtualBlobs} form). */
  async hasFile(digest: string): Promise<boolean> {
    try {
      return (await stat(this.blobPath(digest))).isFile();
    } catch {
      return false;
    }
  }

  async has(digest: string): Promise<boolean> {
    return (await this.hasFile(digest)) || this.virtual?.virtualSize(digest) !== undefined;
  }

  async blobSize(digest: string): Promise<number> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch {
      const v = this.virtual?.virtualSize(digest);
      if (v !== undefined) return v;
      throw notFound(`content ${digest}: not found`);
    }
  }

  async readBlob(digest: string): Promise<Buffer> {
    try {
      return await readFile(this.blobPath(digest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        if (this.virtual?.virtualSize(digest) !== undefined) {
          const parts: Buffer[] = [];
          for await (const c of this.virtual.openVirtual(digest)) parts.push(c as Buffer);
          return Buffer.concat(parts);
        }
        throw notFound(`content ${digest}: not found`);
      }
      throw err;
    }
  }

  /** The first chunk of a blob (enough for its compression magic); empty for an empty blob. */
  async head(digest: string): Promise<Buffer> {
    for await (const c of this.openBlob(digest).iterator({ destroyOnReturn: true })) return c as Buffer;
    return Buffer.alloc(0);
  }

  /**
   * A read stream of a blob, or of the bytes `[start, end)` of it (errors with ENOENT on first read
   * when missing). A blob without a file is rebuilt from its {@link VirtualBlobs} form.
   */
  openBlob(digest: string, range?: { start: number; end: number }): Readable {
    const path = this.blobPath(digest);
    if (this.virtual?.virtualSize(digest) !== undefined && !existsSync(path)) return this.virtual.openVirtual(digest, range);
    return createReadStream(path, range ? { start: range.start, end: Math.max(range.start, range.end) - 1 } : {});
  }

  /**
   * Store bytes. Digest and size are checked before the rename, so a mismatch stores nothing.
   * A blob that already exists is success (its bytes are still read and verified).
   */
  async ingest(src: Readable | Uint8Array, opts: IngestOptions = {}): Promise<IngestResult> {
    if (opts.expected !== undefined) checkDigest(opts.expected);
    await mkdir(this.ingestDir, { recursive: true });
    const tmp = join(this.ingestDir, randomBytes(12).toString('hex'));
    const verifier = new DigestVerifier(opts.expected, opts.size);
    const input = src instanceof Readable ? src : Readable.from([Buffer.from(src)]);
    const out = createWriteStream(tmp, { flags: 'wx', mode: 0o644 });
    try {
      await pipeline(input, verifier, new WriteBatcher(), out, opts.signal ? { signal: opts.signal } : {});
      if (opts.sync !== false) {
        const fh = await open(tmp, 'r+');
        try {
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
      const digest = verifier.digest;
      const dest = this.blobPath(digest);
      // an identical blob is already there: keep it (renaming over it would make the file system
      // flush the new copy first, ~9 ms for 10 MB here) and drop the temp file
      if (await this.hasFile(digest)) return { digest, size: verifier.bytes };
      await rename(tmp, dest);
      await fsyncDir(this.blobDir);
      return { digest, size: verifier.bytes };
    } finally {
      // a pipeline that failed early may have destroyed the file stream while its open() was still
      // pending: wait for it to close, or the file would be created after the rm below
      if (!out.closed) await once(out, 'close').catch(() => undefined);
      await rm(tmp, { force: true });
    }
  }

  /**
   * The private ingest file of a blob's download, named by its digest so that a download cut short
   * leaves a prefix the next pull of the same blob can resume (HTTP Range) instead of starting
   * over. One writer at a time: pulls share a blob's transfer. Never visible as a blob.
   */
  async partialPath(digest: string): Promise<string> {
    const hex = checkDigest(digest);
    await mkdir(this.ingestDir, { recursive: true });
    return join(this.ingestDir, `partial-${hex}`);
  }

  /**
   * Commit a blob written to a {@link partialPath} by a writer that verified `digest` and `size`
   * while writing and fsynced the file: rename it into place (an existing blob is success).
   */
  async commitIngest(tmp: string, digest: string, size: number, verified: { digest: string; bytes: number }): Promise<IngestResult> {
    checkDigest(digest);
    if (verified.digest !== digest || verified.bytes !== size) {
      await rm(tmp, { force: true });
      throw invalidArgument(`digest mismatch: expected ${digest} (${size} bytes), got ${verified.digest} (${verified.bytes} bytes)`);
    }
    if (!tmp.startsWith(this.ingestDir + '/')) throw invalidArgument(`not an ingest path: ${tmp}`);
    await rename(tmp, this.blobPath(digest));
    await fsyncDir(this.blobDir);
    return { digest, size };
  }

  async delete(digest: string): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
  }

  async list(): Promise<string[]> {
    try {
      return (await readdir(this.blobDir)).filter((n) => /^[0-9a-f]{64}$/.test(n)).map((n) => `sha256:${n}`);
    } catch {
      return [];
    }
  }
}
